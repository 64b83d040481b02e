//! `berth images [PROJECT]`: your images of berth's, `berth/<user>/<project>:<tag>`:
//! the builds (`berth build`, labelled with their input hash) and the commits
//! (`retire --commit`), with size, age and the containers that use each.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::build::INPUT;
use crate::cli::ImagesArgs;
use crate::clock;
use crate::engine::Engine;
use crate::error::Result;
use crate::host::{image_component, image_repo, HostUser, ProjectName};
use crate::ui::Printer;
use crate::units::human_size;

#[derive(Debug, Serialize)]
struct Listed {
    image: String,
    id: String,
    /// `build` or `commit`.
    kind: &'static str,
    size: u64,
    /// RFC 3339, UTC.
    created: String,
    /// Your containers made from it.
    used_by: Vec<String>,
}

pub async fn images(args: &ImagesArgs, printer: &Printer) -> Result<()> {
    let user = HostUser::current();
    let reference = match &args.project {
        Some(project) => {
            let project = ProjectName::parse(project)?;
            image_repo(&user.name, project.as_str())
        }
        None => format!("berth/{}/*", image_component(&user.name)),
    };
    let engine = Engine::connect().await?;
    let (images, containers) = tokio::join!(
        engine.images_named(&reference),
        engine.list(Some(user.uid), None, false)
    );
    let containers = containers?;
    let mut listed: Vec<Listed> = images?
        .into_iter()
        .map(|image| Listed {
            kind: if image.labels.contains_key(INPUT) {
                "build"
            } else {
                "commit"
            },
            used_by: containers
                .iter()
                .filter(|c| c.image == image.tag || c.image == image.id)
                .map(|c| c.name.clone())
                .collect(),
            created: clock::rfc3339(
                SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(image.created).unwrap_or(0)),
            ),
            image: image.tag,
            id: image.id,
            size: image.size,
        })
        .collect();
    // Newest first, then by name.
    listed.sort_by(|a, b| b.created.cmp(&a.created).then(a.image.cmp(&b.image)));
    if args.json {
        printer.json(&serde_json::json!({ "images": listed }));
        return Ok(());
    }
    let mut rows = vec![vec![
        "IMAGE".to_string(),
        "KIND".to_string(),
        "SIZE".to_string(),
        "CREATED".to_string(),
        "USED BY".to_string(),
    ]];
    for image in &listed {
        rows.push(vec![
            image.image.clone(),
            image.kind.to_string(),
            human_size(image.size),
            image.created.clone(),
            image.used_by.join(","),
        ]);
    }
    for line in crate::ui::table(&rows) {
        printer.line(line.trim_end());
    }
    Ok(())
}
