//! Timestamp forms found in logs: RFC 3339 with or without offset, BSD syslog
//! (`Oct 11 22:14:15`, year-less), epoch numbers.

use soc_model::Timestamp;

/// Parses a UTC offset: `Z`, `UTC`, `GMT`, `+07:00`, `+0700`, `+07`, `-05:30`. Seconds east.
pub fn parse_utc_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|c| c.is_ascii_digit()) || rest.matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// `+HHMM` for an offset in seconds.
pub(crate) fn format_offset(offset_secs: i32) -> String {
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let a = offset_secs.unsigned_abs();
    format!("{sign}{:02}{:02}", a / 3600, a / 60 % 60)
}

/// A civil date-time at an offset, validated (no February 30th).
#[allow(clippy::too_many_arguments)]
pub(crate) fn civil(
    year: i32,
    month: u8,
    day: u8,
    h: u8,
    m: u8,
    s: u8,
    micros: u32,
    offset_secs: i32,
) -> Option<Timestamp> {
    let mon = time::Month::try_from(month).ok()?;
    time::Date::from_calendar_date(year, mon, day).ok()?;
    if h > 23 || m > 59 || s > 60 || micros > 999_999 || !(0..=9999).contains(&year) {
        return None;
    }
    // The offset as `+HHMM` keeps it: whole minutes, at most 99 hours.
    let a = offset_secs.unsigned_abs();
    if a / 3600 > 99 {
        return None;
    }
    let offset = (a / 3600 * 3600 + a / 60 % 60 * 60) as i32 * offset_secs.signum();
    // A leap second is read as the last second of the minute (in `unix_micros_of`).
    let micros = unix_micros_of(year, month, day, h, m, s, micros, offset);
    Some(Timestamp::from_unix_micros_at_offset(micros, offset))
}

/// RFC 3339 / ISO 8601 text; without an offset, `default_offset_secs` is assumed.
pub(crate) fn parse_iso(text: &str, default_offset_secs: i32) -> Option<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let b = text.as_bytes();
    // `YYYY-MM-DDTHH:MM:SS[.f]` with no offset: the offset-less forms some daemons write.
    if b.len() < 19 || b.len() > 40 {
        return None;
    }
    let tail = &text[19..];
    let has_offset = tail.ends_with(['Z', 'z']) || tail.contains(['+', '-']);
    if has_offset {
        return None;
    }
    format!("{text}{}", format_offset(default_offset_secs)).parse().ok()
}

/// A Unix epoch number: seconds, milliseconds or microseconds (told apart by magnitude).
pub(crate) fn from_epoch(n: f64) -> Option<Timestamp> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let micros = if n >= 1e14 {
        n
    } else if n >= 1e11 {
        n * 1e3
    } else {
        n * 1e6
    };
    if micros > 253_402_300_799e6 {
        return None; // after year 9999
    }
    Some(Timestamp::from_unix_micros(micros as i64))
}

fn month_number(b: &[u8]) -> Option<u8> {
    const MONTHS: [&[u8; 3]; 12] =
        [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];
    let m = [b.first()?.to_ascii_lowercase(), b.get(1)?.to_ascii_lowercase(), b.get(2)?.to_ascii_lowercase()];
    MONTHS.iter().position(|x| **x == m).map(|p| p as u8 + 1)
}

/// Reads 1..=max digits at `*i`.
fn digits(b: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let start = *i;
    let mut v: u32 = 0;
    while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
        v = v * 10 + (b[*i] - b'0') as u32;
        *i += 1;
    }
    if *i - start < min { None } else { Some(v) }
}

fn skip_spaces(b: &[u8], i: &mut usize) -> usize {
    let start = *i;
    while *i < b.len() && b[*i] == b' ' {
        *i += 1;
    }
    *i - start
}

/// The year of a year-less date: the latest one that is not more than a week after the
/// reference (a message from the future is more likely last year's; a week covers clock
/// skew and the turn of the year).
#[allow(clippy::too_many_arguments)]
fn resolve_year(
    reference: Timestamp,
    month: u8,
    day: u8,
    h: u8,
    m: u8,
    s: u8,
    micros: u32,
    offset: i32,
) -> Option<Timestamp> {
    const SLACK: i64 = 7 * 86_400 * 1_000_000;
    let ref_year = year_of(reference);
    let limit = reference.unix_micros().saturating_add(SLACK);
    // The year is chosen by arithmetic; only the chosen date is built (and validated) as a
    // timestamp, which is the costly part.
    let mon = time::Month::try_from(month).ok()?;
    let year = (ref_year - 4..=ref_year + 1).rev().find(|y| {
        time::Date::from_calendar_date(*y, mon, day).is_ok()
            && unix_micros_of(*y, month, day, h, m, s, micros, offset) <= limit
    })?;
    civil(year, month, day, h, m, s, micros, offset)
}

/// Microseconds since the epoch of a valid civil date-time at an offset (a leap second is
/// the last second of the minute, as in [`civil`]).
#[allow(clippy::too_many_arguments)]
fn unix_micros_of(year: i32, month: u8, day: u8, h: u8, m: u8, s: u8, micros: u32, offset: i32) -> i64 {
    // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let (mo, d) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(mo <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s.min(59)) - i64::from(offset);
    secs * 1_000_000 + i64::from(micros)
}

fn year_of(t: Timestamp) -> i32 {
    time::OffsetDateTime::from_unix_timestamp(t.unix_secs()).map(|d| d.year()).unwrap_or(1970)
}

/// A BSD syslog timestamp at the start of `b`: `Mmm dd [yyyy ]hh:mm:ss[.frac][ yyyy][ TZ]`.
/// Returns the time and the bytes consumed. A year-less date is placed in the year that makes it
/// closest to `reference`; a time without zone is at `offset_secs`.
pub(crate) fn parse_bsd(b: &[u8], reference: Timestamp, offset_secs: i32) -> Option<(Timestamp, usize)> {
    let month = month_number(b)?;
    let mut i = 3;
    if skip_spaces(b, &mut i) == 0 {
        return None;
    }
    let day = digits(b, &mut i, 1, 2)? as u8;
    if skip_spaces(b, &mut i) == 0 {
        return None;
    }
    let mut year: Option<i32> = None;
    // `Jan 12 2024 10:00:00` (Cisco ASA).
    {
        let mut j = i;
        if let Some(y) = digits(b, &mut j, 4, 4)
            && b.get(j) == Some(&b' ')
        {
            year = Some(y as i32);
            i = j;
            skip_spaces(b, &mut i);
        }
    }
    let h = digits(b, &mut i, 1, 2)? as u8;
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    let m = digits(b, &mut i, 2, 2)? as u8;
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    let s = digits(b, &mut i, 2, 2)? as u8;
    let mut micros = 0u32;
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (b[i] - b'0') as u32;
            }
            i += 1;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let mut offset = offset_secs;
    // ` 2024` after the time (some appliances).
    if year.is_none() && b.get(i) == Some(&b' ') {
        let mut j = i + 1;
        if let Some(y) = digits(b, &mut j, 4, 4)
            && (1990..=2099).contains(&y)
            && matches!(b.get(j), None | Some(b' ') | Some(b':'))
        {
            year = Some(y as i32);
            i = j;
        }
    }
    // ` UTC` / ` GMT`, or a zone name before a colon (Cisco IOS `... 18:46:11.123 EST:`).
    if b.get(i) == Some(&b' ') {
        let j = i + 1;
        let mut k = j;
        while k < b.len() && k - j < 5 && b[k].is_ascii_uppercase() {
            k += 1;
        }
        let zone = &b[j..k];
        let ends = matches!(b.get(k), None | Some(b' ') | Some(b':'));
        if ends && (zone == b"UTC" || zone == b"GMT") {
            offset = 0;
            i = k;
        } else if zone.len() >= 3 && b.get(k) == Some(&b':') {
            i = k;
        }
    }
    let ts = match year {
        Some(y) => civil(y, month, day, h, m, s, micros, offset)?,
        None => resolve_year(reference, month, day, h, m, s, micros, offset)?,
    };
    Some((ts, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_utc_offset("+07:00"), Some(25200));
        assert_eq!(parse_utc_offset("+0700"), Some(25200));
        assert_eq!(parse_utc_offset("-05:30"), Some(-19800));
        assert_eq!(parse_utc_offset("+7"), Some(25200));
        assert_eq!(parse_utc_offset("Z"), Some(0));
        assert_eq!(parse_utc_offset("UTC"), Some(0));
        assert_eq!(parse_utc_offset("+25:00"), None);
        assert_eq!(parse_utc_offset("07:00"), None);
        assert_eq!(parse_utc_offset("+07:0:0"), None);
        assert_eq!(parse_utc_offset(""), None);
        assert_eq!(format_offset(-19800), "-0530");
    }

    #[test]
    fn bsd_year_is_resolved_against_the_reference() {
        let reference = ts("2024-01-01T00:00:05Z");
        let (t, n) = parse_bsd(b"Dec 31 23:59:59 host", reference, 0).unwrap();
        assert_eq!(t, ts("2023-12-31T23:59:59Z"));
        assert_eq!(n, 15);
        let reference = ts("2023-12-31T23:59:58Z");
        let (t, _) = parse_bsd(b"Jan  1 00:00:01", reference, 0).unwrap();
        assert_eq!(t, ts("2024-01-01T00:00:01Z"));
        let reference = ts("2024-06-15T12:00:00Z");
        let (t, _) = parse_bsd(b"Oct 11 22:14:15", reference, 0).unwrap();
        assert_eq!(t, ts("2023-10-11T22:14:15Z"));
        let (t, _) = parse_bsd(b"Jun 20 00:00:00", reference, 0).unwrap();
        assert_eq!(t, ts("2024-06-20T00:00:00Z"));
        let (t, _) = parse_bsd(b"Jun 15 19:00:00", reference, 7 * 3600).unwrap();
        assert_eq!(t.to_string(), "2024-06-15T19:00:00.000000+0700");
        // Feb 29 only exists in leap years: the closest one is chosen.
        let reference = ts("2025-03-01T00:00:00Z");
        let (t, _) = parse_bsd(b"Feb 29 10:00:00", reference, 0).unwrap();
        assert_eq!(t, ts("2024-02-29T10:00:00Z"));
    }

    #[test]
    fn bsd_variants() {
        let r = ts("2024-03-10T00:00:00Z");
        let (t, n) = parse_bsd(b"Mar  1 18:46:11.123 UTC: %LINK", r, 3600).unwrap();
        assert_eq!(t, ts("2024-03-01T18:46:11.123Z"));
        assert_eq!(&b"Mar  1 18:46:11.123 UTC: %LINK"[n..], b": %LINK");
        let (t, _) = parse_bsd(b"Jan 12 2023 10:00:00 asa01", r, 0).unwrap();
        assert_eq!(t, ts("2023-01-12T10:00:00Z"));
        let (t, _) = parse_bsd(b"Feb  5 17:32:18 2021 host", r, 0).unwrap();
        assert_eq!(t, ts("2021-02-05T17:32:18Z"));
        assert!(parse_bsd(b"Feb 30 10:00:00", r, 0).is_none());
        assert!(parse_bsd(b"Foo  5 17:32:18", r, 0).is_none());
        assert!(parse_bsd(b"Feb  5 25:32:18", r, 0).is_none());
        assert!(parse_bsd(b"Feb  5 17:32", r, 0).is_none());
    }

    #[test]
    fn iso_and_epochs() {
        assert_eq!(parse_iso("2024-01-05T10:00:00", 7 * 3600), Some(ts("2024-01-05T10:00:00+07:00")));
        assert_eq!(parse_iso("2024-01-05T10:00:00.5Z", 0), Some(ts("2024-01-05T10:00:00.5Z")));
        assert_eq!(parse_iso("2024-01-05T10:00:00.1234567Z", 0), Some(ts("2024-01-05T10:00:00.123456Z")));
        assert!(parse_iso("2024-13-05T10:00:00", 0).is_none());
        assert!(parse_iso("yesterday", 0).is_none());
        assert_eq!(from_epoch(1_700_000_000.5).unwrap().unix_micros(), 1_700_000_000_500_000);
        assert_eq!(from_epoch(1_700_000_000_123.0).unwrap().unix_micros(), 1_700_000_000_123_000);
        assert!(from_epoch(f64::NAN).is_none());
    }

    /// What `civil` computed before: the date written out as text and parsed.
    #[allow(clippy::too_many_arguments)]
    fn civil_through_text(y: i32, mo: u8, d: u8, h: u8, m: u8, s: u8, us: u32, off: i32) -> Option<Timestamp> {
        let mon = time::Month::try_from(mo).ok()?;
        time::Date::from_calendar_date(y, mon, d).ok()?;
        if h > 23 || m > 59 || s > 60 || us > 999_999 || !(0..=9999).contains(&y) {
            return None;
        }
        let s = s.min(59);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{us:06}{}", format_offset(off)).parse().ok()
    }

    #[test]
    fn civil_agrees_with_writing_the_date_out_and_parsing_it() {
        for (y, mo, d, h, m, s, us, off) in [
            (2024, 2, 29, 23, 59, 60, 999_999, 7 * 3600),
            (2023, 2, 29, 0, 0, 0, 0, 0),
            (2023, 1, 1, 0, 0, 0, 0, -5 * 3600 - 1799),
            (1970, 1, 1, 0, 0, 0, 0, 3601),
            (0, 1, 1, 0, 0, 0, 0, 0),
            (9999, 12, 31, 23, 59, 59, 999_999, -(23 * 3600 + 59 * 60)),
            (10_000, 1, 1, 0, 0, 0, 0, 0),
            (2024, 13, 1, 0, 0, 0, 0, 0),
            (2024, 4, 31, 0, 0, 0, 0, 0),
            (2024, 4, 30, 24, 0, 0, 0, 0),
            (2024, 4, 30, 1, 60, 0, 0, 0),
            (2024, 4, 30, 1, 1, 61, 0, 0),
            (2024, 4, 30, 1, 1, 1, 1_000_000, 0),
            (2024, 4, 30, 1, 1, 1, 0, 99 * 3600 + 3599),
            (2024, 4, 30, 1, 1, 1, 0, 100 * 3600),
        ] {
            let (a, b) = (civil(y, mo, d, h, m, s, us, off), civil_through_text(y, mo, d, h, m, s, us, off));
            assert_eq!(a, b, "{y}-{mo}-{d} {h}:{m}:{s}.{us} {off}");
            assert_eq!(a.map(|t| t.offset_secs()), b.map(|t| t.offset_secs()));
        }
    }

    #[test]
    fn civil_arithmetic_agrees_with_the_parsed_timestamp() {
        for (y, mo, d, h, m, s, us, off) in [
            (2024, 2, 29, 23, 59, 60, 999_999, 7 * 3600),
            (2023, 1, 1, 0, 0, 0, 0, -5 * 3600),
            (1970, 1, 1, 0, 0, 0, 0, 0),
            (1969, 12, 31, 23, 59, 59, 1, 0),
            (2100, 3, 1, 12, 30, 15, 250_000, 3600 + 1800),
            (2000, 12, 31, 1, 2, 3, 4, -14 * 3600),
        ] {
            let t = civil(y, mo, d, h, m, s, us, off).unwrap();
            assert_eq!(unix_micros_of(y, mo, d, h, m, s, us, off), t.unix_micros(), "{y}-{mo}-{d}");
        }
    }
}
