//! `--rescue`: which paths to fetch through the Engine API's archive endpoint, and
//! where what comes back goes: `<workspace>/.rescued/<UTC time>/`, written as
//! `<UTC time>.partial` and renamed when complete, by [`crate::unpack`], which writes
//! nothing but beneath the folder it opened, whatever the container does meanwhile.
//!
//! [`roots`] is pure; [`folder`] and the unpacking are blocking I/O.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;

use super::assess::{parents, Assessment, Change, Disposable};
use crate::container::ChangeKind;
use crate::layer::PathText;
use crate::names::lossy;
pub use crate::unpack::{Extractor, Failure, Folder, Special};

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
    pub fn wants(&self, path: &[u8]) -> bool {
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

/// Makes `<workspace>/.rescued/<stamp>.partial` (`<stamp>-2.partial`, … when taken).
pub fn folder(workspace: &Path, stamp: &str) -> io::Result<Folder> {
    Folder::numbered(workspace, ".rescued", stamp)
}

/// Unpacks whole container paths into `folder`, leaving out what `skip` matches
/// (`None` with `--rescue-all`).
pub fn extractor(folder: Folder, skip: Option<Disposable>) -> Extractor {
    with_skip(Extractor::new(folder), skip)
}

fn with_skip(extractor: Extractor, skip: Option<Disposable>) -> Extractor {
    match skip {
        Some(skip) => extractor.skipping(Box::new(move |path| skip.matches(&lossy(path)))),
        None => extractor,
    }
}

impl Root {
    /// Unpacks this root's archive into `into`.
    pub fn unpack(&self, into: &mut Extractor, archive: impl Read) -> Result<(), Failure> {
        into.extract(&self.path, archive, |path| self.wants(path))
    }
}

/// Which of `unsaved` the rescue did not copy (nor list as special): each means the
/// rescue is not complete. Names the engine reported lossily match lossily.
pub fn missing<'a>(extractor: &Extractor, unsaved: &'a [Change]) -> Vec<&'a PathText> {
    let seen: HashSet<String> = extractor.seen().iter().map(|p| lossy(p)).collect();
    unsaved
        .iter()
        .filter(|c| c.kind != ChangeKind::Deleted && !seen.contains(c.path.as_str()))
        .map(|c| &c.path)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, UNIX_EPOCH};
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

    const STAMP: &str = "20261121T000000Z";

    /// A workspace in a temporary folder, and a rescue folder in it.
    fn workspace() -> (tempfile::TempDir, Folder) {
        let ws = tempfile::tempdir().unwrap();
        let folder = folder(ws.path(), STAMP).unwrap();
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
        let mut x = Extractor::with_umask(folder, 0o022);
        let data = archive(&[
            ("scratch", Directory, b"", 0o1777),
            ("scratch/f", Regular, b"x", 0o666),
        ]);
        root("/scratch", true).unpack(&mut x, &data[..]).unwrap();
        let done = x.complete().unwrap();
        assert_eq!(done, ws.path().join(".rescued").join(STAMP));
        assert_eq!(mode_of(&done.join("scratch")), 0o755);
        assert_eq!(mode_of(&done.join("scratch/f")), 0o644);
    }

    #[test]
    fn extraction_keeps_paths_contents_modes_and_times() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let mut x = Extractor::with_umask(folder, 0o022);
        let data = archive(&[
            ("work", Directory, b"", 0o555),
            ("work/run.sh", Regular, b"#!/bin/sh\necho hi\n", 0o4755),
            ("work/link", Symlink, b"run.sh", 0o777),
            ("work/hard", Link, b"work/run.sh", 0o755),
        ]);
        root("/opt/work", true).unpack(&mut x, &data[..]).unwrap();
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
        let mut x = with_skip(Extractor::with_umask(folder, 0o022), Some(skip));
        let data = archive(&[
            ("opt", Directory, b"", 0o755),
            ("opt/cache", Directory, b"", 0o755),
            ("opt/cache/wheel.so", Regular, b"library", 0o644),
            ("opt/env", Directory, b"", 0o755),
            ("opt/env/wheel.so", Link, b"opt/cache/wheel.so", 0o644),
        ]);
        root("/opt", true).unpack(&mut x, &data[..]).unwrap();
        assert_eq!(x.pending, ["/opt/env/wheel.so"]);
        assert_eq!(x.files, 0, "nothing is counted that was not copied");
        // The file alone, as the engine sends it for that path.
        let alone = archive(&[("wheel.so", Regular, b"library", 0o644)]);
        root("/opt/env/wheel.so", false)
            .unpack(&mut x, &alone[..])
            .unwrap();
        assert_eq!(x.files, 1);
        let unsaved = [
            change("/opt/env/wheel.so", Added),
            change("/opt/env", Added),
        ];
        assert!(missing(&x, &unsaved).is_empty());
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
        let mut x = extractor(folder, None);
        let data = archive(&[("a", Directory, b"", 0o755), ("a/1", Regular, b"1", 0o644)]);
        root("/a", true).unpack(&mut x, &data[..]).unwrap();
        let unsaved = [
            change("/a", Added),
            change("/a/1", Added),
            change("/a/2", Added),
            change("/a/gone", Deleted),
        ];
        assert_eq!(missing(&x, &unsaved), [&PathText::from("/a/2")]);
    }

    #[test]
    fn fifos_and_devices_are_listed_not_copied() {
        use tar::EntryType::*;
        let (_ws, folder) = workspace();
        let mut x = extractor(folder, None);
        let data = archive(&[
            ("run", Directory, b"", 0o755),
            ("run/pipe", Fifo, b"", 0o644),
            ("run/null", Char, b"", 0o666),
        ]);
        root("/run", true).unpack(&mut x, &data[..]).unwrap();
        let kinds: Vec<(&str, &str)> = x
            .special
            .iter()
            .map(|s| (s.path.as_str(), s.kind))
            .collect();
        assert_eq!(kinds, [("/run/pipe", "FIFO"), ("/run/null", "device node")]);
        assert_eq!(x.files, 0);
        let unsaved = [change("/run/pipe", Added), change("/run/null", Added)];
        assert!(missing(&x, &unsaved).is_empty(), "listed counts as handled");
        let done = x.complete().unwrap();
        assert!(!done.join("run/pipe").exists());
    }

    #[test]
    fn names_are_bytes_from_the_archive_to_the_disk() {
        let (_ws, folder) = workspace();
        let mut x = extractor(folder, None);
        let data = raw_archive(&[
            (b"d", tar::EntryType::Directory, b""),
            (b"d/\xff\xfe.bin", tar::EntryType::Regular, b"raw"),
            (b"d/line\nbreak", tar::EntryType::Regular, b"nl"),
        ]);
        root("/d", true).unpack(&mut x, &data[..]).unwrap();
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
        let mut x = extractor(folder, None);
        let data = raw_archive(&[
            (b"etc", tar::EntryType::Directory, b""),
            (b"etc/passwd", tar::EntryType::Regular, b"image"),
            (b"etc/y\xff", tar::EntryType::Regular, b"mine"),
        ]);
        alone.unpack(&mut x, &data[..]).unwrap();
        assert_eq!(x.files, 1);
        assert!(missing(&x, &[change("/etc/y\u{FFFD}", Added)]).is_empty());
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
        let mut x = extractor(folder, Some(skip));
        let data = archive(&[
            ("etc", Directory, b"", 0o755),
            ("etc/passwd", Regular, b"image file", 0o644),
        ]);
        root("/etc", false).unpack(&mut x, &data[..]).unwrap();
        let data = archive(&[
            ("app", Directory, b"", 0o755),
            ("app/__pycache__/m.pyc", Regular, b"cache", 0o644),
            ("app/m.py", Regular, b"code", 0o644),
        ]);
        root("/app", true).unpack(&mut x, &data[..]).unwrap();
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
        let mut x = extractor(folder, None);
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
        let failure = root("/d", true).unpack(&mut x, &data[..]).unwrap_err();
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
        let mut x = extractor(folder, None);
        let first = archive(&[("d", Directory, b"", 0o755), ("d/a", Regular, b"a", 0o644)]);
        root("/d", true).unpack(&mut x, &first[..]).unwrap();
        // A neighbour moves the folder away and puts a link to elsewhere in its place.
        std::fs::rename(at.join("d"), at.join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), at.join("d")).unwrap();
        let second = archive(&[("b", Regular, b"b", 0o644)]);
        root("/d/b", true).unpack(&mut x, &second[..]).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read(at.join("moved/b")).unwrap(), b"b");
        // A fresh look from the rescue folder finds the link and refuses it.
        let err = x.open(b"/d").unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
    }
}
