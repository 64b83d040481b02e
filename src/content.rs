//! What an image holds at a container path: counted through the archive endpoint of a
//! helper container made from the image (created, never started, removed), and kept
//! per image id in the state dir, since an image never changes under its id. A deploy
//! asks it to say what a mount hides.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};

/// The most of a folder's contents read to count it.
pub const PROBE_BYTES: u64 = 64 << 20;

/// How much an archive holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Entries that are not directories.
    pub files: u64,
    pub bytes: u64,
    /// False when the count stopped at the budget.
    pub complete: bool,
}

/// Counts an archive's files and bytes, reading at most `budget` bytes of their
/// contents: enough to tell a folder holds data without streaming all of it.
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
            // Reading on would stream the rest of the folder.
            count.complete = false;
            break;
        }
    }
    Ok(count)
}

/// Counts what `path` holds in container `id`, up to [`PROBE_BYTES`]; `what` names it
/// in an error (`volume x`).
pub async fn count_in(engine: &Engine, id: &str, path: &str, what: &str) -> Result<Count> {
    let reader = engine.download_reader(id, path);
    let cannot = |why: String| Error::failed(format!("cannot read {what}: {why}"));
    tokio::task::spawn_blocking(move || count(reader, PROBE_BYTES))
        .await
        .map_err(|err| cannot(err.to_string()))?
        .map_err(|err| cannot(crate::error::io_reason(&err)))
}

/// What `image` (whose id is `image_id`) holds at each of `paths`; a path it does not
/// have holds nothing. Counted once per image id.
pub async fn image_holds(
    engine: &Engine,
    image: &str,
    image_id: &str,
    paths: &[String],
    state_dir: &Path,
) -> Result<BTreeMap<String, Count>> {
    let kept = kept_path(state_dir, image_id);
    let mut known: BTreeMap<String, Count> = kept
        .as_deref()
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|text| serde_json::from_slice(&text).ok())
        .unwrap_or_default();
    let missing: Vec<&String> = paths.iter().filter(|p| !known.contains_key(*p)).collect();
    if !missing.is_empty() {
        let helper = engine.create_helper(image, "content").await?;
        let counted = async {
            for path in missing {
                let held = match engine.stat(&helper, path).await? {
                    None => Count {
                        complete: true,
                        ..Default::default()
                    },
                    Some(_) => {
                        count_in(engine, &helper, path, &format!("{path} in {image}")).await?
                    }
                };
                known.insert(path.clone(), held);
            }
            Ok::<_, Error>(())
        }
        .await;
        engine.remove_helper(&helper).await.ok();
        counted?;
        if let Some(path) = &kept {
            // Only a convenience for the next deploy of the image.
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            let text = serde_json::to_vec(&known).unwrap_or_default();
            crate::files::write_atomically(path, &text).ok();
        }
    }
    Ok(paths
        .iter()
        .filter_map(|path| Some((path.clone(), *known.get(path)?)))
        .collect())
}

/// `$STATE/images/<hex>.json` for image id `sha256:<hex>`; `None` for an id of any
/// other form, which is kept nowhere.
fn kept_path(state_dir: &Path, image_id: &str) -> Option<PathBuf> {
    let hex = image_id.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| state_dir.join("images").join(format!("{hex}.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_counted_up_to_its_budget() {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, size) in [("a", 10usize), ("b", 20), ("c", 30)] {
            let mut header = tar::Header::new_gnu();
            header.set_size(size as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, vec![0u8; size].as_slice())
                .unwrap();
        }
        let bytes = tar.into_inner().unwrap();
        let all = count(bytes.as_slice(), 100).unwrap();
        assert_eq!((all.files, all.bytes, all.complete), (3, 60, true));
        let some = count(bytes.as_slice(), 25).unwrap();
        assert_eq!((some.files, some.complete), (2, false));
    }

    #[test]
    fn only_a_true_image_id_is_kept() {
        let dir = Path::new("/state");
        let id = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            kept_path(dir, &id).unwrap(),
            PathBuf::from(format!("/state/images/{}.json", "a".repeat(64)))
        );
        assert_eq!(kept_path(dir, "sha256:../../x"), None);
        assert_eq!(kept_path(dir, "img:1"), None);
    }
}
