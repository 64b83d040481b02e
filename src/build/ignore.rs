//! `.dockerignore`, read and matched as docker reads and matches it (moby's
//! `ignorefile` and `patternmatcher`): one pattern a line, `#` comments, a leading `!`
//! for an exception, each pattern cleaned (`./a/../b` → `b`, a leading `/` dropped).
//! `*` matches within one path component, `?` one character but `/`, `[a-z]` a class
//! (negated by `^` only: docker hands classes to Go's regexp), `\` escapes, `**` any
//! number of components; a pattern that is `**` and then no wildcard matches by suffix
//! (`**.log` is every `.log`), as docker's does. A path is ignored when the last pattern
//! that matches it, or a folder above it, is not an exception. Pure: it reads no files.

/// The patterns of one `.dockerignore`, in order.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// As cleaned, without the `!`.
    text: String,
    exception: bool,
    tokens: Vec<Token>,
    /// `**` then text with no wildcard: docker matches such a pattern by suffix.
    suffix: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`: one character, not `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**/` (or `**` inside a pattern): any number of whole components, none too.
    Components,
    /// `**` at the end: anything at all.
    Rest,
    /// `[...]`: `(from, to)` ranges, negated with `^`.
    Class(Vec<(char, char)>, bool),
}

impl Ignore {
    /// The patterns of a `.dockerignore`'s text. A class left open (`[a-`) is an
    /// error, as docker's is.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, raw) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if raw.is_empty() {
                continue;
            }
            let text = clean(raw);
            let tokens =
                tokens(&text).map_err(|why| format!("line {}: {why}: {line:?}", number + 1))?;
            let suffix = text
                .strip_prefix("**")
                .filter(|rest| !rest.contains(['*', '?', '[', '\\']))
                .map(str::to_string);
            patterns.push(Pattern {
                text,
                exception,
                tokens,
                suffix,
            });
        }
        Ok(Self { patterns })
    }

    /// Whether `path` (relative to the context, `/`-separated, no leading `./`) is
    /// left out of the context.
    pub fn ignores(&self, path: &str) -> bool {
        let mut ignored = false;
        for pattern in &self.patterns {
            // An exception can only take back what is ignored so far, and a pattern
            // only ignore what is not.
            if pattern.exception != ignored {
                continue;
            }
            if pattern.matches_or_a_parent(path) {
                ignored = !pattern.exception;
            }
        }
        ignored
    }

    /// Whether an ignored folder `dir` must still be walked: an exception may take
    /// back something beneath it (docker's rule: an exception whose text starts with
    /// `dir/`). Otherwise the walk prunes it, never reading what is inside.
    pub fn may_take_back_under(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exception && format!("{}/", p.text).starts_with(&prefix))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Go's `filepath.Clean`, then a leading `/` dropped: `./a//b/../c/` → `a/c`.
fn clean(raw: &str) -> String {
    let rooted = raw.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let cleaned = parts.join("/");
    match (cleaned.is_empty(), rooted) {
        (true, true) => "/".to_string(),
        (true, false) => ".".to_string(),
        (false, _) => cleaned,
    }
}

/// A cleaned pattern as tokens, `**` as docker reads it.
fn tokens(pattern: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                out.push(match chars.peek() {
                    None => Token::Rest,
                    Some(_) => Token::Components,
                });
            }
            '*' => out.push(Token::Star),
            '?' => out.push(Token::One),
            '\\' => out.push(Token::Char(chars.next().unwrap_or('\\'))),
            '[' => {
                let negated = chars.next_if(|c| *c == '^').is_some();
                let mut ranges = Vec::new();
                let mut closed = false;
                let mut first = true;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    let from = match c {
                        '\\' => chars.next().ok_or("a class left open")?,
                        c => c,
                    };
                    let to = if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next() {
                            Some(']') | None => return Err("a range left open".into()),
                            Some('\\') => chars.next().ok_or("a class left open")?,
                            Some(c) => c,
                        }
                    } else {
                        from
                    };
                    ranges.push((from, to));
                }
                if !closed {
                    return Err("a class left open".into());
                }
                out.push(Token::Class(ranges, negated));
            }
            c => out.push(Token::Char(c)),
        }
    }
    Ok(out)
}

impl Pattern {
    /// Whether `path`, or a folder above it, matches as a whole: one table over
    /// (token, character) pairs answers for every prefix at once, so neither the
    /// pattern nor the depth makes it slow.
    fn matches_or_a_parent(&self, path: &str) -> bool {
        if let Some(suffix) = &self.suffix {
            let matches = |p: &str| {
                p.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| p == rest)
            };
            return matches(path) || path.match_indices('/').any(|(at, _)| matches(&path[..at]));
        }
        let text: Vec<char> = path.chars().collect();
        // reach[j]: the tokens so far can match text[..j]. Each token makes the next
        // row in one pass, so the cost is tokens × characters whatever the pattern.
        let mut reach = vec![false; text.len() + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; text.len() + 1];
            let mut reached_before = false;
            for j in 0..=text.len() {
                let before = j.checked_sub(1).map(|i| text[i]);
                next[j] = match token {
                    Token::Char(c) => before == Some(*c) && reach[j - 1],
                    Token::One => before.is_some_and(|b| b != '/') && reach[j - 1],
                    Token::Class(ranges, negated) => before.is_some_and(|b| {
                        let inside = ranges.iter().any(|(from, to)| (from..=to).contains(&&b));
                        inside != *negated && reach[j - 1]
                    }),
                    // From a reached place, over anything but `/`.
                    Token::Star => reach[j] || (j > 0 && next[j - 1] && before != Some('/')),
                    // A reached place, or just past a `/` after one.
                    Token::Components => reach[j] || (before == Some('/') && reached_before),
                    Token::Rest => reach[j] || reached_before,
                };
                reached_before |= reach[j];
            }
            reach = next;
        }
        // The path itself, or a prefix that ends just before a `/`.
        reach[text.len()] || (0..text.len()).any(|k| text[k] == '/' && reach[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn patterns_match_as_dockers_do() {
        let cases: &[(&str, &str, bool)] = &[
            ("data", "data", true),
            ("data", "data/x/y.bin", true),
            ("data", "sub/data", false),
            ("/data/", "data/big", true),
            ("./data/../cache", "cache/x", true),
            ("*.log", "a.log", true),
            ("*.log", "logs/a.log", false),
            ("*/*.log", "logs/a.log", true),
            ("**/*.log", "a.log", true),
            ("**/*.log", "x/y/a.log", true),
            ("data/**", "data/x", true),
            ("data/**", "data", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/xb", false),
            ("file?.txt", "file1.txt", true),
            ("file?.txt", "file/.txt", false),
            ("[a-c]*", "beta", true),
            ("[!a-c]*", "beta", true),
            ("[!a-c]*", "delta", false),
            ("**.log", "a.log", true),
            ("**/foo", "foo", true),
            ("**/foo", "x/foo", true),
            ("**/foo", "xfoo", false),
            ("[^a-c]*", "delta", true),
            ("\\*star", "*star", true),
            ("\\*star", "xstar", false),
            ("**", "anything/at/all", true),
        ];
        for (pattern, path, ignored) in cases {
            assert_eq!(
                ignore(pattern).ignores(path),
                *ignored,
                "{pattern:?} on {path:?}"
            );
        }
    }

    #[test]
    fn the_last_matching_pattern_wins_and_exceptions_take_back() {
        let rules = ignore("# comment\n\ndata\n!data/keep.txt\n*.md\n!README.md\n");
        assert!(rules.ignores("data/big.bin"));
        assert!(!rules.ignores("data/keep.txt"));
        assert!(rules.ignores("notes.md"));
        assert!(!rules.ignores("README.md"));
        assert!(!rules.ignores("src/main.rs"));
        // An exception before the rule it would take back does nothing.
        let rules = ignore("!keep\n*\n");
        assert!(rules.ignores("keep"));
    }

    #[test]
    fn an_ignored_folder_is_pruned_unless_an_exception_reaches_inside() {
        let rules = ignore("data\n!data/keep.txt\ncache\n");
        assert!(rules.may_take_back_under("data"));
        assert!(!rules.may_take_back_under("cache"));
        assert!(!ignore("data\n").may_take_back_under("data"));
    }

    #[test]
    fn an_open_class_is_an_error_with_its_line() {
        let err = Ignore::parse("ok\n[a-\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(Ignore::parse("[abc").is_err());
    }

    #[test]
    fn a_hostile_pattern_is_matched_in_time() {
        let pattern = format!("{}b", "*a".repeat(40));
        let path = "a".repeat(200);
        assert!(!ignore(&pattern).ignores(&path));
        let path = format!("{}x", "x/".repeat(5000));
        assert!(!ignore(&format!("{}y", "**/".repeat(50))).ignores(&path));
        assert!(ignore(&format!("{}x", "**/".repeat(50))).ignores(&path));
    }
}
