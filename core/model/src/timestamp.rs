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
    /// From microseconds since the Unix epoch, written at a UTC offset (seconds east).
    pub fn from_unix_micros_at_offset(micros: i64, offset_secs: i32) -> Self {
        Self { micros, offset_secs }
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
        let mut buf = [0u8; 40];
        let n = write_civil(&mut buf, self.micros);
        buf[n] = b'Z';
        String::from_utf8_lossy(&buf[..n + 1]).into_owned()
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

/// (year, month, day, seconds of day, microseconds) of an epoch-micros value in UTC.
fn civil(micros: i64) -> (i64, i64, i64, i64, i64) {
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
    (y, m, d, sod, us)
}

/// Writes `v` as at least `width` decimal digits at `buf[at..]`; returns the end.
fn put_digits(buf: &mut [u8], at: usize, v: i64, width: usize) -> usize {
    let mut tmp = [b'0'; 20];
    let (mut n, mut v) = (0, v.unsigned_abs());
    while v > 0 || n < width {
        tmp[19 - n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    buf[at..at + n].copy_from_slice(&tmp[20 - n..]);
    at + n
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` of epoch micros (as UTC) into `buf`; returns its length. The
/// buffer holds any `i64` (years of up to 6 digits, with a sign).
fn write_civil(buf: &mut [u8; 40], micros: i64) -> usize {
    let (y, m, d, sod, us) = civil(micros);
    // As `{y:04}` writes it: the sign counts in the width.
    let mut i = put_digits(buf, usize::from(y < 0), y, if y < 0 { 3 } else { 4 });
    if y < 0 {
        buf[0] = b'-';
    }
    buf[i] = b'-';
    i = put_digits(buf, i + 1, m, 2);
    buf[i] = b'-';
    i = put_digits(buf, i + 1, d, 2);
    buf[i] = b'T';
    i = put_digits(buf, i + 1, sod / 3600, 2);
    buf[i] = b':';
    i = put_digits(buf, i + 1, sod / 60 % 60, 2);
    buf[i] = b':';
    i = put_digits(buf, i + 1, sod % 60, 2);
    buf[i] = b'.';
    put_digits(buf, i + 1, us, 6)
}

impl Timestamp {
    /// The text of [`fmt::Display`] into `buf`; returns its length (only ASCII is written).
    fn write_text(&self, buf: &mut [u8; 40]) -> usize {
        let local = self.micros.saturating_add(self.offset_secs as i64 * 1_000_000);
        let n = write_civil(buf, local);
        let off = self.offset_secs.unsigned_abs() as i64;
        buf[n] = if self.offset_secs < 0 { b'-' } else { b'+' };
        let n = put_digits(buf, n + 1, off / 3600, 2);
        put_digits(buf, n, off / 60 % 60, 2)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 40];
        let n = self.write_text(&mut buf);
        // Only ASCII digits and punctuation were written.
        f.write_str(std::str::from_utf8(&buf[..n]).unwrap_or_default())
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
        // From a buffer on the stack: `collect_str` would build a `String` for serializers
        // without their own (the canonical writer).
        let mut buf = [0u8; 40];
        let n = self.write_text(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or_default())
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
    fn formatting_agrees_with_the_generic_formatter_over_the_range() {
        let generic = |t: &Timestamp| {
            let local = t.micros + t.offset_secs as i64 * 1_000_000;
            let (y, m, d, sod, us) = civil(local);
            let off = t.offset_secs.abs();
            let sign = if t.offset_secs < 0 { '-' } else { '+' };
            let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}{sign}{:02}{:02}", off / 3600, off / 60 % 60)
        };
        let mut micros = -70_000_000_000_000_000i64;
        while micros < 300_000_000_000_000_000 {
            for offset in [0, 25_200, -12_600, 86_399, -86_399] {
                let t = Timestamp::from_unix_micros_at_offset(micros, offset);
                assert_eq!(t.to_string(), generic(&t));
                assert_eq!(t.offset_secs(), offset);
            }
            micros += 987_654_321_987_651;
        }
        let t = Timestamp::from_unix_micros_at_offset(0, 100 * 3600);
        assert_eq!(t.to_string(), "1970-01-05T04:00:00.000000+10000");
        assert_eq!(t.to_rfc3339(), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn unix_day_is_utc_day() {
        let t: Timestamp = "2020-05-01T23:30:00.000000-0100".parse().unwrap();
        assert_eq!(t.unix_day(), 18384); // 2020-05-02 UTC
    }
}
