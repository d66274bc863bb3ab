//! Microsecond timestamps that keep their UTC offset, formatted the way Suricata writes
//! them (`2020-05-01T07:06:34.439771+0000`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time with microsecond precision and the UTC offset it was written with.
///
/// ```
/// use soc_model::Timestamp;
/// let t: Timestamp = "2020-05-01T07:06:34.439771+0000".parse().unwrap();
/// assert_eq!(t.to_string(), "2020-05-01T07:06:34.439771+0000");
/// assert_eq!(t.unix_micros(), 1_588_316_794_439_771);
/// let local: Timestamp = "2020-05-01T14:06:34.439771+0700".parse().unwrap();
/// assert_eq!(local.unix_micros(), t.unix_micros());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    micros: i64,
    offset_secs: i32,
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.micros.cmp(&other.micros)
    }
}

/// Why a timestamp text could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {text:?}: {reason}")]
pub struct TimestampError {
    text: String,
    reason: &'static str,
}

impl Timestamp {
    /// From microseconds since the Unix epoch, in UTC.
    pub fn from_unix_micros(micros: i64) -> Self {
        Self { micros, offset_secs: 0 }
    }
    /// From seconds and microseconds since the Unix epoch (pcap header style), in UTC.
    pub fn from_secs_micros(secs: i64, usecs: u32) -> Self {
        Self::from_unix_micros(secs.saturating_mul(1_000_000).saturating_add(usecs as i64))
    }
    /// The current time, in UTC.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self::from_unix_micros(d.as_micros() as i64)
    }
    pub fn unix_micros(&self) -> i64 {
        self.micros
    }
    pub fn unix_secs(&self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }
    /// Days since the Unix epoch (UTC): the store's partition key.
    pub fn unix_day(&self) -> i64 {
        self.micros.div_euclid(86_400_000_000)
    }
    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }
    /// The same instant written in UTC.
    pub fn to_utc(self) -> Self {
        Self { micros: self.micros, offset_secs: 0 }
    }
    pub fn add_micros(self, d: i64) -> Self {
        Self { micros: self.micros.saturating_add(d), offset_secs: self.offset_secs }
    }

    /// RFC 3339 in UTC with a `Z` (for APIs that want that form).
    pub fn to_rfc3339(&self) -> String {
        let (date, secs_of_day, us) = civil(self.micros);
        format!("{}T{:02}:{:02}:{:02}.{:06}Z", date, secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60, us)
    }

    fn parse_text(s: &str) -> Result<Self, TimestampError> {
        let err = |reason| TimestampError { text: s.to_string(), reason };
        // Accepts YYYY-MM-DDTHH:MM:SS[.frac](Z|+HHMM|+HH:MM|-...), also with a space separator.
        let pd = time::format_description::well_known::Rfc3339;
        let b = s.as_bytes();
        if b.len() < 19 {
            return Err(err("too short"));
        }
        // Split off the offset.
        let (main, offset_secs) = if let Some(stripped) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
            (stripped, 0)
        } else {
            let pos = s[19..].rfind(['+', '-']).map(|p| p + 19).ok_or_else(|| err("missing UTC offset"))?;
            let sign = if b[pos] == b'-' { -1 } else { 1 };
            let off: String = s[pos + 1..].chars().filter(|c| *c != ':').collect();
            if off.len() != 4 || !off.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err("bad UTC offset"));
            }
            let h: i32 = off[..2].parse().map_err(|_| err("bad UTC offset"))?;
            let m: i32 = off[2..].parse().map_err(|_| err("bad UTC offset"))?;
            (&s[..pos], sign * (h * 3600 + m * 60))
        };
        let mut norm = String::with_capacity(main.len() + 1);
        norm.push_str(main);
        if norm.as_bytes().get(10) == Some(&b' ') {
            norm.replace_range(10..11, "T");
        }
        norm.push('Z');
        let dt = time::OffsetDateTime::parse(&norm, &pd).map_err(|_| err("not an RFC 3339 date-time"))?;
        let local_micros = (dt.unix_timestamp_nanos() / 1000) as i64;
        Ok(Self { micros: local_micros - offset_secs as i64 * 1_000_000, offset_secs })
    }
}

/// (YYYY-MM-DD, seconds of day, microseconds) of an epoch-micros value in UTC.
fn civil(micros: i64) -> (String, i64, i64) {
    let secs = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (format!("{y:04}-{m:02}-{d:02}"), sod, us)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.micros + self.offset_secs as i64 * 1_000_000;
        let (date, sod, us) = civil(local);
        let off = self.offset_secs.abs();
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        write!(
            f,
            "{}T{:02}:{:02}:{:02}.{:06}{}{:02}{:02}",
            date,
            sod / 3600,
            sod / 60 % 60,
            sod % 60,
            us,
            sign,
            off / 3600,
            off / 60 % 60
        )
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_text(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_suricata_and_round_trips_offsets() {
        for s in [
            "2020-05-01T07:06:34.439771+0000",
            "1999-12-31T23:59:59.000001+0700",
            "2024-02-29T00:00:00.000000-0330",
            "1969-12-31T23:59:59.999999+0000",
        ] {
            let t: Timestamp = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn accepts_rfc3339_forms_and_rejects_garbage() {
        let a: Timestamp = "2020-05-01T07:06:34Z".parse().unwrap();
        let b: Timestamp = "2020-05-01 07:06:34.000000+00:00".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2020-05-01T07:06:34.000000Z");
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!("2020-05-01T07:06:34".parse::<Timestamp>().is_err());
        assert!("2020-13-01T07:06:34Z".parse::<Timestamp>().is_err());
    }

    #[test]
    fn unix_day_is_utc_day() {
        let t: Timestamp = "2020-05-01T23:30:00.000000-0100".parse().unwrap();
        assert_eq!(t.unix_day(), 18384); // 2020-05-02 UTC
    }
}
