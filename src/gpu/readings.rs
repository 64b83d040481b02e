//! The GPU utilisation `berth reap` last read for each container that holds GPUs, kept
//! for `berth list`. A reap as root writes it where every user may read it and none may
//! write (`[reap] readings` in the policy, else [`SHARED`], in a folder it makes
//! `0755`); a user's own reap writes it into the user's state folder. `berth list`
//! believes the shared file only where it and its folder belong to root and nobody else
//! may write them, so a neighbour cannot make someone's containers look busy or idle.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::policy::Policy;
use crate::error::{Error, Result};

/// Where a reap as root leaves its readings, unless the policy says otherwise.
pub const SHARED: &str = "/run/berth/gpus.json";

/// One container's last reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The highest utilisation among the GPUs it holds, in percent.
    pub percent: f64,
    /// When it was read, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Readings by container id.
pub type Readings = BTreeMap<String, Reading>;

/// Where a reap run as `uid` keeps its readings.
pub fn path(policy: &Policy, state_dir: &Path, uid: u32) -> PathBuf {
    match uid {
        0 => policy
            .reap
            .readings
            .clone()
            .unwrap_or_else(|| PathBuf::from(SHARED)),
        _ => own(state_dir),
    }
}

fn own(state_dir: &Path) -> PathBuf {
    state_dir.join("reap").join("gpus.json")
}

fn read(path: &Path) -> Readings {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Keeps `fresh` at `path`, with what it held of the containers in `alive` that a reap
/// did not read this time (one of `--project`, say).
pub fn save(path: &Path, fresh: &Readings, alive: &dyn Fn(&str) -> bool) -> Result<()> {
    let mut all: Readings = read(path).into_iter().filter(|(id, _)| alive(id)).collect();
    all.extend(fresh.iter().map(|(id, r)| (id.clone(), *r)));
    if all.is_empty() && !path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|err| Error::io("create", dir, err))?;
    }
    let bytes = serde_json::to_vec(&all)
        .map_err(|err| Error::failed(format!("cannot write GPU readings: {err}")))?;
    crate::files::write_atomically(path, &bytes).map_err(|err| Error::io("write", path, err))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(|err| Error::io("write", path, err))
}

/// What the reaper last read, for a user whose state folder is `state_dir`: their own
/// reap's readings, and root's where they can be believed; the newer of two wins.
pub fn load(policy: &Policy, state_dir: &Path) -> Readings {
    let mut all = read(&own(state_dir));
    let shared = path(policy, state_dir, 0);
    if crate::os::is_root() || root_only(&shared) {
        for (id, reading) in read(&shared) {
            let newer = all.get(&id).is_none_or(|mine| mine.at_ms < reading.at_ms);
            if newer {
                all.insert(id, reading);
            }
        }
    }
    all
}

/// Whether `path` and every folder above it belong to root and nobody else may write
/// them (a folder with the sticky bit excepted, as `/tmp` is: nobody may replace root's
/// entries in it).
fn root_only(path: &Path) -> bool {
    let not_writable = |meta: &std::fs::Metadata, sticky_ok: bool| {
        meta.uid() == 0 && (meta.mode() & 0o022 == 0 || (sticky_ok && meta.mode() & 0o1000 != 0))
    };
    let Ok(file) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !file.is_file() || !not_writable(&file, false) {
        return false;
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        match std::fs::symlink_metadata(if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }) {
            Ok(meta) if meta.is_dir() && not_writable(&meta, true) => {}
            _ => return false,
        }
        dir = d.parent();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_of_containers_gone_are_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r/gpus.json");
        let reading = |percent, at_ms| Reading { percent, at_ms };
        let first = Readings::from([
            ("a".into(), reading(10.0, 1)),
            ("b".into(), reading(20.0, 1)),
        ]);
        save(&path, &first, &|_| true).unwrap();
        let second = Readings::from([("a".into(), reading(30.0, 2))]);
        save(&path, &second, &|id| id != "gone").unwrap();
        let kept = read(&path);
        assert_eq!(kept["a"], reading(30.0, 2));
        assert_eq!(
            kept["b"],
            reading(20.0, 1),
            "not read this time, still there"
        );
        save(&path, &Readings::new(), &|id| id == "a").unwrap();
        assert_eq!(read(&path).len(), 1);
    }

    #[test]
    fn only_what_root_alone_may_write_is_believed() {
        use std::os::unix::fs::PermissionsExt;
        if !crate::os::is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("gpus.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(root_only(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!root_only(&path), "anyone may write it");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!root_only(&path), "anyone may replace it");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::lchown(&path, Some(65534), None).unwrap();
        assert!(!root_only(&path), "someone else's");
    }
}
