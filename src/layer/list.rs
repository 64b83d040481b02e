//! A container's changes, held compactly: the text of every path in one shared block,
//! and for each change where its path ends there and its kind. Every reader builds one
//! ([`Builder`]), and retire's assessment, summary and rescue list share its text
//! ([`PathText`]) instead of copying each path into an allocation of its own. At
//! 100,000 changed files the list takes about 3.5 MiB where one string per path took
//! 12 (issue 26: the check's peak memory).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use super::overlay::Unreadable;
use crate::container::ChangeKind;

/// The text a list's paths share, and the own bytes of each path that is not UTF-8
/// (rare: kept aside, so that the text stays one `str`).
#[derive(Default)]
struct Text {
    text: String,
    /// Where each such path starts in `text`, and its bytes; by start.
    raw: Vec<(u32, Box<[u8]>)>,
}

impl Text {
    fn raw_at(&self, start: u32) -> Option<&[u8]> {
        let at = self.raw.binary_search_by_key(&start, |(s, _)| *s).ok()?;
        Some(&self.raw[at].1)
    }
}

/// One path of a [`ChangeList`]: it reads as a `&str` (the engine's lossy text, U+FFFD
/// for each byte that is not UTF-8), keeps its own bytes ([`PathText::bytes`]), and a
/// clone shares the list's text. Compared and hashed by its bytes, so two names that
/// differ only in bytes that are not UTF-8 are two names; ordered by its text first.
#[derive(Clone)]
pub struct PathText {
    text: Arc<Text>,
    start: u32,
    end: u32,
}

impl PathText {
    /// A path with a text of its own.
    pub fn new(path: impl Into<String>) -> Self {
        let text: String = path.into();
        let end = u32::try_from(text.len()).expect("a path shorter than 4 GiB");
        Self {
            text: Arc::new(Text {
                text,
                raw: Vec::new(),
            }),
            start: 0,
            end,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text.text[self.start as usize..self.end as usize]
    }

    /// The name's own bytes, where they are not UTF-8; `None` for a UTF-8 name.
    pub fn raw(&self) -> Option<&[u8]> {
        self.text.raw_at(self.start)
    }

    /// The name's own bytes.
    pub fn bytes(&self) -> &[u8] {
        self.raw().unwrap_or(self.as_str().as_bytes())
    }

    /// The name as a summary prints it: its own bytes, control characters and bytes
    /// that are not UTF-8 escaped ([`crate::names::shown`]).
    pub fn shown(&self) -> String {
        crate::names::shown(self.bytes())
    }

    /// The lossless form of a name that is not UTF-8, for JSON: its bytes in hex, as a
    /// backup's manifest writes such a name.
    pub fn hex(&self) -> Option<String> {
        self.raw().map(crate::names::hex)
    }
}

impl Deref for PathText {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for PathText {
    fn from(path: &str) -> Self {
        Self::new(path)
    }
}

impl From<String> for PathText {
    fn from(path: String) -> Self {
        Self::new(path)
    }
}

impl PartialEq for PathText {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for PathText {}

impl Hash for PathText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl PartialOrd for PathText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str()
            .cmp(other.as_str())
            .then_with(|| self.bytes().cmp(other.bytes()))
    }
}

impl fmt::Debug for PathText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PathText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PathText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A path that is not UTF-8, as berth's JSON gives it beside a list of paths: the
/// list's lossy text, and the name's own bytes in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawPath {
    pub path: PathText,
    pub hex: String,
}

/// Those of `paths` that are not UTF-8, in order, as [`RawPath`]s.
pub fn raw_paths<'a>(paths: impl IntoIterator<Item = &'a PathText>) -> Vec<RawPath> {
    paths
        .into_iter()
        .filter_map(|path| {
            Some(RawPath {
                hex: path.hex()?,
                path: path.clone(),
            })
        })
        .collect()
}

/// A container's changes, in the order the reader found them; paths as the engine's
/// JSON writes them (each byte that is not part of valid UTF-8 becomes U+FFFD).
#[derive(Clone, Default)]
pub struct ChangeList {
    text: Arc<Text>,
    /// Where each path ends in `text`; it starts where the one before ends.
    ends: Vec<(u32, ChangeKind)>,
}

impl ChangeList {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, ChangeKind)> + '_ {
        self.spans()
            .map(|(start, end, kind)| (&self.text.text[start as usize..end as usize], kind))
    }

    /// Each change with its path sharing the list's text.
    pub fn shared(&self) -> impl Iterator<Item = (PathText, ChangeKind)> + '_ {
        self.spans().map(|(start, end, kind)| {
            let path = PathText {
                text: Arc::clone(&self.text),
                start,
                end,
            };
            (path, kind)
        })
    }

    fn spans(&self) -> impl Iterator<Item = (u32, u32, ChangeKind)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(end, _)| end));
        starts
            .zip(&self.ends)
            .map(|(start, &(end, kind))| (start, end, kind))
    }
}

/// As a list of `{"kind", "path"}`, written as it is serialized: a layer can list a
/// million changes.
impl Serialize for ChangeList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Change {
            kind: ChangeKind,
            path: PathText,
            #[serde(skip_serializing_if = "Option::is_none")]
            path_hex: Option<String>,
        }
        serializer.collect_seq(self.shared().map(|(path, kind)| Change {
            kind,
            path_hex: path.hex(),
            path,
        }))
    }
}

impl fmt::Debug for ChangeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for ChangeList {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for ChangeList {}

impl<S: AsRef<str>> FromIterator<(S, ChangeKind)> for ChangeList {
    /// For lists that are small or come whole (the engine's answer, tests).
    fn from_iter<I: IntoIterator<Item = (S, ChangeKind)>>(changes: I) -> Self {
        let mut builder = Builder::default();
        for (path, kind) in changes {
            builder.push(path.as_ref(), kind);
        }
        builder
            .finish()
            .expect("a list whose paths fit in 4 GiB of text")
    }
}

/// Builds a [`ChangeList`] one change at a time, as a reader finds them.
#[derive(Debug, Default)]
pub struct Builder {
    text: String,
    raw: Vec<(u32, Box<[u8]>)>,
    ends: Vec<(u32, ChangeKind)>,
    /// The paths passed 4 GiB of text, which a hostile layer could make.
    overflowed: bool,
}

impl Builder {
    pub fn push(&mut self, path: &str, kind: ChangeKind) {
        self.text.push_str(path);
        self.ended(kind);
    }

    /// A path as bytes: each byte that is not part of valid UTF-8 becomes U+FFFD, as the
    /// engine's JSON writes it.
    /// The bytes themselves are kept too ([`PathText::bytes`]).
    pub fn push_bytes(&mut self, path: &[u8], kind: ChangeKind) {
        if std::str::from_utf8(path).is_err() {
            if let Ok(start) = u32::try_from(self.text.len()) {
                self.raw.push((start, path.into()));
            }
        }
        crate::names::push_lossy(&mut self.text, path);
        self.ended(kind);
    }

    fn ended(&mut self, kind: ChangeKind) {
        match u32::try_from(self.text.len()) {
            Ok(end) if !self.overflowed => self.ends.push((end, kind)),
            _ => {
                // Nothing more is kept: the list is refused at the end.
                self.overflowed = true;
                self.text.clear();
                self.raw.clear();
                self.ends.clear();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn finish(mut self) -> Result<ChangeList, Unreadable> {
        if self.overflowed {
            return Err(Unreadable(
                "the layer's paths take more than 4 GiB of text".into(),
            ));
        }
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        Ok(ChangeList {
            text: Arc::new(Text {
                text: self.text,
                raw: self.raw,
            }),
            ends: self.ends,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeKind::*;

    #[test]
    fn a_list_gives_back_each_path_and_kind_in_order() {
        let mut builder = Builder::default();
        builder.push("/opt/a", Added);
        builder.push("", Modified);
        builder.push_bytes(b"/tmp/caf\xe9\xff.txt", Deleted);
        let list = builder.finish().unwrap();
        let read: Vec<(&str, ChangeKind)> = list.iter().collect();
        assert_eq!(
            read,
            [
                ("/opt/a", Added),
                ("", Modified),
                ("/tmp/caf\u{FFFD}\u{FFFD}.txt", Deleted)
            ]
        );
        let shared: Vec<(String, ChangeKind)> =
            list.shared().map(|(p, k)| (p.to_string(), k)).collect();
        assert_eq!(shared[2].0, "/tmp/caf\u{FFFD}\u{FFFD}.txt");
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn a_shared_path_is_its_text_wherever_it_lives() {
        let list: ChangeList = [("/a", Added), ("/b/c", Added)].into_iter().collect();
        let (path, _) = list.shared().nth(1).unwrap();
        assert_eq!(path, PathText::from("/b/c"));
        assert_eq!(&*path, "/b/c");
        let set: std::collections::HashSet<PathText> = list.shared().map(|(p, _)| p).collect();
        assert!(set.contains(&PathText::from("/b/c")));
        assert!(!set.contains(&PathText::from("/b")));
        assert_eq!(serde_json::to_string(&path).unwrap(), "\"/b/c\"");
        assert_eq!(format!("{path:?}"), "\"/b/c\"");
    }

    #[test]
    fn a_name_that_is_not_utf8_keeps_its_bytes_and_is_its_own_name() {
        let mut builder = Builder::default();
        builder.push_bytes(b"/tmp/caf\xe9", Added);
        builder.push_bytes(b"/tmp/ok", Added);
        builder.push_bytes(b"/tmp/caf\xe8", Added);
        builder.push_bytes(b"/tmp/esc\x1b[2J\nforged", Added);
        let list = builder.finish().unwrap();
        let paths: Vec<PathText> = list.shared().map(|(p, _)| p).collect();
        assert_eq!(paths[0].as_str(), "/tmp/caf\u{FFFD}");
        assert_eq!(paths[0].bytes(), b"/tmp/caf\xe9");
        assert_eq!(paths[1].raw(), None);
        assert_eq!(paths[1].bytes(), b"/tmp/ok");
        // The same lossy text, two names.
        assert_eq!(paths[0].as_str(), paths[2].as_str());
        assert_ne!(paths[0], paths[2]);
        let set: std::collections::HashSet<&PathText> = paths.iter().collect();
        assert_eq!(set.len(), 4);
        assert_eq!(paths[0].shown(), "/tmp/caf\\xe9");
        assert_eq!(paths[3].shown(), "/tmp/esc\\e[2J\\nforged");
        assert_eq!(paths[3].raw(), None, "control characters are UTF-8");
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json[0]["path"], "/tmp/caf\u{FFFD}");
        assert_eq!(json[0]["path_hex"], "2f746d702f636166e9");
        assert!(json[1].get("path_hex").is_none());
        let raw = serde_json::to_value(raw_paths(&paths)).unwrap();
        assert_eq!(
            raw,
            serde_json::json!([
                {"path": "/tmp/caf\u{FFFD}", "hex": "2f746d702f636166e9"},
                {"path": "/tmp/caf\u{FFFD}", "hex": "2f746d702f636166e8"},
            ])
        );
    }

    #[test]
    fn an_empty_list_is_empty() {
        let list = Builder::default().finish().unwrap();
        assert!(list.is_empty());
        assert_eq!(list.iter().count(), 0);
        assert_eq!(list, ChangeList::default());
    }
}
