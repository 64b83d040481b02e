//! Incremental snapshots: the layer walk before a snapshot signs each file
//! ([`Stamped::files`]), the signatures are kept beside the snapshot (`<time>.files`),
//! and the next snapshot of the same container hard-links each file whose signature did
//! not change to its copy in the one before, fetching only the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{root, Meta};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::layer::Stamped;
use crate::retire::{self, rescue};

/// `<time>.files`, beside the snapshot `<time>/`: the signature of each file the walk
/// before it found ([`Stamped::files`]), by path; a name that is not UTF-8 is left out
/// (and so always copied).
pub(super) fn signatures_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.file_name().unwrap_or_default().to_os_string();
    name.push(".files");
    snapshot.with_file_name(name)
}

type Signatures = HashMap<String, u64>;

pub(super) fn write_signatures(snapshot: &Path, files: &[(Vec<u8>, u64)]) -> Result<()> {
    let named: BTreeMap<&str, u64> = files
        .iter()
        .filter_map(|(path, sig)| Some((std::str::from_utf8(path).ok()?, *sig)))
        .collect();
    let path = signatures_path(snapshot);
    let bytes = serde_json::to_vec(&named)
        .map_err(|err| Error::failed(format!("cannot describe the snapshot: {err}")))?;
    crate::files::write_atomically(&path, &bytes).map_err(|err| Error::io("write", &path, err))
}

fn read_signatures(snapshot: &Path) -> Option<Signatures> {
    let bytes = std::fs::read(signatures_path(snapshot)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The most archive calls an incremental snapshot makes for what changed; past it, the
/// whole is copied as the first snapshot was, in the fewest calls.
const MOST_CALLS: usize = 1000;

/// What was linked to the snapshot before.
#[derive(Default)]
pub(super) struct Linked {
    pub files: u64,
    pub bytes: u64,
}

/// The snapshot before, of the same container, and what its walk and this one signed.
pub(super) struct Earlier<'a> {
    folder: PathBuf,
    before: Signatures,
    now: HashMap<&'a str, u64>,
}

impl<'a> Earlier<'a> {
    pub(super) fn of(ctx: &Context, newest: &Meta, now: &'a Stamped) -> Option<Self> {
        let folder = root().ok()?.join(ctx.project.as_str()).join(&newest.name);
        let before = read_signatures(&folder)?;
        let now = now
            .files
            .iter()
            .filter_map(|(path, sig)| Some((std::str::from_utf8(path).ok()?, *sig)))
            .collect();
        Some(Self {
            folder,
            before,
            now,
        })
    }

    /// Links into `extractor` each unsaved file whose signature is as it was at the
    /// snapshot before (and which that snapshot holds), makes their folders with the
    /// modes they had there, and gives the archive calls that fetch the rest; `None`
    /// where nothing is unchanged, or the rest would take more than [`MOST_CALLS`].
    pub(super) fn link(
        &self,
        assessment: &retire::assess::Assessment,
        extractor: &mut rescue::Extractor,
    ) -> Result<Option<(Vec<rescue::Root>, Linked)>> {
        let copy_of = |path: &str| self.folder.join(path.trim_start_matches('/'));
        let mut unchanged = HashMap::new();
        for change in &assessment.unsaved {
            let path = &*change.path;
            let same = self
                .now
                .get(path)
                .is_some_and(|sig| self.before.get(path) == Some(sig));
            let held = std::fs::symlink_metadata(copy_of(path))
                .ok()
                .filter(|m| !m.is_dir());
            if let (true, Some(meta)) = (same, held) {
                unchanged.insert(path.to_string(), meta.len());
            }
        }
        if unchanged.is_empty() {
            return Ok(None);
        }
        // The folders that hold an unchanged file are made here, not fetched whole.
        let mut holding: BTreeSet<String> = BTreeSet::new();
        for path in unchanged.keys() {
            let mut at = path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                if parent.is_empty() || !holding.insert(parent.to_string()) {
                    break;
                }
                at = parent;
            }
        }
        let mut rest = assessment.clone();
        rest.unsaved
            .retain(|c| !unchanged.contains_key(&*c.path) && !holding.contains(&*c.path));
        rest.added_dirs.retain(|d| !holding.contains(d));
        let roots = rescue::roots(&rest, &[], false);
        if roots.len() > MOST_CALLS {
            return Ok(None);
        }
        let failed = |failure: crate::unpack::Failure| {
            Error::failed(format!(
                "snapshot failed at {}: {}",
                failure.path, failure.reason
            ))
        };
        let mut linked = Linked::default();
        for (path, bytes) in &unchanged {
            extractor
                .link_from(path.as_bytes().to_vec(), &copy_of(path), *bytes)
                .map_err(failed)?;
            linked.files += 1;
            linked.bytes += bytes;
        }
        for dir in &holding {
            let Ok(meta) = std::fs::symlink_metadata(copy_of(dir)) else {
                continue;
            };
            use std::os::unix::fs::MetadataExt;
            let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
            extractor
                .put(
                    dir.as_bytes().to_vec(),
                    crate::unpack::Kind::Dir,
                    meta.mode() & 0o7777,
                    mtime,
                    &mut std::io::empty(),
                )
                .map_err(failed)?;
        }
        Ok(Some((roots, linked)))
    }
}
