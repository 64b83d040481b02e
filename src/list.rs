//! `berth list`: the caller's berth containers (or everyone's with `--all`), with the
//! GPUs each holds, and with `--size` the unsaved changes in each.

use serde::Serialize;

use crate::cli::ListArgs;
use crate::container::{ContainerInfo, State};
use crate::engine::Engine;
use crate::error::Result;
use crate::gpu::readings::{self, Reading};
use crate::host::HostUser;
use crate::ui::Printer;

#[derive(Serialize)]
struct Listing<'a> {
    containers: Vec<Row<'a>>,
    /// The `persist` volumes, whether a container mounts them or not.
    volumes: Vec<Persisted>,
}

/// A `persist` volume: it outlives the project's containers.
#[derive(Serialize)]
struct Persisted {
    /// The docker context of its engine.
    context: String,
    project: String,
    /// The owner's uid.
    user: String,
    path: String,
    volume: String,
}

/// One container as listed.
#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    container: &'a ContainerInfo,
    /// The docker context of its engine.
    context: &'a str,
    /// Paused by a berth retire that was killed while it checked the container: the
    /// next deploy, retire, shell or reap of the project resumes it.
    abandoned_pause: bool,
    /// What `berth reap` last read of the GPUs it holds: the highest utilisation.
    gpu_utilisation: Option<Reading>,
    /// The Slurm job that holds it, where `deploy --slurm` placed it.
    slurm: Option<crate::slurm::Listed>,
}

/// A reading as the table shows it: `37% 5m ago`.
fn shown(reading: Reading) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ago = now.saturating_sub(reading.at_ms / 1000);
    match ago {
        0 => format!("{:.0}% just now", reading.percent),
        secs => format!(
            "{:.0}% {} ago",
            reading.percent,
            crate::units::span(std::time::Duration::from_secs(secs))
        ),
    }
}

pub async fn list(args: &ListArgs, printer: &Printer) -> Result<()> {
    let engines = match args.all_contexts {
        false => {
            let engine = Engine::connect().await?;
            vec![(engine.endpoint.context().to_string(), engine)]
        }
        true => {
            let mut engines = Vec::new();
            for name in crate::endpoint::context_names()? {
                match Engine::connect_to_context(&name).await {
                    Ok(engine) => engines.push((name, engine)),
                    Err(err) => printer.warn(&format!("context {name}: {}", err.message)),
                }
            }
            engines
        }
    };
    let uid = (!args.all).then(|| HostUser::current().uid);
    // Sizes are the engine's slowest answer (it walks each container's writable layer,
    // tens of milliseconds a container, a hundred times what the list costs): as with
    // `docker ps`, asked only with --size.
    let sizes = args.size && !printer.quiet();
    let mut filters = vec![crate::label::PERSIST.to_string()];
    filters.extend(uid.map(|uid| format!("{}={uid}", crate::label::USER)));
    let mut found: Vec<(&str, ContainerInfo)> = Vec::new();
    let mut volumes: Vec<Persisted> = Vec::new();
    for (context, engine) in &engines {
        let (containers, labelled) = tokio::join!(
            engine.list(uid, None, sizes),
            engine.volumes_labelled(filters.clone())
        );
        found.extend(containers?.into_iter().map(|c| (context.as_str(), c)));
        volumes.extend(labelled?.into_iter().map(|(volume, labels)| {
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            Persisted {
                context: context.clone(),
                project: label(crate::label::PROJECT),
                user: label(crate::label::USER),
                path: label(crate::label::PERSIST),
                volume,
            }
        }));
    }
    volumes
        .sort_by(|a, b| (&a.context, &a.project, &a.path).cmp(&(&b.context, &b.project, &b.path)));
    let containers: Vec<&ContainerInfo> = found.iter().map(|(_, c)| c).collect();
    let paths = crate::host::Paths::from_env()?;
    let state_dir = &paths.state_dir;
    let held = containers.iter().any(|c| !c.gpus.is_empty());
    let read = match held {
        true => {
            let policy = crate::config::policy::Policy::read(&paths.policy)
                .ok()
                .flatten()
                .unwrap_or_default();
            readings::load(&policy, state_dir)
        }
        false => readings::Readings::new(),
    };
    let jobs = crate::slurm::jobs_by_container();
    let rows: Vec<Row> = found
        .iter()
        .map(|(context, container)| Row {
            container,
            context,
            abandoned_pause: container.state == State::Paused
                && crate::paused::left_by_a_dead_berth(state_dir, &container.id),
            gpu_utilisation: read
                .get(&container.id)
                .copied()
                .filter(|_| !container.gpus.is_empty()),
            slurm: jobs.get(&container.name).cloned(),
        })
        .collect();
    if args.json {
        printer.json(&Listing {
            containers: rows,
            volumes,
        });
        return Ok(());
    }
    if printer.quiet() {
        // As `docker ps -q` gives ids: one per line, for scripts. Projects are what the
        // other commands take; with --all two people may share one, so names are given.
        for c in &containers {
            printer.line(if args.all { &c.name } else { &c.project });
        }
        return Ok(());
    }
    let persisted = |printer: &Printer| {
        if volumes.is_empty() {
            return;
        }
        printer.line("");
        let mut rows = vec![vec![
            "PERSISTED".to_string(),
            "PATH".to_string(),
            "VOLUME".to_string(),
        ]];
        rows.extend(
            volumes
                .iter()
                .map(|v| vec![v.project.clone(), v.path.clone(), v.volume.clone()]),
        );
        printer.table(&rows);
    };
    if containers.is_empty() {
        printer.note("no berth containers; `berth deploy PROJECT` creates one");
        persisted(printer);
        return Ok(());
    }
    let dash_if_empty = |text: String| if text.is_empty() { "-".into() } else { text };
    type Cell = fn(&Row) -> String;
    let columns: [(&str, bool, Cell); 11] = [
        ("CONTEXT", args.all_contexts, |r| r.context.to_string()),
        ("PROJECT", true, |r| r.container.project.clone()),
        ("UID", args.all, |r| r.container.user.clone()),
        ("STATE", true, |r| match r.abandoned_pause {
            true => format!(
                "{} (left by a killed retire; `berth deploy {}` resumes it)",
                r.container.status, r.container.project
            ),
            false => r.container.status.clone(),
        }),
        ("IMAGE", true, |r| r.container.image.clone()),
        ("SLURM JOB", !jobs.is_empty(), |r| {
            r.slurm.as_ref().map_or_else(String::new, |j| {
                format!("{} on {} ({})", j.job, j.node, j.state)
            })
        }),
        ("GPUS", true, |r| r.container.gpus.join(",")),
        ("GPU%", held, |r| {
            r.gpu_utilisation.map_or_else(String::new, shown)
        }),
        ("UNSAVED", sizes, |r| {
            r.container
                .size_rw
                .map_or_else(String::new, |b| crate::units::human_size(b.max(0) as u64))
        }),
        ("WORKSPACE", true, |r| r.container.workspace.clone()),
        ("DATA", true, |r| r.container.data.clone()),
    ];
    let shown: Vec<&(&str, bool, Cell)> = columns.iter().filter(|(_, on, _)| *on).collect();
    let header = shown.iter().map(|(name, _, _)| name.to_string()).collect();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(rows.iter().map(|r| {
            shown
                .iter()
                .map(|(_, _, cell)| dash_if_empty(cell(r)))
                .collect()
        }))
        .collect();
    printer.table(&rows);
    persisted(printer);
    Ok(())
}
