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
use crate::spec::{MountKind, MountSpec};

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

/// Files an image holds at a path, by name below it and size: kept for a folder of at
/// most this many, so that a deploy can tell which a host folder already has.
pub const MAX_LISTED: usize = 1000;

/// What an image holds at a path: its count, and the names and sizes of its files
/// where there are at most [`MAX_LISTED`] of them, all named in UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    #[serde(flatten)]
    pub count: Count,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<Vec<(String, u64)>>,
}

impl Held {
    /// What of this a host folder `source` does not have, by name (and size, for a
    /// file): all of it where the listing is not known.
    pub fn missing_from(&self, source: &Path) -> Count {
        let Some(listing) = &self.listing else {
            return self.count;
        };
        let mut missing = Count {
            complete: true,
            ..Count::default()
        };
        for (name, size) in listing {
            let there = std::fs::symlink_metadata(source.join(name));
            let same = there.is_ok_and(|meta| !meta.is_file() || meta.len() == *size);
            if !same {
                missing.files += 1;
                missing.bytes += size;
            }
        }
        missing
    }
}

/// [`count`], and the listing of [`Held`]: names below the archive's root folder.
fn hold(archive: impl Read, budget: u64) -> io::Result<Held> {
    let mut held = Held {
        count: Count {
            complete: true,
            ..Count::default()
        },
        listing: Some(Vec::new()),
    };
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type() == tar::EntryType::Directory {
            continue;
        }
        held.count.files += 1;
        held.count.bytes += entry.size();
        if let Some(listing) = &mut held.listing {
            let path = entry.path_bytes();
            let below = path.splitn(2, |&b| b == b'/').nth(1).unwrap_or_default();
            match std::str::from_utf8(below) {
                Ok(name) if listing.len() < MAX_LISTED && !name.is_empty() => {
                    listing.push((name.to_string(), entry.size()))
                }
                _ => held.listing = None,
            }
        }
        if held.count.bytes > budget {
            held.count.complete = false;
            held.listing = None;
            break;
        }
    }
    Ok(held)
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

/// The empty image volume helpers are made of: they never run.
const EMPTY_IMAGE: (&str, &str) = ("berth/empty", "1");

/// Where a [`volume_helper`] mounts the `at`-th of its volumes.
pub fn volume_path(at: usize) -> String {
    format!("/v/{at}")
}

/// A container made of an empty image (imported the first time), created and never
/// started, that mounts each of `volumes` at [`volume_path`]: through its archive
/// endpoint, a volume is read or written with no tar or shell in any image. The
/// caller removes it ([`Engine::remove_helper`]). `name`: see
/// [`Engine::create_helper_with`].
pub async fn volume_helper(
    engine: &Engine,
    purpose: &str,
    volumes: &[&str],
    read_only: bool,
    name: Option<&str>,
) -> Result<String> {
    let image = format!("{}:{}", EMPTY_IMAGE.0, EMPTY_IMAGE.1);
    if engine.image_id(&image).await?.is_none() {
        // An empty tar: two zero blocks.
        let empty = vec![0u8; 1024];
        let labelled = (crate::label::HELPER, "empty");
        engine
            .import(EMPTY_IMAGE.0, EMPTY_IMAGE.1, labelled, empty)
            .await?;
    }
    let mounts = volumes
        .iter()
        .enumerate()
        .map(|(at, name)| MountSpec {
            kind: MountKind::Volume,
            read_only,
            ..MountSpec::bind(name.to_string(), volume_path(at), read_only)
        })
        .collect();
    engine
        .create_helper_with(&image, purpose, mounts, name)
        .await
}

/// What `image` (whose id is `image_id`) holds at each of `paths`; a path it does not
/// have holds nothing. Counted once per image id.
pub async fn image_holds(
    engine: &Engine,
    image: &str,
    image_id: &str,
    paths: &[String],
    state_dir: &Path,
) -> Result<BTreeMap<String, Held>> {
    let kept = kept_path(state_dir, image_id);
    let mut known: BTreeMap<String, Held> = kept
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
                    None => Held {
                        count: Count {
                            complete: true,
                            ..Default::default()
                        },
                        listing: Some(Vec::new()),
                    },
                    Some(_) => {
                        let reader = engine.download_reader(&helper, path);
                        let cannot = |why: String| {
                            Error::failed(format!("cannot read {path} in {image}: {why}"))
                        };
                        tokio::task::spawn_blocking(move || hold(reader, PROBE_BYTES))
                            .await
                            .map_err(|err| cannot(err.to_string()))?
                            .map_err(|err| cannot(crate::error::io_reason(&err)))?
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
        .filter_map(|path| Some((path.clone(), known.get(path)?.clone())))
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
    fn what_a_host_folder_already_has_is_not_hidden() {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("root/.bashrc", &b"alias ll=ls"[..]),
            ("root/.profile", b"x"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, data).unwrap();
        }
        let held = hold(tar.into_inner().unwrap().as_slice(), 100).unwrap();
        assert_eq!(
            held.listing.as_deref().unwrap(),
            [(".bashrc".to_string(), 11), (".profile".to_string(), 1)]
        );
        let home = tempfile::tempdir().unwrap();
        assert_eq!(held.missing_from(home.path()).files, 2);
        std::fs::write(home.path().join(".bashrc"), b"alias ll=ls").unwrap();
        std::fs::write(home.path().join(".profile"), b"longer now").unwrap();
        let missing = held.missing_from(home.path());
        assert_eq!(
            (missing.files, missing.bytes),
            (1, 1),
            "a changed size counts"
        );
        std::fs::write(home.path().join(".profile"), b"y").unwrap();
        assert_eq!(held.missing_from(home.path()).files, 0);
        let unlisted = Held {
            listing: None,
            ..held
        };
        assert_eq!(unlisted.missing_from(home.path()).files, 2);
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
