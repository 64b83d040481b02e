//! `berth snapshot PROJECT` and `berth snapshots PROJECT`: copies of what a container
//! holds that exists nowhere else (what retire would rescue), taken while it lives, so
//! that an admin's `docker rm -f`, a prune or a lost disk takes less with it.
//!
//! A snapshot is `<XDG data dir>/berth/snapshots/<project>/<UTC time>/`, the unsaved
//! paths below it as they are in the container, with `<UTC time>.json` beside it (the
//! container, the files, the bytes, the pause). It is outside the workspace, where the
//! container cannot reach it. The container, if it runs, is paused while its changes
//! are listed and copied (recorded like retire's pause, so that a snapshot killed
//! outright leaves no frozen job), and the pause is in the event log. The copy is
//! written as `<time>.partial` and renamed when every unsaved file is in it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::backup::Done;
use crate::cli::{SnapshotArgs, SnapshotsArgs};
use crate::clock::{parse_rfc3339, rfc3339, utc_stamp};
use crate::config::file::FileConfig;
use crate::container::{ContainerInfo, State};
use crate::context::Context;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events;
use crate::glob::Patterns;
use crate::layer::Stamped;
use crate::lock::Lock;
use crate::retire::{self, rescue};
use crate::ui::Printer;
use crate::units::{human_size, span};
use incremental::{signatures_path, write_signatures, Earlier, Linked};

mod budget;
mod incremental;
mod restore;

/// What `<time>.json` beside a snapshot says of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// When it was taken, RFC 3339.
    pub taken: String,
    /// The snapshot's folder name: its UTC time, `-2`… when two fell in one second.
    pub name: String,
    pub container: String,
    pub container_id: String,
    pub image: String,
    pub files: u64,
    pub bytes: u64,
    /// How long the container was held paused, in milliseconds; none if it was not
    /// running.
    pub paused_ms: Option<u64>,
    /// Whether what `[retire] disposable` names was copied too.
    pub all: bool,
    /// FIFOs, sockets and device nodes: listed, not copied.
    pub not_copied: Vec<String>,
    /// The stamp of the layer walk it was taken after
    /// ([`crate::layer::overlay::Stamp`]): a later walk with the same one takes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<String>,
    /// The container paths it was copied from, each whole: what `--restore` reads back
    /// to compare.
    #[serde(default)]
    pub roots: Vec<String>,
    /// Of `files` and `bytes`, what was unchanged since the snapshot before and is a
    /// hard link to its copy there, not copied again.
    #[serde(default)]
    pub linked: u64,
    #[serde(default)]
    pub linked_bytes: u64,
}

/// What [`take`] did.
#[derive(Debug)]
pub enum Taken {
    /// A new snapshot, described, and its folder.
    Snapshot(Box<Meta>, PathBuf),
    /// The container holds no unsaved changes.
    Empty,
    /// The layer is as it was when the newest snapshot (named) was taken.
    Unchanged(String),
}

/// One snapshot as `berth snapshots` lists it.
#[derive(Debug, Serialize)]
struct Listed {
    #[serde(flatten)]
    meta: Meta,
    path: PathBuf,
    /// Whether the container it was taken from still exists.
    container_exists: bool,
}

pub async fn snapshot(args: &SnapshotArgs, printer: &Printer) -> Result<()> {
    let ctx = Context::load(&args.project, &FileConfig::default())?;
    ctx.warn(printer);
    if let Some(time) = &args.restore {
        return restore::restore(&ctx, time, args.force, args.json, printer).await;
    }
    if args.scheduled {
        let done = scheduled(&ctx, printer).await?;
        if args.json {
            printer.json(&done);
        }
        return Ok(());
    }
    let engine = Engine::connect().await?;
    let _held = Lock::project(&ctx.paths.state_dir, ctx.project.as_str(), printer).await?;
    let taken = take(&engine, &ctx, args.all, printer).await?;
    let newest = match &taken {
        Taken::Snapshot(meta, path) => {
            within_budget(&ctx, path, printer)?;
            printer.note(&format!(
                "snapshot of {}: {} file(s), {}, in {}{}",
                meta.container,
                meta.files,
                human_size(meta.bytes),
                path.display(),
                meta.paused_ms
                    .map_or(String::new(), |ms| format!(" (paused {ms} ms)"))
            ));
            Some(Listed {
                meta: (**meta).clone(),
                path: path.clone(),
                container_exists: true,
            })
        }
        Taken::Empty => {
            printer.note(&format!(
                "{} holds no unsaved changes: no snapshot taken",
                ctx.project
            ));
            None
        }
        Taken::Unchanged(name) => {
            printer.note(&format!(
                "{}'s changes are as they were at snapshot {name}: no snapshot taken",
                ctx.project
            ));
            None
        }
    };
    if args.json {
        printer.json(&newest);
    }
    Ok(())
}

/// The snapshots a project keeps when `[snapshot] keep` is not set.
pub const DEFAULT_KEEP: usize = 5;

/// Takes the project's snapshot if `[snapshot] every` (within the policy's bounds)
/// says one is due, then removes its oldest snapshots past `keep`.
async fn scheduled(ctx: &Context, printer: &Printer) -> Result<Done> {
    let project = ctx.project.as_str();
    let settings = &ctx.settings;
    let asked = settings.snapshot_every.as_ref().map(|e| e.value);
    let keep = settings
        .snapshot_keep
        .as_ref()
        .map_or(DEFAULT_KEEP, |k| k.value);
    let (every, keep) = match &ctx.policy {
        Some((_, policy)) => policy.snapshot.bound(asked, keep),
        None => (asked, keep.max(1)),
    };
    let all = settings.snapshot_all.as_ref().is_some_and(|a| a.value);
    let mut done = Done {
        job: "snapshot".to_string(),
        project: project.to_string(),
        outcome: String::new(),
        reason: String::new(),
        path: None,
        pruned: Vec::new(),
    };
    let mut say = |outcome: &str, reason: String| {
        done.outcome = outcome.to_string();
        done.reason = reason;
    };
    let Some(every) = every else {
        say(
            "unscheduled",
            "no [snapshot] every in the policy or the config".into(),
        );
        printer.note(&format!("no snapshot of {project}: {}", done.reason));
        return Ok(done);
    };
    let engine = &Engine::connect().await?;
    let _held = Lock::project(&ctx.paths.state_dir, project, printer).await?;
    let folder = root()?.join(project);
    let newest = metas_in(&folder)?.pop();
    let now = SystemTime::now();
    let newest_at = newest.as_ref().and_then(|m| parse_rfc3339(&m.taken));
    match (&newest, newest_at) {
        (Some(newest), Some(at)) if !crate::backup::due(at, now, every) => say(
            "not-due",
            format!(
                "the newest, {}, is younger than every {}",
                newest.name,
                span(every)
            ),
        ),
        (Some(newest), _) if !ran_since(engine, ctx, newest).await? => say(
            "unchanged",
            format!("its container has not run since {}", newest.name),
        ),
        _ => match take(engine, ctx, all, printer).await? {
            Taken::Snapshot(meta, path) => {
                say("taken", format!("{} file(s)", meta.files));
                done.pruned = within_budget(ctx, &path, printer)?;
                done.path = Some(path);
            }
            Taken::Empty => say("empty", "no unsaved changes".into()),
            Taken::Unchanged(name) => say(
                "unchanged",
                format!("its changes are as they were at {name}"),
            ),
        },
    }
    if done.outcome != "taken" {
        printer.note(&format!("no snapshot of {project}: {}", done.reason));
    }
    let metas = metas_in(&folder)?;
    for old in &metas[..metas.len().saturating_sub(keep)] {
        let path = folder.join(&old.name);
        remove(&path)?;
        printer.note(&format!(
            "removed {}: [snapshot] keep = {keep}",
            path.display()
        ));
        done.pruned.push(path);
    }
    Ok(done)
}

/// Keeps the user's snapshots within the policy's `[snapshot] budget`, if it sets one,
/// never removing `taken`; the ones removed.
fn within_budget(ctx: &Context, taken: &Path, printer: &Printer) -> Result<Vec<PathBuf>> {
    let budget = ctx
        .policy
        .as_ref()
        .and_then(|(_, policy)| policy.snapshot.budget.as_ref().map(|b| b.0));
    match budget {
        Some(budget) => budget::enforce(&root()?, budget, taken, printer),
        None => Ok(Vec::new()),
    }
}

/// Whether the project's container may have changed its layer since snapshot `newest`
/// was taken: it is another container, it runs, or it stopped after.
async fn ran_since(engine: &Engine, ctx: &Context, newest: &Meta) -> Result<bool> {
    let Some(container) = engine.find(ctx.project.as_str(), ctx.user.uid).await? else {
        return Ok(true);
    };
    if container.id != newest.container_id || container.state != State::Stopped {
        return Ok(true);
    }
    let inspected = engine.inspect(&container.id).await?;
    let finished = parse_rfc3339(&inspected.timeline.finished_at);
    let taken = parse_rfc3339(&newest.taken);
    Ok(match (finished, taken) {
        (Some(finished), Some(taken)) => finished >= taken,
        _ => true,
    })
}

/// Removes snapshot `path`, its description and its signatures.
fn remove(path: &Path) -> Result<()> {
    remove_tree(path).map_err(|err| Error::io("remove", path, err))?;
    std::fs::remove_file(meta_path(path)).ok();
    std::fs::remove_file(signatures_path(path)).ok();
    Ok(())
}

/// Removes a snapshot folder, whatever modes its folders were copied with (a `0555`
/// folder of the container's), never following a link.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fn open_up(path: &Path) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if !meta.is_dir() {
            return Ok(());
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(path)? {
            open_up(&entry?.path())?;
        }
        Ok(())
    }
    open_up(path)?;
    std::fs::remove_dir_all(path)
}

/// The folder that holds a user's snapshots: `<XDG data dir>/berth/snapshots`.
pub fn root() -> Result<PathBuf> {
    let data = dirs::data_dir()
        .ok_or_else(|| Error::failed("cannot tell your data directory: set XDG_DATA_HOME"))?;
    Ok(data.join("berth").join("snapshots"))
}

/// Takes a snapshot of the project's container: none when it holds no unsaved changes,
/// or when a walk of its layer stamps it as the newest snapshot's did.
pub async fn take(engine: &Engine, ctx: &Context, all: bool, printer: &Printer) -> Result<Taken> {
    let project = ctx.project.as_str();
    let mut container = engine
        .find(project, ctx.user.uid)
        .await?
        .ok_or_else(|| Error::failed(format!("{project} has no container: nothing to snapshot")))?;
    crate::paused::resume_if_abandoned(engine, &ctx.paths.state_dir, &mut container, printer)
        .await?;
    let newest = metas_in(&root()?.join(project))?
        .pop()
        .filter(|m| m.container_id == container.id && m.all == all);
    let running = container.state == State::Running;
    let (copied, paused_ms) = crate::paused::holding(
        engine,
        &ctx.paths.state_dir,
        &container.id,
        running,
        ": the copy so far is left as a .partial folder",
        copy(engine, ctx, &container, running, all, newest.as_ref()),
    )
    .await?;
    let taken = copied.and_then(|copied| match copied {
        Copied::Files(copied) => describe(*copied, &container, paused_ms, all)
            .map(|(meta, path)| Taken::Snapshot(Box::new(meta), path)),
        Copied::Empty => Ok(Taken::Empty),
        Copied::Unchanged => Ok(Taken::Unchanged(newest.map(|m| m.name).unwrap_or_default())),
    });
    events::log_paused(
        printer,
        "snapshot",
        project,
        &taken,
        |taken| match taken {
            Taken::Snapshot(_, path) => ("taken", Some(path.display().to_string())),
            Taken::Empty => ("empty", Some("no unsaved changes".to_string())),
            Taken::Unchanged(name) => ("unchanged", Some(format!("as at {name}"))),
        },
        paused_ms,
    );
    taken
}

/// What [`copy`] did.
enum Copied {
    Files(Box<Files>),
    Empty,
    Unchanged,
}

/// What [`copy`] copied: the rescue's count, the layer's stamp, the paths it read.
struct Files {
    rescued: retire::Rescued,
    stamp: Option<Stamped>,
    roots: Vec<String>,
    linked: u64,
    linked_bytes: u64,
}

/// Writes `<time>.json` beside the snapshot the copy made, and says what it holds.
fn describe(
    copied: Files,
    container: &ContainerInfo,
    paused_ms: Option<u64>,
    all: bool,
) -> Result<(Meta, PathBuf)> {
    let Files {
        rescued,
        stamp,
        roots,
        linked,
        linked_bytes,
    } = copied;
    if let Some(stamp) = &stamp {
        write_signatures(&rescued.path, &stamp.files)?;
    }
    let name = rescued
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = Meta {
        taken: rfc3339(SystemTime::now()),
        name,
        container: container.name.clone(),
        container_id: container.id.clone(),
        image: container.image.clone(),
        files: rescued.files,
        bytes: rescued.bytes,
        paused_ms,
        all,
        not_copied: rescued.special.iter().map(|s| s.path.clone()).collect(),
        stamp: stamp.map(|s| s.digest),
        roots,
        linked,
        linked_bytes,
    };
    let meta_path = meta_path(&rescued.path);
    let bytes = serde_json::to_vec_pretty(&meta)
        .map_err(|err| Error::failed(format!("cannot describe the snapshot: {err}")))?;
    crate::files::write_atomically(&meta_path, &bytes)
        .map_err(|err| Error::io("write", &meta_path, err))?;
    Ok((meta, rescued.path))
}

/// `<time>.json`, beside the snapshot `<time>/`.
fn meta_path(snapshot: &Path) -> PathBuf {
    let name = snapshot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    snapshot.with_file_name(format!("{name}.json"))
}

/// Lists the unsaved changes (the container paused if `paused`) and copies them into a
/// new snapshot folder; none when there are none, or when the layer's walk stamps it as
/// snapshot `newest` (of this container) was.
async fn copy(
    engine: &Engine,
    ctx: &Context,
    container: &ContainerInfo,
    paused: bool,
    all: bool,
    newest: Option<&Meta>,
) -> Result<Copied> {
    // Only what the user or the policy vouched for is left out: the project's file,
    // which the container writes, hides nothing from a snapshot (as from the reaper).
    let target = retire::Target {
        disposable: ctx.settings.disposable_vouched.clone(),
        disposable_from_project: None,
        ..retire::Target::new(ctx, container)
    };
    let last = newest.and_then(|m| m.stamp.as_deref());
    let stamped = retire::assessment_since(engine, container, &target, paused, last).await?;
    let Some(assessment) = stamped.assessment else {
        return Ok(Copied::Unchanged);
    };
    let roots = rescue::roots(&assessment, &[], all);
    if roots.is_empty() {
        return Ok(Copied::Empty);
    }
    let paths: Vec<String> = roots.iter().map(|r| r.path.clone()).collect();
    let root = root()?;
    crate::files::private_dir(&root).map_err(|err| Error::io("create", &root, err))?;
    let stamp = utc_stamp(SystemTime::now());
    let folder = rescue::Folder::numbered(&root, ctx.project.as_str(), &stamp).map_err(|err| {
        Error::failed(format!(
            "cannot make a snapshot in {}: {}",
            root.join(ctx.project.as_str()).display(),
            crate::error::io_reason(&err)
        ))
    })?;
    let skip = (!all).then(|| Patterns::new(&target.disposable));
    let mut extractor = rescue::extractor(folder, skip);
    let earlier = match (all, newest, &stamped.stamp) {
        (false, Some(newest), Some(now)) => Earlier::of(ctx, newest, now),
        _ => None,
    };
    let (roots, linked) = match earlier {
        Some(earlier) => earlier
            .link(&assessment, &mut extractor)?
            .unwrap_or((roots, Linked::default())),
        None => (roots, Linked::default()),
    };
    retire::copy_into(
        engine,
        &container.id,
        roots,
        extractor,
        &assessment.unsaved,
        "snapshot",
    )
    .await
    .map(|rescued| {
        Copied::Files(Box::new(Files {
            rescued,
            stamp: stamped.stamp,
            roots: paths,
            linked: linked.files,
            linked_bytes: linked.bytes,
        }))
    })
}

pub async fn list(args: &SnapshotsArgs, printer: &Printer) -> Result<()> {
    let ctx = Context::load(&args.project, &FileConfig::default())?;
    let project = ctx.project.as_str();
    let folder = root()?.join(project);
    let metas = metas_in(&folder)?;
    let current = match metas.is_empty() {
        true => None,
        false => {
            let engine = Engine::connect().await?;
            engine.find(project, ctx.user.uid).await?
        }
    };
    let listed: Vec<Listed> = metas
        .into_iter()
        .map(|meta| Listed {
            path: folder.join(&meta.name),
            container_exists: current.as_ref().is_some_and(|c| c.id == meta.container_id),
            meta,
        })
        .collect();
    if args.json {
        printer.json(&listed);
        return Ok(());
    }
    if listed.is_empty() {
        printer.note(&format!(
            "{project} has no snapshots in {}",
            folder.display()
        ));
        return Ok(());
    }
    let mut rows = vec![vec![
        "TIME".to_string(),
        "FILES".to_string(),
        "SIZE".to_string(),
        "PATH".to_string(),
    ]];
    for l in &listed {
        rows.push(vec![
            l.meta.taken.clone(),
            l.meta.files.to_string(),
            human_size(l.meta.bytes),
            l.path.display().to_string(),
        ]);
    }
    printer.table(&rows);
    let gone: std::collections::BTreeSet<&str> = listed
        .iter()
        .filter(|l| !l.container_exists)
        .map(|l| l.meta.container.as_str())
        .collect();
    for name in gone {
        printer.note(&format!(
            "container {name} is gone: its snapshots are what is left of its unsaved changes"
        ));
    }
    Ok(())
}

/// The snapshots described in `folder`, oldest first; a description that cannot be
/// read is left out, and so is one whose folder is gone.
fn metas_in(folder: &Path) -> Result<Vec<Meta>> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io("read", folder, err)),
    };
    let mut metas: Vec<Meta> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "json" {
                return None;
            }
            let meta: Meta = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            folder.join(&meta.name).is_dir().then_some(meta)
        })
        .collect();
    metas.sort_by(|a, b| (&a.taken, &a.name).cmp(&(&b.taken, &b.name)));
    Ok(metas)
}
