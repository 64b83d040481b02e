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
    /// A symbolic link's target.
    pub target: Option<Vec<u8>>,
    /// A regular file, open for reading.
    pub file: Option<std::fs::File>,
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
                    target: None,
                    file: None,
                };
                visit(entry).map_err(|e| io(path, e))?;
            }
            walk_dir(&fd, path, rules, visit, depth + 1)
        }
        FileType::RegularFile => {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(()),
                Err(errno) => return Err(io(path, errno.into())),
            };
            // What was opened is what was statted, not something swapped in since.
            let opened = rustix::fs::fstat(&fd).map_err(|e| io(path, e.into()))?;
            if opened.st_ino != stat.st_ino || opened.st_dev != stat.st_dev {
                return Err(io(path, io::Error::other("it changed while it was read")));
            }
            let entry = Entry {
                path,
                kind: Kind::File,
                mode,
                size: opened.st_size as u64,
                mtime: opened.st_mtime as i64,
                target: None,
                file: Some(std::fs::File::from(fd)),
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
                target: Some(target),
                file: None,
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
    hasher: &'a mut Sha256,
    left: u64,
}

impl Content<'_> {
    /// Checks that every byte promised was read.
    pub fn finish(self) -> io::Result<()> {
        match self.left {
            0 => Ok(()),
            _ => Err(io::Error::other("it shrank while it was read")),
        }
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
        self.hasher.update(&buf[..n]);
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
}

/// Walks the context, measuring and hashing what would be sent.
pub fn measure(root: &Path, rules: &Rules<'_>) -> Result<Measure, Refusal> {
    let mut measure = Measure::default();
    let mut hasher = Hasher::default();
    walk(root, rules, &mut |mut entry| {
        if entry.kind == Kind::File {
            measure.bytes += entry.size;
            measure.files += 1;
            let top = entry.path.split(|b| *b == b'/').next().unwrap_or_default();
            *measure
                .by_top
                .entry(String::from_utf8_lossy(top).into_owned())
                .or_default() += entry.size;
        }
        hasher.entry(&mut entry, &mut io::sink())
    })?;
    measure.hash = hasher.finish();
    Ok(measure)
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
        if let Some(file) = entry.file.as_mut() {
            let mut reader = self.content(file, entry.size);
            io::copy(&mut reader, out)?;
            reader.finish()?;
        }
        Ok(())
    }

    /// Adds what `entry` is, but not a file's content: [`Hasher::content`] does.
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
        if entry.file.is_some() {
            self.all.update(entry.size.to_le_bytes());
        }
    }

    /// A reader of exactly `size` bytes of `file` that hashes what it reads; an error
    /// should the file be shorter.
    pub fn content<'a>(&'a mut self, file: &'a mut std::fs::File, size: u64) -> Content<'a> {
        Content {
            file,
            hasher: &mut self.all,
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
        self.all
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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
        let first = measure(root, &rules).unwrap();
        assert_eq!((first.files, first.bytes), (2, 8));
        filetime_touch(&root.join("a"));
        assert_eq!(measure(root, &rules).unwrap().hash, first.hash);
        fs::write(root.join("a"), "2").unwrap();
        let changed = measure(root, &rules).unwrap().hash;
        assert_ne!(changed, first.hash);
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(measure(root, &rules).unwrap().hash, changed);
    }

    /// Rewrites a file with the same content: a new modification time.
    fn filetime_touch(path: &Path) {
        let content = fs::read(path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(path, content).unwrap();
    }
}
