//! `berth reap`, for a systemd timer or cron: stop idle containers and retire long
//! stopped ones, without losing anyone's work.
//!
//! Run as root it goes over every user's berth containers; run as anyone else, over
//! their own. Each run reads every running container's CPU time and keeps the samples
//! in `<state dir>/reap/<container id>.json`; [`decide`] compares them with the policy's
//! `[reap]`. Before it stops a container it leaves a notice in the workspace and an
//! event in the log; a long-stopped one goes through the full retire check, its unsaved
//! work always rescued into the workspace first (nothing is removed if that fails).
//! `berth run` containers are reaped like deployed ones, except those started with
//! `--rm`, which stopping would remove unchecked. First of all it takes the scheduled
//! backups and snapshots (`[backup] every`, `[snapshot] every`) of the projects it
//! goes over, each as its owner ([`scheduled`]).

mod decide;
mod scheduled;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

pub use decide::{
    decide, millis, warning, Decision, Facts, GpuSample, History, Keep, Sample, Use, Warning,
};

use crate::cli::ReapArgs;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::config::policy::Policy;
use crate::config::DEFAULT_DISPOSABLE;
use crate::container::{ContainerInfo, State};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::host::{passwd_name, HostUser, Paths, ProjectName};
use crate::retire::{self, Action, Choices, RescueScope, Target, STOP_TIMEOUT};
use crate::ui::Printer;
use crate::units::span;

/// The notice berth leaves in a workspace whose container it stopped or retired.
pub const NOTICE_FILE: &str = "BERTH-NOTICE.txt";

/// A workspace file whose recent modification exempts its container.
pub const KEEP_ALIVE_FILE: &str = ".keep-alive";

/// What reap decided and did about one container (`--json`).
#[derive(Debug, Serialize)]
struct Report {
    container: String,
    project: String,
    /// The owner's uid, as labelled.
    user: String,
    state: State,
    /// `record`, `stop`, `retire` or `keep`.
    decision: &'static str,
    reason: String,
    /// `stopped`, `removed` or `failed`; null in a dry run and for `keep`/`record`.
    outcome: Option<&'static str>,
    /// Where the notice was left.
    notice: Option<PathBuf>,
    /// Where the unsaved work was rescued to.
    rescued: Option<PathBuf>,
}

#[derive(Serialize)]
struct Listing<'a> {
    dry_run: bool,
    containers: &'a [Report],
    /// The scheduled backups and snapshots, one of each per project (none in a dry
    /// run).
    backups: &'a [crate::backup::Done],
    snapshots: &'a [crate::backup::Done],
}

pub async fn reap(args: &ReapArgs, printer: &Printer) -> Result<()> {
    let project = args
        .project
        .as_deref()
        .map(ProjectName::parse)
        .transpose()?;
    let me = HostUser::current();
    let paths = Paths::from_env()?;
    if let Some(warning) = &paths.policy_warning {
        printer.warn(warning);
    }
    let policy = Policy::read(&paths.policy)?.unwrap_or_default();
    let engine = Engine::connect().await?;
    let everyone = me.uid == 0;
    let containers = engine
        .list((!everyone).then_some(me.uid), None, false)
        .await?;
    let store = Store {
        dir: paths.state_dir.join("reap"),
    };
    if !args.dry_run {
        store.prune(&containers);
    }
    let reaper = Reaper {
        engine: &engine,
        state_dir: paths.state_dir.clone(),
        policy: &policy,
        log: policy.event_log(&paths.state_dir),
        store: &store,
        dry_run: args.dry_run,
        printer,
        gpus: std::sync::OnceLock::new(),
        readings: Default::default(),
    };

    let mut reports = Vec::new();
    let chosen: Vec<&ContainerInfo> = containers
        .iter()
        .filter(|c| project.as_ref().is_none_or(|p| c.project == p.as_str()))
        .collect();
    // Before anything is stopped or retired: a copy is what is left if that fails.
    let scheduled = match args.dry_run {
        true => scheduled::Scheduled::default(),
        false => scheduled::run(&chosen, &reaper.log).await,
    };
    let mut failures = Vec::new();
    for &container in &chosen {
        let mut container = container.clone();
        if !args.dry_run {
            crate::paused::resume_if_abandoned(&engine, &paths.state_dir, &mut container, printer)
                .await?;
        }
        match reaper.one(&container).await {
            Ok(Some(report)) => {
                if report.outcome == Some("failed") {
                    failures.push(format!("{}: {}", report.container, report.reason));
                }
                reports.push(report);
            }
            // Gone between the list and the look: nothing to do.
            Ok(None) => {}
            Err(err) => failures.push(format!("{}: {}", container.name, err.message)),
        }
    }

    if !args.dry_run {
        let path = crate::gpu::readings::path(&policy, &paths.state_dir, me.uid);
        let alive = |id: &str| containers.iter().any(|c| c.id == id);
        if let Err(err) = crate::gpu::readings::save(&path, &reaper.readings.borrow(), &alive) {
            printer.warn(&format!("the GPU readings were not kept: {}", err.message));
        }
    }
    if args.json {
        printer.json(&Listing {
            dry_run: args.dry_run,
            containers: &reports,
            backups: &scheduled.backups,
            snapshots: &scheduled.snapshots,
        });
    } else {
        for done in scheduled.backups.iter().chain(&scheduled.snapshots) {
            if let Some(path) = &done.path {
                let what = match done.job.as_str() {
                    "backup" => "backed up",
                    _ => "snapshot of",
                };
                printer.line(&format!("{what} {}: {}", done.project, path.display()));
            }
            for path in &done.pruned {
                let keep = format!("past [{}] keep", done.job);
                printer.line(&format!("removed {}: {keep}", path.display()));
            }
        }
        for report in &reports {
            if let Some(line) = line(report, args.dry_run) {
                printer.line(&line);
            }
        }
        let acted = reports
            .iter()
            .any(|r| matches!(r.decision, "stop" | "retire"));
        if policy.reap.idle_after.is_none() && policy.reap.hold_stopped.is_none() {
            printer.note(&format!(
                "the policy ({}) sets no [reap] idle_after or hold_stopped: {}nothing needs doing",
                paths.policy.display(),
                if args.dry_run {
                    ""
                } else {
                    "CPU samples recorded; "
                }
            ));
        } else if !acted && failures.is_empty() {
            printer.note(&format!(
                "{} container(s) checked; none is idle or stopped for long enough",
                reports.len()
            ));
        }
    }
    let mut said = Vec::new();
    if !failures.is_empty() {
        said.push(format!(
            "{} container(s) could not be reaped",
            failures.len()
        ));
    }
    if !scheduled.failures.is_empty() {
        said.push(format!(
            "{} scheduled backup(s) or snapshot(s) failed",
            scheduled.failures.len()
        ));
    }
    if said.is_empty() {
        return Ok(());
    }
    let details = failures.into_iter().chain(scheduled.failures);
    Err(Error::failed(said.join("; ")).details(details.map(|f| format!("  {f}"))))
}

/// The line for one report: every decision in a dry run, else what was done.
fn line(report: &Report, dry_run: bool) -> Option<String> {
    let name = &report.container;
    let reason = &report.reason;
    Some(match (dry_run, report.decision, report.outcome) {
        (true, "stop", _) => format!("would stop {name}: {reason}"),
        (true, "retire", _) => {
            format!("would retire {name}: {reason} (its unsaved work rescued first)")
        }
        (true, decision, _) => format!("{decision} {name}: {reason}"),
        (false, _, Some("stopped")) => format!("stopped {name}: {reason}"),
        (false, _, Some("removed")) => format!("retired {name}: {reason}"),
        (false, _, Some("failed")) => format!("failed {name}: {reason}"),
        _ => return None,
    })
}

struct Reaper<'a> {
    engine: &'a Engine,
    /// The reaper's own state dir, where its pauses are recorded.
    state_dir: PathBuf,
    policy: &'a Policy,
    log: PathBuf,
    store: &'a Store,
    dry_run: bool,
    printer: &'a Printer,
    /// `nvidia-smi`'s answer, once a container that holds GPUs asks.
    gpus: std::sync::OnceLock<std::result::Result<Vec<crate::gpu::Utilisation>, String>>,
    /// What this reap read of each container's GPUs, kept for `berth list`.
    readings: std::cell::RefCell<crate::gpu::readings::Readings>,
}

impl Reaper<'_> {
    /// Samples, decides and acts on one container. `None` when it is gone.
    async fn one(&self, container: &ContainerInfo) -> Result<Option<Report>> {
        let reap = &self.policy.reap;
        let (state, timeline) = match self.engine.inspect(&container.id).await {
            Ok(inspected) => (inspected.state, inspected.timeline),
            Err(_) if !self.still_there(container).await => return Ok(None),
            Err(err) => return Err(err),
        };
        let workspace = Some(PathBuf::from(&container.workspace))
            .filter(|w| !container.workspace.is_empty() && w.is_dir());
        let keep_alive = workspace
            .as_ref()
            .and_then(|w| fs::metadata(w.join(KEEP_ALIVE_FILE)).ok())
            .and_then(|m| m.modified().ok());
        let usage_ns = if state == State::Running {
            self.engine.cpu_usage(&container.id).await?
        } else {
            None
        };
        let now = SystemTime::now();
        let facts = Facts {
            state,
            usage_ns,
            // A container that never ran has the year-1 time as FinishedAt.
            stopped_since: parse_rfc3339(&timeline.finished_at)
                .or_else(|| parse_rfc3339(&timeline.created)),
            keep_alive,
            has_workspace: workspace.is_some(),
            auto_remove: timeline.auto_remove,
            running_since: (state == State::Running)
                .then(|| parse_rfc3339(&timeline.started_at))
                .flatten(),
            gpu: match (usage_ns, container.gpus.is_empty()) {
                (Some(_), false) => Some(
                    self.gpus()
                        .and_then(|readings| crate::gpu::highest_held(readings, &container.gpus)),
                ),
                _ => None,
            },
        };
        if let Some(Err(why)) = &facts.gpu {
            if !self.dry_run {
                self.event(container, "reap-gpu", "unreadable", why).ok();
            }
        }
        let mut history = History::default();
        if let Some(usage_ns) = usage_ns {
            let idle_after = reap.idle_after.map(|s| s.0);
            history = self.store.load(&container.id).observe(
                &timeline.started_at,
                now,
                usage_ns,
                idle_after,
            );
            if let Some(Ok(percent)) = facts.gpu {
                history = history.observe_gpu(now, percent, idle_after);
                let reading = crate::gpu::readings::Reading {
                    percent,
                    at_ms: millis(now),
                };
                self.readings
                    .borrow_mut()
                    .insert(container.id.clone(), reading);
            }
            if !self.dry_run {
                self.store.save(&container.id, &history)?;
            }
        } else if !self.dry_run {
            self.store.forget(&container.id);
        }
        let decision = decide(&facts, &history, now, reap);
        let warn_before = reap.warn_before.map(|s| s.0);
        let warned = warning(&decision, history.warned_ms, now, warn_before);
        let mut report = Report {
            container: container.name.clone(),
            project: container.project.clone(),
            user: container.user.clone(),
            state: facts.state,
            decision: match (&decision, warned) {
                (_, Warning::Warn) => "warn",
                (_, Warning::Wait(_)) => "warned",
                (Decision::Record, _) => "record",
                (Decision::Stop { .. } | Decision::Overtime { .. }, _) => "stop",
                (Decision::Retire { .. }, _) => "retire",
                (Decision::Keep(_), _) => "keep",
            },
            reason: decision.to_string(),
            outcome: None,
            notice: None,
            rescued: None,
        };
        let Some(workspace) = workspace else {
            return Ok(Some(report));
        };
        let unless = "unless it gets busy or /workspace/.keep-alive is touched";
        match (warned, &decision) {
            (Warning::Warn, _) => {
                let before = span(warn_before.unwrap_or_default());
                report.reason = format!("{}; stops in {before} {unless}", report.reason);
                if !self.dry_run {
                    history.warned_ms = Some(millis(now));
                    self.store.save(&container.id, &history)?;
                    self.warn(container, &workspace, &mut report);
                }
            }
            (Warning::Wait(left), _) => {
                report.reason = format!(
                    "{}; warned, stops in {} {unless}",
                    report.reason,
                    span(left)
                );
            }
            (Warning::Cancel, _) if !self.dry_run => {
                history.warned_ms = None;
                self.store.save(&container.id, &history)?;
                self.event(container, "warn-cancelled", "cancelled", &report.reason)
                    .ok();
            }
            (_, Decision::Stop { .. } | Decision::Overtime { .. }) if !self.dry_run => {
                self.stop(container, &workspace, &mut report).await;
            }
            (_, Decision::Retire { .. }) => {
                self.retire(container, &workspace, &mut report).await;
            }
            _ => {}
        }
        Ok(Some(report))
    }

    /// Announces a stop: a notice in the workspace, a `reap-warn` event, and a line on
    /// each terminal the owner is logged in on.
    fn warn(&self, container: &ContainerInfo, workspace: &Path, report: &mut Report) {
        let text = format!(
            "{}: berth reap will stop your container {} ({}).\n\
             To keep it running: touch /workspace/{KEEP_ALIVE_FILE}\n\n",
            rfc3339(SystemTime::now()),
            container.name,
            report.reason,
        );
        match write_notice(workspace, &text) {
            Ok(notice) => report.notice = Some(notice),
            Err(err) => self.printer.warn(&err.message),
        }
        self.event(container, "reap-warn", "warned", &report.reason)
            .ok();
        let uid: u32 = container.user.parse().unwrap_or(u32::MAX);
        let line = format!(
            "\r\nberth: your container {} will be stopped: {}\r\n",
            container.name, report.reason
        );
        tell_terminals(uid, &line);
    }

    /// What `nvidia-smi` says of the GPUs, asked once per reap.
    fn gpus(&self) -> std::result::Result<&[crate::gpu::Utilisation], String> {
        self.gpus
            .get_or_init(crate::gpu::utilisation)
            .as_deref()
            .map_err(Clone::clone)
    }

    async fn still_there(&self, container: &ContainerInfo) -> bool {
        match self
            .engine
            .list(None, Some(&container.project), false)
            .await
        {
            Ok(list) => list.iter().any(|c| c.id == container.id),
            Err(_) => true,
        }
    }

    /// Warns (a notice in the workspace, an event), then stops: SIGTERM, then
    /// [`STOP_TIMEOUT`]. Without the warning, nothing is stopped.
    async fn stop(&self, container: &ContainerInfo, workspace: &Path, report: &mut Report) {
        let event =
            |outcome: &str, reason: &str| self.event(container, "reap-stop", outcome, reason);
        let text = stop_notice(container, &report.reason, self.policy);
        let warned = write_notice(workspace, &text).and_then(|notice| {
            event("stopping", &report.reason)?;
            Ok(notice)
        });
        let notice = match warned {
            Ok(notice) => notice,
            Err(err) => {
                let reason = format!("not stopped: cannot warn its owner: {}", err.message);
                event("failed", &reason).ok();
                report.outcome = Some("failed");
                report.reason = reason;
                return;
            }
        };
        match self.engine.stop(&container.id, STOP_TIMEOUT).await {
            Ok(()) => {
                event("stopped", &report.reason).ok();
                report.outcome = Some("stopped");
                report.reason = format!("{}; notice in {}", report.reason, notice.display());
            }
            Err(err) => {
                event("failed", &err.message).ok();
                report.outcome = Some("failed");
                report.reason = err.message;
            }
        }
        report.notice = Some(notice);
    }

    /// The full retire check, with the unsaved work always rescued first; a failed
    /// rescue removes nothing. In a dry run, the check alone.
    async fn retire(&self, container: &ContainerInfo, workspace: &Path, report: &mut Report) {
        let owner = passwd_name(container.user.parse().unwrap_or(u32::MAX))
            .unwrap_or_else(|| container.user.clone());
        let target = Target {
            workspace: workspace.to_path_buf(),
            image_repo: crate::host::image_repo(&owner, &container.project),
            // The owner's own config may add to these; reap reads only the policy's,
            // so it rescues at least as much as the owner's retire would.
            disposable: self
                .policy
                .retire
                .disposable
                .clone()
                .unwrap_or_else(|| DEFAULT_DISPOSABLE.iter().map(|s| s.to_string()).collect()),
            // Nothing of the project's file: the container may have written it.
            disposable_from_project: None,
            state_dir: self.state_dir.clone(),
        };
        let choices = Choices {
            rescue: Some(RescueScope::Unsaved),
            dry_run: self.dry_run,
            ..Choices::default()
        };
        let event =
            |outcome: &str, reason: &str| self.event(container, "reap-retire", outcome, reason);
        if !self.dry_run {
            if let Err(err) = event("retiring", &report.reason) {
                report.outcome = Some("failed");
                report.reason = format!("not retired: {}", err.message);
                return;
            }
        }
        let outcome =
            retire::retire_container(self.engine, container, &target, &choices, self.printer).await;
        if self.dry_run {
            if let Err(err) = outcome {
                report.reason = format!("{}; the check failed: {}", report.reason, err.message);
            }
            return;
        }
        let outcome = match outcome {
            Ok(outcome) if outcome.action == Action::Removed => outcome,
            Ok(outcome) => {
                let why = outcome
                    .refusal()
                    .map_or_else(|| "not removed".to_string(), |e| e.message);
                event("failed", &why).ok();
                report.outcome = Some("failed");
                report.reason = why;
                return;
            }
            Err(err) => {
                let why = format!("nothing was removed: {}", err.message);
                event("failed", &why).ok();
                report.outcome = Some("failed");
                report.reason = why;
                return;
            }
        };
        let saved = match &outcome.rescued {
            // The rescue made everything as the workspace's owner.
            Some(rescued) => {
                format!(
                    "its {} unsaved file(s) rescued into {}",
                    rescued.files,
                    rescued.path.display()
                )
            }
            None => "it held no unsaved work".to_string(),
        };
        let reason = format!("{}; {saved}", report.reason);
        let removed = self
            .event_of(container, "reap-retire", "removed", &reason)
            .paused(outcome.paused_ms);
        events::record(&self.log, &removed).ok();
        let text = retire_notice(container, &reason, self.policy);
        match write_notice(workspace, &text) {
            Ok(notice) => report.notice = Some(notice),
            Err(err) => self.printer.warn(&err.message),
        }
        report.outcome = Some("removed");
        report.rescued = outcome.rescued.map(|r| r.path);
        report.reason = reason;
    }

    fn event(
        &self,
        container: &ContainerInfo,
        action: &str,
        outcome: &str,
        reason: &str,
    ) -> Result<()> {
        events::record(
            &self.log,
            &self.event_of(container, action, outcome, reason),
        )
    }

    fn event_of(
        &self,
        container: &ContainerInfo,
        action: &str,
        outcome: &str,
        reason: &str,
    ) -> Event {
        let uid: u32 = container.user.parse().unwrap_or(u32::MAX);
        let user = passwd_name(uid).unwrap_or_else(|| container.user.clone());
        Event::now(&user, uid, &container.project, action, outcome).reason(reason)
    }
}

fn stop_notice(container: &ContainerInfo, reason: &str, policy: &Policy) -> String {
    let keep_alive = span(policy.reap.keep_alive_max.0);
    format!(
        "{}: berth reap stopped your container {} ({reason}).\n\
         Nothing was removed: the container, its files and this workspace are as they were.\n\
         To come back: container-deploy {}   (or: berth deploy {})\n\
         To keep it running while it looks idle: touch /workspace/{KEEP_ALIVE_FILE} \
         (honoured for {keep_alive} after each touch).\n\n",
        rfc3339(SystemTime::now()),
        container.name,
        container.project,
        container.project,
    )
}

fn retire_notice(container: &ContainerInfo, reason: &str, policy: &Policy) -> String {
    let keep_alive = span(policy.reap.keep_alive_max.0);
    format!(
        "{}: berth reap retired your stopped container {} ({reason}).\n\
         Whatever it held outside the workspace and the data root was copied into\n\
         .rescued/ in this workspace first; the workspace and the data root are untouched.\n\
         To come back: container-deploy {}   (or: berth deploy {})\n\
         To keep a stopped container: touch /workspace/{KEEP_ALIVE_FILE} (honoured for \
         {keep_alive} after each touch).\n\n",
        rfc3339(SystemTime::now()),
        container.name,
        container.project,
        container.project,
    )
}

/// Writes `line` to each terminal of `/dev/pts` that user `uid` owns (is logged in
/// on), as `write` does: never through a link, never waiting on a terminal that
/// blocks; how many took it. Best effort: a terminal closed to messages is skipped.
fn tell_terminals(uid: u32, line: &str) -> usize {
    let Ok(entries) = fs::read_dir("/dev/pts") else {
        return 0;
    };
    let mut told = 0;
    for entry in entries.filter_map(|e| e.ok()) {
        use std::os::unix::fs::FileTypeExt;
        let path = entry.path();
        let theirs = fs::symlink_metadata(&path)
            .is_ok_and(|m| m.file_type().is_char_device() && m.uid() == uid);
        if !theirs {
            continue;
        }
        let opened = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&path);
        let Ok(mut terminal) = opened else {
            continue;
        };
        let still = terminal.metadata().is_ok_and(|m| m.uid() == uid);
        if still && terminal.write_all(line.as_bytes()).is_ok() {
            told += 1;
        }
    }
    told
}

/// Appends `text` to the workspace's notice file and returns its path. It never follows
/// a symbolic link (the workspace is its owner's; reap may run as root), and the file
/// belongs to the workspace's owner.
fn write_notice(workspace: &Path, text: &str) -> Result<PathBuf> {
    let path = workspace.join(NOTICE_FILE);
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        // Never through a link, and never blocked by a FIFO put in its place.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|err| Error::io("write the notice", &path, err))?;
    let (file_meta, owner) = (file.metadata(), fs::metadata(workspace));
    let (Ok(file_meta), Ok(owner)) = (file_meta, owner) else {
        return Err(Error::failed(format!("cannot read {}", path.display())));
    };
    // A second name of some other file (a hard link the user or the container made)
    // must not get root's appends, nor change owner.
    let ours = file_meta.uid() == owner.uid() || file_meta.uid() == 0;
    if !file_meta.is_file() || file_meta.nlink() != 1 || !ours {
        return Err(Error::refused(format!(
            "not writing the notice: {} is not a plain file of the workspace's owner",
            path.display()
        )));
    }
    file.write_all(text.as_bytes())
        .map_err(|err| Error::io("write the notice", &path, err))?;
    std::os::unix::fs::fchown(&file, Some(owner.uid()), Some(owner.gid())).ok();
    Ok(path)
}

/// The CPU samples, one file per container: `<state dir>/reap/<id>.json`, each
/// written whole (a temporary file renamed over it).
struct Store {
    dir: PathBuf,
}

impl Store {
    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The container's samples; none when there are none or the file is unreadable (it
    /// only delays a decision by one window).
    fn load(&self, id: &str) -> History {
        fs::read(self.path(id))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn save(&self, id: &str, history: &History) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|err| Error::io("create", &self.dir, err))?;
        let path = self.path(id);
        let bytes = serde_json::to_vec(history)
            .map_err(|err| Error::failed(format!("cannot write CPU samples: {err}")))?;
        crate::files::write_atomically(&path, &bytes).map_err(|err| Error::io("write", &path, err))
    }

    fn forget(&self, id: &str) {
        fs::remove_file(self.path(id)).ok();
    }

    /// Drops the samples of containers that no longer exist.
    fn prune(&self, containers: &[ContainerInfo]) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !containers.iter().any(|c| c.id == id) {
                fs::remove_file(entry.path()).ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_whole_and_pruned_with_their_containers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store {
            dir: dir.path().join("reap"),
        };
        assert_eq!(store.load("abc"), History::default());
        let history = History {
            started_at: "2026-01-01T00:00:00Z".into(),
            samples: vec![Sample {
                at_ms: 1,
                usage_ns: 2,
            }],
            gpu: vec![GpuSample {
                at_ms: 1,
                percent: 37.0,
            }],
            warned_ms: Some(3),
        };
        store.save("abc", &history).unwrap();
        store.save("def", &history).unwrap();
        assert_eq!(store.load("abc"), history);
        let names: Vec<_> = fs::read_dir(&store.dir).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary files left");
        let info = |id: &str| ContainerInfo {
            id: id.into(),
            name: String::new(),
            project: String::new(),
            user: String::new(),
            state: State::Running,
            never_started: false,
            status: String::new(),
            image: String::new(),
            workspace: String::new(),
            data: String::new(),
            data_group: String::new(),
            size_rw: None,
            run: false,
            gpus: Vec::new(),
        };
        store.prune(&[info("def")]);
        assert_eq!(store.load("abc"), History::default());
        assert_eq!(store.load("def"), history);
    }

    #[test]
    fn notices_are_appended_and_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        write_notice(dir.path(), "one\n").unwrap();
        write_notice(dir.path(), "two\n").unwrap();
        let text = fs::read_to_string(dir.path().join(NOTICE_FILE)).unwrap();
        assert_eq!(text, "one\ntwo\n");

        let other = tempfile::tempdir().unwrap();
        let victim = other.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, other.path().join(NOTICE_FILE)).unwrap();
        assert!(write_notice(other.path(), "x").is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    }
}
