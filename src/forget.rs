//! `berth forget PROJECT --volumes`: removes what berth otherwise never removes, the
//! project's persisted volumes, with retire's consent rules. The project's container
//! must be gone first (a volume in use is the container's). Each volume is read
//! through the archive endpoint of a helper container that mounts it and never runs,
//! so no image needs a shell: an empty volume goes without a question; one that holds
//! files is asked about on a terminal, and refused without one unless `--yes`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::ForgetArgs;
use crate::content;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::host::{HostUser, Paths, ProjectName};
use crate::label;
use crate::lock::Lock;
use crate::ui::{self, Printer};
use crate::units::human_size;

/// The [`label::HELPER`] value of a probe.
const PURPOSE: &str = "volume-probe";

/// One persisted volume, as forget found it.
#[derive(Debug, Serialize)]
struct Found {
    volume: String,
    path: String,
    files: u64,
    bytes: u64,
    /// False when the count stopped at 64 MiB: "at least".
    complete: bool,
}

#[derive(Serialize)]
struct Outcome<'a> {
    project: &'a str,
    /// `removed`, `would_remove`, `kept` (you said no) or `refused` (no terminal).
    action: &'static str,
    volumes: &'a [Found],
}

pub async fn forget(args: &ForgetArgs, printer: &Printer) -> Result<()> {
    if !args.volumes {
        return Err(Error::usage(
            "say what to forget: --volumes (the persisted volumes)",
        ));
    }
    let project = ProjectName::parse(&args.project)?;
    let user = HostUser::current();
    let engine = Engine::connect().await?;
    // Not while a deploy of the project makes them, or mounts them.
    let state_dir = Paths::from_env()?.state_dir;
    let _held = Lock::project(&state_dir, project.as_str(), printer).await?;
    if let Some(container) = engine.find(project.as_str(), user.uid).await? {
        return Err(Error::refused(format!(
            "{} exists and mounts the project's volumes: not forgetting them",
            container.name
        ))
        .hint(format!("`berth retire {project}` first")));
    }
    let filters = vec![
        label::PERSIST.to_string(),
        format!("{}={}", label::USER, user.uid),
        format!("{}={project}", label::PROJECT),
    ];
    let volumes = engine.volumes_labelled(filters).await?;
    if volumes.is_empty() {
        printer.note(&format!("project {project} has no persisted volumes"));
        if args.json {
            printer.json(&Outcome {
                project: project.as_str(),
                action: "removed",
                volumes: &[],
            });
        }
        return Ok(());
    }
    let found = probe(&engine, volumes).await?;
    for volume in &found {
        printer.note(&format!(
            "{}  {}  {}",
            volume.path,
            volume.volume,
            held(volume)
        ));
    }
    let files: u64 = found.iter().map(|v| v.files).sum();
    let action = if args.dry_run {
        printer.note("dry run: nothing was removed");
        "would_remove"
    } else if files == 0 || args.yes {
        "removed"
    } else {
        let question = format!(
            "Remove {} volume(s) of {project} and lose the {files} file(s) in them?",
            found.len()
        );
        let answer = tokio::task::spawn_blocking(move || ui::confirm(&question))
            .await
            .map_err(|err| Error::failed(format!("cannot ask: {err}")))??;
        match answer {
            Some(true) => "removed",
            Some(false) => "kept",
            None => "refused",
        }
    };
    if action == "removed" {
        for volume in &found {
            engine.remove_volume(&volume.volume).await?;
        }
    }
    if args.json {
        printer.json(&Outcome {
            project: project.as_str(),
            action,
            volumes: &found,
        });
    }
    match action {
        "removed" => {
            printer.note(&format!("removed {} volume(s) of {project}", found.len()));
            Ok(())
        }
        "kept" => Err(Error::refused(
            "kept them: you answered no; nothing was removed",
        )),
        "refused" => Err(Error::refused(format!(
            "the volumes of {project} hold {files} file(s); not removing them without your \
             consent"
        ))
        .hint("--yes removes them anyway; --dry-run shows them")),
        _ => Ok(()),
    }
}

/// `12 files, 3.4 MiB`, or `empty`.
fn held(volume: &Found) -> String {
    if volume.files == 0 {
        return "empty".to_string();
    }
    let at_least = if volume.complete { "" } else { "at least " };
    format!(
        "{at_least}{} file(s), {}",
        volume.files,
        human_size(volume.bytes)
    )
}

/// Counts what each volume holds, through one helper container that mounts them all
/// and never runs; the helper goes, whatever happens.
async fn probe(
    engine: &Engine,
    volumes: Vec<(String, BTreeMap<String, String>)>,
) -> Result<Vec<Found>> {
    let names: Vec<&str> = volumes.iter().map(|(name, _)| name.as_str()).collect();
    let id = content::volume_helper(engine, PURPOSE, &names, true, None).await?;
    let counted = async {
        let mut found = Vec::new();
        for (at, (volume, labels)) in volumes.into_iter().enumerate() {
            let path = content::volume_path(at);
            let count = content::count_in(engine, &id, &path, &format!("volume {volume}")).await?;
            found.push(Found {
                path: labels.get(label::PERSIST).cloned().unwrap_or_default(),
                volume,
                files: count.files,
                bytes: count.bytes,
                complete: count.complete,
            });
        }
        Ok::<_, Error>(found)
    }
    .await;
    engine.remove_helper(&id).await.ok();
    counted
}
