//! UTC time stamps for names (rescue folders, image tags) and logs, without a calendar
//! crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-21 10:30:00 UTC` → `20261121T103000Z`: ISO 8601's basic format, which sorts
/// by time and is valid both as a folder name and as an image tag.
pub fn utc_stamp(at: SystemTime) -> String {
    let (year, month, day, h, m, s) = fields(at);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z")
}

/// `2026-11-21T10:30:00Z`: RFC 3339, for logs that other tools read.
pub fn rfc3339(at: SystemTime) -> String {
    let (year, month, day, h, m, s) = fields(at);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
