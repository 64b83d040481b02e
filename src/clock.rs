//! UTC time stamps for names (rescue folders, image tags) and logs, without a calendar
//! crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-21 10:30:00 UTC` → `20261121T103000Z`: ISO 8601's basic format, which sorts
/// by time and is valid both as a folder name and as an image tag.
pub fn utc_stamp(at: SystemTime) -> String {
    let (year, month, day, h, m, s) = fields(at);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}

/// The time [`utc_stamp`] wrote; `None` for anything else.
pub fn parse_utc_stamp(stamp: &str) -> Option<SystemTime> {
    let digits = |range: std::ops::Range<usize>| {
        let part = stamp.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then_some(part)
    };
    if stamp.len() != 16 || stamp.as_bytes()[8] != b'T' || !stamp.ends_with('Z') {
        return None;
    }
    parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?
    ))
}

/// `2026-11-21T10:30:00Z`: RFC 3339, for logs that other tools read.
pub fn rfc3339(at: SystemTime) -> String {
    let (year, month, day, h, m, s) = fields(at);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// `2026-11-21T10:30:00.123456789Z` (RFC 3339 in UTC, as the engine writes times) →
/// a time; `None` for anything else, and for the engine's "never" (year 1).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let (time, fraction) = match time.split_once('.') {
        Some((time, fraction)) => (time, fraction),
        None => (time, ""),
    };
    let mut time = time.splitn(3, ':').map(str::parse::<u64>);
    let (h, m, s) = (time.next()?.ok()?, time.next()?.ok()?, time.next()?.ok()?);
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && h < 24 && m < 60 && s < 61;
    if !valid || year < 1970 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{:0<9}", &fraction[..fraction.len().min(9)])
        .parse()
        .ok()?;
    let days = u64::try_from(days_from_civil(year, month as u32, day as u32)).ok()?;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

fn fields(at: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    (year, month, day, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_read_back_as_the_time_they_were_written_at() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_000_123);
        assert_eq!(parse_utc_stamp(&utc_stamp(at)), Some(at));
        for bad in [
            "",
            "20261207T070220",
            "2026120T7070220Z",
            "20261307T070220Z",
            "2026-207T070220Z",
        ] {
            assert_eq!(parse_utc_stamp(bad), None, "{bad}");
        }
    }

    fn at(secs: u64) -> String {
        utc_stamp(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn stamps_known_instants() {
        assert_eq!(at(0), "19700101T000000Z");
        // 2000-02-29 (a leap day) 12:34:56 UTC.
        assert_eq!(at(951_827_696), "20000229T123456Z");
        // 2026-11-21 23:59:59 UTC.
        assert_eq!(at(1_795_305_599), "20261121T235959Z");
        // 2100-03-01 00:00:00 UTC (2100 is not a leap year).
        assert_eq!(at(4_107_542_400), "21000301T000000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_827_696)),
            "2000-02-29T12:34:56Z"
        );
    }

    #[test]
    fn reads_the_engines_times() {
        let secs = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(secs(0)));
        assert_eq!(
            parse_rfc3339("2000-02-29T12:34:56Z"),
            Some(secs(951_827_696))
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T23:59:59.5Z"),
            Some(secs(1_795_305_599) + Duration::from_millis(500))
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T23:59:59.123456789Z"),
            Some(secs(1_795_305_599) + Duration::from_nanos(123_456_789))
        );
        for never in [
            "0001-01-01T00:00:00Z",
            "",
            "2026-11-21",
            "2026-13-01T00:00:00Z",
            "2026-11-21T10:00:00+01:00",
        ] {
            assert_eq!(parse_rfc3339(never), None, "{never}");
        }
    }
}
