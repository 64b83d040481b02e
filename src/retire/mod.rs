//! Retire loses nothing silently (README, "What retire does"): freeze the container,
//! read its changes and anonymous volumes, show what would be lost, and remove it only
//! when that is nothing or the user chose: a `[y/N]` answer, `--yes`, `--rescue` or
//! `--commit`. A refusal, a "no", Ctrl-C or any error before the stop leaves the
//! container as it was (unpaused when berth paused it). The rescue and the commit come
//! after the stop, so that they hold what a stop handler wrote; a failure there leaves
//! it stopped, not removed.
//!
//! [`assess`], [`classify`], [`choices`] and the choice of what to fetch in [`rescue`]
//! are pure; [`scan`] reads the engine; this file is the sequence around them.

pub mod alarm;
pub mod assess;
mod choices;
pub mod classify;
pub mod rescue;
mod save;
mod scan;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cli::RetireArgs;
use crate::clock::utc_stamp;
use crate::container::{ContainerInfo, Inspected, State};
use crate::context::Context;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::layer::{raw_paths, PathText, RawPath, Reader};
use crate::lock::Lock;
use crate::names::shown;
use crate::remember;
use crate::signals::Signals;
use crate::ui::{self, Printer};
use crate::units::human_size;
use assess::{assess, Assessment, Disposable};
use choices::own_repos;
pub use choices::{Choices, CommitTo, RescueScope, Target};
use classify::{ByProject, Report};
use scan::{
    berths_identity_files, find_dirs, identity_texts, measure, probe_volumes, resolve_in_container,
    IdentityTexts, Stats,
};

/// How long a container gets to stop on SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stopped and removed.
    Removed,
    /// The user answered no.
    Kept,
    /// Unsaved work, no terminal to ask on, and no `--yes`, `--rescue` or `--commit`.
    Refused,
    /// Stopping the container made new unsaved files the user was not shown: it is
    /// stopped but not removed.
    StoppedNotRemoved,
    /// `--dry-run`: it would be removed without asking.
    WouldRemove,
    /// `--dry-run`: it holds work, so it would be removed only with consent.
    WouldAsk,
}

impl Action {
    /// As `--json` and the event log write it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Removed => "removed",
            Action::Kept => "kept",
            Action::Refused => "refused",
            Action::StoppedNotRemoved => "stopped_not_removed",
            Action::WouldRemove => "would_remove",
            Action::WouldAsk => "would_ask",
        }
    }
}

/// What retire saw and did (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub project: String,
    pub container: String,
    /// The state before retire touched it.
    pub state: State,
    pub action: Action,
    #[serde(flatten)]
    pub report: Report,
    pub rescued: Option<Rescued>,
    /// The image `--commit` made.
    pub image: Option<String>,
    /// Files written while the container stopped, which nobody was shown.
    pub appeared: Vec<PathText>,
    /// Those of `appeared` that are not UTF-8, with their own bytes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub appeared_raw: Vec<RawPath>,
    /// How long berth held it paused (milliseconds), where it paused it.
    pub paused_ms: Option<u64>,
    /// What `--save-packages` wrote: each list, and the packages it gained.
    pub saved_packages: Vec<save::Saved>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rescued {
    pub path: PathBuf,
    pub files: u64,
    pub bytes: u64,
    /// FIFOs and device nodes: listed, not copied.
    pub special: Vec<rescue::Special>,
}

impl Outcome {
    /// The error a decision not to remove becomes (exit 3), if it is one.
    pub fn refusal(&self) -> Option<Error> {
        let name = &self.container;
        match self.action {
            Action::Removed | Action::WouldRemove | Action::WouldAsk => None,
            Action::Kept => Some(Error::refused(format!(
                "kept {name}: you answered no; nothing was removed"
            ))),
            Action::Refused => Some(
                Error::refused(format!(
                    "{name} holds unsaved work ({}); not removing it without your consent",
                    self.work_summary()
                ))
                .hint(
                    "--rescue copies it into the workspace, --commit keeps it as an image, \
                     --yes discards it; --dry-run shows it all",
                ),
            ),
            Action::StoppedNotRemoved => Some(
                Error::refused(format!(
                    "{name} wrote {} new file(s) while it stopped, which you were not shown; \
                     it is stopped but not removed",
                    self.appeared.len()
                ))
                .details(
                    self.appeared
                        .iter()
                        .take(8)
                        .map(|p| format!("  {}", p.shown())),
                )
                .hint(format!(
                    "retire it again to see them, or `berth deploy {}` to start it",
                    self.project
                )),
            ),
        }
    }

    fn work_summary(&self) -> String {
        let mut parts = vec![format!("{} unsaved file(s)", self.report.unsaved_files())];
        if !self.report.volumes.is_empty() {
            parts.push(format!(
                "{} anonymous volume(s) holding data",
                self.report.volumes.len()
            ));
        }
        parts.join(", ")
    }
}

/// `berth retire PROJECT`; one event for what it did or why not (a dry run changes
/// nothing and records nothing).
pub async fn retire(args: &RetireArgs, printer: &Printer) -> Result<()> {
    let result = retire_inner(args, printer).await;
    if !args.dry_run {
        let paused_ms = result.as_ref().ok().and_then(|outcome| outcome.paused_ms);
        let outcome = |outcome: &Outcome| {
            (
                outcome.action.name(),
                outcome.refusal().map(|err| err.message),
            )
        };
        crate::events::log_paused(
            printer,
            "retire",
            &args.project,
            &result,
            outcome,
            paused_ms,
        );
    }
    match result?.refusal() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

async fn retire_inner(args: &RetireArgs, printer: &Printer) -> Result<Outcome> {
    let choices = Choices::from_args(args)?;
    let ctx = Context::load(&args.project, &Default::default())?;
    ctx.warn(printer);
    let engine = Engine::connect().await?;
    // One deploy or retire of a project at a time (a dry run changes nothing, and
    // does not wait): the loser finds the container as the winner left it.
    let held = match args.dry_run {
        true => None,
        false => Some(Lock::project(&ctx.paths.state_dir, ctx.project.as_str(), printer).await?),
    };
    let found = engine.find(ctx.project.as_str(), ctx.user.uid).await?;
    let mut container = match (found, held.as_ref().is_some_and(|lock| lock.waited)) {
        (Some(container), _) => container,
        (None, true) => {
            return Err(Error::failed(format!(
                "another berth command retired {}'s container while this one waited; \
                 this one removed nothing",
                ctx.project
            ))
            .hint("`berth list` shows your containers"))
        }
        (None, false) => return Err(crate::engine::no_container(ctx.project.as_str())),
    };
    if !args.dry_run {
        crate::paused::resume_if_abandoned(&engine, &ctx.paths.state_dir, &mut container, printer)
            .await?;
    }
    let target = Target::new(&ctx, &container);
    let outcome = retire_container(&engine, &container, &target, &choices, printer).await?;
    // A container older than berth's memory of images: its next deploy starts the same
    // image. A `berth run` container is a one-off, not the project's.
    let state_dir = &ctx.paths.state_dir;
    if outcome.action == Action::Removed
        && !container.run
        && remember::image(state_dir, ctx.project.as_str()).is_none()
    {
        remember::remember_image(
            state_dir,
            ctx.project.as_str(),
            &container.image,
            "deploy",
            None,
        )
        .ok();
    }
    if args.json {
        printer.json(&outcome);
    }
    Ok(outcome)
}

/// Checks `container` and removes it when that loses nothing or the caller chose to.
/// Used by `retire` and `deploy --recreate`. A decision not to remove is an `Ok`
/// outcome ([`Outcome::refusal`] turns it into an error); `Err` is a failure, after
/// which the container is as it was.
pub async fn retire_container(
    engine: &Engine,
    container: &ContainerInfo,
    target: &Target,
    choices: &Choices,
    printer: &Printer,
) -> Result<Outcome> {
    if let Some(reference) = choices
        .commit
        .as_ref()
        .and_then(|commit| commit.shared_reference(&target.image_repo))
    {
        if engine.image_id(&reference).await?.is_some() {
            return Err(Error::refused(format!(
                "{reference} exists, and is not yours to replace: --commit never \
                 re-points a tag outside {}/; nothing was removed",
                own_repos(&target.image_repo)
            ))
            .hint("pick a new tag, or leave --commit's value out for a UTC time stamp"));
        }
    }
    // Before the pause: from here on a Ctrl-C is ours to handle, not the end of berth.
    let mut signals = Signals::install()?;
    let inspected = engine.inspect(&container.id).await?;
    if inspected.state == State::Busy {
        return Err(Error::failed(format!(
            "{} is restarting or being removed; try again in a moment",
            container.name
        )));
    }
    let frozen = inspected.state == State::Running && !choices.dry_run;
    // Recorded first: a retire killed while it holds the pause leaves the record, and
    // the next berth command resumes the container ([`crate::paused`]).
    let record = frozen.then(|| crate::paused::Record::make(&target.state_dir, &container.id));
    // The reader's helper container, where it needs one, starts while the pause is
    // made and berth's identity files are read (once paused, so that they are what the
    // check judges).
    let opening = Reader::open(engine, &container.id, &inspected.storage, Some(printer));
    let frozen_and_read = async {
        let mut paused_at = None;
        if frozen {
            engine.pause(&container.id).await?;
            paused_at = Some(std::time::Instant::now());
        }
        let identity = identity_texts(engine, &container.id, inspected.identity.as_ref()).await;
        Ok::<_, Error>((paused_at, identity))
    };
    let (mut reader, frozen_and_read) = tokio::join!(opening, frozen_and_read);
    let (paused_at, identity) = frozen_and_read?;
    let job = Job {
        engine,
        container,
        inspected: &inspected,
        target,
        choices,
        printer,
        frozen,
        identity: &identity,
        paused_at,
    };
    let checked = tokio::select! {
        checked = check_and_prepare(&job, &mut reader) => checked,
        signal = signals.next() => {
            if std::io::stdin().is_terminal() {
                eprintln!();
            }
            Err(Error::interrupted(format!(
                "interrupted by {}; {} was not removed", signal.describe(), container.name
            )))
        }
    };
    // The record goes once the container is unpaused; kept whenever that did not happen
    // (a failed unpause, or this future dropped: the engine stopped answering).
    let (outcome, seen) = match checked {
        Ok(Step::Remove(outcome, seen)) => (outcome, seen),
        Ok(Step::Stay(mut outcome)) => {
            if frozen {
                engine
                    .unpause(&container.id)
                    .await
                    .map_err(|err| still_paused(err, &container.name))?;
                outcome.paused_ms = paused_for(paused_at);
            }
            crate::paused::clear(record);
            return Ok(outcome);
        }
        Err(err) => {
            if frozen {
                if let Err(unpause) = engine.unpause(&container.id).await {
                    return Err(err.details([format!(
                        "and {}: {} is still paused; the next berth command on it, or \
                         `docker unpause {}`, resumes it",
                        unpause.message, container.name, container.name
                    )]));
                }
            }
            crate::paused::clear(record);
            return Err(err);
        }
    };
    let removed = tokio::select! {
        removed = remove(&job, &mut reader, outcome, *seen) => removed,
        signal = signals.next() => Err(Error::interrupted(format!(
            "interrupted by {} while removing {}: it may be stopped, but it was not removed",
            signal.describe(),
            container.name
        ))),
    };
    // Unpaused first thing, even when a later step failed; should the unpause itself
    // have failed, the next command finds the record and, the container paused, resumes.
    if removed.is_ok() {
        crate::paused::clear(record);
    }
    removed
}

/// `--save-packages`: the report's packages into the workspace's lists, and a note for
/// each list. A list that cannot be written is an error, before anything is removed.
fn save_packages(
    workspace: &std::path::Path,
    report: &Report,
    printer: &Printer,
) -> Result<Vec<save::Saved>> {
    if report.packages.is_empty() {
        printer.note("--save-packages: the container installed no packages berth can name");
        return Ok(Vec::new());
    }
    let saved = save::save(workspace, &report.packages).map_err(|err| {
        Error::failed(format!("cannot save the package lists: {err}")).details([format!(
            "nothing was removed; the lists are in {}",
            workspace.join(save::DIR).display()
        )])
    })?;
    for list in &saved {
        let what = match list.added.len() {
            0 => "already names them all".to_string(),
            n => format!("gained {n}: {}", list.added.join(" ")),
        };
        printer.note(&format!("{}: {what}", list.path.display()));
    }
    Ok(saved)
}

/// The first few packages, pinned, and how many more: `six==1.16.0, numpy=1.26.4 and 3
/// more`.
fn named(packages: &[classify::Package]) -> String {
    const SHOWN: usize = 3;
    let mut text: Vec<String> = packages
        .iter()
        .take(SHOWN)
        .map(classify::Package::requirement)
        .collect();
    if packages.len() > SHOWN {
        text.push(format!("{} more", packages.len() - SHOWN));
    }
    text.join(", ")
}

/// Milliseconds since `paused_at`, for the outcome and the event log.
fn paused_for(paused_at: Option<std::time::Instant>) -> Option<u64> {
    paused_at.map(|at| at.elapsed().as_millis().try_into().unwrap_or(u64::MAX))
}

fn still_paused(err: Error, name: &str) -> Error {
    err.details([format!(
        "{name} is still paused; the next berth command on it, or `docker unpause {name}`, \
         resumes it"
    )])
}

enum Step {
    /// Leave the container as it was.
    Stay(Outcome),
    /// Stop and remove it (rescue and commit, if asked, are done).
    Remove(Outcome, Box<Seen>),
}

/// What the check saw, for the second look after the stop.
struct Seen {
    /// Every changed path the user was shown.
    changed: HashSet<PathText>,
    /// Berth's and the engine's own paths, as they land in the layer.
    own: Vec<String>,
    /// The check's weighing of the layer.
    assessment: Assessment,
    /// Each file's signature as the check's walk found it
    /// ([`crate::layer::Stamped::files`]); none where the engine listed the changes.
    signatures: Option<HashMap<Vec<u8>, u64>>,
}

/// One retire of one container: what every step of it reads.
struct Job<'a> {
    engine: &'a Engine,
    container: &'a ContainerInfo,
    inspected: &'a Inspected,
    target: &'a Target,
    choices: &'a Choices,
    printer: &'a Printer,
    /// berth paused it for the check.
    frozen: bool,
    /// berth's identity files as the check found them.
    identity: &'a IdentityTexts,
    /// When berth's pause took hold, if it paused it.
    paused_at: Option<std::time::Instant>,
}

/// Everything up to the removal, with the container frozen: read, assess, show, ask.
/// `reader` reads its layer, here and again for the second look after the stop.
async fn check_and_prepare(job: &Job<'_>, reader: &mut Reader<'_>) -> Result<Step> {
    let Job {
        engine,
        container,
        inspected,
        target,
        choices,
        printer,
        frozen,
        identity,
        ..
    } = *job;
    let Layer {
        assessment,
        report,
        own,
        stamp,
    } = read_layer(
        engine,
        reader,
        inspected,
        identity,
        target,
        (frozen, frozen),
    )
    .await?;
    for line in report.summary(
        &container.name,
        &target.workspace.display().to_string(),
        &target.image_repo,
    ) {
        printer.note(&line);
    }
    if choices.verbose {
        printer.note(&format!("changes: {}", report.read_by.describe()));
    }
    let mut outcome = Outcome {
        project: container.project.clone(),
        container: container.name.clone(),
        state: inspected.state,
        action: Action::Removed,
        report,
        rescued: None,
        image: None,
        appeared: Vec::new(),
        appeared_raw: Vec::new(),
        paused_ms: None,
        saved_packages: Vec::new(),
    };
    let holds_work = outcome.report.holds_work();

    if choices.dry_run {
        outcome.action = if holds_work && !choices.decided() {
            Action::WouldAsk
        } else {
            Action::WouldRemove
        };
        printer.note(&format!(
            "dry run: {}",
            match outcome.action {
                Action::WouldAsk => "it would be removed only after you agree (a prompt on a terminal, else --yes, --rescue or --commit)",
                _ => "it would be removed",
            }
        ));
        return Ok(Step::Stay(outcome));
    }
    let mut save = choices.save_packages;
    if !save && holds_work && !choices.decided() && !outcome.report.packages.is_empty() {
        // On a terminal, the packages are offered before the container is.
        save = ask(format!(
            "Save its packages ({}) to {} for the next deploy?",
            named(&outcome.report.packages),
            target.workspace.join(save::DIR).display()
        ))
        .await?
            == Some(true);
    }
    if save {
        outcome.saved_packages = save_packages(&target.workspace, &outcome.report, printer)?;
    }
    if holds_work && !choices.decided() {
        let question = format!(
            "Remove {} and lose its {}?",
            container.name,
            outcome.work_summary()
        );
        match ask(question).await? {
            Some(true) => {}
            Some(false) => {
                outcome.action = Action::Kept;
                return Ok(Step::Stay(outcome));
            }
            None => {
                outcome.action = Action::Refused;
                return Ok(Step::Stay(outcome));
            }
        }
    }

    let changed = assessment
        .unsaved
        .iter()
        .chain(&assessment.touched_dirs)
        .map(|c| c.path.clone())
        .collect();
    Ok(Step::Remove(
        outcome,
        Box::new(Seen {
            changed,
            own,
            assessment,
            signatures: stamp.map(|s| s.files.into_iter().collect()),
        }),
    ))
}

/// Where dpkg keeps the name and version of every installed package.
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// What the check reads of a container's layer.
struct Layer {
    assessment: Assessment,
    report: Report,
    /// berth's and the engine's own paths, as they land in the layer.
    own: Vec<String>,
    /// The walk's stamp, where berth walked the layer.
    stamp: Option<crate::layer::Stamped>,
}

/// Reads container `id`'s changes and anonymous volumes, and weighs them: what retire
/// shows before it decides. Changes nothing. With `paused`, the container is held
/// paused meanwhile, and a slow engine is told about. With `signed`, the walk signs
/// each file, for a look after the stop to compare.
async fn read_layer(
    engine: &Engine,
    reader: &mut Reader<'_>,
    inspected: &Inspected,
    identity: &IdentityTexts,
    target: &Target,
    (paused, signed): (bool, bool),
) -> Result<Layer> {
    let changes = match signed {
        true => reader.read_stamped(paused).await?,
        false => reader.read(paused).await?,
    };
    weigh(
        engine,
        reader.container(),
        changes,
        inspected,
        identity,
        target,
    )
    .await
}

/// Sorts and measures the changes `id` has, as retire weighs them.
async fn weigh(
    engine: &Engine,
    id: &str,
    changes: crate::layer::Changes,
    inspected: &Inspected,
    identity: &IdentityTexts,
    target: &Target,
) -> Result<Layer> {
    let disposable = &Disposable::new(&target.disposable);
    let crate::layer::Changes {
        list: changes,
        read_by,
        stamp,
    } = changes;
    let mut stats = Stats::new();
    let mut own =
        resolve_in_container(engine, id, &inspected.own_paths, &changes, &mut stats).await;
    own.extend(berths_identity_files(
        identity,
        inspected.identity.as_ref(),
        &changes,
    ));
    let mut assessment = assess(changes, &own, disposable);
    let dirs = find_dirs(engine, id, assessment.modified_leaves(), &mut stats).await;
    assessment.settle_dirs(&dirs);
    let volumes = probe_volumes(engine, id, inspected, disposable).await?;
    let sizes = measure(engine, id, &assessment, &mut stats).await;
    let mut report = Report::new(&assessment, &sizes, read_by, volumes.holding);
    report.disposable_volumes = volumes.disposable;
    if let Some((file, vouched)) = &target.disposable_from_project {
        report.disposable_by_project =
            ByProject::new(file, &assessment.disposable, &Disposable::new(vouched));
    }
    if report.packages.iter().any(|p| p.manager == "apt") {
        // dpkg's records name a package, its status file says which version.
        if let Ok(Some(status)) = engine.read_file(id, DPKG_STATUS).await {
            classify::apt_versions(&mut report.packages, &status);
        }
    }
    Ok(Layer {
        assessment,
        report,
        own,
        stamp,
    })
}

/// What `container` holds that retire would ask about, read without pausing it: for
/// `berth check`.
pub async fn unsaved(
    engine: &Engine,
    container: &ContainerInfo,
    target: &Target,
    printer: &Printer,
) -> Result<Report> {
    let inspected = engine.inspect(&container.id).await?;
    let (mut reader, identity) = tokio::join!(
        Reader::open(engine, &container.id, &inspected.storage, Some(printer)),
        identity_texts(engine, &container.id, inspected.identity.as_ref()),
    );
    let layer = read_layer(
        engine,
        &mut reader,
        &inspected,
        &identity,
        target,
        (false, false),
    )
    .await?;
    Ok(layer.report)
}

/// What `container` holds that exists nowhere else, sorted as retire sorts it: for a
/// backup `--with-container`, which holds the container paused (`paused`) meanwhile.
pub async fn assessment(
    engine: &Engine,
    container: &ContainerInfo,
    target: &Target,
    paused: bool,
) -> Result<Assessment> {
    let inspected = engine.inspect(&container.id).await?;
    let (mut reader, identity) = tokio::join!(
        Reader::open(engine, &container.id, &inspected.storage, None),
        identity_texts(engine, &container.id, inspected.identity.as_ref()),
    );
    let read = (paused, false);
    let layer = read_layer(engine, &mut reader, &inspected, &identity, target, read).await?;
    Ok(layer.assessment)
}

/// What [`assessment_since`] found.
pub struct Stamped {
    /// None when the layer is as stamped before.
    pub assessment: Option<Assessment>,
    /// The walk's [`crate::layer::overlay::Stamp`], where berth walked the layer.
    pub stamp: Option<crate::layer::Stamped>,
}

/// [`assessment`], unless the walk of the layer stamps it as `last` did: then nothing
/// more is read.
pub async fn assessment_since(
    engine: &Engine,
    container: &ContainerInfo,
    target: &Target,
    paused: bool,
    last: Option<&str>,
) -> Result<Stamped> {
    let inspected = engine.inspect(&container.id).await?;
    let mut reader = Reader::open(engine, &container.id, &inspected.storage, None).await;
    let changes = reader.read_stamped(paused).await?;
    let stamp = changes.stamp.clone();
    if stamp.is_some() && stamp.as_ref().map(|s| s.digest.as_str()) == last {
        return Ok(Stamped {
            assessment: None,
            stamp,
        });
    }
    let identity = identity_texts(engine, &container.id, inspected.identity.as_ref()).await;
    let layer = weigh(
        engine,
        &container.id,
        changes,
        &inspected,
        &identity,
        target,
    )
    .await?;
    Ok(Stamped {
        assessment: Some(layer.assessment),
        stamp,
    })
}

/// Asks on the terminal without blocking the runtime, so a Ctrl-C is still heard.
async fn ask(question: String) -> Result<Option<bool>> {
    tokio::task::spawn_blocking(move || ui::confirm(&question))
        .await
        .map_err(|err| Error::failed(format!("cannot ask: {err}")))?
}

/// Unpause, stop (SIGTERM, then the timeout), look at the layer again, rescue and
/// commit what it holds now, remove. Volumes are kept.
///
/// The rescue and the commit come after the stop, so that they hold what the program
/// wrote when it was told to stop (a checkpoint on SIGTERM), and they take in what it
/// wrote there that nobody was shown. Without either, a path written while it stopped
/// that the user was not shown keeps the container.
async fn remove(
    job: &Job<'_>,
    reader: &mut Reader<'_>,
    mut outcome: Outcome,
    seen: Seen,
) -> Result<Outcome> {
    let Job {
        engine,
        container,
        inspected,
        target,
        choices,
        printer,
        ..
    } = *job;
    let id = &container.id;
    let was_up = matches!(inspected.state, State::Running | State::Paused);
    let keeps = choices.rescue.is_some() || choices.commit.is_some();
    let mut layer = seen.assessment;
    let mut appeared = Vec::new();
    if was_up {
        engine.unpause(id).await?;
        outcome.paused_ms = paused_for(job.paused_at);
        engine.stop(id, STOP_TIMEOUT).await?;
        // Its stop handler ran after the check: whatever it wrote, nobody has seen.
        let after = reader.read_stamped(false).await?;
        // A file shown, then written again as it stopped (a checkpoint on SIGTERM):
        // what it holds now, nobody has seen either.
        let rewritten: HashSet<&[u8]> = match (&seen.signatures, &after.stamp) {
            (Some(before), Some(now)) => now
                .files
                .iter()
                .filter(|(path, sig)| before.get(path).is_some_and(|was| was != sig))
                .map(|(path, _)| path.as_slice())
                .collect(),
            _ => HashSet::new(),
        };
        let unseen =
            |path: &PathText| !seen.changed.contains(path) || rewritten.contains(path.bytes());
        layer = assess(after.list, &seen.own, &Disposable::new(&target.disposable));
        if !keeps {
            // Only what nobody saw matters now; a rescue needs the whole layer.
            layer.unsaved.retain(|c| unseen(&c.path));
        }
        // Stopped now: what was statted while it ran may have changed.
        let dirs = find_dirs(engine, id, layer.modified_leaves(), &mut Stats::new()).await;
        layer.settle_dirs(&dirs);
        appeared = layer
            .unsaved
            .iter()
            .filter(|c| unseen(&c.path))
            .map(|c| c.path.clone())
            .collect();
    }
    if !appeared.is_empty() && !keeps {
        outcome.action = Action::StoppedNotRemoved;
        outcome.appeared_raw = raw_paths(&appeared);
        outcome.appeared = appeared;
        return Ok(outcome);
    }
    let stopped = |err: Error| match was_up {
        true => err.details([format!(
            "nothing was removed; {} is stopped, and `berth deploy {}` starts it again",
            container.name, container.project
        )]),
        false => err.details([format!(
            "nothing was removed; {} is as it was",
            container.name
        )]),
    };
    let stamp = utc_stamp(SystemTime::now());
    if let Some(scope) = choices.rescue {
        let volume_targets: Vec<String> = outcome
            .report
            .volumes
            .iter()
            .chain(match scope {
                RescueScope::All => &outcome.report.disposable_volumes[..],
                RescueScope::Unsaved => &[],
            })
            .map(|v| v.target.clone())
            .collect();
        let rescued = rescue(job, scope, &layer, &volume_targets, &stamp)
            .await
            .map_err(stopped)?;
        note_rescued(printer, rescued.as_ref());
        outcome.rescued = rescued;
    }
    if let Some(commit_to) = &choices.commit {
        let (repo, tag) = commit_to.resolve(&target.image_repo, &stamp);
        let comment = format!("berth retire {} at {stamp}", container.name);
        engine
            .commit(id, &repo, &tag, &comment)
            .await
            .map_err(|err| match &outcome.rescued {
                Some(r) => {
                    stopped(err).details([format!("the rescued files are in {}", r.path.display())])
                }
                None => stopped(err),
            })?;
        printer.note(&format!("committed {} as {repo}:{tag}", container.name));
        outcome.image = Some(format!("{repo}:{tag}"));
    }
    if !appeared.is_empty() {
        printer.note(&format!(
            "{} path(s) written while it stopped, which you were not shown, are kept too",
            appeared.len()
        ));
        outcome.appeared_raw = raw_paths(&appeared);
        outcome.appeared = appeared;
    }
    engine.remove(id).await?;
    let report = &outcome.report;
    for volume in report.volumes.iter().chain(&report.disposable_volumes) {
        printer.note(&format!(
            "kept anonymous volume {} (was {}); `docker volume rm {}` when you are done with it",
            volume.name, volume.target, volume.name
        ));
    }
    printer.note(&format!("retired {}", container.name));
    outcome.action = Action::Removed;
    Ok(outcome)
}

/// What a rescue copied, and what it listed without copying.
fn note_rescued(printer: &Printer, rescued: Option<&Rescued>) {
    let Some(r) = rescued else {
        printer.note("nothing to rescue");
        return;
    };
    printer.note(&format!(
        "rescued {} file(s), {}, into {}",
        r.files,
        human_size(r.bytes),
        r.path.display()
    ));
    for special in &r.special {
        printer.note(&format!(
            "  not copied: {} (a {}: it holds no data of its own)",
            special.path, special.kind
        ));
    }
}

/// Copies what `scope` covers into a new `<workspace>/.rescued/<stamp>/`, written as
/// `<stamp>.partial` until every unsaved file is in it. On failure the error says what
/// was copied, what was not, and where the partial copy stays.
async fn rescue(
    job: &Job<'_>,
    scope: RescueScope,
    assessment: &Assessment,
    volume_targets: &[String],
    stamp: &str,
) -> Result<Option<Rescued>> {
    let (engine, id, target) = (job.engine, &job.container.id, job.target);
    let all = scope == RescueScope::All;
    let disposable = Disposable::new(&target.disposable);
    let roots = rescue::roots(assessment, volume_targets, all);
    if roots.is_empty() {
        return Ok(None);
    }
    let folder = rescue::folder(&target.workspace, stamp).map_err(|err| {
        Error::failed(format!(
            "cannot rescue into {}: {}",
            target.workspace.join(".rescued").display(),
            crate::error::io_reason(&err)
        ))
        .details(["nothing was copied".to_string()])
    })?;
    let extractor = rescue::extractor(folder, (!all).then_some(disposable));
    copy_into(engine, id, roots, extractor, &assessment.unsaved, "rescue")
        .await
        .map(Some)
}

/// Copies `roots` of container `id` through the archive endpoint into `extractor`'s
/// folder and completes it; every one of `unsaved` must come. `what` names the copy
/// in errors (`rescue`, `snapshot`), which say what was copied, what was not, and
/// where the partial copy stays.
pub async fn copy_into(
    engine: &Engine,
    id: &str,
    roots: Vec<rescue::Root>,
    mut extractor: rescue::Extractor,
    unsaved: &[assess::Change],
    what: &str,
) -> Result<Rescued> {
    let mut queue: VecDeque<rescue::Root> = roots.into();
    while let Some(root) = queue.pop_front() {
        let reader = engine.download_reader(id, &root.path);
        let root_owned = root.clone();
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = root_owned.unpack(&mut extractor, reader);
            (extractor, result)
        })
        .await
        .map_err(|err| Error::failed(format!("{what} stopped: {err}")))?;
        extractor = back;
        // Hard links whose first name was left out come next, each as the file it is.
        queue.extend(
            extractor
                .pending
                .drain(..)
                .map(|path| rescue::Root::new(path, false)),
        );
        if let Err(failure) = result {
            let rest: Vec<String> = queue.iter().map(|r| shown(r.path.as_bytes())).collect();
            let not_copied = if rest.is_empty() {
                format!(
                    "not copied: {} and what follows it in {}",
                    failure.path,
                    shown(root.path.as_bytes())
                )
            } else {
                format!(
                    "not copied: {} and what follows it in {}, and {} more path(s) from {}",
                    failure.path,
                    shown(root.path.as_bytes()),
                    rest.len(),
                    rest[0]
                )
            };
            return Err(Error::failed(format!(
                "{what} failed at {}: {}",
                failure.path, failure.reason
            ))
            .details(partly_rescued(&extractor, not_copied))
            .hint("free space or fix the folder, then try again"));
        }
    }
    let missing = rescue::missing(&extractor, unsaved);
    if !missing.is_empty() {
        let mut details: Vec<String> = missing
            .iter()
            .take(8)
            .map(|p| format!("  {}", p.shown()))
            .collect();
        details.extend(partly_rescued(
            &extractor,
            format!("not copied: {} unsaved path(s)", missing.len()),
        ));
        return Err(Error::failed(format!(
            "{what} incomplete: {} unsaved path(s) were not in what the engine sent",
            missing.len()
        ))
        .details(details)
        .hint("try again; if it recurs, `docker cp` the paths above by hand"));
    }
    let (files, bytes, special) = (
        extractor.files,
        extractor.bytes,
        std::mem::take(&mut extractor.special),
    );
    let partial = extractor.partial_path();
    let path = extractor.complete().map_err(|failure| {
        Error::failed(format!(
            "{what} could not finish {}: {}",
            failure.path, failure.reason
        ))
        .details([format!("every file was copied, into {}", partial.display())])
    })?;
    Ok(Rescued {
        path,
        files,
        bytes,
        special,
    })
}

/// What a failed rescue says of the copy it leaves.
fn partly_rescued(extractor: &rescue::Extractor, not_copied: String) -> Vec<String> {
    vec![
        format!(
            "copied {} file(s), {}, into {} before that; it is yours to delete",
            extractor.files,
            human_size(extractor.bytes),
            extractor.partial_path().display()
        ),
        not_copied,
    ]
}
