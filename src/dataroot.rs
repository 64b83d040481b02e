//! The data root on disk: each value that names it followed to the directory it names,
//! and the identity marker berth writes into it on first use, with berth's memory of
//! which marker each root had (`data-roots.json` in the state directory). The guard
//! ([`crate::guard::data`]) judges what this reads.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{absolutize, DataRootValue, Sourced};
use crate::error::{io_reason, Error, Result};
use crate::guard::data::{judge, Identity, Row, MARKER};

/// Where berth remembers (root → id), inside the state directory.
const REMEMBERED: &str = "data-roots.json";

/// Resolves each value relative to the file that holds it, following symlinks.
pub fn resolve(candidates: &[Sourced<DataRootValue>]) -> Vec<Row> {
    candidates
        .iter()
        .map(|c| {
            let absolute = absolutize(&c.value.raw, &c.value.base);
            let resolved = match std::fs::canonicalize(&absolute) {
                Ok(path) if path.is_dir() => Ok(path),
                Ok(path) => Err(format!("{} is not a directory", path.display())),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    Err(format!("{absolute} does not exist"))
                }
                // A symlink loop, a file on the way, no permission: name the reason.
                Err(err) => Err(format!(
                    "{absolute} cannot be followed: {}",
                    io_reason(&err)
                )),
            };
            Row {
                source: c.source.clone(),
                raw: c.value.raw.clone(),
                resolved,
            }
        })
        .collect()
}

/// Reads the marker and berth's memory of `root`, and judges them.
pub fn identify(root: &Path, state_dir: &Path) -> Result<Identity> {
    let marker = read_marker(root)?;
    let remembered = remembered_ids(state_dir).remove(&root.display().to_string());
    judge(root, marker, remembered)
}

/// A marker is one short line; anything longer was not written by berth.
const MAX_MARKER: u64 = 256;

/// The id in `root`'s marker, read only from a small regular file. The root is shared:
/// a symlink, a device, a pipe or a directory planted there is refused, not followed.
fn read_marker(root: &Path) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let marker = root.join(MARKER);
    let planted = || {
        Error::refused(format!(
            "the data root's identity marker {} is not a file berth wrote",
            marker.display()
        ))
        .hint("it is a symlink, a directory or a large file: remove it, and berth writes its own")
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&marker);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => return Err(planted()),
        Err(err) => return Err(Error::io("read", &marker, err)),
    };
    let meta = file
        .metadata()
        .map_err(|err| Error::io("read", &marker, err))?;
    if !meta.is_file() || meta.len() > MAX_MARKER {
        return Err(planted());
    }
    let mut text = String::new();
    file.take(MAX_MARKER)
        .read_to_string(&mut text)
        .map_err(|err| Error::io("read", &marker, err))?;
    Ok(Some(text.trim().to_string()))
}

/// Makes the identity real: writes a new marker or remembers an adopted one; returns
/// the id.
pub fn settle(identity: Identity, root: &Path, state_dir: &Path) -> Result<String> {
    let id = match identity {
        Identity::Known(id) => return Ok(id),
        Identity::Adopt(id) => id,
        Identity::New => {
            let id = new_id()?;
            let marker = root.join(MARKER);
            match write_marker(&marker, &id) {
                Ok(()) => id,
                // Another deploy wrote one first: that one is the root's id.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_marker(root)?
                        .ok_or_else(|| Error::io("write the identity marker", &marker, err))?
                }
                Err(err) => {
                    return Err(Error::io("write the identity marker", &marker, err)
                        .hint("ask whoever owns the data root to let you write it once"))
                }
            }
        }
    };
    let mut ids = remembered_ids(state_dir);
    ids.insert(root.display().to_string(), id.clone());
    std::fs::create_dir_all(state_dir).map_err(|err| Error::io("create", state_dir, err))?;
    let path = state_dir.join(REMEMBERED);
    let text = serde_json::to_string_pretty(&ids).unwrap_or_default();
    crate::files::write_atomically(&path, text.as_bytes())
        .map_err(|err| Error::io("write", &path, err))?;
    Ok(id)
}

/// Creates the marker, never through a symlink or over a file already there.
fn write_marker(marker: &Path, id: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(marker)?
        .write_all(format!("{id}\n").as_bytes())
}

fn remembered_ids(state_dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(state_dir.join(REMEMBERED))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn new_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::failed(format!("cannot draw a random id: {err}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use crate::guard::data::decide;

    #[test]
    fn settle_writes_a_marker_once_and_remembers_it() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        std::fs::create_dir(&root).unwrap();
        assert_eq!(identify(&root, &state).unwrap(), Identity::New);
        let id = settle(Identity::New, &root, &state).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(identify(&root, &state).unwrap(), Identity::Known(id));
        std::fs::remove_file(root.join(MARKER)).unwrap();
        assert_eq!(identify(&root, &state).unwrap_err().code(), 3);
    }

    #[test]
    fn a_planted_marker_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        std::fs::create_dir(&root).unwrap();
        let marker = root.join(MARKER);
        let outside = dir.path().join("outside");
        let plants: [&dyn Fn(); 5] = [
            &|| std::os::unix::fs::symlink(&outside, &marker).unwrap(),
            &|| std::os::unix::fs::symlink("/dev/zero", &marker).unwrap(),
            &|| std::os::unix::fs::symlink(&marker, &marker).unwrap(),
            &|| std::fs::create_dir(&marker).unwrap(),
            &|| std::fs::write(&marker, "x".repeat(1000)).unwrap(),
        ];
        for plant in plants {
            plant();
            let err = identify(&root, &state).unwrap_err();
            assert_eq!(err.code(), 3);
            assert!(
                err.message.contains("not a file berth wrote"),
                "{}",
                err.message
            );
            assert!(!outside.exists());
            std::fs::remove_dir(&marker)
                .or_else(|_| std::fs::remove_file(&marker))
                .unwrap();
        }
        // A dangling symlink planted between the check and the write is not written
        // through either.
        std::os::unix::fs::symlink(&outside, &marker).unwrap();
        assert!(settle(Identity::New, &root, &state).is_err());
        assert!(!outside.exists());
    }

    #[test]
    fn a_marker_written_meanwhile_by_another_deploy_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join(MARKER), "theirs\n").unwrap();
        assert_eq!(settle(Identity::New, &root, &state).unwrap(), "theirs");
        assert_eq!(
            identify(&root, &state).unwrap(),
            Identity::Known("theirs".into())
        );
    }

    #[test]
    fn a_symlink_loop_or_a_file_on_the_way_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("b"), dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let value = |raw: &str| Sourced {
            value: DataRootValue {
                raw: raw.into(),
                base: dir.path().to_path_buf(),
            },
            source: Source::Env("HOST_DATA_PATH"),
        };
        let rows = resolve(&[value("a"), value("a/sub"), value("file/sub"), value("file")]);
        let problems: Vec<String> = rows
            .iter()
            .map(|r| r.resolved.clone().unwrap_err())
            .collect();
        let at = |name: &str| dir.path().join(name).display().to_string();
        assert_eq!(
            problems,
            [
                format!(
                    "{} cannot be followed: too many levels of symbolic links",
                    at("a")
                ),
                format!(
                    "{} cannot be followed: too many levels of symbolic links",
                    at("a/sub")
                ),
                format!("{} cannot be followed: not a directory", at("file/sub")),
                format!("{} is not a directory", at("file")),
            ]
        );
        let err = decide(&rows).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("symbolic links"), "{}", err.message);
    }

    #[test]
    fn resolve_follows_symlinks_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let value = |raw: &str| Sourced {
            value: DataRootValue {
                raw: raw.into(),
                base: dir.path().to_path_buf(),
            },
            source: Source::Env("HOST_DATA_PATH"),
        };
        let rows = resolve(&[
            value("real"),
            value("./link/"),
            value("link/../real"),
            value(real.to_str().unwrap()),
        ]);
        let real = std::fs::canonicalize(&real).unwrap();
        assert_eq!(decide(&rows).unwrap(), Some(real));
    }
}
