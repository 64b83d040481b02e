//! The Go standard library's readings of text that docker relies on, reproduced so that
//! a value means here what it means to the docker CLI.

use std::net::IpAddr;

enum NumError {
    Syntax,
    Range,
}

/// `strconv.ParseInt(s, base, 64)` for base 0 (prefixes `0x`, `0o`, `0b`, a leading
/// `0` for octal, `_` between digits) or 10.
pub(super) fn parse_int(s: &str, base: u32) -> Result<i64, String> {
    signed(s, base, "ParseInt")
}

/// `strconv.Atoi`.
pub(super) fn atoi(s: &str) -> Result<i64, String> {
    signed(s, 10, "Atoi")
}

fn signed(s: &str, base: u32, func: &str) -> Result<i64, String> {
    let error = |kind: NumError| match kind {
        NumError::Syntax => format!("strconv.{func}: parsing {s:?}: invalid syntax"),
        NumError::Range => format!("strconv.{func}: parsing {s:?}: value out of range"),
    };
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = magnitude(body, base).map_err(error)?;
    let limit = 1u64 << 63;
    match negative {
        false if magnitude < limit => Ok(magnitude as i64),
        true if magnitude <= limit => Ok((magnitude as i64).wrapping_neg()),
        _ => Err(error(NumError::Range)),
    }
}

/// `strconv.ParseUint(s, base, bits)` for base 2 to 16.
pub(super) fn parse_uint(s: &str, base: u32, bits: u32) -> Result<u64, String> {
    let value = magnitude(s, base).map_err(|kind| match kind {
        NumError::Syntax => format!("strconv.ParseUint: parsing {s:?}: invalid syntax"),
        NumError::Range => format!("strconv.ParseUint: parsing {s:?}: value out of range"),
    })?;
    if bits < 64 && value >> bits != 0 {
        return Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        ));
    }
    Ok(value)
}

fn magnitude(s: &str, base: u32) -> Result<u64, NumError> {
    if s.is_empty() {
        return Err(NumError::Syntax);
    }
    let base0 = base == 0;
    let (base, digits) = match base {
        0 if s.starts_with('0') => match s.as_bytes().get(1).map(u8::to_ascii_lowercase) {
            Some(b'b') if s.len() >= 3 => (2, &s[2..]),
            Some(b'o') if s.len() >= 3 => (8, &s[2..]),
            Some(b'x') if s.len() >= 3 => (16, &s[2..]),
            _ => (8, &s[1..]),
        },
        0 => (10, s),
        _ => (base, s),
    };
    let mut value: u64 = 0;
    let mut underscores = false;
    for c in digits.chars() {
        if c == '_' && base0 {
            underscores = true;
            continue;
        }
        let digit = c.to_digit(base).ok_or(NumError::Syntax)?;
        value = value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(NumError::Range)?;
    }
    if underscores && !underscores_ok(s) {
        return Err(NumError::Syntax);
    }
    Ok(value)
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if bytes.len() >= 2
        && bytes[0] == b'0'
        && matches!(bytes[1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        i = 2;
        saw = b'0';
        hex = bytes[1].eq_ignore_ascii_case(&b'x');
    }
    for &b in &bytes[i..] {
        if b.is_ascii_digit() || hex && b.is_ascii_hexdigit() {
            saw = b'0';
        } else if b == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// `strconv.ParseBool`, as pflag and docker use it.
pub(super) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// go-units `RAMInBytes`: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, powers of 1024,
/// the product truncated to an integer.
pub(super) fn ram_in_bytes(raw: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{raw}'");
    let bytes = raw.as_bytes();
    let digits_from = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = digits_from(0);
    if i == 0 {
        return Err(invalid());
    }
    while bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits_from(i + 1);
    }
    let number = &raw[..i];
    if bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    let mut shift = 0;
    if let Some(unit) = bytes.get(i).map(u8::to_ascii_lowercase) {
        if let Some(at) = b"kmgtp".iter().position(|u| *u == unit) {
            shift = 10 * (at + 1);
            i += 1;
        }
    }
    if bytes.get(i).is_some_and(|b| b.eq_ignore_ascii_case(&b'i')) {
        i += 1;
    }
    if bytes.get(i).is_some_and(|b| b.eq_ignore_ascii_case(&b'b')) {
        i += 1;
    }
    if i != bytes.len() {
        return Err(invalid());
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {number:?}: invalid syntax"))?;
    let size = value * (1u64 << shift) as f64;
    if !size.is_finite() || size >= (1u64 << 63) as f64 {
        return Err(invalid());
    }
    Ok(size as i64)
}

/// docker's `ParseCPUs`: a decimal (`1.5`, `.5`, `1e-1`) or a fraction (`1/2`) that
/// must come to a whole number of nano-CPUs.
pub(super) fn nano_cpus(raw: &str) -> Result<i64, String> {
    let not_rational = || format!("failed to parse {raw} as a rational number");
    let too_precise = || "value is too precise".to_string();
    let (numerator, denominator) = match raw.split_once('/') {
        Some((numerator, denominator)) => {
            let numerator = integer(numerator).ok_or_else(not_rational)?;
            let denominator = integer(denominator)
                .filter(|d| *d > 0 && denominator.as_bytes()[0].is_ascii_digit())
                .ok_or_else(not_rational)?;
            (numerator, denominator)
        }
        None => decimal(raw).ok_or_else(not_rational)?,
    };
    let nano = numerator
        .checked_mul(1_000_000_000)
        .ok_or_else(too_precise)?;
    if nano % denominator != 0 {
        return Err(too_precise());
    }
    i64::try_from(nano / denominator).map_err(|_| format!("{raw} is out of range"))
}

/// A signed decimal integer, small enough to scale.
fn integer(text: &str) -> Option<i128> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 27 {
        return None;
    }
    text.parse().ok()
}

/// `[+-]digits[.digits][e[+-]digits]` as numerator / denominator, both exact.
fn decimal(text: &str) -> Option<(i128, i128)> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], integer(&text[at + 1..])?),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.len() > 27 {
        return None;
    }
    let value: i128 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    let value = if negative { -value } else { value };
    // value × 10^power is the number.
    let power = exponent - fraction.len() as i128 + (significant.len() - trimmed.len()) as i128;
    if value == 0 {
        return Some((0, 1));
    }
    if power >= 0 {
        let scale = 10i128.checked_pow(u32::try_from(power).ok().filter(|p| *p <= 30)?)?;
        Some((value.checked_mul(scale)?, 1))
    } else {
        let scale = 10i128.checked_pow(u32::try_from(-power).ok().filter(|p| *p <= 36)?)?;
        Some((value, scale))
    }
}

/// `path.Clean`.
pub(super) fn path_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// `net.ParseIP`: dotted IPv4 (no leading zeros) or IPv6, no zone.
pub(super) fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

/// `net.IP.String`: an IPv4-mapped IPv6 address prints as IPv4.
pub(super) fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// `net.SplitHostPort`, returning the host.
pub(super) fn split_host_port(hostport: &str) -> Result<String, String> {
    let error = |why: &str| Err(format!("address {hostport}: {why}"));
    let Some(colon) = hostport.rfind(':') else {
        return error("missing port in address");
    };
    let (host, open, close) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return error("missing ']' in address");
        };
        if end + 1 == hostport.len() {
            return error("missing port in address");
        }
        if end + 1 != colon {
            return match hostport.as_bytes()[end + 1] {
                b':' => error("too many colons in address"),
                _ => error("missing port in address"),
            };
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(':') {
            return error("too many colons in address");
        }
        (host, 0, 0)
    };
    if hostport[open..].contains('[') {
        return error("unexpected '[' in address");
    }
    if hostport[close..].contains(']') {
        return error("unexpected ']' in address");
    }
    Ok(host.to_string())
}

/// An `*os.PathError`'s text: `open F: no such file or directory`.
pub(super) fn io_error(op: &str, path: &str, err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{op} {path}: {text}")
}

/// `json.Compact`: checks the JSON, then drops the whitespace between tokens.
pub(super) fn compact_json(text: &str) -> Result<String, String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    Ok(out)
}

/// `encoding/csv` `Reader.Read`: the first record of `text` (docker reads only one).
/// Fields may be double-quoted, with `""` for a quote; a quote inside an unquoted
/// field is an error.
pub(super) fn csv_record(text: &str) -> Result<Vec<String>, String> {
    let mut line = 1;
    let mut rest = text;
    // Go skips empty lines before a record.
    while let Some(after) = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
    {
        rest = after;
        line += 1;
    }
    if rest.is_empty() {
        return Err("EOF".into());
    }
    let bytes = rest.as_bytes();
    let error = |line: usize, column: usize, why: &str| {
        Err(format!(
            "parse error on line {line}, column {column}: {why}"
        ))
    };
    let quote_error = "extraneous or missing \" in quoted-field";
    let mut fields = Vec::new();
    let mut pos = 0;
    let mut line_start = 0;
    loop {
        if bytes.get(pos) == Some(&b'"') {
            let mut field = String::new();
            let mut i = pos + 1;
            loop {
                match bytes.get(i) {
                    None => return error(line, i - line_start + 1, quote_error),
                    Some(b'"') => match bytes.get(i + 1) {
                        Some(b'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some(b',') => {
                            fields.push(field);
                            pos = i + 2;
                            break;
                        }
                        None | Some(b'\n') => {
                            fields.push(field);
                            return Ok(fields);
                        }
                        Some(b'\r') if matches!(bytes.get(i + 2), None | Some(b'\n')) => {
                            fields.push(field);
                            return Ok(fields);
                        }
                        Some(_) => return error(line, i - line_start + 1, quote_error),
                    },
                    Some(_) => {
                        let Some(c) = rest[i..].chars().next() else {
                            return error(line, i - line_start + 1, quote_error);
                        };
                        if c == '\n' {
                            line += 1;
                            line_start = i + 1;
                        }
                        field.push(c);
                        i += c.len_utf8();
                    }
                }
            }
        } else {
            let end = rest[pos..]
                .find([',', '\n'])
                .map_or(rest.len(), |at| pos + at);
            let at_line_end = end == rest.len() || bytes[end] == b'\n';
            let mut field = &rest[pos..end];
            if at_line_end {
                field = field.strip_suffix('\r').unwrap_or(field);
            }
            if let Some(quote) = field.find('"') {
                return error(
                    line,
                    pos + quote - line_start + 1,
                    "bare \" in non-quoted-field",
                );
            }
            fields.push(field.to_string());
            if at_line_end {
                return Ok(fields);
            }
            pos = end + 1;
        }
    }
}

/// Go's `time.ParseDuration`, in nanoseconds: `1h30m`, `1.5s`, `300ms`, `-2m`, `0`.
pub(super) fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{text}\"")),
            other => {
                return Err(format!(
                    "time: unknown unit \"{other}\" in duration \"{text}\""
                ))
            }
        };
        total += value * scale;
        rest = next;
    }
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    let nanos = total.round() as i64;
    Ok(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use crate::dockerargs::go;
    use crate::dockerargs::test_support::strings;
    use crate::dockerargs::to_flags::csv_join;

    #[test]
    fn go_csv_records() {
        let record = |text: &str| go::csv_record(text);
        assert_eq!(record("a,b").unwrap(), ["a", "b"]);
        assert_eq!(record("a,,b,").unwrap(), ["a", "", "b", ""]);
        assert_eq!(record(r#""a,b","c""d""#).unwrap(), ["a,b", "c\"d"]);
        assert_eq!(record("\"a\nb\",c").unwrap(), ["a\nb", "c"]);
        assert_eq!(record("a,b\nc,d").unwrap(), ["a", "b"]);
        assert_eq!(record("\n\na,b\r\n").unwrap(), ["a", "b"]);
        assert_eq!(record(" a ,b").unwrap(), [" a ", "b"]);
        assert_eq!(record("").unwrap_err(), "EOF");
        assert_eq!(
            record("\"abc").unwrap_err(),
            "parse error on line 1, column 5: extraneous or missing \" in quoted-field"
        );
        for fields in [
            vec!["type=bind", "source=/a,b", "x\"y", "plain", ""],
            vec!["device=0,1", "options=a=1,b=\"2\""],
        ] {
            let fields = strings(&fields);
            assert_eq!(go::csv_record(&csv_join(&fields)).unwrap(), fields);
        }
    }

    #[test]
    fn go_paths_and_addresses() {
        for (path, clean) in [
            ("/a/b/", "/a/b"),
            ("/a//b/./c/..", "/a/b"),
            ("/..", "/"),
            ("a/../..", ".."),
            ("", "."),
            ("/", "/"),
        ] {
            assert_eq!(go::path_clean(path), clean, "{path}");
        }
        assert_eq!(go::split_host_port("1.2.3.4:").unwrap(), "1.2.3.4");
        assert_eq!(go::split_host_port("[::1]:").unwrap(), "::1");
        assert_eq!(go::split_host_port(":").unwrap(), "");
        assert_eq!(
            go::split_host_port("[::1:").unwrap_err(),
            "address [::1:: missing ']' in address"
        );
        assert_eq!(
            go::split_host_port("a]:").unwrap_err(),
            "address a]:: unexpected ']' in address"
        );
        assert_eq!(go::ram_in_bytes("1kib").unwrap(), 1024);
        assert_eq!(go::ram_in_bytes("2P").unwrap(), 2 << 50);
        assert_eq!(go::ram_in_bytes("1i").unwrap(), 1);
        assert!(go::ram_in_bytes("1  g").is_err());
        assert!(go::ram_in_bytes("1e3").is_err());
        assert!(go::ram_in_bytes("99999999p").is_err());
    }
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_read_as_go_reads_them() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("2us"), Ok(2_000));
        assert_eq!(parse_duration("-2m"), Ok(-120_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("1500000000ns"), Ok(1_500_000_000));
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
    }
}
