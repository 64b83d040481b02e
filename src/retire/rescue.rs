//! `--rescue`: which paths to fetch through the Engine API's archive endpoint, and how
//! to unpack what comes back into `<workspace>/.rescued/<UTC time>/` safely.
//!
//! The container, or a neighbour container of the same project, can write the
//! workspace while a rescue runs, and swap any folder in it for a symbolic link. So
//! nothing here resolves a path twice: the rescue folder is opened once, and every
//! folder, file and link below it is made with `mkdirat`/`openat` relative to an open
//! directory, never following a link (`O_NOFOLLOW`, `O_EXCL`). Whatever is swapped,
//! berth writes only beneath the folder it opened. When root runs the rescue (`berth
//! reap`), each thing is handed to the workspace's owner through its own descriptor the
//! moment it exists, so a rescue that stops half-way leaves nothing the owner cannot
//! delete. A rescue is written as `<stamp>.partial` and renamed when complete.
//!
//! [`roots`] is pure; [`Folder`] and [`Extractor`] are blocking I/O.

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

use super::assess::{parents, Assessment, Change, Disposable};
use crate::container::ChangeKind;
use crate::names::{lossy, shown};

/// One archive call: a path in the container, and whether to take everything below it
/// (a directory the container added) or only the entry itself (a modified file or
/// directory, whose changed contents are listed, and fetched, on their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub path: String,
    pub whole: bool,
    /// A path the engine named lossily (U+FFFD for bytes that are not UTF-8), which no
    /// archive call can name: `path` is then its nearest folder with a true name,
    /// streamed whole, and only what the lossy name matches is kept (with `whole`, what
    /// lies below it too).
    pub lossy: Option<String>,
}

impl Root {
    pub fn new(path: impl Into<String>, whole: bool) -> Self {
        let path = path.into();
        let Some(at) = path.find('\u{FFFD}') else {
            return Self {
                path,
                whole,
                lossy: None,
            };
        };
        let parent = path[..at].rsplit_once('/').map_or("", |(parent, _)| parent);
        Self {
            path: if parent.is_empty() { "/" } else { parent }.to_string(),
            whole,
            lossy: Some(path),
        }
    }

    /// Whether the entry at container path `path` (its name as bytes) is wanted.
    fn wants(&self, path: &[u8]) -> bool {
        match &self.lossy {
            Some(target) => {
                let lossy = lossy(path);
                lossy == *target
                    || (self.whole
                        && lossy
                            .strip_prefix(target.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            }
            None => self.whole || path == self.path.as_bytes(),
        }
    }
}

/// The fewest archive calls that fetch every unsaved path (and the disposable ones with
/// `all`) plus each anonymous volume at `volume_targets`.
pub fn roots(assessment: &Assessment, volume_targets: &[String], all: bool) -> Vec<Root> {
    let added: HashSet<&str> = assessment.added_dirs.iter().map(String::as_str).collect();
    let mut wanted: Vec<&Change> = assessment.unsaved.iter().collect();
    if all {
        wanted.extend(&assessment.disposable);
    }
    let mut seen = HashSet::new();
    let mut roots = Vec::new();
    for change in wanted {
        let path = &*change.path;
        // The highest directory the container added above this path holds all of it.
        let top = parents(path).take_while(|p| added.contains(p)).last();
        let root = match top {
            Some(dir) => Root::new(dir, true),
            None => Root::new(path, change.kind == ChangeKind::Added),
        };
        if seen.insert(root.lossy.clone().unwrap_or_else(|| root.path.clone())) {
            roots.push(root);
        }
    }
    for target in volume_targets {
        if seen.insert(target.clone()) {
            roots.push(Root::new(target.clone(), true));
        }
    }
    roots.sort_by(|a, b| a.path.cmp(&b.path));
    roots
}

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

/// The mode a rescued file or directory gets: its own, without set-id and sticky bits,
/// never writable by group or others (a `/tmp` of mode 1777 would otherwise let every
/// user of the server write into the workspace), and through the user's umask.
pub fn rescued_mode(mode: u32, umask: u32) -> u32 {
    mode & 0o755 & !umask
}

/// The process's umask, from `/proc/self/status` (Linux 4.7 and later), which reads it
/// without changing it; 022 where that cannot be read.
fn process_umask() -> u32 {
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
    pub(super) fn of(dir: impl AsFd) -> io::Result<Option<Self>> {
        let stat = rustix::fs::fstat(dir)?;
        let root = crate::os::is_root();
        Ok((root && stat.st_uid != 0).then_some(Self {
            uid: stat.st_uid,
            gid: stat.st_gid,
        }))
    }

    /// Hands the open `fd` over.
    pub(super) fn take(owner: Option<Self>, fd: impl AsFd) -> io::Result<()> {
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
fn open_dir(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
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
pub(super) fn make_dir(dir: impl AsFd, name: &OsStr, owner: Option<Owner>) -> io::Result<OwnedFd> {
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

/// A rescue folder, held open: `<workspace>/.rescued/<name>.partial/` while it is
/// written, `<name>` once [`Folder::complete`] renames it.
#[derive(Debug)]
pub struct Folder {
    /// `<workspace>/.rescued`, open.
    parent: OwnedFd,
    parent_path: PathBuf,
    /// `<name>.partial`, open.
    root: OwnedFd,
    name: String,
    owner: Option<Owner>,
}

/// What a rescue folder is called while it is written.
fn partial(name: &str) -> String {
    format!("{name}.partial")
}

impl Folder {
    /// Opens `<workspace>/.rescued` (making it), never through a symbolic link, and
    /// makes `<stamp>.partial` in it: `<stamp>-2.partial`, … when `<stamp>` is taken.
    pub fn create(workspace: &Path, stamp: &str) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let workspace_fd = rustix::fs::openat(CWD, workspace, flags, Mode::empty())?;
        let owner = Owner::of(&workspace_fd)?;
        let parent = make_dir(&workspace_fd, OsStr::new(".rescued"), owner)?;
        rustix::fs::fchmod(&parent, Mode::from_raw_mode(0o755)).ok();
        for n in 1.. {
            let name = if n == 1 {
                stamp.to_string()
            } else {
                format!("{stamp}-{n}")
            };
            if rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                continue;
            }
            let made = rustix::fs::mkdirat(&parent, partial(&name), Mode::from_raw_mode(0o700));
            match made {
                Ok(()) => {}
                Err(Errno::EXIST) => continue,
                Err(errno) => return Err(errno.into()),
            }
            let root = open_dir(&parent, OsStr::new(&partial(&name)))?;
            Owner::take(owner, &root)?;
            return Ok(Self {
                parent,
                parent_path: workspace.join(".rescued"),
                root,
                name,
                owner,
            });
        }
        unreachable!("an unbounded range always yields")
    }

    /// Where the rescue is while it is written, and where a failed one stays.
    pub fn partial_path(&self) -> PathBuf {
        self.parent_path.join(partial(&self.name))
    }

    /// Renames `<name>.partial` to `<name>` (or the next free `<stamp>-N` should
    /// something have taken it meanwhile) and returns where the rescue now is.
    pub fn complete(self) -> io::Result<PathBuf> {
        let from = partial(&self.name);
        let stamp = self.name.clone();
        for n in 1.. {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
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
                Err(Errno::EXIST) => continue,
                Err(errno) => return Err(errno.into()),
            }
        }
        unreachable!("an unbounded range always yields")
    }
}

/// A file in the layer that is not a file anyone wrote data into: a FIFO or a device
/// node. A rescue lists it and does not copy it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Special {
    /// As [`shown`] prints it.
    pub path: String,
    pub kind: &'static str,
}

/// Unpacks archives into one rescue [`Folder`], keeping count.
pub struct Extractor {
    folder: Folder,
    /// Entries to leave out (`None` with `--rescue-all`).
    skip: Option<Disposable>,
    /// The user's umask, which every rescued mode goes through.
    umask: u32,
    /// The folders that hold the last entry, below the rescue folder, each open.
    chain: Vec<(Vec<u8>, OwnedFd)>,
    /// Modes and times of directory entries (by their path in the container), applied
    /// last so that a read-only directory can still be filled.
    dir_meta: Vec<(Vec<u8>, u32, SystemTime)>,
    /// Every path in the container that was copied or made here.
    seen: HashSet<Vec<u8>>,
    /// Paths of regular files written here, which a hard link may name.
    written: HashSet<Vec<u8>>,
    /// Hard links whose first name was not copied (it was disposable, or in another
    /// archive): each is fetched on its own, as the file it is.
    pub pending: Vec<String>,
    pub files: u64,
    pub bytes: u64,
    pub special: Vec<Special>,
    /// One buffer for every file's contents.
    buffer: Vec<u8>,
}

/// Copies `from` into `to` in pieces of up to the buffer's size: the engine's stream
/// comes in small chunks, and a write per chunk would cost a system call per few KiB.
fn copy(from: &mut impl Read, to: &mut File, buffer: &mut [u8]) -> io::Result<u64> {
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

impl Extractor {
    pub fn new(folder: Folder, skip: Option<Disposable>) -> Self {
        Self::with_umask(folder, skip, process_umask())
    }

    /// [`Extractor::new`], with modes masked by `umask` instead of the process's.
    pub fn with_umask(folder: Folder, skip: Option<Disposable>, umask: u32) -> Self {
        Self {
            folder,
            skip,
            umask,
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

    /// Where the rescue is written, and where a failed one stays.
    pub fn partial_path(&self) -> PathBuf {
        self.folder.partial_path()
    }

    /// Unpacks the archive of `root`. The engine names its entries after the root's
    /// last component (`/opt/work` → `work`, `work/a.csv`).
    pub fn extract(&mut self, root: &Root, archive: impl Read) -> Result<(), Failure> {
        let base = root.path.rsplit_once('/').map_or("", |(parent, _)| parent);
        // The engine's stream comes buffered ([`crate::engine::BlockingReader`]).
        let mut archive = tar::Archive::new(archive);
        let entries = archive
            .entries()
            .map_err(|err| Failure::at(root.path.as_bytes(), err))?;
        for entry in entries {
            let mut entry = entry.map_err(|err| Failure::at(root.path.as_bytes(), err))?;
            let name = entry.path_bytes().into_owned();
            let Some(path) = in_container(base, &name) else {
                return Err(Failure {
                    path: format!("{base}/{}", shown(&name)),
                    reason: "the archive names a path outside its folder".into(),
                });
            };
            if !root.wants(&path) {
                continue;
            }
            if self.skip.as_ref().is_some_and(|d| d.matches(&lossy(&path))) {
                continue;
            }
            self.write(&mut entry, base, path)?;
        }
        Ok(())
    }

    fn write(
        &mut self,
        entry: &mut tar::Entry<impl Read>,
        base: &str,
        path: Vec<u8>,
    ) -> Result<(), Failure> {
        let header = entry.header();
        let mode = rescued_mode(header.mode().unwrap_or(0o644), self.umask);
        let mtime = UNIX_EPOCH + Duration::from_secs(header.mtime().unwrap_or(0));
        let kind = header.entry_type();
        let fail = |err: io::Error| Failure::at(&path, err);
        let (folders, name) = split(&path);
        let owner = self.folder.owner;
        match kind {
            tar::EntryType::Directory => {
                self.enter(&path).map_err(fail)?;
                self.dir_meta.push((path.clone(), mode, mtime));
            }
            tar::EntryType::Symlink => {
                let dir = self.enter(folders).map_err(fail)?;
                let link = entry.link_name_bytes().unwrap_or_default();
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
            tar::EntryType::Link => {
                let link = entry.link_name_bytes().unwrap_or_default();
                let source = in_container(base, &link).filter(|s| self.written.contains(s));
                match source {
                    Some(source) => {
                        let (source_folders, source_name) = split(&source);
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
            tar::EntryType::Regular | tar::EntryType::Continuous => {
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
                self.bytes += copy(entry, &mut file, &mut self.buffer).map_err(fail)?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| fail(e.into()))?;
                file.set_modified(mtime).map_err(fail)?;
                self.written.insert(path.clone());
                self.files += 1;
            }
            tar::EntryType::Fifo => self.special.push(Special {
                path: shown(&path),
                kind: "FIFO",
            }),
            tar::EntryType::Char | tar::EntryType::Block => self.special.push(Special {
                path: shown(&path),
                kind: "device node",
            }),
            _ => self.special.push(Special {
                path: shown(&path),
                kind: "unknown kind of entry",
            }),
        }
        self.seen.insert(path);
        Ok(())
    }

    /// Makes and opens the folders of container path `dir` below the rescue folder,
    /// from the open folders of the last entry where they are the same.
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

    /// Opens the folders of container path `dir` below the rescue folder, making none.
    fn open(&self, dir: &[u8]) -> io::Result<OwnedFd> {
        let mut fd = rustix::io::dup(&self.folder.root)?;
        for part in dir.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            fd = open_dir(&fd, OsStr::from_bytes(part))?;
        }
        Ok(fd)
    }

    /// Which of `unsaved` this rescue did not copy (nor list as special): each means
    /// the rescue is not complete. Names the engine reported lossily match lossily.
    pub fn missing<'a>(&self, unsaved: &'a [Change]) -> Vec<&'a str> {
        let seen: HashSet<String> = self.seen.iter().map(|p| lossy(p)).collect();
        unsaved
            .iter()
            .filter(|c| c.kind != ChangeKind::Deleted && !seen.contains(&*c.path))
            .map(|c| &*c.path)
            .collect()
    }

    /// Applies the directories' own modes and times, deepest first, and renames the
    /// folder to its final name. Returns where the rescue is.
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
    use ChangeKind::*;

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            kind,
        }
    }

    fn root(path: &str, whole: bool) -> Root {
        Root::new(path, whole)
    }

    #[test]
    fn an_added_directory_is_fetched_whole_and_a_modified_file_alone() {
        let assessment = Assessment {
            unsaved: vec![
                change("/opt/work/a.csv", Added),
                change("/opt/work/sub/b.csv", Added),
                change("/etc/motd", Modified),
                change("/root/notes", Added),
            ],
            disposable: vec![change("/tmp/scratch", Added)],
            added_dirs: vec!["/opt".into(), "/opt/work".into(), "/opt/work/sub".into()],
            ..Default::default()
        };
        assert_eq!(
            roots(&assessment, &[], false),
            [
                root("/etc/motd", false),
                root("/opt", true),
                root("/root/notes", true)
            ]
        );
        let with_all = roots(&assessment, &["/scratch".into()], true);
        assert!(with_all.contains(&root("/tmp/scratch", true)));
        assert!(with_all.contains(&root("/scratch", true)));
    }

    /// A tar archive as the engine sends it, built in memory.
    fn archive(entries: &[(&str, tar::EntryType, &[u8], u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(*mode);
            header.set_mtime(1_700_000_000);
            header.set_size(if *kind == tar::EntryType::Regular {
                data.len() as u64
            } else {
                0
            });
            if *kind == tar::EntryType::Symlink || *kind == tar::EntryType::Link {
                header
                    .set_link_name(std::str::from_utf8(data).unwrap())
                    .unwrap();
                builder.append_data(&mut header, name, &[][..]).unwrap();
            } else {
                builder.append_data(&mut header, name, *data).unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    /// [`archive`] with names that are any bytes, not only UTF-8.
    fn raw_archive(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, Path::new(OsStr::from_bytes(name)), *data)
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn rescued_modes_are_never_group_or_world_writable_and_follow_the_umask() {
        assert_eq!(rescued_mode(0o1777, 0o022), 0o755, "a /tmp-like directory");
        assert_eq!(rescued_mode(0o666, 0o002), 0o644);
        assert_eq!(rescued_mode(0o4755, 0o022), 0o755, "set-id dropped");
        assert_eq!(rescued_mode(0o755, 0o077), 0o700, "a private umask");
        assert_eq!(rescued_mode(0o555, 0o022), 0o555);
        let umask = process_umask();
        assert!(umask <= 0o777, "{umask:o}");
    }

    const STAMP: &str = "20261121T000000Z";

    /// A workspace in a temporary folder, and a rescue folder in it.
    fn workspace() -> (tempfile::TempDir, Folder) {
        let ws = tempfile::tempdir().unwrap();
        let folder = Folder::create(ws.path(), STAMP).unwrap();
        (ws, folder)
    }

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn a_world_writable_directory_is_rescued_private_to_the_group_and_others() {
        use tar::EntryType::*;
        let (ws, folder) = workspace();
        let mut x = Extractor::with_umask(folder, None, 0o022);
        let data = archive(&[
            ("scratch", Directory, b"", 0o1777),
            ("scratch/f", Regular, b"x", 0o666),
        ]);
        x.extract(&root("/scratch", true), &data[..]).unwrap();
        let done = x.complete().unwrap();
        assert_eq!(done, ws.path().join(".rescued").join(STAMP));
        assert_eq!(mode_of(&done.join("scratch")), 0o755);
        assert_eq!(mode_of(&done.join("scratch/f")), 0o644);
    }

    #[test]
    fn extraction_keeps_paths_contents_modes_and_times() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let mut x = Extractor::with_umask(folder, None, 0o022);
        let data = archive(&[
            ("work", Directory, b"", 0o555),
            ("work/run.sh", Regular, b"#!/bin/sh\necho hi\n", 0o4755),
            ("work/link", Symlink, b"run.sh", 0o777),
            ("work/hard", Link, b"work/run.sh", 0o755),
        ]);
        x.extract(&root("/opt/work", true), &data[..]).unwrap();
        assert_eq!((x.files, x.bytes), (3, 18));
        assert!(x.pending.is_empty());
        let done = x.complete().unwrap();
        let run = done.join("opt/work/run.sh");
        assert_eq!(std::fs::read(&run).unwrap(), b"#!/bin/sh\necho hi\n");
        assert_eq!(mode_of(&run), 0o755, "set-id bit dropped");
        assert_eq!(
            std::fs::metadata(&run).unwrap().modified().unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert_eq!(
            std::fs::read_link(done.join("opt/work/link")).unwrap(),
            Path::new("run.sh")
        );
        assert_eq!(
            std::fs::read(done.join("opt/work/hard")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(mode_of(&done.join("opt/work")), 0o555);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            done.join("opt/work"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }

    #[test]
    fn a_hard_link_whose_first_name_was_left_out_is_fetched_on_its_own() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let skip = Disposable::new(&["/opt/cache".to_string()]);
        let mut x = Extractor::with_umask(folder, Some(skip), 0o022);
        let data = archive(&[
            ("opt", Directory, b"", 0o755),
            ("opt/cache", Directory, b"", 0o755),
            ("opt/cache/wheel.so", Regular, b"library", 0o644),
            ("opt/env", Directory, b"", 0o755),
            ("opt/env/wheel.so", Link, b"opt/cache/wheel.so", 0o644),
        ]);
        x.extract(&root("/opt", true), &data[..]).unwrap();
        assert_eq!(x.pending, ["/opt/env/wheel.so"]);
        assert_eq!(x.files, 0, "nothing is counted that was not copied");
        // The file alone, as the engine sends it for that path.
        let alone = archive(&[("wheel.so", Regular, b"library", 0o644)]);
        x.extract(&root("/opt/env/wheel.so", false), &alone[..])
            .unwrap();
        assert_eq!(x.files, 1);
        let unsaved = [
            change("/opt/env/wheel.so", Added),
            change("/opt/env", Added),
        ];
        assert!(x.missing(&unsaved).is_empty());
        let done = x.complete().unwrap();
        assert_eq!(
            std::fs::read(done.join("opt/env/wheel.so")).unwrap(),
            b"library"
        );
        assert!(!done.join("opt/cache/wheel.so").exists());
    }

    #[test]
    fn an_unsaved_path_the_engine_did_not_send_is_missing() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let mut x = Extractor::new(folder, None);
        let data = archive(&[("a", Directory, b"", 0o755), ("a/1", Regular, b"1", 0o644)]);
        x.extract(&root("/a", true), &data[..]).unwrap();
        let unsaved = [
            change("/a", Added),
            change("/a/1", Added),
            change("/a/2", Added),
            change("/a/gone", Deleted),
        ];
        assert_eq!(x.missing(&unsaved), ["/a/2"]);
    }

    #[test]
    fn fifos_and_devices_are_listed_not_copied() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let mut x = Extractor::new(folder, None);
        let data = archive(&[
            ("run", Directory, b"", 0o755),
            ("run/pipe", Fifo, b"", 0o644),
            ("run/null", Char, b"", 0o666),
        ]);
        x.extract(&root("/run", true), &data[..]).unwrap();
        let kinds: Vec<(&str, &str)> = x
            .special
            .iter()
            .map(|s| (s.path.as_str(), s.kind))
            .collect();
        assert_eq!(kinds, [("/run/pipe", "FIFO"), ("/run/null", "device node")]);
        assert_eq!(x.files, 0);
        let unsaved = [change("/run/pipe", Added), change("/run/null", Added)];
        assert!(x.missing(&unsaved).is_empty(), "listed counts as handled");
        let done = x.complete().unwrap();
        assert!(!done.join("run/pipe").exists());
    }

    #[test]
    fn names_are_bytes_from_the_archive_to_the_disk() {
        let (_ws, folder) = workspace();
        let mut x = Extractor::new(folder, None);
        let data = raw_archive(&[
            (b"d", tar::EntryType::Directory, b""),
            (b"d/\xff\xfe.bin", tar::EntryType::Regular, b"raw"),
            (b"d/line\nbreak", tar::EntryType::Regular, b"nl"),
        ]);
        x.extract(&root("/d", true), &data[..]).unwrap();
        let done = x.complete().unwrap();
        let raw = done.join("d").join(OsStr::from_bytes(b"\xff\xfe.bin"));
        assert_eq!(std::fs::read(raw).unwrap(), b"raw");
        assert_eq!(std::fs::read(done.join("d/line\nbreak")).unwrap(), b"nl");
    }

    #[test]
    fn a_name_the_engine_gave_lossily_is_fetched_through_its_folder() {
        assert_eq!(
            lossy(b"x\xe2\x82y\xff"),
            "x\u{FFFD}\u{FFFD}y\u{FFFD}",
            "as Go writes it"
        );
        let alone = Root::new("/etc/y\u{FFFD}", false);
        assert_eq!(alone.path, "/etc");
        assert_eq!(alone.lossy.as_deref(), Some("/etc/y\u{FFFD}"));
        assert!(alone.wants(b"/etc/y\xff") && !alone.wants(b"/etc/passwd"));
        assert!(!alone.wants(b"/etc/y\xff/below"), "not whole");
        let dir = Root::new("/opt/\u{FFFD}d", true);
        assert_eq!(dir.path, "/opt");
        assert!(dir.wants(b"/opt/\xfed/f") && !dir.wants(b"/opt/\xfedx"));

        let (_ws, folder) = workspace();
        let mut x = Extractor::new(folder, None);
        let data = raw_archive(&[
            (b"etc", tar::EntryType::Directory, b""),
            (b"etc/passwd", tar::EntryType::Regular, b"image"),
            (b"etc/y\xff", tar::EntryType::Regular, b"mine"),
        ]);
        x.extract(&alone, &data[..]).unwrap();
        assert_eq!(x.files, 1);
        assert!(x.missing(&[change("/etc/y\u{FFFD}", Added)]).is_empty());
        let done = x.complete().unwrap();
        assert_eq!(
            std::fs::read(done.join("etc").join(OsStr::from_bytes(b"y\xff"))).unwrap(),
            b"mine"
        );
        assert!(!done.join("etc/passwd").exists());
    }

    #[test]
    fn a_modified_directory_brings_only_itself_and_disposable_entries_stay_behind() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let at = folder.partial_path();
        let skip = Disposable::new(&["__pycache__".to_string()]);
        let mut x = Extractor::new(folder, Some(skip));
        let data = archive(&[
            ("etc", Directory, b"", 0o755),
            ("etc/passwd", Regular, b"image file", 0o644),
        ]);
        x.extract(&root("/etc", false), &data[..]).unwrap();
        let data = archive(&[
            ("app", Directory, b"", 0o755),
            ("app/__pycache__/m.pyc", Regular, b"cache", 0o644),
            ("app/m.py", Regular, b"code", 0o644),
        ]);
        x.extract(&root("/app", true), &data[..]).unwrap();
        assert!(at.join("etc").is_dir());
        assert!(!at.join("etc/passwd").exists());
        assert!(!at.join("app/__pycache__").exists());
        assert_eq!(std::fs::read(at.join("app/m.py")).unwrap(), b"code");
    }

    #[test]
    fn nothing_is_written_through_a_symlink_from_the_archive() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let outside = tempfile::tempdir().unwrap();
        let mut x = Extractor::new(folder, None);
        let data = archive(&[
            ("d", Directory, b"", 0o755),
            (
                "d/escape",
                Symlink,
                outside.path().to_str().unwrap().as_bytes(),
                0o777,
            ),
            ("d/escape/owned", Regular, b"x", 0o644),
        ]);
        let failure = x.extract(&root("/d", true), &data[..]).unwrap_err();
        assert_eq!(failure.path, "/d/escape/owned");
        assert!(
            failure.reason.contains("not a folder"),
            "{}",
            failure.reason
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_folder_swapped_for_a_symlink_mid_rescue_is_never_written_through() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let at = folder.partial_path();
        let outside = tempfile::tempdir().unwrap();
        let mut x = Extractor::new(folder, None);
        let first = archive(&[("d", Directory, b"", 0o755), ("d/a", Regular, b"a", 0o644)]);
        x.extract(&root("/d", true), &first[..]).unwrap();
        // A neighbour moves the folder away and puts a link to elsewhere in its place.
        std::fs::rename(at.join("d"), at.join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), at.join("d")).unwrap();
        let second = archive(&[("b", Regular, b"b", 0o644)]);
        x.extract(&root("/d/b", true), &second[..]).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read(at.join("moved/b")).unwrap(), b"b");
        // A fresh look from the rescue folder finds the link and refuses it.
        let err = x.open(b"/d").unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
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
        let a = Folder::create(ws.path(), STAMP).unwrap();
        let b = Folder::create(ws.path(), STAMP).unwrap();
        let rescued = ws.path().join(".rescued");
        assert_eq!(a.partial_path(), rescued.join(format!("{STAMP}.partial")));
        assert_eq!(b.partial_path(), rescued.join(format!("{STAMP}-2.partial")));
        assert_eq!(mode_of(&a.partial_path()), 0o700);
        assert_eq!(b.complete().unwrap(), rescued.join(format!("{STAMP}-2")));
        assert_eq!(a.complete().unwrap(), rescued.join(STAMP));
        // A stamp whose final name is taken is not used again.
        let c = Folder::create(ws.path(), STAMP).unwrap();
        assert_eq!(c.partial_path(), rescued.join(format!("{STAMP}-3.partial")));
    }

    #[test]
    fn a_rescued_folder_that_is_a_symlink_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.path().join(".rescued")).unwrap();
        let err = Folder::create(ws.path(), STAMP).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
