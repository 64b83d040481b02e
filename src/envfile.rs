//! Reading env files (`.env`, compose `env_file:`, `--env-file`) in the syntax
//! docker compose accepts, following the compose-go `dotenv` parser.
//!
//! Values are returned exactly as written: `$VAR` / `${VAR}` interpolation is
//! deliberately *not* performed, so `$` text (including `$$`) is kept verbatim.
//! The only `$` processing is the `\$` escape inside double quotes, which
//! yields a plain `$`.

use std::fmt;

/// One assignment from an env file. Entries come back in file order and later
/// duplicates are kept, so callers that want compose's result take the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// `None` for a bare `KEY` line: compose takes such a value from its
    /// own environment (and drops the key if it is unset there).
    pub value: Option<String>,
    /// 1-based line on which the key appears.
    pub line: usize,
}

/// A syntax error; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses the contents of an env file into its entries, in file order.
///
/// # Errors
///
/// Returns a [`ParseError`] for an invalid variable name, a quote that is
/// never closed (reported at the line where it opened), text after a
/// closing quote other than whitespace or a `#` comment, or a value holding a
/// NUL byte (which a process environment cannot).
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // `lines` splits on `\n` and drops a `\r` before it, so CRLF files work.
    let mut lines = text.lines().zip(1..);
    let mut entries = Vec::new();
    while let Some((raw, line)) = lines.next() {
        // Only trim the start: trailing spaces may belong to a quoted value
        // that continues on the next line.
        let stmt = raw.trim_start();
        if stmt.is_empty() || stmt.starts_with('#') {
            continue;
        }
        let (key_part, value_part) = match stmt.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (stmt, None),
        };
        let key = strip_export(key_part.trim());
        check_key(key, line)?;
        let value = match value_part {
            Some(raw_value) => Some(parse_value(raw_value, line, &mut lines)?),
            None => None,
        };
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(error(
                line,
                format!("the value of {key} holds a NUL byte, which no environment can"),
            ));
        }
        entries.push(Entry {
            key: key.to_owned(),
            value,
            line,
        });
    }
    Ok(entries)
}

fn error(line: usize, message: String) -> ParseError {
    ParseError { line, message }
}

/// Drops a leading `export` keyword (it must be followed by whitespace, so a
/// variable literally named `export` or `exporter` is left alone).
fn strip_export(key: &str) -> &str {
    match key.strip_prefix("export") {
        Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ => key,
    }
}

/// Keys must match `[A-Za-z_][A-Za-z0-9_.-]*`.
fn check_key(key: &str, line: usize) -> Result<(), ParseError> {
    let mut chars = key.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    match (valid, key.is_empty()) {
        (true, _) => Ok(()),
        (false, true) => Err(error(line, "missing variable name before '='".into())),
        (false, false) => Err(error(line, format!("invalid variable name {key:?}"))),
    }
}

/// Parses everything after the `=`; quoted values may pull further lines.
fn parse_value<'a>(
    raw: &'a str,
    line: usize,
    lines: &mut impl Iterator<Item = (&'a str, usize)>,
) -> Result<String, ParseError> {
    let mut chars = raw.trim_start().chars();
    match chars.next() {
        Some(quote @ ('"' | '\'')) => read_quoted(chars.as_str(), quote, line, lines),
        _ => Ok(strip_inline_comment(raw).trim().to_owned()),
    }
}

/// Cuts an unquoted value at the first `#` that follows whitespace, so
/// `a#b` stays whole while `a #b` becomes `a`.
fn strip_inline_comment(raw: &str) -> &str {
    let mut after_space = false;
    for (i, c) in raw.char_indices() {
        if c == '#' && after_space {
            // `i` comes from `char_indices`, so it is a valid char boundary.
            return &raw[..i];
        }
        after_space = c.is_whitespace();
    }
    raw
}

/// Reads a quoted value starting just after the opening quote, continuing
/// onto following lines until the closing quote. Single quotes are literal;
/// double quotes process the escapes listed in [`unescape`].
fn read_quoted<'a>(
    first: &'a str,
    quote: char,
    open_line: usize,
    lines: &mut impl Iterator<Item = (&'a str, usize)>,
) -> Result<String, ParseError> {
    let mut value = String::new();
    let mut escaped = false;
    let (mut current, mut line) = (first, open_line);
    loop {
        let mut chars = current.chars();
        while let Some(c) = chars.next() {
            if escaped {
                escaped = false;
                match unescape(c) {
                    Some(u) => value.push(u),
                    None => value.extend(['\\', c]),
                }
            } else if c == quote {
                return check_after_quote(chars.as_str(), line).map(|()| value);
            } else if c == '\\' && quote == '"' {
                escaped = true;
            } else {
                value.push(c);
            }
        }
        // The line ended inside the quotes; a trailing backslash is kept.
        if escaped {
            value.push('\\');
            escaped = false;
        }
        let Some((next, next_line)) = lines.next() else {
            let kind = if quote == '"' { "double" } else { "single" };
            return Err(error(
                open_line,
                format!("unterminated {kind}-quoted value (no closing {quote})"),
            ));
        };
        value.push('\n');
        (current, line) = (next, next_line);
    }
}

/// Escapes recognised inside double quotes (`\n \r \t \\ \" \$`); any other
/// backslash sequence is kept as written.
fn unescape(c: char) -> Option<char> {
    match c {
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        '\\' | '"' | '$' => Some(c),
        _ => None,
    }
}

/// After a closing quote only whitespace or a `#` comment may follow.
fn check_after_quote(rest: &str, line: usize) -> Result<(), ParseError> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err(error(
            line,
            format!("unexpected text {rest:?} after closing quote"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text`, expecting success, as `(key, value)` pairs.
    fn pairs(text: &str) -> Vec<(String, Option<String>)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn kv(key: &str, value: &str) -> (String, Option<String>) {
        (key.to_owned(), Some(value.to_owned()))
    }

    fn only_value(text: &str) -> String {
        match pairs(text).as_slice() {
            [(_, Some(v))] => v.clone(),
            other => panic!("expected one valued entry, got {other:?}"),
        }
    }

    #[test]
    fn blank_lines_and_comments_are_ignored() {
        let text = "\n# a comment\n   # indented comment\n\t\nA=1\n\n#B=2\n";
        assert_eq!(pairs(text), vec![kv("A", "1")]);
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn line_numbers_are_one_based() {
        let entries = parse("# c\n\nA=1\nB=2").unwrap();
        let lines: Vec<usize> = entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4]);
    }

    #[test]
    fn export_prefix_is_optional() {
        let text = "export A=1\nexport\tB = 2\nexport C\nexport=3\nexporter=4";
        assert_eq!(
            pairs(text),
            vec![
                kv("A", "1"),
                kv("B", "2"),
                ("C".to_owned(), None),
                kv("export", "3"),
                kv("exporter", "4"),
            ]
        );
    }

    #[test]
    fn whitespace_around_key_and_equals_is_trimmed() {
        assert_eq!(pairs("  A  =  x y  \n"), vec![kv("A", "x y")]);
        assert_eq!(pairs("\tB\t=\t'q'\t"), vec![kv("B", "q")]);
    }

    #[test]
    fn inline_comment_needs_preceding_whitespace() {
        let text = "A=a#b\nB=x # note\nC=x\t#note\nD= #only comment\nE=#x\nF=u=v";
        assert_eq!(
            pairs(text),
            vec![
                kv("A", "a#b"),
                kv("B", "x"),
                kv("C", "x"),
                kv("D", ""),
                kv("E", "#x"),
                kv("F", "u=v"),
            ]
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            only_value(r#"A='a\nb \\ \" $X # not comment'"#),
            r#"a\nb \\ \" $X # not comment"#
        );
        // No escapes at all, so a backslash cannot protect the closing quote.
        assert_eq!(only_value(r"A='a\'"), r"a\");
        assert_eq!(only_value("A='  padded  '"), "  padded  ");
    }

    #[test]
    fn single_quotes_span_lines() {
        let entries = parse("A='one  \n  two'\nB=3").unwrap();
        assert_eq!(entries[0].value.as_deref(), Some("one  \n  two"));
        assert_eq!((entries[1].key.as_str(), entries[1].line), ("B", 3));
    }

    #[test]
    fn double_quotes_process_escapes() {
        assert_eq!(
            only_value(r#"A="n\n r\r t\t bs\\ q\" d\$ other\q # kept""#),
            "n\n r\r t\t bs\\ q\" d$ other\\q # kept"
        );
    }

    #[test]
    fn double_quotes_span_lines() {
        let entries = parse("A=\"first\nsecond \\\" \n  third\"\nB=x").unwrap();
        assert_eq!(
            entries[0].value.as_deref(),
            Some("first\nsecond \" \n  third")
        );
        assert_eq!((entries[1].key.as_str(), entries[1].line), ("B", 4));
    }

    #[test]
    fn text_after_closing_quote() {
        assert_eq!(only_value("A=\"x\"   # comment"), "x");
        assert_eq!(only_value("A='x'#comment"), "x");
        assert_eq!(only_value("A='x'  \t"), "x");
        let err = parse("A=1\nB=\"x\ny\" z").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("after closing quote"), "{err}");
    }

    #[test]
    fn empty_values() {
        let text = "A=\nB=''\nC=\"\"\nD=   ";
        assert_eq!(
            pairs(text),
            vec![kv("A", ""), kv("B", ""), kv("C", ""), kv("D", "")]
        );
    }

    #[test]
    fn bare_key_has_no_value() {
        assert_eq!(
            pairs("A\n  B  \nC=1"),
            vec![("A".to_owned(), None), ("B".to_owned(), None), kv("C", "1")]
        );
    }

    #[test]
    fn bad_keys_are_errors_naming_the_key() {
        for (text, line, key) in [
            ("1BAD=x", 1, "1BAD"),
            ("OK=1\nBAD KEY=x", 2, "BAD KEY"),
            ("A$B=x", 1, "A$B"),
            ("KEY: value", 1, "KEY: value"),
            ("K # comment", 1, "K # comment"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}");
            assert!(err.message.contains(&format!("{key:?}")), "{err}");
        }
        assert_eq!(parse("=x").unwrap_err().line, 1);
        assert_eq!(pairs("_a.b-c9=1"), vec![kv("_a.b-c9", "1")]);
    }

    #[test]
    fn unterminated_quote_reports_opening_line() {
        let err = parse("A=1\nB=\"open\nstill open\n\nC=2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unterminated"), "{err}");
        assert_eq!(parse("A='x").unwrap_err().line, 1);
        assert_eq!(parse("A=\"x\\\"").unwrap_err().line, 1);
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        assert_eq!(pairs("\u{feff}A=1\n"), vec![kv("A", "1")]);
    }

    #[test]
    fn crlf_line_endings() {
        let entries = parse("# c\r\nA=1\r\nB=\"x\r\ny\"\r\nC\r\nD='z' \r\n").unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_deref(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A", Some("1"), 2),
                ("B", Some("x\ny"), 3),
                ("C", None, 5),
                ("D", Some("z"), 6),
            ]
        );
    }

    #[test]
    fn host_data_path_values() {
        let text = "HOST_DATA_PATH=./data\n\
                    export HOST_DATA_PATH = /srv/my data # where it lives\n\
                    HOST_DATA_PATH=\"/mnt/with space/d#1\"\n\
                    HOST_DATA_PATH='C:\\data\\x'\n";
        let values: Vec<_> = pairs(text).into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            vec![
                Some("./data".to_owned()),
                Some("/srv/my data".to_owned()),
                Some("/mnt/with space/d#1".to_owned()),
                Some("C:\\data\\x".to_owned()),
            ]
        );
    }

    #[test]
    fn no_interpolation() {
        let text = "A=${HOME}/x\nB=\"$HOME $$\"\nC='${X:-y}'";
        assert_eq!(
            pairs(text),
            vec![
                kv("A", "${HOME}/x"),
                kv("B", "$HOME $$"),
                kv("C", "${X:-y}")
            ]
        );
    }

    #[test]
    fn duplicates_are_kept_in_order() {
        assert_eq!(
            pairs("A=1\nA=2\nA"),
            vec![kv("A", "1"), kv("A", "2"), ("A".to_owned(), None)]
        );
    }

    #[test]
    fn a_nul_byte_in_a_value_is_refused_at_its_line() {
        for text in ["A=1\nB=x\u{0}y", "A=1\nB='\u{0}'", "A=1\nB=\"x\n\u{0}\""] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, 2, "{text:?}");
            assert!(err.message.contains("NUL byte"), "{err}");
        }
    }

    #[test]
    fn error_display() {
        let err = ParseError {
            line: 7,
            message: "boom".into(),
        };
        assert_eq!(err.to_string(), "line 7: boom");
    }

    #[test]
    fn never_panics_on_awkward_input() {
        let awkward = [
            "\"",
            "'",
            "=",
            "==",
            "=\"",
            "A=\"",
            "A='",
            "A=\"\\",
            "A=\\",
            "#",
            "export",
            "export ",
            "export =",
            "\u{feff}",
            "\u{feff}\u{feff}A=1",
            "é=ü",
            "A=é #ü",
            "ключ=значение",
            "A=\u{0}",
            "\u{0}=\u{0}",
            "A=\"\u{0}\\\u{0}\"",
            "\r",
            "\r\r\n",
            "A=\"\r",
            "\n\n\n'",
            "A=\"x\"\"",
            "A='''",
            "A=\"\\\n\\\"",
            "\u{85}A=\u{a0}",
        ];
        for text in awkward {
            let _ = parse(text);
        }
        // Deterministic pseudo-random inputs from an alphabet of tricky chars.
        let alphabet: Vec<char> = "A_1.-=#'\"\\ \t\r\n$x\u{feff}\u{0}é€😀".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..(state % 40) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let index = usize::try_from(state >> 33).unwrap_or(0) % alphabet.len();
                text.push(alphabet[index]);
            }
            let _ = parse(&text);
            state = state.rotate_left(7) ^ 0xa5a5;
        }
    }
}
