//! Units people write and read: sizes (`512m`, `2g`, docker's powers of 1024), CPUs
//! (`0.5`, kept as docker's NanoCpus) and durations (`90s`, `7d`). A leaf: it imports
//! nothing of berth's.

use std::time::Duration;

/// A size as docker writes it: `512m`, `2g`, `1.5GiB`, `1024` (bytes). Units are powers
/// of 1024, as in docker's `RAMInBytes`.
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let text = raw.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(size_error(raw)),
    };
    let value: f64 = number.parse().map_err(|_| size_error(raw))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(size_error(raw));
    }
    Ok(bytes as u64)
}

fn size_error(raw: &str) -> String {
    format!("invalid size {raw:?}: write a number with an optional unit k, m, g or t (like 512m or 32g)")
}

/// A size in docker's shortest exact spelling, for the `docker run` line: `32g`, `1536m`.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "t"), (30, "g"), (20, "m"), (10, "k")] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// `--cpus`: a positive, possibly fractional number of CPUs, kept as docker's NanoCpus.
pub fn parse_cpus(raw: &str) -> Result<i64, String> {
    // Less than half a nano-CPU rounds to 0, which docker reads as no limit.
    match raw.trim().parse::<f64>() {
        Ok(cpus) if cpus > 0.0 && cpus.is_finite() && cpus < 1e6 && (cpus * 1e9).round() >= 1.0 => {
            Ok((cpus * 1e9).round() as i64)
        }
        _ => Err(format!(
            "invalid cpus {raw:?}: write a positive number, like 4 or 0.5"
        )),
    }
}

pub fn format_cpus(nano: i64) -> String {
    let text = format!("{:.9}", nano as f64 / 1e9);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A duration as people write it, to the second: `2h`, `1h30m`, `45s`, `3d4h`.
pub fn span(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            text.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    text
}

/// `2s`, `30m`, `24h`, `7d`, `2w`, `1h30m`, `500ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration (like 90s, 30m, 24h, 7d)");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(24 * 3600),
            "w" => Duration::from_secs(7 * 24 * 3600),
            _ => return Err(bad()),
        };
        let part = unit
            .checked_mul(u32::try_from(number).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Bytes for people: `0 B`, `12.3 KiB`, `4.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_docker() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("2gb").unwrap(), 2 << 30);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        for bad in ["", "g", "12x", "-1g", "1..2g", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_print_in_the_shortest_exact_unit() {
        assert_eq!(format_size(32 << 30), "32g");
        assert_eq!(format_size(1536 << 20), "1536m");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(parse_size(&format_size(3 << 29)).unwrap(), 3 << 29);
    }

    #[test]
    fn cpus_become_nano_cpus_and_back() {
        assert_eq!(parse_cpus("4").unwrap(), 4_000_000_000);
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(format_cpus(1_500_000_000), "1.5");
        assert_eq!(format_cpus(4_000_000_000), "4");
        // Found by fuzzing: 1e-10 rounded to 0 nano-CPUs, docker's "no limit".
        assert_eq!(parse_cpus("1e-9").unwrap(), 1);
        for bad in ["0", "-1", "x", "NaN", "inf", "1e-10", "4.9e-10"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let secs = Duration::from_secs;
        assert_eq!(parse_duration("2s"), Ok(secs(2)));
        assert_eq!(parse_duration("30m"), Ok(secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(secs(86400)));
        assert_eq!(parse_duration("7d"), Ok(secs(7 * 86400)));
        assert_eq!(parse_duration("1h30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(secs(90)));
        for bad in ["", "h", "2x", "1.5h", "-2s", "2 h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(4 << 30), "4.0 GiB");
    }
}
