//! Path patterns, split on `/`: `*` matches any run of characters within one component,
//! `**` any number of whole components. Read once ([`Glob::new`]), matched many times.
//! Used by retire's disposable paths and the policy's image patterns. A leaf: it imports
//! nothing of berth's.

/// A pattern, read into its components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    parts: Vec<Part>,
}

impl Glob {
    /// `pattern` split on `/`, empty components kept (as in [`glob_match`]).
    pub fn new(pattern: &str) -> Self {
        Self::from_components(pattern.split('/'))
    }

    pub fn from_components<'a>(components: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            parts: components.into_iter().map(Part::new).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Whether it starts with `**`.
    pub fn starts_with_any(&self) -> bool {
        self.parts.first() == Some(&Part::Any)
    }

    /// `**/` and this: matches at any depth.
    pub fn floating(mut self) -> Self {
        self.parts.insert(0, Part::Any);
        self
    }

    /// This and `/**`: matches a path when this matches it or a directory above it, in
    /// one pass.
    pub fn covering(mut self) -> Self {
        self.parts.push(Part::Any);
        self
    }

    /// Whether the whole of `path`, as components, matches. Anchored at both ends.
    pub fn matches(&self, path: &[&str]) -> bool {
        glob(&self.parts, path)
    }
}

/// Whether the whole of `text` matches `pattern`, both split on `/`. Anchored at both
/// ends.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let text: Vec<&str> = text.split('/').collect();
    Glob::new(pattern).matches(&text)
}

fn glob(pattern: &[Part], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        // A trailing `**` takes whatever is left.
        Some((Part::Any, [])) => true,
        Some((Part::Any, rest)) => (0..=path.len()).any(|skip| glob(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((component, path_rest)) => first.matches(component) && glob(rest, path_rest),
            None => false,
        },
    }
}

/// One component of a pattern, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `**`: any number of components.
    Any,
    /// No `*`: the component itself.
    Literal(String),
    /// The pieces around each `*`.
    Wild(Vec<String>),
}

impl Part {
    fn new(raw: &str) -> Self {
        match raw {
            "**" => Part::Any,
            _ if raw.contains('*') => Part::Wild(raw.split('*').map(str::to_string).collect()),
            _ => Part::Literal(raw.to_string()),
        }
    }

    fn matches(&self, component: &str) -> bool {
        match self {
            Part::Any => true,
            Part::Literal(text) => text == component,
            Part::Wild(pieces) => wild_matches(pieces, component),
        }
    }
}

/// `*` matches any run of characters within one component: `pieces` are what lies
/// around each `*`, in order.
fn wild_matches(pieces: &[String], text: &str) -> bool {
    let Some((first, pieces)) = pieces.split_first() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece.as_str()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last.as_str())
}

/// Path patterns as `[retire] disposable` and `[backup] exclude` write them.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    patterns: Vec<Pattern>,
}

impl Patterns {
    pub fn new(patterns: &[String]) -> Self {
        Self {
            patterns: patterns.iter().map(|p| Pattern::new(p)).collect(),
        }
    }

    /// Whether `path`, or a directory above it, matches a pattern.
    pub fn matches(&self, path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        !components.is_empty()
            && self
                .patterns
                .iter()
                .any(|p| !p.empty && p.covering.matches(&components))
    }
}

/// One of [`Patterns`]. `/tmp` is anchored at the root; a pattern without a
/// leading `/` (`.cache`, `*.pyc`) matches at any depth, like `**/.cache`. `*` matches
/// within one path component, `**` any number of components. A pattern that matches a
/// directory covers everything below it.
#[derive(Debug, Clone)]
struct Pattern {
    /// Nothing to match: the pattern was empty, or only slashes.
    empty: bool,
    /// The pattern and then `**`: matches a path when the pattern matches it or a
    /// directory above it, in one pass.
    covering: Glob,
}

impl Pattern {
    fn new(raw: &str) -> Self {
        let mut glob = Glob::from_components(raw.split('/').filter(|p| !p.is_empty()));
        let empty = glob.is_empty();
        if !raw.starts_with('/') && !glob.starts_with_any() {
            glob = glob.floating();
        }
        Self {
            empty,
            covering: glob.covering(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stays_within_one_component() {
        assert!(Part::new("*.pyc").matches("m.pyc"));
        assert!(Part::new("a*b*c").matches("axxbyyc"));
        assert!(!Part::new("a*b*c").matches("axxbyy"));
        assert!(!Part::new("ab*ba").matches("aba"));
        assert!(Part::new("*").matches(""));
        assert!(glob_match("a*c", "abbc") && !glob_match("a*c", "ab/c"));
    }

    #[test]
    fn two_stars_take_any_number_of_components() {
        assert!(glob_match("a/**/z", "a/z"));
        assert!(glob_match("a/**/z", "a/b/c/z"));
        assert!(!glob_match("a/**/z", "a/b/c/zz"));
        assert!(glob_match("a/**", "a/b/c"));
        let floating = Glob::new("scratch").floating();
        assert!(floating.starts_with_any());
        assert!(floating.matches(&["data", "x", "scratch"]));
        assert!(!floating.matches(&["data", "scratch", "x"]));
        assert!(floating.covering().matches(&["data", "scratch", "x"]));
    }
}
