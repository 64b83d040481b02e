//! Scheduled backups, `[backup] every` and `keep`: what `berth reap` takes of each
//! project as its owner (`berth backup PROJECT --scheduled`, which a user's own timer
//! may run too). One is due when the newest scheduled archive is older than `every`;
//! a project unchanged since that archive (the same [`Fingerprint`] of its folders and
//! volumes) gets none, which costs a walk of `stat`s and no copy. Only scheduled archives,
//! `<project>-<UTC>.auto.berth.tar.zst`, are pruned to the newest `keep`: an archive
//! taken by hand is its owner's to remove.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::walk::{self, Fingerprint};
use crate::clock::{parse_utc_stamp, utc_stamp};
use crate::context::Context;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::glob::Patterns;
use crate::layer::helper;
use crate::layer::overlay::Unreadable;
use crate::spec::{MountKind, MountSpec};
use crate::ui::Printer;
use crate::units::span;

/// How the names of scheduled archives end.
pub const SUFFIX: &str = ".auto.berth.tar.zst";

/// The scheduled archives kept per project when `[backup] keep` is not set.
pub const DEFAULT_KEEP: usize = 7;

/// What a scheduled backup did (`--json`, and what `berth reap` reads).
#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    /// `backup` or `snapshot`.
    pub job: String,
    pub project: String,
    /// `taken`, `unchanged`, `not-due` or `unscheduled`.
    pub outcome: String,
    pub reason: String,
    /// The archive taken, when one was.
    pub path: Option<PathBuf>,
    /// The scheduled archives removed past `keep`.
    pub pruned: Vec<PathBuf>,
}

/// One scheduled archive of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub name: String,
    pub at: SystemTime,
}

/// The fingerprint of the project as the newest scheduled archive holds it:
/// `<state dir>/backups/<project>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Last {
    archive: String,
    fingerprint: String,
}

/// Takes the project's scheduled backup if one is due and anything changed, then
/// prunes its scheduled archives to `keep`.
pub async fn run(ctx: &Context, printer: &Printer) -> Result<Done> {
    let project = ctx.project.as_str();
    let done = |outcome: &str, reason: String| Done {
        job: "backup".to_string(),
        project: project.to_string(),
        outcome: outcome.to_string(),
        reason,
        path: None,
        pruned: Vec::new(),
    };
    let Some(every) = ctx.settings.backup_every.as_ref().map(|e| e.value) else {
        let why = "neither the policy nor your config sets [backup] every".to_string();
        printer.note(&format!("no scheduled backup of {project}: {why}"));
        return Ok(done("unscheduled", why));
    };
    let (engine, _held) = super::open(ctx, printer).await?;
    let engine = &engine;
    let keep = ctx
        .settings
        .backup_keep
        .as_ref()
        .map_or(DEFAULT_KEEP, |k| k.value)
        .max(1);
    let dir = super::default_dir(ctx)?;
    crate::files::private_dir(&dir).map_err(|err| Error::io("create", &dir, err))?;
    let now = SystemTime::now();
    let archives = archives_in(&dir, project)?;
    let newest = archives.last();
    let mut done = match newest {
        Some(last) if !due(last.at, now, every) => done(
            "not-due",
            format!(
                "the newest, {}, is younger than every {}",
                last.name,
                span(every)
            ),
        ),
        _ => {
            let fingerprint = fingerprint(engine, ctx, printer).await?;
            let record = ctx
                .paths
                .state_dir
                .join("backups")
                .join(format!("{project}.json"));
            let last: Option<Last> = std::fs::read(&record)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            let unchanged = match (newest, &last, &fingerprint) {
                (Some(newest), Some(last), Some(now)) => {
                    newest.name == last.archive && &last.fingerprint == now
                }
                _ => false,
            };
            if unchanged {
                let name = newest.map_or("", |a| a.name.as_str());
                done("unchanged", format!("nothing changed since {name}"))
            } else {
                let name = format!("{project}-{}{SUFFIX}", utc_stamp(now));
                let target = dir.join(&name);
                let outcome = super::take(engine, ctx, target, false, printer).await?;
                remember(
                    &record,
                    fingerprint.map(|fingerprint| Last {
                        archive: name.clone(),
                        fingerprint,
                    }),
                )?;
                let mut done = done("taken", format!("{} file(s)", outcome.files));
                done.path = Some(outcome.path);
                done
            }
        }
    };
    if done.outcome != "taken" {
        printer.note(&format!("no backup of {project}: {}", done.reason));
    }
    let archives = archives_in(&dir, project)?;
    for old in past(&archives, keep) {
        let path = dir.join(&old.name);
        std::fs::remove_file(&path).map_err(|err| Error::io("remove", &path, err))?;
        printer.note(&format!(
            "removed {}: [backup] keep = {keep}",
            path.display()
        ));
        done.pruned.push(path);
    }
    Ok(done)
}

/// Writes (or, without a fingerprint, removes) the record of the newest archive.
fn remember(record: &Path, last: Option<Last>) -> Result<()> {
    let Some(last) = last else {
        std::fs::remove_file(record).ok();
        return Ok(());
    };
    if let Some(dir) = record.parent() {
        std::fs::create_dir_all(dir).map_err(|err| Error::io("create", dir, err))?;
    }
    let bytes = serde_json::to_vec(&last)
        .map_err(|err| Error::failed(format!("cannot record the backup: {err}")))?;
    crate::files::write_atomically(record, &bytes).map_err(|err| Error::io("write", record, err))
}

/// Whether a backup is due `every` after one taken at `last`.
/// An archive from the future (the clock was set back) is no reason to wait.
pub fn due(last: SystemTime, now: SystemTime, every: Duration) -> bool {
    now.duration_since(last).map_or(true, |age| age >= every)
}

/// The scheduled archives of `project` in `dir`, oldest first.
pub fn archives_in(dir: &Path, project: &str) -> Result<Vec<Archive>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io("read", dir, err)),
    };
    let mut archives: Vec<Archive> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let at = stamp_of(&name, project)?;
            Some(Archive { name, at })
        })
        .collect();
    archives.sort_by(|a, b| (a.at, &a.name).cmp(&(b.at, &b.name)));
    Ok(archives)
}

/// The time in a scheduled archive's name, if `name` is one of `project`'s.
fn stamp_of(name: &str, project: &str) -> Option<SystemTime> {
    let stamp = name
        .strip_prefix(project)?
        .strip_prefix('-')?
        .strip_suffix(SUFFIX)?;
    parse_utc_stamp(stamp)
}

/// The archives past the newest `keep`, oldest first.
pub fn past(archives: &[Archive], keep: usize) -> &[Archive] {
    &archives[..archives.len().saturating_sub(keep)]
}

/// What the next archive would hold, as `stat` sees it: the workspace (less
/// `[backup] exclude`) and the home, walked as a backup walks them, the remembered
/// image, and the persisted volumes, walked the same way by berth in a helper
/// container that mounts them. None when the volumes cannot be walked: a backup is
/// taken then.
async fn fingerprint(engine: &Engine, ctx: &Context, printer: &Printer) -> Result<Option<String>> {
    let project = ctx.project.as_str();
    let mut print = Fingerprint::default();
    print.add(b"berth backup fingerprint 1");
    let image = crate::remember::image(&ctx.paths.state_dir, project).map(|i| i.image);
    print.add(image.unwrap_or_default().as_bytes());
    let volumes = super::volumes(engine, ctx).await?;
    for volume in &volumes {
        print.add(volume.path.as_bytes());
        print.add(volume.volume.as_bytes());
    }
    if !volumes.is_empty() {
        match volumes_fingerprint(engine, &volumes, printer).await {
            Ok(volumes) => print.add(&volumes),
            Err(Unreadable(why)) => {
                printer.note(&format!(
                    "cannot tell whether the volumes of {project} changed ({why}): backing up"
                ));
                return Ok(None);
            }
        }
    }
    for pattern in &ctx.settings.backup_exclude {
        print.add(pattern.as_bytes());
    }
    let workspace = ctx.workspace.clone();
    let home = ctx.paths.container_home(&ctx.project);
    let exclude = Patterns::new(&ctx.settings.backup_exclude);
    tokio::task::spawn_blocking(move || {
        walk::walk(&workspace, b"workspace", &exclude, &mut print)
            .map_err(|err| super::cannot_read(&workspace, &err))?;
        if home.is_dir() {
            walk::walk(&home, b"home", &Patterns::default(), &mut print)
                .map_err(|err| super::cannot_read(&home, &err))?;
        }
        Ok(Some(print.hex()))
    })
    .await
    .map_err(|err| Error::failed(format!("the backup stopped: {err}")))?
}

/// The fingerprint of the volumes, as `berth fingerprint` prints it in a helper
/// container that mounts them, read-only. The container may write to them meanwhile: a
/// fingerprint taken mid-write differs from the next one, which takes a backup.
async fn volumes_fingerprint(
    engine: &Engine,
    volumes: &[super::Volume],
    printer: &Printer,
) -> std::result::Result<Vec<u8>, Unreadable> {
    let mut args = vec!["fingerprint".to_string()];
    let mut mounts = Vec::new();
    for (at, volume) in volumes.iter().enumerate() {
        let target = format!("/volumes/{at}");
        mounts.push(MountSpec {
            kind: MountKind::Volume,
            ..MountSpec::bind(volume.volume.clone(), target.clone(), true)
        });
        args.push(target);
    }
    let out = helper::run_once(engine, mounts, args, Some(printer)).await?;
    let hex = String::from_utf8_lossy(&out).trim().to_string();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Unreadable(format!("the helper printed {hex:?}")));
    }
    Ok(hex.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn only_the_projects_own_scheduled_archives_are_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            format!("p-{}{SUFFIX}", utc_stamp(at(2_000_000_000))),
            format!("p-{}{SUFFIX}", utc_stamp(at(1_900_000_000))),
            // Another project whose name begins like this one's.
            format!("p-q-{}{SUFFIX}", utc_stamp(at(1_800_000_000))),
            // Taken by hand, a partial one, and not a time.
            format!("p-{}.berth.tar.zst", utc_stamp(at(1_700_000_000))),
            format!(".p-{}{SUFFIX}.partial", utc_stamp(at(1_600_000_000))),
            format!("p-latest{SUFFIX}"),
        ];
        for name in &names {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let found = archives_in(dir.path(), "p").unwrap();
        let found: Vec<_> = found.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(found, [names[1].as_str(), names[0].as_str()]);
        let other = archives_in(dir.path(), "p-q").unwrap();
        assert_eq!(other.len(), 1);
        assert!(archives_in(&dir.path().join("none"), "p")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_oldest_go_past_keep() {
        let archives: Vec<Archive> = (0..5)
            .map(|n| Archive {
                name: n.to_string(),
                at: at(n),
            })
            .collect();
        let names = |list: &[Archive]| list.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(past(&archives, 3)), ["0", "1"]);
        assert!(past(&archives, 5).is_empty());
        assert!(past(&archives, 9).is_empty());
    }

    #[test]
    fn a_backup_is_due_every_so_often_and_when_the_clock_went_back() {
        let every = Duration::from_secs(3600);
        assert!(!due(at(1000), at(1000 + 3599), every));
        assert!(due(at(1000), at(1000 + 3600), every));
        assert!(due(at(5000), at(1000), every));
    }
}
