//! The build context: the files under the context folder that `.dockerignore` lets
//! through, walked from open directories (never through a symbolic link, whatever a
//! container does to the workspace meanwhile), in name order, so that the same files
//! always give the same hash. An ignored folder is pruned, not walked, unless an
//! exception reaches inside it. The same walk measures the context, hashes it and
//! writes it as a tar stream.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::ignore::Ignore;
use crate::names::hex;

/// Deeper than any real context; past it the walk stops with an error rather than
/// hold a descriptor per level.
const MOST_DEPTH: usize = 256;

/// What a context entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry of the context, as the walk finds it.
pub struct Entry<'a> {
    /// Relative to the context, `/`-separated bytes.
    pub path: &'a [u8],
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// A regular file's identity and times: unchanged, its content is unchanged.
    pub stamp: Option<Stamp>,
    /// A symbolic link's target.
    pub target: Option<Vec<u8>>,
    /// A regular file, once [`Entry::open`] opened it.
    file: Option<std::fs::File>,
    /// Where a regular file is: its folder, open, and its name.
    at: Option<(&'a OwnedFd, &'a OsStr)>,
}

impl Entry<'_> {
    /// A regular file, opened from its folder (never through a symbolic link) and
    /// checked to be the file the walk statted, not one swapped in since.
    pub fn open(&mut self) -> io::Result<&mut std::fs::File> {
        if self.file.is_none() {
            let (dir, name) = self.at.ok_or_else(|| io::Error::other("not a file"))?;
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
            let opened = rustix::fs::fstat(&fd)?;
            let same = self.stamp.is_some_and(|stamp| {
                stamp.ino == opened.st_ino as u64
                    && stamp.dev == opened.st_dev as u64
                    && stamp.size == opened.st_size as u64
            });
            if !same {
                return Err(io::Error::other("it changed while it was read"));
            }
            self.file = Some(std::fs::File::from(fd));
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}

/// What the walk was told to leave out besides `.dockerignore`, and to keep whatever
/// it says.
pub struct Rules<'a> {
    pub ignore: &'a Ignore,
    /// Paths never sent, relative to the context: `.rescued`, the data root where it
    /// lies inside, berth's state.
    pub never: &'a [String],
    /// Paths always sent: the Dockerfile and `.dockerignore`, as docker does.
    pub always: &'a [String],
}

impl Rules<'_> {
    fn leaves_out(&self, path: &str) -> bool {
        if self.always.iter().any(|p| p == path) {
            return false;
        }
        let under = |p: &String| path == p || path.starts_with(&format!("{p}/"));
        self.never.iter().any(under) || self.ignore.ignores(path)
    }

    /// Whether a folder left out must still be walked for what an exception keeps.
    fn must_enter(&self, dir: &str) -> bool {
        let under = |p: &String| dir == p || dir.starts_with(&format!("{p}/"));
        !self.never.iter().any(under)
            && (self.ignore.may_take_back_under(dir)
                || self
                    .always
                    .iter()
                    .any(|p| p.starts_with(&format!("{dir}/"))))
    }
}

/// Why a context cannot be sent.
#[derive(Debug)]
pub enum Refusal {
    Io(String, io::Error),
    /// A symbolic link whose target leaves the context.
    Escapes {
        path: String,
        target: String,
    },
    /// A FIFO, socket or device node.
    Special {
        path: String,
    },
    TooDeep {
        path: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(path, err) => write!(f, "cannot read {path} in the build context: {err}"),
            Self::Escapes { path, target } => write!(
                f,
                "{path} in the build context is a symbolic link to {target}, outside the \
                 context"
            ),
            Self::Special { path } => write!(
                f,
                "{path} in the build context is a FIFO, socket or device, which a build \
                 cannot be sent"
            ),
            Self::TooDeep { path } => write!(
                f,
                "the build context is deeper than {MOST_DEPTH} folders at {path}"
            ),
        }
    }
}

/// Walks the context at `root`, calling `visit` for every entry sent, parents before
/// children, names in byte order.
pub fn walk(
    root: &Path,
    rules: &Rules<'_>,
    visit: &mut dyn FnMut(Entry<'_>) -> io::Result<()>,
) -> Result<(), Refusal> {
    let shown = |path: &[u8]| String::from_utf8_lossy(path).into_owned();
    let fd = rustix::fs::openat(CWD, root, dir_flags(), Mode::empty())
        .map_err(|errno| Refusal::Io(root.display().to_string(), errno.into()))?;
    let mut path = Vec::new();
    walk_dir(&fd, &mut path, rules, visit, 0).map_err(|err| match err {
        Walk::Refused(refusal) => refusal,
        Walk::Io(at, err) => Refusal::Io(shown(&at), err),
    })
}

enum Walk {
    Refused(Refusal),
    Io(Vec<u8>, io::Error),
}

fn walk_dir(
    dir: &OwnedFd,
    path: &mut Vec<u8>,
    rules: &Rules<'_>,
    visit: &mut dyn FnMut(Entry<'_>) -> io::Result<()>,
    depth: usize,
) -> Result<(), Walk> {
    let io = |path: &[u8], err: io::Error| Walk::Io(path.to_vec(), err);
    if depth > MOST_DEPTH {
        return Err(Walk::Refused(Refusal::TooDeep {
            path: String::from_utf8_lossy(path).into_owned(),
        }));
    }
    let mut names: Vec<Vec<u8>> = Vec::new();
    let listing = rustix::io::dup(dir).map_err(|e| io(path, e.into()))?;
    let mut entries = Dir::new(listing).map_err(|e| io(path, e.into()))?;
    for entry in entries.by_ref() {
        let entry = entry.map_err(|e| io(path, e.into()))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    for name in names {
        let len = path.len();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let result = walk_entry(dir, &name, path, rules, visit, depth);
        path.truncate(len);
        result?;
    }
    Ok(())
}

fn walk_entry(
    dir: &OwnedFd,
    name: &[u8],
    path: &mut Vec<u8>,
    rules: &Rules<'_>,
    visit: &mut dyn FnMut(Entry<'_>) -> io::Result<()>,
    depth: usize,
) -> Result<(), Walk> {
    let io = |path: &[u8], err: io::Error| Walk::Io(path.to_vec(), err);
    let name = OsStr::from_bytes(name);
    let text = String::from_utf8_lossy(path).into_owned();
    let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        // Gone since it was listed: it is not in the context.
        Err(Errno::NOENT) => return Ok(()),
        Err(errno) => return Err(io(path, errno.into())),
    };
    let kind = FileType::from_raw_mode(stat.st_mode);
    let left_out = rules.leaves_out(&text);
    if left_out && !(kind == FileType::Directory && rules.must_enter(&text)) {
        return Ok(());
    }
    let mode = (stat.st_mode as u32) & 0o7777;
    match kind {
        FileType::Directory => {
            let fd = match rustix::fs::openat(dir, name, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(()),
                Err(errno) => return Err(io(path, errno.into())),
            };
            if !left_out {
                let entry = Entry {
                    path,
                    kind: Kind::Dir,
                    mode,
                    size: 0,
                    mtime: stat.st_mtime as i64,
                    stamp: None,
                    target: None,
                    file: None,
                    at: None,
                };
                visit(entry).map_err(|e| io(path, e))?;
            }
            walk_dir(&fd, path, rules, visit, depth + 1)
        }
        FileType::RegularFile => {
            let entry = Entry {
                path,
                kind: Kind::File,
                mode,
                size: stat.st_size as u64,
                mtime: stat.st_mtime as i64,
                stamp: Some(Stamp {
                    size: stat.st_size as u64,
                    mtime: (stat.st_mtime as i64, stat.st_mtime_nsec as i64),
                    ctime: (stat.st_ctime as i64, stat.st_ctime_nsec as i64),
                    ino: stat.st_ino as u64,
                    dev: stat.st_dev as u64,
                }),
                target: None,
                file: None,
                at: Some((dir, name)),
            };
            visit(entry).map_err(|e| io(path, e))
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())
                .map_err(|e| io(path, e.into()))?
                .into_bytes();
            if escapes(path, &target) {
                return Err(Walk::Refused(Refusal::Escapes {
                    path: text,
                    target: String::from_utf8_lossy(&target).into_owned(),
                }));
            }
            let entry = Entry {
                path,
                kind: Kind::Symlink,
                mode,
                size: 0,
                mtime: stat.st_mtime as i64,
                stamp: None,
                target: Some(target),
                file: None,
                at: None,
            };
            visit(entry).map_err(|e| io(path, e))
        }
        _ => Err(Walk::Refused(Refusal::Special { path: text })),
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Whether a link at `path` (relative to the context) to `target` leaves the context:
/// an absolute target does, and so does one whose `..`s climb above the root.
fn escapes(path: &[u8], target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return true;
    }
    // The link's own folder, in components.
    let mut depth = path.split(|b| *b == b'/').count() as isize - 1;
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// See [`Hasher::content`].
pub struct Content<'a> {
    file: &'a mut std::fs::File,
    hasher: &'a mut Hasher,
    digest: Sha256,
    left: u64,
}

impl Content<'_> {
    /// Checks that every byte promised was read, and adds the content's digest.
    pub fn finish(self) -> io::Result<[u8; 32]> {
        if self.left != 0 {
            return Err(io::Error::other("it shrank while it was read"));
        }
        let digest: [u8; 32] = self.digest.finalize().into();
        self.hasher.file_digest(&digest);
        Ok(digest)
    }
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::other("it shrank while it was read"));
        }
        self.digest.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// What the walk measured: every file's size, for the limit and the refusal.
#[derive(Debug, Default)]
pub struct Measure {
    pub bytes: u64,
    pub files: u64,
    /// Bytes under each top-level entry of the context.
    pub by_top: std::collections::BTreeMap<String, u64>,
    /// The hash of everything sent: paths, kinds, modes, link targets and contents.
    pub hash: String,
    /// Files whose content was read (the rest had a known digest).
    pub read: u64,
}

/// What makes a file the same file with the same content, short of reading it: its
/// size, inode and device, and its modification and change times. The change time
/// moves on every write and cannot be set back by the file's owner, so a file rewritten
/// with its old size and modification time still reads as changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub ino: u64,
    pub dev: u64,
}

/// The content digests of a context's files, by path, with the stamp each was read
/// at: what [`measure`] need not read again. Kept in the caller's state dir, never in
/// the workspace.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Digests {
    files: std::collections::HashMap<String, (Stamp, String)>,
}

impl Digests {
    /// `path`'s digest, if it was read at `stamp`.
    fn get(&self, path: &[u8], stamp: &Stamp) -> Option<[u8; 32]> {
        let (known, hex) = self.files.get(std::str::from_utf8(path).ok()?)?;
        if known != stamp {
            return None;
        }
        let mut digest = [0u8; 32];
        for (at, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(at * 2..at * 2 + 2)?, 16).ok()?;
        }
        Some(digest)
    }

    fn insert(&mut self, path: &[u8], stamp: Stamp, digest: &[u8; 32]) {
        if let Ok(path) = std::str::from_utf8(path) {
            self.files.insert(path.to_string(), (stamp, hex(digest)));
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Each path's content digest.
    pub fn paths(&self) -> std::collections::BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(path, (_, digest))| (path.clone(), digest.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The content digest of `bytes`, as [`Digests`] keeps it.
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Walks the context, measuring and hashing what would be sent. A file whose stamp
/// `known` holds is not read; returns the digests of this walk, for the next.
pub fn measure(
    root: &Path,
    rules: &Rules<'_>,
    known: &Digests,
) -> Result<(Measure, Digests), Refusal> {
    let mut measure = Measure::default();
    let mut digests = Digests {
        files: std::collections::HashMap::with_capacity(known.len()),
    };
    let mut hasher = Hasher::default();
    walk(root, rules, &mut |mut entry| {
        hasher.meta(&entry);
        let Some(stamp) = entry.stamp else {
            return Ok(());
        };
        measure.bytes += entry.size;
        measure.files += 1;
        let top = entry.path.split(|b| *b == b'/').next().unwrap_or_default();
        *measure
            .by_top
            .entry(String::from_utf8_lossy(top).into_owned())
            .or_default() += entry.size;
        let digest = match known.get(entry.path, &stamp) {
            Some(digest) => {
                hasher.file_digest(&digest);
                digest
            }
            None => {
                measure.read += 1;
                let size = entry.size;
                let mut content = hasher.content(entry.open()?, size);
                io::copy(&mut content, &mut io::sink())?;
                content.finish()?
            }
        };
        digests.insert(entry.path, stamp, &digest);
        Ok(())
    })?;
    measure.hash = hasher.finish();
    Ok((measure, digests))
}

/// Hashes entries as they are sent: each one's path, kind, mode, target and content.
#[derive(Default)]
pub struct Hasher {
    all: Sha256,
}

impl Hasher {
    /// Adds `entry`, copying a file's content into `out` on the way.
    pub fn entry(&mut self, entry: &mut Entry<'_>, out: &mut dyn Write) -> io::Result<()> {
        self.meta(entry);
        if entry.kind == Kind::File {
            let size = entry.size;
            let mut reader = self.content(entry.open()?, size);
            io::copy(&mut reader, out)?;
            reader.finish()?;
        }
        Ok(())
    }

    /// Adds what `entry` is, but not a file's content: [`Hasher::content`] or
    /// [`Hasher::file_digest`] does.
    pub fn meta(&mut self, entry: &Entry<'_>) {
        let kind = match entry.kind {
            Kind::File => b'f',
            Kind::Dir => b'd',
            Kind::Symlink => b'l',
        };
        self.all.update([kind]);
        self.all.update((entry.path.len() as u64).to_le_bytes());
        self.all.update(entry.path);
        self.all.update(entry.mode.to_le_bytes());
        if let Some(target) = &entry.target {
            self.all.update((target.len() as u64).to_le_bytes());
            self.all.update(target);
        }
        if entry.kind == Kind::File {
            self.all.update(entry.size.to_le_bytes());
        }
    }

    /// Adds a file's content by its digest (SHA-256 of the bytes).
    pub fn file_digest(&mut self, digest: &[u8; 32]) {
        self.all.update(digest);
    }

    /// A reader of exactly `size` bytes of `file` that digests what it reads; its
    /// [`Content::finish`] adds the digest (an error should the file be shorter).
    pub fn content<'a>(&'a mut self, file: &'a mut std::fs::File, size: u64) -> Content<'a> {
        Content {
            file,
            hasher: self,
            digest: Sha256::new(),
            left: size,
        }
    }

    /// Adds what is not a file of the context but goes into the build: the Dockerfile's
    /// name, build args, target, the base image's id.
    pub fn input(&mut self, key: &str, value: &[u8]) {
        self.all.update((key.len() as u64).to_le_bytes());
        self.all.update(key.as_bytes());
        self.all.update((value.len() as u64).to_le_bytes());
        self.all.update(value);
    }

    pub fn finish(self) -> String {
        hex(&self.all.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn sent(root: &Path, ignore: &str) -> Result<Vec<String>, Refusal> {
        let ignore = Ignore::parse(ignore).unwrap();
        let rules = Rules {
            ignore: &ignore,
            never: &[".rescued".to_string()],
            always: &["Dockerfile".to_string(), ".dockerignore".to_string()],
        };
        let mut paths = Vec::new();
        walk(root, &rules, &mut |entry| {
            paths.push(String::from_utf8_lossy(entry.path).into_owned());
            Ok(())
        })?;
        Ok(paths)
    }

    #[test]
    fn ignored_folders_are_pruned_and_exceptions_reach_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "Dockerfile",
            "src/a.py",
            "data/big.bin",
            "data/keep.txt",
            ".rescued/x",
        ] {
            fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            fs::write(root.join(file), file).unwrap();
        }
        assert_eq!(
            sent(root, "data\n!data/keep.txt\nDockerfile\n").unwrap(),
            ["Dockerfile", "data/keep.txt", "src", "src/a.py"]
        );
        // A FIFO, which the walk refuses wherever it reads one: without the exception
        // the folder is not even read, so it is never seen.
        let fifo = root.join("data/pipe");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        assert_eq!(
            sent(root, "data\n").unwrap(),
            ["Dockerfile", "src", "src/a.py"]
        );
        let err = sent(root, "data/big.bin\n").unwrap_err();
        assert!(err.to_string().contains("data/pipe"), "{err}");
    }

    #[test]
    fn a_link_that_leaves_the_context_is_refused_and_one_inside_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub")).unwrap();
        std::os::unix::fs::symlink("../Dockerfile", root.join("sub/ok")).unwrap();
        assert_eq!(sent(root, "").unwrap(), ["sub", "sub/ok"]);
        std::os::unix::fs::symlink("../../etc/passwd", root.join("sub/out")).unwrap();
        let err = sent(root, "").unwrap_err();
        assert!(err.to_string().contains("sub/out"), "{err}");
        assert!(escapes(b"a", b"/etc"));
        assert!(escapes(b"a/b", b"../../x"));
        assert!(!escapes(b"a/b", b"../x"));
        assert!(!escapes(b"a/b", b"c/../../x"));
    }

    #[test]
    fn the_hash_follows_content_and_mode_not_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("Dockerfile"), "FROM x\n").unwrap();
        fs::write(root.join("a"), "1").unwrap();
        let ignore = Ignore::default();
        let rules = Rules {
            ignore: &ignore,
            never: &[],
            always: &[],
        };
        let cold = |root: &Path| measure(root, &rules, &Digests::default()).unwrap().0;
        let (first, digests) = measure(root, &rules, &Digests::default()).unwrap();
        assert_eq!((first.files, first.bytes, first.read), (2, 8, 2));
        assert_eq!(digests.len(), 2);
        // Known digests: nothing is read, and the hash is the same.
        let (again, _) = measure(root, &rules, &digests).unwrap();
        assert_eq!((again.hash.as_str(), again.read), (first.hash.as_str(), 0));
        // Rewritten with the same content: read again (its change time moved).
        filetime_touch(&root.join("a"));
        let (touched, _) = measure(root, &rules, &digests).unwrap();
        assert_eq!(
            (touched.hash.as_str(), touched.read),
            (first.hash.as_str(), 1)
        );
        // New content, same size: a new hash, as a walk with no digests says.
        fs::write(root.join("a"), "2").unwrap();
        let (changed, _) = measure(root, &rules, &digests).unwrap();
        assert_ne!(changed.hash, first.hash);
        assert_eq!(changed.hash, cold(root).hash);
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(cold(root).hash, changed.hash);
    }

    /// Rewrites a file with the same content: a new modification time.
    fn filetime_touch(path: &Path) {
        let content = fs::read(path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(path, content).unwrap();
    }
}
