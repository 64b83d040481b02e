//! `--rescue`: which paths to fetch through the Engine API's archive endpoint, and how
//! to unpack what comes back into `<workspace>/.rescued/<UTC time>/` safely: paths kept,
//! contents intact, modes through [`rescued_mode`], nothing written outside the rescue
//! folder, nothing overwritten. [`roots`] is pure; [`Extractor`] is blocking I/O on a
//! tar stream.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::assess::{parents, Assessment, Change, Disposable};
use crate::engine::ChangeKind;

/// One archive call: a path in the container, and whether to take everything below it
/// (a directory the container added) or only the entry itself (a modified file or
/// directory, whose changed contents are listed, and fetched, on their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub path: String,
    pub whole: bool,
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
            Some(dir) => Root {
                path: dir.to_string(),
                whole: true,
            },
            None => Root {
                path: path.to_string(),
                whole: change.kind == ChangeKind::Added,
            },
        };
        if seen.insert(root.path.clone()) {
            roots.push(root);
        }
    }
    for target in volume_targets {
        if seen.insert(target.clone()) {
            roots.push(Root {
                path: target.clone(),
                whole: true,
            });
        }
    }
    roots.sort_by(|a, b| a.path.cmp(&b.path));
    roots
}

/// Why an entry could not be written.
#[derive(Debug)]
pub struct Failure {
    /// The path in the container.
    pub path: String,
    pub reason: String,
}

/// Unpacks archives into one rescue folder, keeping count.
pub struct Extractor {
    dest: PathBuf,
    /// Entries to leave out (`None` with `--rescue-all`).
    skip: Option<Disposable>,
    /// The user's umask, which every rescued mode goes through.
    umask: u32,
    /// Directories known to be real directories under `dest` (never symlinks).
    dirs: HashSet<PathBuf>,
    /// Modes and times of directory entries, applied last so that a read-only directory
    /// can still be filled.
    dir_meta: Vec<(PathBuf, u32, SystemTime)>,
    pub files: u64,
    pub bytes: u64,
    /// Device nodes and FIFOs: not files anyone wrote, not copied.
    pub skipped: Vec<String>,
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
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

impl Extractor {
    /// `dest` must exist and be empty.
    pub fn new(dest: PathBuf, skip: Option<Disposable>) -> Self {
        Self::with_umask(dest, skip, process_umask())
    }

    /// [`Extractor::new`], with modes masked by `umask` instead of the process's.
    pub fn with_umask(dest: PathBuf, skip: Option<Disposable>, umask: u32) -> Self {
        let dirs = HashSet::from([dest.clone()]);
        Self {
            dest,
            skip,
            umask,
            dirs,
            dir_meta: Vec::new(),
            files: 0,
            bytes: 0,
            skipped: Vec::new(),
        }
    }

    /// Unpacks the archive of `root`. The engine names its entries after the root's
    /// last component (`/opt/work` → `work`, `work/a.csv`).
    pub fn extract(&mut self, root: &Root, archive: impl Read) -> Result<(), Failure> {
        let at = |path: &str, err: io::Error| Failure {
            path: path.to_string(),
            reason: crate::error::io_reason(&err),
        };
        let base = root.path.rsplit_once('/').map_or("", |(parent, _)| parent);
        let mut archive = tar::Archive::new(archive);
        let entries = archive.entries().map_err(|err| at(&root.path, err))?;
        for entry in entries {
            let mut entry = entry.map_err(|err| at(&root.path, err))?;
            let relative = entry
                .path()
                .map_err(|err| at(&root.path, err))?
                .into_owned();
            let Some(relative) = clean(&relative) else {
                return Err(Failure {
                    path: format!("{base}/{}", relative.display()),
                    reason: "the archive names a path outside its folder".into(),
                });
            };
            let path = format!("{base}/{}", relative.display());
            if !root.whole && path != root.path {
                continue;
            }
            if self.skip.as_ref().is_some_and(|d| d.matches(&path)) {
                continue;
            }
            let target = self.dest.join(path.trim_start_matches('/'));
            let header = entry.header();
            let mode = rescued_mode(header.mode().unwrap_or(0o644), self.umask);
            let mtime = UNIX_EPOCH + Duration::from_secs(header.mtime().unwrap_or(0));
            let kind = header.entry_type();
            let parent = target.parent().unwrap_or(&self.dest).to_path_buf();
            self.ensure_dir(&parent).map_err(|err| at(&path, err))?;
            match kind {
                tar::EntryType::Directory => {
                    self.ensure_dir(&target).map_err(|err| at(&path, err))?;
                    self.dir_meta.push((target, mode, mtime));
                }
                tar::EntryType::Symlink => {
                    let link = entry
                        .link_name()
                        .map_err(|err| at(&path, err))?
                        .unwrap_or_default();
                    std::os::unix::fs::symlink(&link, &target).map_err(|err| at(&path, err))?;
                    self.files += 1;
                }
                tar::EntryType::Link => {
                    let link = entry
                        .link_name()
                        .map_err(|err| at(&path, err))?
                        .unwrap_or_default();
                    let source = clean(&link)
                        .map(|l| self.dest.join(base.trim_start_matches('/')).join(l))
                        .filter(|s| fs::symlink_metadata(s).is_ok_and(|m| m.is_file()));
                    match source {
                        Some(source) => {
                            fs::hard_link(&source, &target).map_err(|err| at(&path, err))?
                        }
                        None => self.skipped.push(path.clone()),
                    }
                    self.files += 1;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&target)
                        .map_err(|err| at(&path, err))?;
                    self.bytes += io::copy(&mut entry, &mut file).map_err(|err| at(&path, err))?;
                    file.set_permissions(fs::Permissions::from_mode(mode))
                        .and_then(|()| file.set_modified(mtime))
                        .and_then(|()| file.sync_data())
                        .map_err(|err| at(&path, err))?;
                    self.files += 1;
                }
                _ => self.skipped.push(path),
            }
        }
        Ok(())
    }

    /// Applies the directories' own modes and times, deepest first.
    pub fn finish(&mut self) -> Result<(), Failure> {
        self.dir_meta
            .sort_by_key(|(path, _, _)| std::cmp::Reverse(path.components().count()));
        for (dir, mode, mtime) in self.dir_meta.drain(..) {
            let result = File::open(&dir)
                .and_then(|f| f.set_modified(mtime))
                .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(mode)));
            result.map_err(|err| Failure {
                path: dir.display().to_string(),
                reason: crate::error::io_reason(&err),
            })?;
        }
        Ok(())
    }

    /// Creates `dir` and its parents under `dest`, refusing to pass through anything
    /// that is not a real directory (a symlink from an archive could point anywhere).
    fn ensure_dir(&mut self, dir: &Path) -> io::Result<()> {
        if self.dirs.contains(dir) {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            if dir != self.dest {
                self.ensure_dir(parent)?;
            }
        }
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} exists and is not a directory",
                    dir.display()
                )))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new().mode(0o755).create(dir)?;
            }
            Err(err) => return Err(err),
        }
        self.dirs.insert(dir.to_path_buf());
        Ok(())
    }
}

/// How much an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Entries that are not directories.
    pub files: u64,
    pub bytes: u64,
    /// False when the count stopped at the budget.
    pub complete: bool,
}

/// Counts an archive's files and bytes, reading at most `budget` bytes of their
/// contents: enough to tell a volume holds data without streaming all of it.
pub fn count(archive: impl Read, budget: u64) -> io::Result<Count> {
    let mut count = Count {
        files: 0,
        bytes: 0,
        complete: true,
    };
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type() == tar::EntryType::Directory {
            continue;
        }
        count.files += 1;
        count.bytes += entry.size();
        if count.bytes > budget {
            // Reading on would stream the rest of the volume.
            count.complete = false;
            break;
        }
    }
    Ok(count)
}

/// `a/b/` → `a/b`; `None` for anything that could leave the folder (`..`, `/abs`).
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Creates `<workspace>/.rescued/<stamp>/` (or `<stamp>-2`, … when taken) and returns it.
pub fn make_folder(workspace: &Path, stamp: &str) -> io::Result<PathBuf> {
    let parent = workspace.join(".rescued");
    match fs::symlink_metadata(&parent) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(io::Error::other(format!(
                "{} is a symlink; berth will not write through it",
                parent.display()
            )))
        }
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => fs::create_dir(&parent)?,
        Err(err) => return Err(err),
    }
    for n in 1.. {
        let name = if n == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}-{n}")
        };
        let folder = parent.join(name);
        match fs::DirBuilder::new().mode(0o755).create(&folder) {
            Ok(()) => return Ok(folder),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    unreachable!("an unbounded range always yields")
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
        Root {
            path: path.into(),
            whole,
        }
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

    #[test]
    fn a_world_writable_directory_is_rescued_private_to_the_group_and_others() {
        use tar::EntryType::*;
        let dir = tempfile::tempdir().unwrap();
        let mut x = Extractor::with_umask(dir.path().to_path_buf(), None, 0o022);
        let data = archive(&[
            ("scratch", Directory, b"", 0o1777),
            ("scratch/f", Regular, b"x", 0o666),
        ]);
        x.extract(&root("/scratch", true), &data[..]).unwrap();
        x.finish().unwrap();
        let mode = |p: &str| {
            fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("scratch"), 0o755);
        assert_eq!(mode("scratch/f"), 0o644);
    }

    #[test]
    fn extraction_keeps_paths_contents_modes_and_times() {
        use tar::EntryType::*;
        let dir = tempfile::tempdir().unwrap();
        let mut x = Extractor::with_umask(dir.path().to_path_buf(), None, 0o022);
        let data = archive(&[
            ("work", Directory, b"", 0o555),
            ("work/run.sh", Regular, b"#!/bin/sh\necho hi\n", 0o4755),
            ("work/link", Symlink, b"run.sh", 0o777),
            ("work/hard", Link, b"work/run.sh", 0o755),
        ]);
        x.extract(&root("/opt/work", true), &data[..]).unwrap();
        x.finish().unwrap();
        let run = dir.path().join("opt/work/run.sh");
        assert_eq!(fs::read(&run).unwrap(), b"#!/bin/sh\necho hi\n");
        let meta = fs::metadata(&run).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o755,
            "set-id bit dropped"
        );
        assert_eq!(
            meta.modified().unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert_eq!(
            fs::read_link(dir.path().join("opt/work/link")).unwrap(),
            Path::new("run.sh")
        );
        assert_eq!(
            fs::read(dir.path().join("opt/work/hard")).unwrap(),
            b"#!/bin/sh\necho hi\n"
        );
        let work = fs::metadata(dir.path().join("opt/work")).unwrap();
        assert_eq!(work.permissions().mode() & 0o7777, 0o555);
        assert_eq!((x.files, x.bytes), (3, 18));
        fs::set_permissions(
            dir.path().join("opt/work"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }

    #[test]
    fn a_modified_directory_brings_only_itself_and_disposable_entries_stay_behind() {
        use tar::EntryType::*;
        let dir = tempfile::tempdir().unwrap();
        let skip = Disposable::new(&["__pycache__".to_string()]);
        let mut x = Extractor::new(dir.path().to_path_buf(), Some(skip));
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
        assert!(dir.path().join("etc").is_dir());
        assert!(!dir.path().join("etc/passwd").exists());
        assert!(!dir.path().join("app/__pycache__").exists());
        assert_eq!(fs::read(dir.path().join("app/m.py")).unwrap(), b"code");
    }

    #[test]
    fn nothing_is_written_through_a_symlink_from_the_archive() {
        use tar::EntryType::*;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mut x = Extractor::new(dir.path().join("r"), None);
        fs::create_dir(dir.path().join("r")).unwrap();
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
            failure.reason.contains("not a directory"),
            "{}",
            failure.reason
        );
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn counting_stops_at_the_budget() {
        use tar::EntryType::*;
        let data = archive(&[
            ("v", Directory, b"", 0o755),
            ("v/a", Regular, b"12345", 0o644),
            ("v/b", Regular, b"678", 0o644),
        ]);
        let all = count(&data[..], 100).unwrap();
        assert_eq!((all.files, all.bytes, all.complete), (2, 8, true));
        let some = count(&data[..], 4).unwrap();
        assert_eq!((some.files, some.bytes, some.complete), (1, 5, false));
        let empty = archive(&[("v", Directory, b"", 0o755)]);
        assert_eq!(count(&empty[..], 100).unwrap().files, 0);
    }

    #[test]
    fn paths_that_climb_out_are_refused() {
        assert_eq!(clean(Path::new("a/./b/")), Some(PathBuf::from("a/b")));
        assert_eq!(clean(Path::new("a/../../etc")), None);
        assert_eq!(clean(Path::new("/etc")), None);
    }

    #[test]
    fn rescue_folders_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let a = make_folder(dir.path(), "20261121T000000Z").unwrap();
        let b = make_folder(dir.path(), "20261121T000000Z").unwrap();
        assert_eq!(a, dir.path().join(".rescued/20261121T000000Z"));
        assert_eq!(b, dir.path().join(".rescued/20261121T000000Z-2"));
    }
}
