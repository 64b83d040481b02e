//! A new workspace or persistent home, seeded with what the image has at its target
//! (`/workspace`, `$HOME`), as docker seeds an empty named volume: copied through the
//! archive endpoint of a helper container of the image (created, never started,
//! removed), into `.<name>.partial` beside the folder, owned by the owner of the folder
//! it is made in, and renamed into place when complete. A folder that exists is never
//! written into: the rename refuses to replace one that appeared meanwhile.

use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::unpack::{Extractor, Folder, Special};

/// What a seed copied.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub path: PathBuf,
    pub target: String,
    pub files: u64,
    pub bytes: u64,
    /// FIFOs and device nodes the image has there, which are not copied.
    pub special: Vec<Special>,
}

/// Makes the folder `path`, which must not exist, holding a copy of what container
/// `helper` (of the image) has at `target`.
pub async fn seed(engine: &Engine, helper: &str, target: &str, path: &Path) -> Result<Seeded> {
    let cannot = |why: String| {
        Error::failed(format!(
            "cannot seed {} from the image's {target}: {why}",
            path.display()
        ))
    };
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return Err(cannot("it has no parent folder".into()));
    };
    std::fs::create_dir_all(parent).map_err(|err| Error::io("create", parent, err))?;
    let folder = Folder::exact(parent, name).map_err(|err| cannot(err.to_string()))?;
    let partial = folder.partial_path();
    let mut extractor = Extractor::new(folder).standing_for(target);
    let mut queue = vec![target.to_string()];
    let copied = async move {
        while let Some(root) = queue.pop() {
            let reader = engine.download_reader(helper, &root);
            let (back, result) = tokio::task::spawn_blocking(move || {
                let result = extractor.extract(&root, reader, |_| true);
                (extractor, result)
            })
            .await
            .map_err(|err| cannot(err.to_string()))?;
            extractor = back;
            result.map_err(|failure| cannot(format!("{}: {}", failure.path, failure.reason)))?;
            // A hard link to a file outside the target comes as the file it is.
            queue.append(&mut extractor.pending);
        }
        let (files, bytes, special) = (
            extractor.files,
            extractor.bytes,
            std::mem::take(&mut extractor.special),
        );
        let path = extractor
            .complete()
            .map_err(|failure| cannot(format!("{}: {}", failure.path, failure.reason)))?;
        Ok(Seeded {
            path,
            target: target.to_string(),
            files,
            bytes,
            special,
        })
    }
    .await;
    if copied.is_err() {
        // Only copies of the image's files, in a folder no one else knows of.
        std::fs::remove_dir_all(&partial).ok();
    }
    copied
}
