//! `berth list`: the caller's berth containers (or everyone's with `--all`), with the
//! GPUs each holds, and with `--size` the unsaved changes in each.

use serde::Serialize;

use crate::cli::ListArgs;
use crate::engine::{ContainerInfo, Engine};
use crate::error::Result;
use crate::host::HostUser;
use crate::ui::{self, Printer};

#[derive(Serialize)]
struct Listing<'a> {
    containers: &'a [ContainerInfo],
}

pub async fn list(args: &ListArgs, printer: &Printer) -> Result<()> {
    let engine = Engine::connect().await?;
    let uid = (!args.all).then(|| HostUser::current().uid);
    // Sizes are the engine's slowest answer (it walks each container's writable layer,
    // tens of milliseconds a container, a hundred times what the list costs): as with
    // `docker ps`, asked only with --size.
    let sizes = args.size && !printer.quiet();
    let containers = engine.list(uid, None, sizes).await?;
    if args.json {
        printer.json(&Listing {
            containers: &containers,
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
    if containers.is_empty() {
        printer.note("no berth containers; `berth deploy PROJECT` creates one");
        return Ok(());
    }
    let mut rows = vec![vec![
        "PROJECT".to_string(),
        "STATE".into(),
        "IMAGE".into(),
        "GPUS".into(),
        "WORKSPACE".into(),
        "DATA".into(),
    ]];
    if sizes {
        rows[0].insert(4, "UNSAVED".into());
    }
    if args.all {
        rows[0].insert(1, "UID".into());
    }
    for c in &containers {
        let mut row = vec![
            c.project.clone(),
            c.status.clone(),
            c.image.clone(),
            if c.gpus.is_empty() {
                "-".into()
            } else {
                c.gpus.join(",")
            },
            c.workspace.clone(),
            if c.data.is_empty() {
                "-".into()
            } else {
                c.data.clone()
            },
        ];
        if sizes {
            let size = c.size_rw;
            row.insert(
                4,
                size.map_or_else(|| "-".into(), |b| ui::human_size(b.max(0) as u64)),
            );
        }
        if args.all {
            row.insert(1, c.user.clone());
        }
        rows.push(row);
    }
    let mut lines = ui::table(&rows).into_iter();
    if let Some(header) = lines.next() {
        printer.line(&printer.bold(&header));
    }
    for line in lines {
        printer.line(&line);
    }
    Ok(())
}
