//! A host folder, never through a link: the workspace can be written by the container
//! while it is read, and a folder swapped for a symbolic link must not bring the
//! host's files into an archive (a scheduled backup may run as root). Every folder is
//! opened relative to the one above it (`O_NOFOLLOW`), every file by its name in an
//! open folder. What is done with each entry is a [`Visit`]: [`Archiving`] writes it
//! into an archive, checked to be the plain file it was listed as; [`Fingerprint`]
//! hashes what `stat` says of it, to tell whether anything changed since.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};
use sha2::{Digest, Sha256};

use crate::archive::{join, Meta, Writer};
use crate::glob::Patterns;
use crate::names::shown;

/// What a walk went over and what it left out.
#[derive(Debug, Default)]
pub struct Walked {
    pub files: u64,
    pub bytes: u64,
    /// FIFOs, sockets and device nodes, by their names in the archive: not copied.
    pub special: Vec<String>,
    /// Left out by `[backup] exclude`.
    pub excluded: u64,
}

/// What a walk does with each entry, named by its path in the archive.
pub trait Visit {
    fn dir(&mut self, path: &[u8], stat: &Stat) -> io::Result<()>;
    fn symlink(&mut self, path: &[u8], stat: &Stat, target: &[u8]) -> io::Result<()>;
    /// A regular file, `name` in the open folder `dir`, as `statat` saw it.
    fn file(&mut self, dir: &OwnedFd, name: &OsStr, path: &[u8], stat: &Stat) -> io::Result<()>;
}

/// Visits folder `root` and everything below it as `prefix/…`, leaving out what
/// `exclude` matches (by the path below `root`), in the order of their names.
pub fn walk(
    root: &Path,
    prefix: &[u8],
    exclude: &Patterns,
    visit: &mut impl Visit,
) -> io::Result<Walked> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(CWD, root, flags, Mode::empty())?;
    let stat = rustix::fs::fstat(&fd)?;
    visit.dir(prefix, &stat)?;
    let mut walk = Walk {
        exclude,
        visit,
        walked: Walked::default(),
    };
    walk.folder(fd, prefix, b"")?;
    Ok(walk.walked)
}

struct Walk<'a, V> {
    exclude: &'a Patterns,
    visit: &'a mut V,
    walked: Walked,
}

impl<V: Visit> Walk<'_, V> {
    /// The entries of the open folder `dir`, which is `prefix/below` in the archive.
    fn folder(&mut self, dir: OwnedFd, prefix: &[u8], below: &[u8]) -> io::Result<()> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(name);
            }
        }
        // The same tree gives the same archive, entry for entry.
        names.sort_unstable();
        for name in names {
            let below = join(below, &name);
            let below = below.strip_prefix(b"/").unwrap_or(&below).to_vec();
            if self.exclude.matches(&crate::names::lossy(&below)) {
                self.walked.excluded += 1;
                continue;
            }
            let path = join(prefix, &below);
            let name = OsStr::from_bytes(&name);
            let failed = |err: io::Error| {
                io::Error::new(
                    err.kind(),
                    format!("{}: {}", shown(&path), crate::error::io_reason(&err)),
                )
            };
            let stat = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| failed(e.into()))?;
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => {
                    let flags =
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let sub = rustix::fs::openat(&dir, name, flags, Mode::empty())
                        .map_err(|e| failed(e.into()))?;
                    let stat = rustix::fs::fstat(&sub).map_err(|e| failed(e.into()))?;
                    self.visit.dir(&path, &stat)?;
                    self.folder(sub, prefix, &below)?;
                }
                FileType::RegularFile => {
                    self.visit.file(&dir, name, &path, &stat).map_err(failed)?;
                    self.walked.files += 1;
                    self.walked.bytes += stat.st_size as u64;
                }
                FileType::Symlink => {
                    let target = rustix::fs::readlinkat(&dir, name, Vec::new())
                        .map_err(|e| failed(e.into()))?;
                    self.visit
                        .symlink(&path, &stat, target.as_bytes())
                        .map_err(failed)?;
                    self.walked.files += 1;
                }
                _ => self.walked.special.push(shown(&path)),
            }
        }
        Ok(())
    }
}

/// Each entry into an archive; a file with more than one name once, the other names
/// as hard links to the first.
pub struct Archiving<'a, W: Write> {
    writer: &'a mut Writer<W>,
    /// Files with more than one name, by (device, inode): the first name written.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<'a, W: Write> Archiving<'a, W> {
    pub fn new(writer: &'a mut Writer<W>) -> Self {
        Self {
            writer,
            links: HashMap::new(),
        }
    }
}

impl<W: Write> Visit for Archiving<'_, W> {
    fn dir(&mut self, path: &[u8], stat: &Stat) -> io::Result<()> {
        self.writer.dir(path, meta(stat))
    }

    fn symlink(&mut self, path: &[u8], stat: &Stat, target: &[u8]) -> io::Result<()> {
        self.writer.symlink(path, meta(stat), target)
    }

    fn file(&mut self, dir: &OwnedFd, name: &OsStr, path: &[u8], _: &Stat) -> io::Result<()> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(io::Error::other(
                "it was swapped for something that is not a file while it was read",
            ));
        }
        if stat.st_nlink > 1 {
            let key = (stat.st_dev, stat.st_ino);
            if let Some(first) = self.links.get(&key) {
                return self.writer.link(path, meta(&stat), first);
            }
            self.links.insert(key, path.to_vec());
        }
        let size = stat.st_size as u64;
        self.writer.file(path, meta(&stat), size, File::from(fd))
    }
}

/// A hash of what `stat` says of every entry: path, kind, size, mode, owner, inode,
/// links, and the modification and change times to the nanosecond (of a folder, its
/// path, mode and owner). A file written
/// since changes its change time, which nobody can set back, so an equal fingerprint
/// means an equal tree without reading a byte of it.
#[derive(Default)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    /// Adds what is not a walk's: the names of volumes, an image, a container's times.
    pub fn add(&mut self, field: &[u8]) {
        self.0.update((field.len() as u64).to_le_bytes());
        self.0.update(field);
    }

    // `stat`'s field types differ by platform: some casts are no-ops here.
    #[allow(clippy::unnecessary_cast)]
    fn entry(&mut self, kind: u8, path: &[u8], stat: &Stat) {
        self.add(path);
        let numbers = [
            u64::from(kind),
            stat.st_size as u64,
            u64::from(stat.st_mode),
            u64::from(stat.st_uid),
            u64::from(stat.st_gid),
            stat.st_ino,
            stat.st_nlink as u64,
            stat.st_mtime as u64,
            stat.st_mtime_nsec as u64,
            stat.st_ctime as u64,
            stat.st_ctime_nsec as u64,
        ];
        for number in numbers {
            self.0.update(number.to_le_bytes());
        }
    }

    pub fn hex(self) -> String {
        crate::names::hex(&self.0.finalize())
    }
}

/// `berth fingerprint FOLDER...`: the fingerprint of the folders, walked in turn as
/// `0/…`, `1/…`, on stdout.
pub fn print_fingerprint(args: &crate::cli::FingerprintArgs) -> crate::error::Result<()> {
    let mut print = Fingerprint::default();
    for (at, folder) in args.folders.iter().enumerate() {
        walk(
            folder,
            at.to_string().as_bytes(),
            &Patterns::default(),
            &mut print,
        )
        .map_err(|err| {
            crate::error::Error::failed(format!(
                "cannot walk {}: {}",
                folder.display(),
                crate::error::io_reason(&err)
            ))
        })?;
    }
    println!("{}", print.hex());
    Ok(())
}

impl Visit for Fingerprint {
    /// A folder by its name, mode and owner: its size and times change with any name
    /// made or removed in it, a file left out by `[backup] exclude` too, and what it
    /// holds is hashed entry by entry.
    fn dir(&mut self, path: &[u8], stat: &Stat) -> io::Result<()> {
        self.add(path);
        let numbers = [
            u64::from(b'd'),
            u64::from(stat.st_mode),
            u64::from(stat.st_uid),
            u64::from(stat.st_gid),
        ];
        for number in numbers {
            self.0.update(number.to_le_bytes());
        }
        Ok(())
    }

    fn symlink(&mut self, path: &[u8], stat: &Stat, target: &[u8]) -> io::Result<()> {
        self.entry(b'l', path, stat);
        self.add(target);
        Ok(())
    }

    fn file(&mut self, _: &OwnedFd, _: &OsStr, path: &[u8], stat: &Stat) -> io::Result<()> {
        self.entry(b'f', path, stat);
        Ok(())
    }
}

fn meta(stat: &rustix::fs::Stat) -> Meta {
    Meta {
        mode: stat.st_mode & 0o7777,
        uid: stat.st_uid.into(),
        gid: stat.st_gid.into(),
        mtime: stat.st_mtime.max(0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(root: &Path, exclude: &[&str]) -> String {
        let exclude: Vec<String> = exclude.iter().map(|p| p.to_string()).collect();
        let mut print = Fingerprint::default();
        walk(root, b"workspace", &Patterns::new(&exclude), &mut print).unwrap();
        print.hex()
    }

    #[test]
    fn a_fingerprint_changes_with_any_write_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b.txt");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "same size").unwrap();
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        let first = print(dir.path(), &["cache", "*.tmp"]);
        assert_eq!(
            print(dir.path(), &["cache", "*.tmp"]),
            first,
            "reading changes nothing"
        );
        std::fs::read(&file).unwrap();
        assert_eq!(print(dir.path(), &["cache", "*.tmp"]), first);

        // What is left out may change.
        std::fs::write(dir.path().join("cache/x"), "x").unwrap();
        std::fs::write(dir.path().join("a/scratch.tmp"), "x").unwrap();
        assert_eq!(print(dir.path(), &["cache", "*.tmp"]), first);

        // The same size and the old modification time: the change time still moves.
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "SAME SIZE").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let second = print(dir.path(), &["cache", "*.tmp"]);
        assert_ne!(second, first);

        std::os::unix::fs::symlink("b.txt", dir.path().join("a/link")).unwrap();
        assert_ne!(print(dir.path(), &["cache", "*.tmp"]), second);
    }
}
