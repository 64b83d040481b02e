//! Unpacking an archive the engine sent into a folder on the host, safely: what a
//! rescue copies out of a container and what a deploy seeds a new workspace with.
//!
//! The container, or a neighbour container of the same project, can write the
//! workspace while this runs, and swap any folder in it for a symbolic link. So nothing
//! here resolves a path twice: the target folder is opened once, and every folder,
//! file and link below it is made with `mkdirat`/`openat` relative to an open
//! directory, never following a link (`O_NOFOLLOW`, `O_EXCL`). Whatever is swapped,
//! berth writes only beneath the folder it opened. When root runs it (`berth reap`),
//! each thing is handed to the folder's owner through its own descriptor the moment it
//! exists, so a copy that stops half-way leaves nothing the owner cannot delete. The
//! folder is written under a name that says it is partial and renamed when complete.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, Gid, Mode, OFlags, RenameFlags, Uid, CWD};
use rustix::io::Errno;

use crate::names::shown;

/// Why an entry could not be written.
#[derive(Debug)]
pub struct Failure {
    /// The path in the container, as [`shown`] prints it.
    pub path: String,
    pub reason: String,
}

impl Failure {
    fn at(path: &[u8], err: impl Into<io::Error>) -> Self {
        Self {
            path: shown(path),
            reason: crate::error::io_reason(&err.into()),
        }
    }
}

/// The mode a copied file or directory gets: its own, without set-id and sticky bits,
/// never writable by group or others (a `/tmp` of mode 1777 would otherwise let every
/// user of the server write into the workspace), and through the user's umask.
pub fn safe_mode(mode: u32, umask: u32) -> u32 {
    mode & 0o755 & !umask
}

/// The process's umask, from `/proc/self/status` (Linux 4.7 and later), which reads it
/// without changing it; 022 where that cannot be read.
pub fn process_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

/// Who what a rescue writes belongs to, when that is not who runs it: the workspace's
/// owner, when root rescues into someone's workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// The owner of the open workspace `dir`, when this process is root and it is not.
    pub fn of(dir: impl AsFd) -> io::Result<Option<Self>> {
        let stat = rustix::fs::fstat(dir)?;
        let root = crate::os::is_root();
        Ok((root && stat.st_uid != 0).then_some(Self {
            uid: stat.st_uid,
            gid: stat.st_gid,
        }))
    }

    /// Hands the open `fd` over.
    pub fn take(owner: Option<Self>, fd: impl AsFd) -> io::Result<()> {
        match owner {
            Some(o) => Ok(rustix::fs::fchown(
                fd,
                Some(Uid::from_raw(o.uid)),
                Some(Gid::from_raw(o.gid)),
            )?),
            None => Ok(()),
        }
    }
}

/// Opens directory `name` in `dir`, never through a symbolic link.
pub fn open_dir(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|errno| match errno {
        Errno::LOOP | Errno::NOTDIR => io::Error::other(format!(
            "{} is not a folder (a symbolic link or a file took its place)",
            shown(name.as_bytes())
        )),
        errno => errno.into(),
    })
}

/// Makes directory `name` in `dir` (mode 0700, handed to `owner`) unless one is there,
/// and opens it, never through a symbolic link.
pub fn make_dir(dir: impl AsFd, name: &OsStr, owner: Option<Owner>) -> io::Result<OwnedFd> {
    let made = match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(errno) => return Err(errno.into()),
    };
    let fd = open_dir(&dir, name)?;
    if made {
        Owner::take(owner, &fd)?;
    }
    Ok(fd)
}

/// A folder being written, held open: `partial` in `parent` while it is written,
/// its final name once [`Folder::complete`] renames it.
#[derive(Debug)]
pub struct Folder {
    /// The folder it is made in, open.
    parent: OwnedFd,
    parent_path: PathBuf,
    /// The folder itself, open.
    root: OwnedFd,
    name: String,
    /// Whether another name may be taken when `name` is (`<name>-2`, …): a rescue's
    /// time stamp may, a workspace's name may not.
    numbered: bool,
    owner: Option<Owner>,
}

impl Folder {
    /// Opens `<workspace>/<inner>` (making it, private to the owner but readable),
    /// never through a symbolic link, and makes `<stamp>.partial` in it:
    /// `<stamp>-2.partial`, … when `<stamp>` is taken.
    pub fn numbered(workspace: &Path, inner: &str, stamp: &str) -> io::Result<Self> {
        let workspace_fd = open_path(workspace)?;
        let owner = Owner::of(&workspace_fd)?;
        let parent = make_dir(&workspace_fd, OsStr::new(inner), owner)?;
        rustix::fs::fchmod(&parent, Mode::from_raw_mode(0o755)).ok();
        let parent_path = workspace.join(inner);
        for n in 1.. {
            let name = numbered(stamp, n);
            if rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                continue;
            }
            match Self::make(&parent, &parent_path, &name, true, owner) {
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
                Ok(root) => {
                    return Ok(Self {
                        parent,
                        parent_path,
                        root,
                        name,
                        numbered: true,
                        owner,
                    })
                }
            }
        }
        unreachable!("an unbounded range always yields")
    }

    /// Where [`Folder::exact`] writes `parent/<name>` until it is complete.
    pub fn exact_partial(parent: &Path, name: &str) -> PathBuf {
        parent.join(partial(name, false))
    }

    /// Makes `.<name>.partial` in `parent`, to become `parent/<name>`, which must not
    /// exist then: what is there is never written into. Owned by `parent`'s owner.
    pub fn exact(parent_path: &Path, name: &str) -> io::Result<Self> {
        let parent = open_path(parent_path)?;
        let owner = Owner::of(&parent)?;
        let root = Self::make(&parent, parent_path, name, false, owner)?;
        Ok(Self {
            parent,
            parent_path: parent_path.to_path_buf(),
            root,
            name: name.to_string(),
            numbered: false,
            owner,
        })
    }

    fn make(
        parent: &OwnedFd,
        parent_path: &Path,
        name: &str,
        numbered: bool,
        owner: Option<Owner>,
    ) -> io::Result<OwnedFd> {
        let partial = partial(name, numbered);
        rustix::fs::mkdirat(parent, partial.as_str(), Mode::from_raw_mode(0o700)).map_err(
            |errno| match errno {
                Errno::EXIST if !numbered => io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists: an earlier copy that did not finish; remove it",
                        parent_path.join(&partial).display()
                    ),
                ),
                errno => errno.into(),
            },
        )?;
        let root = open_dir(parent, OsStr::new(&partial))?;
        Owner::take(owner, &root)?;
        Ok(root)
    }

    /// Where the folder is while it is written, and where a failed copy stays.
    pub fn partial_path(&self) -> PathBuf {
        self.parent_path.join(partial(&self.name, self.numbered))
    }

    /// Renames the partial folder to its final name (or, where numbered, the next free
    /// `<name>-N` should something have taken it meanwhile) and returns where it is.
    pub fn complete(self) -> io::Result<PathBuf> {
        let from = partial(&self.name, self.numbered);
        for n in 1.. {
            let name = numbered(&self.name, n);
            let renamed = rustix::fs::renameat_with(
                &self.parent,
                from.as_str(),
                &self.parent,
                name.as_str(),
                RenameFlags::NOREPLACE,
            );
            match renamed {
                Ok(()) => {
                    // The rename itself, on disk.
                    rustix::fs::fsync(&self.parent)?;
                    return Ok(self.parent_path.join(name));
                }
                Err(Errno::EXIST) if self.numbered => continue,
                Err(Errno::EXIST) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "{} appeared meanwhile; it is left as it is",
                            self.parent_path.join(name).display()
                        ),
                    ))
                }
                Err(errno) => return Err(errno.into()),
            }
        }
        unreachable!("an unbounded range always yields")
    }
}

/// What a folder is called while it is written: a rescue's `<stamp>.partial` shows
/// among the rescues; a workspace's `.<name>.partial` is hidden, and no project's name.
fn partial(name: &str, numbered: bool) -> String {
    if numbered {
        format!("{name}.partial")
    } else {
        format!(".{name}.partial")
    }
}

/// `name`, then `name-2`, `name-3`, ….
fn numbered(name: &str, n: u32) -> String {
    if n == 1 {
        name.to_string()
    } else {
        format!("{name}-{n}")
    }
}

/// Opens the folder at `path`, which may be reached through links: the user's own.
fn open_path(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(CWD, path, flags, Mode::empty())?)
}

/// A file in the layer that is not a file anyone wrote data into: a FIFO or a device
/// node. A rescue lists it and does not copy it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Special {
    /// As [`shown`] prints it.
    pub path: String,
    pub kind: &'static str,
}

/// What an entry is, as [`Extractor::put`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    /// A symbolic link to this target, written as it is.
    Symlink(Vec<u8>),
    /// A hard link to the file at this container path, written before.
    Link(Vec<u8>),
    Fifo,
    Device,
    Other,
}

/// Which entries an [`Extractor`] leaves out, by their path in the container.
pub type Skip = Box<dyn Fn(&[u8]) -> bool + Send>;

/// Unpacks archives into one [`Folder`], keeping count.
pub struct Extractor {
    folder: Folder,
    /// The container path the folder stands for: `""` for a rescue, which keeps whole
    /// container paths below it; `/workspace` for a workspace seeded from the image.
    at: Vec<u8>,
    /// Entries to leave out.
    skip: Option<Skip>,
    /// The user's umask, which every mode goes through.
    umask: u32,
    /// Modes as they come (less set-id and sticky bits), not through the umask.
    keep_modes: bool,
    /// The folders that hold the last entry, below the folder, each open.
    chain: Vec<(Vec<u8>, OwnedFd)>,
    /// Modes and times of directory entries (by their path in the container), applied
    /// last so that a read-only directory can still be filled.
    dir_meta: Vec<(Vec<u8>, u32, SystemTime)>,
    /// Every path in the container that was copied or made here.
    seen: HashSet<Vec<u8>>,
    /// Paths of regular files written here, which a hard link may name.
    written: HashSet<Vec<u8>>,
    /// Hard links whose first name was not copied (it was left out, or in another
    /// archive): each is to be fetched on its own, as the file it is.
    pub pending: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    pub special: Vec<Special>,
    /// One buffer for every file's contents.
    buffer: Vec<u8>,
}

impl Extractor {
    /// Unpacks whole container paths into `folder`, through the process's umask.
    pub fn new(folder: Folder) -> Self {
        Self::with_umask(folder, process_umask())
    }

    /// [`Extractor::new`], with modes masked by `umask` instead of the process's.
    pub fn with_umask(folder: Folder, umask: u32) -> Self {
        Self {
            folder,
            at: Vec::new(),
            skip: None,
            umask,
            keep_modes: false,
            chain: Vec::new(),
            dir_meta: Vec::new(),
            seen: HashSet::new(),
            written: HashSet::new(),
            pending: Vec::new(),
            files: 0,
            bytes: 0,
            special: Vec::new(),
            buffer: vec![0; 1 << 20],
        }
    }

    /// Makes the folder stand for container path `at`: what is below it lands
    /// directly in the folder, and nothing outside it is written.
    pub fn standing_for(mut self, at: &str) -> Self {
        self.at = at.trim_end_matches('/').as_bytes().to_vec();
        self
    }

    /// Keeps each entry's mode as it comes, less set-id and sticky bits: a restore's
    /// files are the user's own, as they were.
    pub fn keeping_modes(mut self) -> Self {
        self.keep_modes = true;
        self
    }

    /// Leaves out the entries `skip` says, by their path in the container.
    pub fn skipping(mut self, skip: Skip) -> Self {
        self.skip = Some(skip);
        self
    }

    /// Where the folder is written, and where a failed copy stays.
    pub fn partial_path(&self) -> PathBuf {
        self.folder.partial_path()
    }

    /// Every path in the container that was copied, made or listed as special.
    pub fn seen(&self) -> &HashSet<Vec<u8>> {
        &self.seen
    }

    /// Unpacks the archive of container path `root`, keeping the entries `wants`
    /// (by their path in the container). The engine names its entries after the root's
    /// last component (`/opt/work` → `work`, `work/a.csv`).
    pub fn extract(
        &mut self,
        root: &str,
        archive: impl Read,
        wants: impl Fn(&[u8]) -> bool,
    ) -> Result<(), Failure> {
        let base = root.rsplit_once('/').map_or("", |(parent, _)| parent);
        // The engine's stream comes buffered ([`crate::engine::BlockingReader`]).
        let mut archive = tar::Archive::new(archive);
        let entries = archive
            .entries()
            .map_err(|err| Failure::at(root.as_bytes(), err))?;
        for entry in entries {
            let mut entry = entry.map_err(|err| Failure::at(root.as_bytes(), err))?;
            let name = entry.path_bytes().into_owned();
            let outside = || Failure {
                path: format!("{base}/{}", shown(&name)),
                reason: "the archive names a path outside its folder".into(),
            };
            let Some(path) = in_container(base, &name) else {
                return Err(outside());
            };
            if self.local(&path).is_none() {
                return Err(outside());
            }
            if !wants(&path) || self.skip.as_ref().is_some_and(|skip| skip(&path)) {
                continue;
            }
            let header = entry.header();
            let (mode, mtime) = (header.mode().unwrap_or(0o644), header.mtime().unwrap_or(0));
            let link = || entry.link_name_bytes().unwrap_or_default().into_owned();
            let kind = match header.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Symlink => Kind::Symlink(link()),
                // A name outside the folder is no file written here: fetched alone.
                tar::EntryType::Link => Kind::Link(in_container(base, &link()).unwrap_or_default()),
                tar::EntryType::Fifo => Kind::Fifo,
                tar::EntryType::Char | tar::EntryType::Block => Kind::Device,
                _ => Kind::Other,
            };
            self.put(path, kind, mode, mtime, &mut entry)?;
        }
        Ok(())
    }

    /// [`Extractor::local`], owned, or the failure of a path outside the folder.
    fn below(&self, path: &[u8]) -> Result<Vec<u8>, Failure> {
        self.local(path).map(<[u8]>::to_vec).ok_or_else(|| Failure {
            path: shown(path),
            reason: "a path outside the folder".into(),
        })
    }

    /// Container path `path` below the folder: `None` where it is not below what the
    /// folder stands for.
    fn local<'a>(&self, path: &'a [u8]) -> Option<&'a [u8]> {
        let rest = path.strip_prefix(self.at.as_slice())?;
        (rest.is_empty() || rest.starts_with(b"/")).then_some(rest)
    }

    /// Writes one entry at container path `path`, with its contents from `contents`.
    pub fn put(
        &mut self,
        path: Vec<u8>,
        kind: Kind,
        mode: u32,
        mtime: u64,
        contents: &mut dyn Read,
    ) -> Result<(), Failure> {
        let mode = match self.keep_modes {
            true => mode & 0o777,
            false => safe_mode(mode, self.umask),
        };
        let mtime = UNIX_EPOCH + Duration::from_secs(mtime);
        let fail = |err: io::Error| Failure::at(&path, err);
        let local = self.below(&path)?;
        let (folders, name) = split(&local);
        let owner = self.folder.owner;
        match kind {
            Kind::Dir => {
                self.enter(&local).map_err(fail)?;
                self.dir_meta.push((local.clone(), mode, mtime));
            }
            _ if name.is_empty() => {
                return Err(Failure {
                    path: shown(&path),
                    reason: "not a folder, where the copy needs one".into(),
                })
            }
            Kind::Symlink(link) => {
                let dir = self.enter(folders).map_err(fail)?;
                rustix::fs::symlinkat(OsStr::from_bytes(&link), dir, name)
                    .map_err(|e| fail(e.into()))?;
                if let Some(o) = owner {
                    // Whatever is at the name now, it is not followed.
                    rustix::fs::chownat(
                        dir,
                        name,
                        Some(Uid::from_raw(o.uid)),
                        Some(Gid::from_raw(o.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| fail(e.into()))?;
                }
                self.files += 1;
            }
            Kind::Link(target) => {
                let source = Some(target).filter(|s| self.written.contains(s));
                match source.as_deref().and_then(|s| self.local(s)) {
                    Some(source) => {
                        let (source_folders, source_name) = split(source);
                        let from = self.open(source_folders).map_err(fail)?;
                        let dir = self.enter(folders).map_err(fail)?;
                        rustix::fs::linkat(&from, source_name, dir, name, AtFlags::empty())
                            .map_err(|e| fail(e.into()))?;
                        self.written.insert(path.clone());
                        self.files += 1;
                    }
                    None => match String::from_utf8(path.clone()) {
                        // Its first name was left out: fetch it on its own, whole.
                        Ok(text) => {
                            self.pending.push(text);
                            return Ok(());
                        }
                        Err(_) => {
                            return Err(Failure {
                                path: shown(&path),
                                reason: "a hard link whose first name was not copied, \
                                         and whose name the archive endpoint cannot take"
                                    .into(),
                            })
                        }
                    },
                }
            }
            Kind::File => {
                let dir = self.enter(folders).map_err(fail)?;
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))
                    .map_err(|e| fail(e.into()))?;
                Owner::take(owner, &fd).map_err(fail)?;
                let mut file = File::from(fd);
                self.bytes += copy(contents, &mut file, &mut self.buffer).map_err(fail)?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| fail(e.into()))?;
                file.set_modified(mtime).map_err(fail)?;
                self.written.insert(path.clone());
                self.files += 1;
            }
            Kind::Fifo => self.special.push(Special {
                path: shown(&path),
                kind: "FIFO",
            }),
            Kind::Device => self.special.push(Special {
                path: shown(&path),
                kind: "device node",
            }),
            Kind::Other => self.special.push(Special {
                path: shown(&path),
                kind: "unknown kind of entry",
            }),
        }
        self.seen.insert(path);
        Ok(())
    }

    /// Writes container path `path` as a hard link to `from`, a file or link of an
    /// earlier copy that holds what the container holds there (a snapshot's unchanged
    /// file): counted as copied, `bytes` long. `from` itself is not followed.
    pub fn link_from(&mut self, path: Vec<u8>, from: &Path, bytes: u64) -> Result<(), Failure> {
        let fail = |err: io::Error| Failure::at(&path, err);
        let local = self.below(&path)?;
        let (folders, name) = split(&local);
        let dir = self.enter(folders).map_err(fail)?;
        rustix::fs::linkat(CWD, from, dir, name, AtFlags::empty()).map_err(|e| fail(e.into()))?;
        self.written.insert(path.clone());
        self.files += 1;
        self.bytes += bytes;
        self.seen.insert(path);
        Ok(())
    }

    /// Makes and opens the folders of `dir` (below the folder), from the open folders
    /// of the last entry where they are the same.
    fn enter(&mut self, dir: &[u8]) -> io::Result<&OwnedFd> {
        let parts: Vec<&[u8]> = dir
            .split(|&b| b == b'/')
            .filter(|p| !p.is_empty())
            .collect();
        let same = self
            .chain
            .iter()
            .zip(&parts)
            .take_while(|((held, _), part)| held == *part)
            .count();
        self.chain.truncate(same);
        for part in &parts[same..] {
            let fd = {
                let parent = self.chain.last().map_or(&self.folder.root, |(_, fd)| fd);
                make_dir(parent, OsStr::from_bytes(part), self.folder.owner)?
            };
            self.chain.push((part.to_vec(), fd));
        }
        Ok(self.chain.last().map_or(&self.folder.root, |(_, fd)| fd))
    }

    /// Opens the folders of `dir` (below the folder), making none.
    pub fn open(&self, dir: &[u8]) -> io::Result<OwnedFd> {
        let mut fd = rustix::io::dup(&self.folder.root)?;
        for part in dir.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            fd = open_dir(&fd, OsStr::from_bytes(part))?;
        }
        Ok(fd)
    }

    /// Applies the directories' own modes and times, deepest first, syncs, and renames
    /// the folder to its final name. Returns where it is.
    pub fn complete(mut self) -> Result<PathBuf, Failure> {
        self.chain.clear();
        self.dir_meta.sort_by_key(|(path, _, _)| {
            std::cmp::Reverse(path.iter().filter(|&&b| b == b'/').count())
        });
        for (dir, mode, mtime) in std::mem::take(&mut self.dir_meta) {
            let file = File::from(self.open(&dir).map_err(|err| Failure::at(&dir, err))?);
            file.set_modified(mtime)
                .and_then(|()| Ok(rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))?))
                .map_err(|err| Failure::at(&dir, err))?;
        }
        let partial = self.folder.partial_path();
        // On disk before the container may go: one sync of the filesystem costs a
        // fraction of a sync per file (30,000 of them took 3.5 times `docker cp`).
        rustix::fs::syncfs(&self.folder.root).map_err(|err| Failure {
            path: partial.display().to_string(),
            reason: format!("cannot sync it: {}", crate::error::io_reason(&err.into())),
        })?;
        self.folder.complete().map_err(|err| Failure {
            path: partial.display().to_string(),
            reason: format!("cannot rename it: {}", crate::error::io_reason(&err)),
        })
    }
}

/// Copies `from` into `to` in pieces of up to the buffer's size: the engine's stream
/// comes in small chunks, and a write per chunk would cost a system call per few KiB.
fn copy(from: &mut dyn Read, to: &mut File, buffer: &mut [u8]) -> io::Result<u64> {
    use std::io::Write;
    let mut total = 0;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match from.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        to.write_all(&buffer[..filled])?;
        total += filled as u64;
    }
}

/// `base` + `/` + the archive's `name`, with `.` and trailing slashes gone; `None` for
/// anything that could leave the folder (`..`, an absolute name) or names nothing.
fn in_container(base: &str, name: &[u8]) -> Option<Vec<u8>> {
    if name.starts_with(b"/") {
        return None;
    }
    let mut out = base.as_bytes().to_vec();
    let mut any = false;
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            part => {
                out.push(b'/');
                out.extend_from_slice(part);
                any = true;
            }
        }
    }
    any.then_some(out)
}

/// `/a/b/c` → (`/a/b`, `c`).
fn split(path: &[u8]) -> (&[u8], &OsStr) {
    let at = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let name = &path[at..];
    (
        &path[..at],
        OsStr::from_bytes(name.strip_prefix(b"/").unwrap_or(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: &str = "20261121T000000Z";

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    /// A tar archive of `(name, contents)`, directories where contents is `None`.
    fn archive(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            let kind = match data {
                Some(_) => tar::EntryType::Regular,
                None => tar::EntryType::Directory,
            };
            header.set_entry_type(kind);
            header.set_mode(if data.is_some() { 0o644 } else { 0o755 });
            let data = data.unwrap_or_default();
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn safe_modes_are_never_group_or_world_writable_and_follow_the_umask() {
        assert_eq!(safe_mode(0o1777, 0o022), 0o755, "a /tmp-like directory");
        assert_eq!(safe_mode(0o666, 0o002), 0o644);
        assert_eq!(safe_mode(0o4755, 0o022), 0o755, "set-id dropped");
        assert_eq!(safe_mode(0o755, 0o077), 0o700, "a private umask");
        assert_eq!(safe_mode(0o555, 0o022), 0o555);
        let umask = process_umask();
        assert!(umask <= 0o777, "{umask:o}");
    }

    #[test]
    fn paths_that_climb_out_are_refused() {
        assert_eq!(in_container("/opt", b"a/./b/"), Some(b"/opt/a/b".to_vec()));
        assert_eq!(in_container("", b"work"), Some(b"/work".to_vec()));
        assert_eq!(in_container("/opt", b"a/../../etc"), None);
        assert_eq!(in_container("/opt", b"/etc"), None);
        assert_eq!(in_container("/opt", b"./"), None);
    }

    #[test]
    fn rescue_folders_are_partial_until_complete_and_never_collide() {
        let ws = tempfile::tempdir().unwrap();
        let a = Folder::numbered(ws.path(), ".rescued", STAMP).unwrap();
        let b = Folder::numbered(ws.path(), ".rescued", STAMP).unwrap();
        let rescued = ws.path().join(".rescued");
        assert_eq!(a.partial_path(), rescued.join(format!("{STAMP}.partial")));
        assert_eq!(b.partial_path(), rescued.join(format!("{STAMP}-2.partial")));
        assert_eq!(mode_of(&a.partial_path()), 0o700);
        assert_eq!(b.complete().unwrap(), rescued.join(format!("{STAMP}-2")));
        assert_eq!(a.complete().unwrap(), rescued.join(STAMP));
        // A stamp whose final name is taken is not used again.
        let c = Folder::numbered(ws.path(), ".rescued", STAMP).unwrap();
        assert_eq!(c.partial_path(), rescued.join(format!("{STAMP}-3.partial")));
    }

    #[test]
    fn a_rescued_folder_that_is_a_symlink_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.path().join(".rescued")).unwrap();
        let err = Folder::numbered(ws.path(), ".rescued", STAMP).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
    #[test]
    fn a_folder_standing_for_a_container_path_gets_what_is_below_it() {
        let parent = tempfile::tempdir().unwrap();
        let folder = Folder::exact(parent.path(), "proj").unwrap();
        assert_eq!(folder.partial_path(), parent.path().join(".proj.partial"));
        let mut x = Extractor::with_umask(folder, 0o022).standing_for("/workspace");
        let data = archive(&[
            ("workspace", None),
            ("workspace/README", Some(b"start here")),
            ("workspace/src", None),
            ("workspace/src/main.py", Some(b"print(1)")),
        ]);
        x.extract("/workspace", &data[..], |_| true).unwrap();
        assert_eq!((x.files, x.bytes), (2, 18));
        let done = x.complete().unwrap();
        assert_eq!(done, parent.path().join("proj"));
        assert_eq!(std::fs::read(done.join("README")).unwrap(), b"start here");
        assert_eq!(
            std::fs::read(done.join("src/main.py")).unwrap(),
            b"print(1)"
        );
        assert_eq!(mode_of(&done), 0o755, "the image's folder mode");
        assert!(!parent.path().join(".proj.partial").exists());
    }

    #[test]
    fn an_exact_folder_never_takes_a_name_that_exists() {
        let parent = tempfile::tempdir().unwrap();
        let folder = Folder::exact(parent.path(), "proj").unwrap();
        // The workspace appears meanwhile, made by someone else: it is left as it is.
        std::fs::create_dir(parent.path().join("proj")).unwrap();
        std::fs::write(parent.path().join("proj/mine"), b"theirs").unwrap();
        let err = folder.complete().unwrap_err();
        assert!(err.to_string().contains("appeared meanwhile"), "{err}");
        assert_eq!(
            std::fs::read(parent.path().join("proj/mine")).unwrap(),
            b"theirs"
        );
        // A partial folder left by a copy that did not finish is named, not reused.
        let err = Folder::exact(parent.path(), "proj").unwrap_err();
        assert!(err.to_string().contains(".proj.partial exists"), "{err}");
    }

    #[test]
    fn nothing_outside_what_the_folder_stands_for_is_written() {
        let parent = tempfile::tempdir().unwrap();
        let folder = Folder::exact(parent.path(), "proj").unwrap();
        let mut x = Extractor::with_umask(folder, 0o022).standing_for("/workspace");
        let data = archive(&[("etc", None), ("etc/passwd", Some(b"x"))]);
        let failure = x.extract("/etc", &data[..], |_| true).unwrap_err();
        assert!(failure.reason.contains("outside"), "{}", failure.reason);
        assert_eq!(x.files, 0);
    }
}
