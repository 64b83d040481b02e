//! What berth remembers of a project between its containers, in the caller's state
//! dir: the image its last deploy used or its last build made, so that
//! `container-deploy P` after a retire starts what `--image X` started before, and
//! after `berth build P` the new build. One small JSON file per
//! project, `projects/<project>.json`, written whole; the container never sees it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::files;

/// The image a project's last deploy used (or last build made), and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub image: String,
    /// RFC 3339, UTC.
    pub deployed: String,
    /// `deploy` or `build`: what chose it.
    #[serde(default = "by_deploy")]
    pub by: String,
    /// The image a generated build was made from (the saved package lists on top of
    /// it): the next generated build starts from it again, never from its own result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

fn by_deploy() -> String {
    "deploy".to_string()
}

/// The file that holds `project`'s memory.
pub fn path(state_dir: &Path, project: &str) -> PathBuf {
    state_dir.join("projects").join(format!("{project}.json"))
}

/// The image `project` last deployed, if berth remembers one. A file that cannot be
/// read or parsed is no memory: the deploy then asks for an image, as for a new
/// project.
pub fn image(state_dir: &Path, project: &str) -> Option<Image> {
    let text = std::fs::read(path(state_dir, project)).ok()?;
    let image: Image = serde_json::from_slice(&text).ok()?;
    (!image.image.is_empty()).then_some(image)
}

/// Every project's memory in `state_dir`: the images that its next deploys start, or
/// build on.
pub fn all(state_dir: &Path) -> Vec<(String, Image)> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("projects")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let project = name.strip_suffix(".json")?.to_string();
            let image = image(state_dir, &project)?;
            Some((project, image))
        })
        .collect()
}

/// Remembers `image` as `project`'s, chosen `by` a `deploy` or a `build` (and built
/// on `base`, where it is a generated build), unless it already is.
pub fn remember_image(
    state_dir: &Path,
    project: &str,
    image: &str,
    by: &str,
    base: Option<&str>,
) -> std::io::Result<()> {
    if self::image(state_dir, project)
        .is_some_and(|known| known.image == image && known.base.as_deref() == base)
    {
        return Ok(());
    }
    let path = path(state_dir, project);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let memory = Image {
        image: image.to_string(),
        deployed: clock::rfc3339(SystemTime::now()),
        by: by.to_string(),
        base: base.map(str::to_string),
    };
    let text = serde_json::to_string_pretty(&memory).unwrap_or_default();
    files::write_atomically(&path, format!("{text}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_remembered_per_project_and_replaced_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(image(dir.path(), "p"), None);
        remember_image(dir.path(), "p", "img:1", "deploy", None).unwrap();
        assert_eq!(image(dir.path(), "p").unwrap().image, "img:1");
        assert_eq!(image(dir.path(), "q"), None);
        remember_image(dir.path(), "p", "img:2", "build", None).unwrap();
        assert_eq!(image(dir.path(), "p").unwrap().by, "build");
        assert_eq!(image(dir.path(), "p").unwrap().image, "img:2");
        assert_eq!(image(dir.path(), "p").unwrap().base, None);
        remember_image(dir.path(), "p", "img:3", "deploy", Some("img:1")).unwrap();
        assert_eq!(
            image(dir.path(), "p").unwrap().base.as_deref(),
            Some("img:1")
        );
    }

    #[test]
    fn a_damaged_memory_is_no_memory() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), "p");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        for text in ["", "{", "{\"image\": \"\", \"deployed\": \"x\"}", "[1]"] {
            std::fs::write(&file, text).unwrap();
            assert_eq!(image(dir.path(), "p"), None, "{text:?}");
        }
    }
}
