//! What a container changed, read from its overlay upper directory and the lower
//! directories under it, reported as the engine's changes call reports it.
//!
//! The engine (moby's naive diff, `archive.ChangesDirs`) mounts the container and its
//! `-init` layer and walks both whole trees: its cost grows with the image. The upper
//! directory holds only what the container wrote, so this walks that, and looks each
//! entry up in the lower view (top to bottom, stopping at a whiteout, an opaque
//! directory or a non-directory) to tell added from changed, and a copy-up with no real
//! change from either. The rules, each as the engine applies them:
//!
//! - An entry absent below is added, and so is everything under it.
//! - An entry present below is changed when its type, mode, owner or device differ, or,
//!   for non-directories, its size, its modification time (same second, and the same
//!   nanoseconds unless either is 0) or its `security.capability`.
//! - A whiteout (a character device 0/0, or for fuse-overlayfs a `.wh.NAME` file) is a
//!   deletion of NAME when NAME exists below; the whiteout itself is never reported.
//! - An opaque directory that exists below deletes the lower children it does not hold;
//!   in it, what exists below is compared as above. A new directory's opaque mark
//!   deletes nothing.
//! - A directory present below with any change under it is reported changed.
//!
//! Safety: the upper directory is the container's, so every name is bytes, nothing is
//! followed (every open is `O_NOFOLLOW` from a directory descriptor, attributes are read
//! through `/proc/self/fd/N/NAME` with `l*xattr`), and nothing is opened for writing. A
//! marker the walker does not know (a renamed directory's `redirect`, kernel 6.7's
//! `whiteout` files) ends the walk with [`Unreadable`]: the caller asks the engine.

use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::buffer::spare_capacity;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat, CWD};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::container::ChangeKind;

/// How the storage driver marks whiteouts and opaque directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The kernel's overlay (docker's `overlay2`): a whiteout is a character device
    /// 0/0; a `.wh.` name is an ordinary file there.
    Kernel,
    /// `fuse-overlayfs`, which also writes `.wh.NAME` and `.wh..wh..opq` files (and
    /// refuses such names from the container).
    Fuse,
}

/// A container's overlay directories, as the engine's inspect names them.
#[derive(Debug, Clone)]
pub struct Layers<'a> {
    pub upper: &'a Path,
    /// Top first: the `-init` layer, then the image's.
    pub lowers: &'a [&'a Path],
    pub dialect: Dialect,
}

/// Why the walker cannot answer exactly; the engine's changes call can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl Unreadable {
    fn io(what: &str, path: &[u8], errno: Errno) -> Self {
        Unreadable(format!(
            "cannot read {what} {}: {}",
            crate::names::shown(path),
            std::io::Error::from(errno)
        ))
    }
}

/// The opaque marks overlay writes on a directory, with the value `y`.
const OPAQUE: [&str; 3] = [
    "trusted.overlay.opaque",
    "user.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];
/// fuse-overlayfs's opaque mark as a file, and the prefix of its whiteout files.
const OPAQUE_FILE: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const CAPABILITY: &str = "security.capability";
/// The namespaces overlay drivers keep their own marks in.
const MARK_PREFIXES: [&[u8]; 4] = [
    b"trusted.overlay.",
    b"user.overlay.",
    b"user.fuseoverlayfs.",
    b"user.containers.",
];
/// Marks that change nothing of what an entry is: where a copy-up came from, that a
/// directory holds copy-ups, hard-link counts, that the data stays below (`metacopy`:
/// the upper entry has the real size and times), and the opaque and owner marks,
/// which the walker reads.
const HARMLESS_MARKS: [&[u8]; 9] = [
    b"opaque",
    b"origin",
    b"impure",
    b"nlink",
    b"upper",
    b"uuid",
    b"protattr",
    b"metacopy",
    b"override_stat",
];

/// Walks `layers` and calls `emit` once for every added, changed and deleted path (a
/// path is `/`-separated bytes from the container's root). The order is the walk's.
pub fn walk(
    layers: &Layers<'_>,
    emit: &mut dyn FnMut(&[u8], ChangeKind),
    stamp: Option<&mut Stamp>,
) -> Result<(), Unreadable> {
    let open_root = |path: &Path| {
        rustix::fs::openat(CWD, path, dir_flags(), Mode::empty())
            .map(Rc::new)
            .map_err(|errno| Unreadable::io("layer", path.as_os_str().as_bytes(), errno))
    };
    let upper = open_root(layers.upper)?;
    let lowers = layers
        .lowers
        .iter()
        .map(|path| open_root(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut walker = Walker {
        dialect: layers.dialect,
        emit,
        stamp,
        pending: Vec::new(),
    };
    let root = Rc::new(Node {
        len: 0,
        reported: Cell::new(true),
        parent: None,
    });
    walker.dir(upper, root, b"", lowers, true)?;
    while let Some(next) = walker.pending.pop() {
        let fd = rustix::fs::openat(
            &*next.parent,
            next.name.as_c_str(),
            dir_flags(),
            Mode::empty(),
        )
        .map(Rc::new);
        let fd = match fd {
            Ok(fd) => fd,
            // Gone, or replaced by a non-directory, since it was listed: what is there
            // now is the container's business until the walk is repeated.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
            Err(errno) => return Err(Unreadable::io("directory", &next.path, errno)),
        };
        let lowers = next
            .below
            .iter()
            .map(|dir| {
                rustix::fs::openat(&**dir, next.name.as_c_str(), dir_flags(), Mode::empty())
                    .map(Rc::new)
                    .map_err(|errno| Unreadable::io("image directory", &next.path, errno))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let merged = next.merged && !walker.opaque_dir(&fd, next.opaque)?;
        walker.dir(fd, next.node, &next.path, lowers, merged)?;
    }
    Ok(())
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// A directory of the upper layer on the way down, for the parent rule: a directory
/// that exists below is reported changed once anything under it is. It keeps the length
/// of its path, not the path: that is a prefix of every path beneath it, and a path
/// 10,000 directories deep would otherwise be held 10,000 times over.
struct Node {
    len: usize,
    /// Reported already, as added or changed (the root never is).
    reported: Cell<bool>,
    parent: Option<Rc<Node>>,
}

/// The path of `name` in directory `dir`.
fn child(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// An upper directory still to walk. It holds its parent's descriptor, not its own,
/// so a deep tree holds descriptors only for the directories with siblings pending.
struct Pending {
    parent: Rc<OwnedFd>,
    name: CString,
    path: Vec<u8>,
    node: Rc<Node>,
    /// The lower directories that hold it as a directory, top first, cut at an opaque.
    below: Vec<Rc<OwnedFd>>,
    /// Its parent merges the lower view (no opaque mark on the way down).
    merged: bool,
    /// Its own attributes mark it opaque.
    opaque: bool,
}

/// What the lower view holds at a name.
struct Below {
    stat: Stat,
    capability: Option<Vec<u8>>,
    /// For a directory: the lower directories that hold it, top first.
    dirs: Vec<Rc<OwnedFd>>,
}

struct Walker<'e> {
    dialect: Dialect,
    emit: &'e mut dyn FnMut(&[u8], ChangeKind),
    stamp: Option<&'e mut Stamp>,
    pending: Vec<Pending>,
}

/// A digest of one walk: every change it reported, and for each entry it reported
/// added or modified, what the upper copy's `stat` says (folders: type, mode and owner;
/// the rest also inode, size, and modification and change times, which any write
/// moves). Two walks of a container with one stamp saw the same layer, as far as a
/// snapshot of it goes; a walk that differs in order only stamps differently, which
/// costs a snapshot, never a change missed.
///
/// It also keeps each such file's own signature ([`Stamped::files`]): a snapshot links
/// what kept its signature from the one before instead of copying it again.
#[derive(Default)]
pub struct Stamp {
    digest: Sha256,
    files: Vec<(Vec<u8>, u64)>,
}

/// A finished [`Stamp`]: the walk's digest, in hex, and the signature of each file
/// (anything but a folder) it found added or modified, by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub digest: String,
    pub files: Vec<(Vec<u8>, u64)>,
}

impl Stamp {
    fn change(&mut self, path: &[u8], kind: ChangeKind) {
        let kind = match kind {
            ChangeKind::Added => b'A',
            ChangeKind::Modified => b'C',
            ChangeKind::Deleted => b'D',
        };
        self.digest.update([kind]);
        self.digest.update((path.len() as u64).to_le_bytes());
        self.digest.update(path);
    }

    // The `stat` fields are i64 on Linux's 64-bit targets, not everywhere.
    #[allow(clippy::unnecessary_cast)]
    fn entry(&mut self, path: &[u8], stat: &Stat) {
        let mut fields = vec![stat.st_mode as u64, stat.st_uid as u64, stat.st_gid as u64];
        let file = FileType::from_raw_mode(stat.st_mode) != FileType::Directory;
        if file {
            fields.extend([
                stat.st_ino as u64,
                stat.st_size as u64,
                stat.st_rdev as u64,
                stat.st_mtime as u64,
                stat.st_mtime_nsec as u64,
                stat.st_ctime as u64,
                stat.st_ctime_nsec as u64,
            ]);
        }
        let mut own = Sha256::new();
        for field in &fields {
            self.digest.update(field.to_le_bytes());
            own.update(field.to_le_bytes());
        }
        if file {
            let own = own.finalize();
            let signature = u64::from_le_bytes(own[..8].try_into().expect("8 bytes"));
            self.files.push((path.to_vec(), signature));
        }
    }

    pub fn finish(self) -> Stamped {
        Stamped {
            digest: crate::names::hex(&self.digest.finalize()),
            files: self.files,
        }
    }
}

impl Walker<'_> {
    /// Reports the entries of upper directory `fd` (at `node`, whose path is `here`);
    /// queues its subdirectories. `merged`: the new view still merges `lowers` here, so
    /// that what is absent above is unchanged; otherwise (an opaque directory) it is
    /// deleted.
    fn dir(
        &mut self,
        fd: Rc<OwnedFd>,
        node: Rc<Node>,
        here: &[u8],
        lowers: Vec<Rc<OwnedFd>>,
        merged: bool,
    ) -> Result<(), Unreadable> {
        let fuse = self.dialect == Dialect::Fuse;
        // Names the upper directory speaks for, where it hides the lower ones.
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let track = !merged && !lowers.is_empty();
        let entries = Dir::read_from(&*fd).map_err(|e| Unreadable::io("directory", here, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Unreadable::io("directory", here, e))?;
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            if fuse && bytes.starts_with(WHITEOUT_PREFIX) {
                let target = &bytes[WHITEOUT_PREFIX.len()..];
                if bytes != OPAQUE_FILE && !target.is_empty() {
                    self.whiteout(&node, here, &lowers, target)?;
                    if track {
                        seen.insert(target.to_vec());
                    }
                }
                continue;
            }
            let path = child(here, bytes);
            if track {
                seen.insert(bytes.to_vec());
            }
            // The entry's type says enough for most of a new folder's entries: only a
            // possible whiteout, an entry to compare with the one below, and a
            // directory (its marks) cost more than the directory listing.
            let listed = entry.file_type();
            let mut stat = None;
            if matches!(listed, FileType::CharacterDevice | FileType::Unknown) {
                let Some(found) = stat_entry(&fd, name, &path)? else {
                    continue;
                };
                if is_whiteout(&found) {
                    self.whiteout(&node, here, &lowers, bytes)?;
                    continue;
                }
                stat = Some(found);
            }
            let below = self.lookup(&lowers, name)?;
            if below.is_some() && stat.is_none() {
                let Some(found) = stat_entry(&fd, name, &path)? else {
                    continue;
                };
                stat = Some(found);
            }
            let is_dir = match &stat {
                Some(stat) => FileType::from_raw_mode(stat.st_mode) == FileType::Directory,
                None => listed == FileType::Directory,
            };
            // A new non-directory is added whatever its marks say.
            let marks = match is_dir || below.is_some() {
                true => Marks::read(&fd, name, &path)?,
                false => Marks::default(),
            };
            let mut stat_stamped = None;
            let (reported, below_dirs) = match (below, stat) {
                (Some(below), Some(mut stat)) => {
                    if let Some(owner) = marks.owner {
                        owner.apply(&mut stat);
                    }
                    let changed =
                        differs(&below.stat, &stat) || below.capability != marks.capability;
                    if changed {
                        self.change(&node, &path, ChangeKind::Modified);
                        stat_stamped = Some(stat);
                    }
                    (changed, below.dirs)
                }
                (_, stat) => {
                    self.change(&node, &path, ChangeKind::Added);
                    if self.stamp.is_some() {
                        stat_stamped = stat;
                    }
                    (true, Vec::new())
                }
            };
            if let Some(stamp) = self.stamp.as_deref_mut() {
                if reported {
                    let stat = match stat_stamped.take() {
                        Some(stat) => Some(stat),
                        None => stat_entry(&fd, name, &path)?,
                    };
                    if let Some(stat) = stat {
                        stamp.entry(&path, &stat);
                    }
                }
            }
            if is_dir {
                self.pending.push(Pending {
                    parent: fd.clone(),
                    name: name.to_owned(),
                    node: Rc::new(Node {
                        len: path.len(),
                        reported: Cell::new(reported),
                        parent: Some(node.clone()),
                    }),
                    path,
                    below: below_dirs,
                    merged,
                    opaque: marks.opaque,
                });
            }
        }
        if track {
            for name in self.listing(&lowers)? {
                if !seen.contains(&name) {
                    let path = child(here, &name);
                    self.change(&node, &path, ChangeKind::Deleted);
                }
            }
        }
        Ok(())
    }

    /// Reports `path` (in directory `node`), and every directory above it that exists
    /// below and was not reported yet, as the engine does.
    fn change(&mut self, node: &Rc<Node>, path: &[u8], kind: ChangeKind) {
        (self.emit)(path, kind);
        if let Some(stamp) = self.stamp.as_deref_mut() {
            stamp.change(path, kind);
        }
        let mut up = Some(node);
        while let Some(dir) = up {
            if dir.reported.replace(true) {
                break;
            }
            (self.emit)(&path[..dir.len], ChangeKind::Modified);
            if let Some(stamp) = self.stamp.as_deref_mut() {
                stamp.change(&path[..dir.len], ChangeKind::Modified);
            }
            up = dir.parent.as_ref();
        }
    }

    /// A whiteout for `name` in `node`: a deletion when the name exists below.
    fn whiteout(
        &mut self,
        node: &Rc<Node>,
        here: &[u8],
        lowers: &[Rc<OwnedFd>],
        name: &[u8],
    ) -> Result<(), Unreadable> {
        let Ok(c_name) = CString::new(name) else {
            return Ok(());
        };
        if self.lookup(lowers, &c_name)?.is_some() {
            let path = child(here, name);
            self.change(node, &path, ChangeKind::Deleted);
        }
        Ok(())
    }

    /// What the lower view holds at `name` in the directories `lowers` (top first).
    fn lookup(&self, lowers: &[Rc<OwnedFd>], name: &CStr) -> Result<Option<Below>, Unreadable> {
        for (i, dir) in lowers.iter().enumerate() {
            if self.hidden_by_file(dir, name)? {
                return Ok(None);
            }
            let stat = match stat_at(dir, name)? {
                None => continue,
                Some(stat) if is_whiteout(&stat) => return Ok(None),
                Some(stat) => stat,
            };
            let capability = xattr(dir, name, CAPABILITY)?;
            let mut dirs = Vec::new();
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                dirs.push(dir.clone());
                if !self.opaque_at(dir, name)? {
                    for lower in &lowers[i + 1..] {
                        if self.hidden_by_file(lower, name)? {
                            break;
                        }
                        match stat_at(lower, name)? {
                            None => continue,
                            Some(s)
                                if FileType::from_raw_mode(s.st_mode) == FileType::Directory =>
                            {
                                dirs.push(lower.clone());
                                if self.opaque_at(lower, name)? {
                                    break;
                                }
                            }
                            Some(_) => break,
                        }
                    }
                }
            }
            return Ok(Some(Below {
                stat,
                capability,
                dirs,
            }));
        }
        Ok(None)
    }

    /// fuse-overlayfs's `.wh.NAME` beside `name` in lower directory `dir`.
    fn hidden_by_file(&self, dir: &OwnedFd, name: &CStr) -> Result<bool, Unreadable> {
        if self.dialect != Dialect::Fuse {
            return Ok(false);
        }
        let mut marker = WHITEOUT_PREFIX.to_vec();
        marker.extend_from_slice(name.to_bytes());
        let marker = CString::new(marker).expect("a directory entry holds no NUL");
        Ok(stat_at(dir, &marker)?.is_some())
    }

    /// Lower directory `name` in `dir` is opaque.
    fn opaque_at(&self, dir: &OwnedFd, name: &CStr) -> Result<bool, Unreadable> {
        for mark in OPAQUE {
            if xattr(dir, name, mark)?.as_deref() == Some(b"y") {
                return Ok(true);
            }
        }
        if self.dialect == Dialect::Fuse {
            let mut inner = name.to_bytes().to_vec();
            inner.push(b'/');
            inner.extend_from_slice(OPAQUE_FILE);
            let inner = CString::new(inner).expect("a directory entry holds no NUL");
            return Ok(stat_at(dir, &inner)?.is_some());
        }
        Ok(false)
    }

    /// Upper directory `fd` is opaque: by its attributes (`marked`) or, for
    /// fuse-overlayfs, by the file it holds.
    fn opaque_dir(&self, fd: &OwnedFd, marked: bool) -> Result<bool, Unreadable> {
        if marked {
            return Ok(true);
        }
        if self.dialect == Dialect::Fuse {
            let marker = CString::new(OPAQUE_FILE).expect("no NUL");
            return Ok(stat_at(fd, &marker)?.is_some());
        }
        Ok(false)
    }

    /// The names the lower view holds in `lowers` (top first), whiteouts applied.
    fn listing(&self, lowers: &[Rc<OwnedFd>]) -> Result<Vec<Vec<u8>>, Unreadable> {
        let mut hidden: HashSet<Vec<u8>> = HashSet::new();
        let mut listed: HashSet<Vec<u8>> = HashSet::new();
        let mut names = Vec::new();
        for dir in lowers {
            let mut hides = Vec::new();
            let entries =
                Dir::read_from(&**dir).map_err(|e| Unreadable::io("image directory", b"", e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Unreadable::io("image directory", b"", e))?;
                let bytes = entry.file_name().to_bytes();
                if bytes == b"." || bytes == b".." {
                    continue;
                }
                if self.dialect == Dialect::Fuse && bytes.starts_with(WHITEOUT_PREFIX) {
                    if bytes != OPAQUE_FILE {
                        hides.push(bytes[WHITEOUT_PREFIX.len()..].to_vec());
                    }
                    continue;
                }
                if entry.file_type() == FileType::CharacterDevice
                    && stat_at(dir, entry.file_name())?.is_some_and(|s| is_whiteout(&s))
                {
                    hides.push(bytes.to_vec());
                    continue;
                }
                if !hidden.contains(bytes) && listed.insert(bytes.to_vec()) {
                    names.push(bytes.to_vec());
                }
            }
            hidden.extend(hides);
        }
        Ok(names)
    }
}

/// Upper entry `name` in `dir` (at `path`), not followed; `None` when it is gone.
fn stat_entry(dir: &OwnedFd, name: &CStr, path: &[u8]) -> Result<Option<Stat>, Unreadable> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(errno) => Err(Unreadable::io("entry", path, errno)),
    }
}

/// `name` in `dir`, not followed; `None` when there is none.
fn stat_at(dir: &OwnedFd, name: &CStr) -> Result<Option<Stat>, Unreadable> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT | Errno::NOTDIR) => Ok(None),
        Err(errno) => Err(Unreadable::io("image entry", name.to_bytes(), errno)),
    }
}

/// `name` in `dir` as a path the `l*xattr` calls take without following `name`: the
/// descriptor's own link in `/proc` is the directory itself, and `name` is one
/// component.
fn proc_path(dir: &OwnedFd, name: &CStr) -> CString {
    let mut path = format!("/proc/self/fd/{}/", dir.as_fd().as_raw_fd()).into_bytes();
    path.extend_from_slice(name.to_bytes());
    CString::new(path).expect("a directory entry holds no NUL")
}

/// Extended attribute `attr` of `name` in `dir`, not followed; `None` when unset.
fn xattr(dir: &OwnedFd, name: &CStr, attr: &str) -> Result<Option<Vec<u8>>, Unreadable> {
    let path = proc_path(dir, name);
    let mut buf = Vec::with_capacity(64);
    loop {
        match rustix::fs::lgetxattr(path.as_c_str(), attr, spare_capacity(&mut buf)) {
            Ok(_) => return Ok(Some(buf)),
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) => buf.reserve(buf.capacity().max(64) * 2),
            Err(Errno::NOENT) => return Ok(None),
            Err(errno) => return Err(Unreadable::io("attribute of", name.to_bytes(), errno)),
        }
    }
}

/// The names of the extended attributes of `name` in `dir`, not followed.
fn xattr_names(dir: &OwnedFd, name: &CStr) -> Result<Vec<u8>, Unreadable> {
    let path = proc_path(dir, name);
    let mut buf = Vec::with_capacity(256);
    loop {
        match rustix::fs::llistxattr(path.as_c_str(), spare_capacity(&mut buf)) {
            Ok(_) => return Ok(buf),
            Err(Errno::NOTSUP | Errno::NOENT) => return Ok(Vec::new()),
            Err(Errno::RANGE) => buf.reserve(buf.capacity() * 2),
            Err(errno) => return Err(Unreadable::io("attributes of", name.to_bytes(), errno)),
        }
    }
}

/// The owner and mode an unprivileged driver keeps in an attribute, because it cannot
/// set the real ones: `UID:GID:MODE` (octal), maybe followed by `:TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (and the type, where the value holds it).
    pub mode: u32,
}

impl Owner {
    pub fn parse(value: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.trim_end_matches('\0').split(':');
        let uid = parts.next()?.parse().ok()?;
        let gid = parts.next()?.parse().ok()?;
        let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
        Some(Owner { uid, gid, mode })
    }

    // `st_mode` is u32 on Linux's 64-bit targets, not everywhere.
    #[allow(clippy::unnecessary_cast)]
    fn apply(self, stat: &mut Stat) {
        stat.st_uid = self.uid;
        stat.st_gid = self.gid;
        let kind = (stat.st_mode as u32) & libc::S_IFMT;
        let bits = self.mode & !libc::S_IFMT;
        stat.st_mode = (kind | bits) as _;
    }
}

/// What an upper entry's attributes say.
#[derive(Debug, Default)]
struct Marks {
    capability: Option<Vec<u8>>,
    opaque: bool,
    owner: Option<Owner>,
}

impl Marks {
    /// Reads them, refusing a mark that changes what the entry is in a way the walker
    /// does not follow (a renamed directory's `redirect`, for one).
    fn read(dir: &OwnedFd, name: &CStr, path: &[u8]) -> Result<Self, Unreadable> {
        let mut marks = Marks::default();
        let names = xattr_names(dir, name)?;
        for attr in names.split(|b| *b == 0).filter(|a| !a.is_empty()) {
            if attr == CAPABILITY.as_bytes() {
                marks.capability = xattr(dir, name, CAPABILITY)?;
                continue;
            }
            let Some(prefix) = MARK_PREFIXES.iter().find(|p| attr.starts_with(p)) else {
                continue;
            };
            let key = &attr[prefix.len()..];
            if !HARMLESS_MARKS.contains(&key) {
                return Err(Unreadable(format!(
                    "{} carries {}, which berth's layer reader does not follow",
                    crate::names::shown(path),
                    String::from_utf8_lossy(attr)
                )));
            }
            let attr = std::str::from_utf8(attr).expect("a known mark is ASCII");
            match key {
                b"opaque" => marks.opaque |= xattr(dir, name, attr)?.as_deref() == Some(b"y"),
                b"override_stat" => {
                    if let Some(value) = xattr(dir, name, attr)? {
                        marks.owner = Owner::parse(&value);
                    }
                }
                _ => {}
            }
        }
        Ok(marks)
    }
}

/// A whiteout as overlay writes it: a character device 0/0.
fn is_whiteout(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice && stat.st_rdev == 0
}

/// The engine's test of a change (moby's `statDifferent`, plus the capability compared
/// by the caller): type and mode, owner, device; for non-directories also size and
/// modification time.
// The `stat` fields are i64 on Linux's 64-bit targets, not everywhere.
#[allow(clippy::unnecessary_cast)]
fn differs(old: &Stat, new: &Stat) -> bool {
    old.st_mode != new.st_mode
        || old.st_uid != new.st_uid
        || old.st_gid != new.st_gid
        || old.st_rdev != new.st_rdev
        || (FileType::from_raw_mode(old.st_mode) != FileType::Directory
            && (!same_time(
                (old.st_mtime as i64, old.st_mtime_nsec as i64),
                (new.st_mtime as i64, new.st_mtime_nsec as i64),
            ) || old.st_size != new.st_size))
}

/// The engine's `sameFsTimeSpec`: the same second, and the same nanoseconds unless
/// either side has none (a file system or archive that keeps whole seconds).
fn same_time(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 == b.0 && (a.1 == b.1 || a.1 == 0 || b.1 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// A hand-made overlay: `upper` over `lowers` (top first), in a temporary folder.
    struct Tree {
        _dir: tempfile::TempDir,
        upper: PathBuf,
        lowers: Vec<PathBuf>,
    }

    impl Tree {
        fn new(lowers: usize) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let upper = dir.path().join("upper");
            fs::create_dir(&upper).unwrap();
            let lowers = (0..lowers)
                .map(|i| {
                    let path = dir.path().join(format!("lower{i}"));
                    fs::create_dir(&path).unwrap();
                    path
                })
                .collect();
            Tree {
                _dir: dir,
                upper,
                lowers,
            }
        }

        fn walk(&self, dialect: Dialect) -> Result<Vec<(String, ChangeKind)>, Unreadable> {
            let lowers: Vec<&Path> = self.lowers.iter().map(PathBuf::as_path).collect();
            let mut found = Vec::new();
            walk(
                &Layers {
                    upper: &self.upper,
                    lowers: &lowers,
                    dialect,
                },
                &mut |path, kind| found.push((crate::names::shown(path), kind)),
                None,
            )?;
            found.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(found)
        }

        fn stamp(&self) -> String {
            let lowers: Vec<&Path> = self.lowers.iter().map(PathBuf::as_path).collect();
            let mut stamp = Stamp::default();
            let layers = Layers {
                upper: &self.upper,
                lowers: &lowers,
                dialect: Dialect::Kernel,
            };
            walk(&layers, &mut |_, _| {}, Some(&mut stamp)).unwrap();
            stamp.finish().digest
        }

        fn changes(&self) -> Vec<(String, ChangeKind)> {
            self.walk(Dialect::Kernel).unwrap()
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A copy-up as overlay makes it: the same bytes, mode and times.
    fn copy_up(from: &Path, to: &Path) {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(from, to).unwrap();
        let modified = fs::metadata(from).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(to)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }

    fn whiteout(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        rustix::fs::mknodat(
            CWD,
            path,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0),
            0,
        )
        .expect("the unit tests run as root, to make whiteouts");
    }

    fn set_xattr(path: &Path, name: &str, value: &[u8]) {
        rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
    }

    use ChangeKind::{Added as A, Deleted as D, Modified as M};

    fn list(items: &[(&str, ChangeKind)]) -> Vec<(String, ChangeKind)> {
        let mut v: Vec<_> = items.iter().map(|(p, k)| (p.to_string(), *k)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn the_stamp_moves_with_any_write_and_not_with_a_read() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("etc/a.conf"), "a");
        write(&t.upper.join("srv/out.txt"), "one");
        write(&t.upper.join("srv/keep.txt"), "kept");
        let first = t.stamp();
        assert_eq!(first.len(), 64);
        fs::read(t.upper.join("srv/out.txt")).unwrap();
        assert_eq!(t.stamp(), first, "a read changes nothing");
        // The same size, its modification time put back: the change time still moves.
        let out = t.upper.join("srv/out.txt");
        let modified = fs::metadata(&out).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&out, "two").unwrap();
        fs::File::options()
            .write(true)
            .open(&out)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let second = t.stamp();
        assert_ne!(second, first, "a rewrite of the same size");
        fs::remove_file(t.upper.join("srv/keep.txt")).unwrap();
        let third = t.stamp();
        assert_ne!(third, second, "a file gone");
        whiteout(&t.upper.join("etc/a.conf"));
        assert_ne!(t.stamp(), third, "a file of the image deleted");
    }

    #[test]
    fn a_new_file_in_a_new_folder_is_added_with_its_folder() {
        let t = Tree::new(1);
        fs::create_dir(t.lowers[0].join("etc")).unwrap();
        write(&t.upper.join("srv/run/out.txt"), "x");
        assert_eq!(
            t.changes(),
            list(&[("/srv", A), ("/srv/run", A), ("/srv/run/out.txt", A)])
        );
    }

    #[test]
    fn a_copy_up_with_no_change_is_silent_and_a_change_is_told_with_its_folders() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("etc/ssl/a.conf"), "a");
        write(&t.lowers[0].join("etc/ssl/b.conf"), "b");
        copy_up(
            &t.lowers[0].join("etc/ssl/a.conf"),
            &t.upper.join("etc/ssl/a.conf"),
        );
        assert_eq!(t.changes(), list(&[]));
        write(&t.upper.join("etc/ssl/b.conf"), "bigger");
        assert_eq!(
            t.changes(),
            list(&[("/etc", M), ("/etc/ssl", M), ("/etc/ssl/b.conf", M)])
        );
    }

    #[test]
    fn a_new_mode_or_capability_is_a_change_a_new_folder_mtime_is_not() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("bin/ping"), "elf");
        write(&t.lowers[0].join("bin/ls"), "elf");
        fs::create_dir(t.lowers[0].join("opt")).unwrap();
        copy_up(&t.lowers[0].join("bin/ping"), &t.upper.join("bin/ping"));
        copy_up(&t.lowers[0].join("bin/ls"), &t.upper.join("bin/ls"));
        set_mode(&t.upper.join("bin/ls"), 0o700);
        // VFS_CAP_REVISION_2, effective; permitted CAP_NET_RAW.
        let cap_net_raw = [
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        set_xattr(&t.upper.join("bin/ping"), CAPABILITY, &cap_net_raw);
        fs::create_dir(t.upper.join("opt")).unwrap();
        assert_eq!(
            t.changes(),
            list(&[("/bin", M), ("/bin/ls", M), ("/bin/ping", M)])
        );
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_whiteout_deletes_only_what_exists_below_and_is_never_listed() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("etc/issue"), "Debian");
        whiteout(&t.upper.join("etc/issue"));
        whiteout(&t.upper.join("etc/never-was"));
        assert_eq!(t.changes(), list(&[("/etc", M), ("/etc/issue", D)]));
    }

    #[test]
    fn a_deleted_folder_is_one_deletion() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("usr/share/doc/bash/README"), "r");
        whiteout(&t.upper.join("usr/share/doc"));
        assert_eq!(
            t.changes(),
            list(&[("/usr", M), ("/usr/share", M), ("/usr/share/doc", D)])
        );
    }

    #[test]
    fn an_opaque_folder_deletes_what_it_does_not_hold_below_a_new_one_nothing() {
        let t = Tree::new(2);
        write(&t.lowers[0].join("data/kept"), "k");
        write(&t.lowers[1].join("data/gone"), "g");
        write(&t.lowers[1].join("data/sub/deep"), "d");
        copy_up(&t.lowers[0].join("data/kept"), &t.upper.join("data/kept"));
        write(&t.upper.join("data/new"), "n");
        // The new view does not merge data/sub from below: it is the upper one alone.
        fs::create_dir(t.upper.join("data/sub")).unwrap();
        set_xattr(&t.upper.join("data"), "trusted.overlay.opaque", b"y");
        fs::create_dir(t.upper.join("fresh")).unwrap();
        set_xattr(&t.upper.join("fresh"), "trusted.overlay.opaque", b"y");
        assert_eq!(
            t.changes(),
            list(&[
                ("/data", M),
                ("/data/gone", D),
                ("/data/new", A),
                ("/data/sub", M),
                ("/data/sub/deep", D),
                ("/fresh", A),
            ])
        );
    }

    #[test]
    fn the_value_x_is_not_opaque() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("data/kept"), "k");
        fs::create_dir(t.upper.join("data")).unwrap();
        set_xattr(&t.upper.join("data"), "trusted.overlay.opaque", b"x");
        assert_eq!(t.changes(), list(&[]));
    }

    #[test]
    fn the_lower_view_stops_at_a_whiteout_an_opaque_folder_and_a_file() {
        let t = Tree::new(3);
        // lower0 deletes a, makes b opaque, turns c into a file.
        write(&t.lowers[2].join("a"), "1");
        write(&t.lowers[2].join("b/old"), "1");
        write(&t.lowers[2].join("c/old"), "1");
        whiteout(&t.lowers[0].join("a"));
        write(&t.lowers[1].join("b/mid"), "1");
        set_xattr(&t.lowers[1].join("b"), "trusted.overlay.opaque", b"y");
        fs::create_dir(t.lowers[0].join("b")).unwrap();
        write(&t.lowers[0].join("c"), "file");
        // The container writes a (new: deleted below) and empties b and c.
        write(&t.upper.join("a"), "1");
        fs::create_dir(t.upper.join("b")).unwrap();
        set_xattr(&t.upper.join("b"), "trusted.overlay.opaque", b"y");
        whiteout(&t.upper.join("c"));
        assert_eq!(
            t.changes(),
            list(&[("/a", A), ("/b", M), ("/b/mid", D), ("/c", D)])
        );
    }

    #[test]
    fn fuse_overlayfs_marks_by_file() {
        let t = Tree::new(2);
        write(&t.lowers[1].join("etc/motd"), "m");
        write(&t.lowers[1].join("etc/hidden"), "h");
        write(&t.lowers[0].join("etc/.wh.hidden"), "");
        write(&t.lowers[1].join("srv/old"), "o");
        write(&t.upper.join("etc/.wh.motd"), "");
        write(&t.upper.join("etc/.wh.hidden"), "");
        write(&t.upper.join("srv/.wh..wh..opq"), "");
        write(&t.upper.join("srv/new"), "n");
        assert_eq!(
            t.walk(Dialect::Fuse).unwrap(),
            list(&[
                ("/etc", M),
                ("/etc/motd", D),
                ("/srv", M),
                ("/srv/new", A),
                ("/srv/old", D),
            ])
        );
        // The kernel's overlay has no such marks: they are files like any other.
        let kernel = t.changes();
        assert!(kernel.contains(&("/etc/.wh.motd".into(), A)), "{kernel:?}");
        assert!(kernel.iter().all(|(_, kind)| *kind != D), "{kernel:?}");
    }

    #[test]
    fn names_are_bytes_and_links_are_not_followed() {
        let t = Tree::new(1);
        fs::create_dir(t.lowers[0].join("tmp")).unwrap();
        let odd = OsStr::from_bytes(b"caf\xe9\nx");
        write(&t.upper.join("tmp").join(odd), "x");
        symlink("/etc", t.upper.join("tmp/link")).unwrap();
        assert_eq!(
            t.changes(),
            list(&[("/tmp", M), ("/tmp/caf\\xe9\\nx", A), ("/tmp/link", A)])
        );
    }

    #[test]
    fn a_renamed_folder_sends_the_caller_to_the_engine() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("old/f"), "f");
        fs::create_dir(t.upper.join("new")).unwrap();
        set_xattr(&t.upper.join("new"), "trusted.overlay.redirect", b"/old");
        let err = t.walk(Dialect::Kernel).unwrap_err();
        assert!(err.0.contains("trusted.overlay.redirect"), "{err:?}");
    }

    #[test]
    fn the_owner_an_unprivileged_driver_keeps_wins() {
        let t = Tree::new(1);
        write(&t.lowers[0].join("f"), "f");
        copy_up(&t.lowers[0].join("f"), &t.upper.join("f"));
        set_xattr(
            &t.upper.join("f"),
            "user.fuseoverlayfs.override_stat",
            b"0:0:644",
        );
        assert_eq!(t.changes(), list(&[]));
        set_xattr(
            &t.upper.join("f"),
            "user.fuseoverlayfs.override_stat",
            b"1000:1000:644",
        );
        assert_eq!(t.changes(), list(&[("/f", M)]));
        assert_eq!(
            Owner::parse(b"1000:100:0755:file"),
            Some(Owner {
                uid: 1000,
                gid: 100,
                mode: 0o755
            })
        );
        assert_eq!(Owner::parse(b"nobody"), None);
    }

    #[test]
    fn a_deep_path_holds_few_descriptors() {
        let t = Tree::new(1);
        let mut deep = t.upper.clone();
        for _ in 0..3000 {
            deep.push("d");
        }
        // create_dir_all would hit PATH_MAX; go down one level at a time.
        let mut fd = rustix::fs::openat(CWD, &t.upper, dir_flags(), Mode::empty()).unwrap();
        for _ in 0..3000 {
            rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
            fd = rustix::fs::openat(&fd, "d", dir_flags(), Mode::empty()).unwrap();
        }
        let mut count = 0;
        let lowers: Vec<&Path> = t.lowers.iter().map(PathBuf::as_path).collect();
        walk(
            &Layers {
                upper: &t.upper,
                lowers: &lowers,
                dialect: Dialect::Kernel,
            },
            &mut |_, kind| {
                assert_eq!(kind, A);
                count += 1;
            },
            None,
        )
        .unwrap();
        assert_eq!(count, 3000);
    }

    #[test]
    fn same_time_is_the_engines() {
        assert!(same_time((5, 7), (5, 7)));
        assert!(same_time((5, 0), (5, 7)));
        assert!(!same_time((5, 1), (5, 7)));
        assert!(!same_time((6, 7), (5, 7)));
    }
}
