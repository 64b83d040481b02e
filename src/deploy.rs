//! `berth deploy PROJECT`: prepare ([`launch::prepare`]), then start the project's
//! container, or create one: the unsaved-work check before a `--recreate`, the GPU
//! claim, the identity files, the create and the start, with signals held so that an
//! interrupted deploy leaves no container half-made.

use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::check;
use crate::cli::DeployArgs;
use crate::config::Source;
use crate::container::State;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events;
use crate::gpu::{self, claim::Confirmed};
use crate::identity;
use crate::launch::{self, Prepared};
use crate::lock::Lock;
use crate::plan::LaunchPlan;
use crate::remember;
use crate::retire;
use crate::signals::{self, Signals};
use crate::ui::Printer;

#[derive(Serialize)]
struct DeployOutcome<'a> {
    project: &'a str,
    container: &'a str,
    id: String,
    /// `created`, `started`, `unpaused` or `running` (it already was).
    action: &'static str,
    image: &'a str,
    /// What the new container's mounts hide of its image.
    hidden: Vec<launch::Hidden>,
}

/// How many times a deploy creates its container when it keeps giving way to another
/// berth's claim of the same GPUs ([`gpu::claim::Claim::confirm`]).
const GIVE_WAY_TRIES: u32 = 3;

/// `berth deploy PROJECT`; one event for what it did or why not (a dry run changes
/// nothing and records nothing).
pub async fn deploy(args: &DeployArgs, printer: &Printer) -> Result<()> {
    let result = deploy_inner(args, printer).await;
    if !args.dry_run {
        events::log(printer, "deploy", &args.project, &result, |action| {
            (*action, None)
        });
    }
    result.map(|_| ())
}

/// The deploy itself; `Ok` is what was done: `created`, `started`, `unpaused`,
/// `running`, or `dry-run`.
async fn deploy_inner(args: &DeployArgs, printer: &Printer) -> Result<&'static str> {
    if let Some(name) = &args.context {
        crate::endpoint::choose(name);
    }
    // A dry run touches nothing, and needs the engine only to name an image: without
    // one it still shows the plan.
    let engine = match args.dry_run {
        true => Engine::connect().await.ok(),
        false => Some(Engine::connect().await?),
    };
    // One deploy or retire of a project at a time: the others wait, then find its
    // container as that one left it. Taken first, so that what prepare learns (the
    // container, the build) still holds when the deploy acts on it.
    let _deploying = match args.dry_run {
        true => None,
        false => Some(lock_project(&args.project, printer).await?),
    };
    refuse_half_restored(&args.project)?;
    let mut prepared = launch::prepare(&args.project, Some(args), engine.as_ref(), printer).await?;
    refuse_outside_slurm(&prepared.ctx)?;
    let source = prepared.ctx.settings.image.as_ref().map(|i| &i.source);
    if let Some(source @ (Source::Build(_) | Source::Generated { .. })) = source {
        printer.note(&format!("image {}: {source}", prepared.plan.image));
    }
    if let Some(Source::Remembered { by, at }) = source {
        let what = match by.as_str() {
            "build" => "this project's last build made",
            _ => "this project's last deploy used",
        };
        printer.note(&format!(
            "image {}: the one {what} ({at}); --image, or `image =` in \
             berth.toml, names another",
            prepared.plan.image
        ));
    }
    let Some(engine) = engine.filter(|_| !args.dry_run) else {
        if args.json {
            printer.json(&check::report(&prepared, None, &[]));
        } else {
            check::print_plan(&prepared, printer);
        }
        return Ok("dry-run");
    };
    // Three questions to the engine that do not depend on each other, asked at once,
    // unless prepare knows the answer.
    let learned = std::mem::take(&mut prepared.learned);
    let (group, existing, image_id) = tokio::join!(
        prepared.check_group(&engine),
        async {
            match learned.container {
                Some(known) => Ok(known),
                None => {
                    engine
                        .find(prepared.ctx.project.as_str(), prepared.ctx.user.uid)
                        .await
                }
            }
        },
        async {
            match learned.image_id {
                Some(id) => Ok(Some(id)),
                None => engine.image_id(&prepared.plan.image).await,
            }
        },
    );
    group?;
    let mut existing = existing?;
    if let Some(container) = existing.as_mut() {
        crate::paused::resume_if_abandoned(
            &engine,
            &prepared.ctx.paths.state_dir,
            container,
            printer,
        )
        .await?;
    }
    // Before anything is written (the data root's marker, a new container).
    if let Some(container) = existing
        .as_ref()
        .filter(|c| !c.never_started && !args.recreate)
    {
        prepared.check_own(container)?;
    }
    prepared.settle_identity()?;
    let (ctx, plan) = (&prepared.ctx, &prepared.plan);
    if let Some(half_made) = existing.take_if(|container| container.never_started) {
        // A deploy killed between its create and its start left this. It never ran,
        // so it holds no work; a new one gets the start it never had.
        engine.remove(&half_made.id).await?;
        printer.note(&format!(
            "removed {}: an interrupted deploy had created it but never started it",
            half_made.name
        ));
    }
    if let (Some(container), true) = (&existing, args.recreate) {
        // The same check as retire: it asks on a terminal and refuses without one.
        let target = retire::Target::new(ctx, container);
        let outcome =
            retire::retire_container(&engine, container, &target, &Default::default(), printer)
                .await;
        crate::signals::exit_on_signal(*printer)?;
        let outcome = outcome?;
        if let Some(refusal) = outcome.refusal() {
            return Err(Error::refused(format!(
                "not recreating {}: {}",
                container.name, refusal.message
            ))
            .details(refusal.details)
            .hint(format!(
                "`berth retire {}` with --rescue, --commit or --yes first, then deploy",
                ctx.project
            )));
        }
        existing = None;
    }

    // What the new container's mounts hide of its image, said before it is made.
    let mut hidden = Vec::new();
    if let (None, Ok(Some(image_id))) = (&existing, &image_id) {
        match prepared.hidden(&engine, image_id).await {
            Ok(found) => hidden = found,
            Err(err) => printer.warn(&format!(
                "cannot tell what the mounts hide of {}: {}",
                plan.image, err.message
            )),
        }
        for mount in &hidden {
            printer.warn(&mount.warning(&plan.image));
        }
    }
    let (id, action) = match &existing {
        Some(container) => (
            container.id.clone(),
            resume(&engine, &container.id, plan, args.settle, printer).await?,
        ),
        None => create(&engine, &prepared, image_id?, args.settle, printer).await?,
    };
    if action == "created" {
        remember_image(&prepared, printer);
    }
    if let (Some(container), "running") = (&existing, action) {
        crate::retire::alarm::on_entry(&engine, &prepared.ctx, container, printer).await;
    }
    if args.json {
        printer.json(&DeployOutcome {
            project: &plan.project,
            container: &plan.container_name,
            id,
            action,
            image: &plan.image,
            hidden,
        });
    }
    Ok(action)
}

/// Refuses a project that a restore killed half-way left ([`crate::backup::restore`]).
fn refuse_half_restored(project: &str) -> Result<()> {
    let project = crate::host::ProjectName::parse(project)?;
    let state_dir = crate::host::Paths::from_env()?.state_dir;
    let Some(pending) = crate::backup::restore::Pending::find(&state_dir, project.as_str()) else {
        return Ok(());
    };
    Err(Error::refused(format!(
        "a restore of {project} from {} did not finish: not deploying a half-restored project",
        pending.archive.display()
    ))
    .hint(format!(
        "`berth restore {}` again finishes it (it first clears what was left)",
        pending.archive.display()
    )))
}

/// The project's deploy lock, taken before its context is read.
async fn lock_project(project: &str, printer: &Printer) -> Result<Lock> {
    let project = crate::host::ProjectName::parse(project)?;
    let state_dir = crate::host::Paths::from_env()?.state_dir;
    Lock::project(&state_dir, project.as_str(), printer).await
}

/// Remembers the image a new container was created from, for the project's next
/// deploy after a retire. Failing to is a warning: the container runs.
fn remember_image(prepared: &Prepared, printer: &Printer) {
    let (ctx, image) = (&prepared.ctx, &prepared.plan.image);
    let base = match ctx.settings.image.as_ref().map(|i| &i.source) {
        Some(Source::Generated { base, .. }) => Some(base.as_str()),
        _ => None,
    };
    let state_dir = &ctx.paths.state_dir;
    if let Err(err) =
        remember::remember_image(state_dir, ctx.project.as_str(), image, "deploy", base)
    {
        printer.warn(&format!(
            "cannot remember {image} for the next deploy of {}: {err}",
            ctx.project
        ));
    }
}

/// Refuses a deploy on this host where the policy's `[slurm] require` says projects
/// go through Slurm (`--slurm`); the deploy inside the Slurm job is the one allowed.
fn refuse_outside_slurm(ctx: &crate::context::Context) -> Result<()> {
    let Some((path, policy)) = &ctx.policy else {
        return Ok(());
    };
    if !policy.slurm.require || std::env::var_os("SLURM_JOB_ID").is_some() {
        return Ok(());
    }
    Err(Error::refused(format!(
        "the policy {} places projects with Slurm: not deploying {} on this host",
        path.display(),
        ctx.project
    ))
    .hint(format!("`container-deploy {} --slurm`", ctx.project)))
}

/// Starts (or unpauses) the project's existing container, or reports it running.
async fn resume(
    engine: &Engine,
    id: &str,
    plan: &LaunchPlan,
    settle: Option<Duration>,
    printer: &Printer,
) -> Result<&'static str> {
    let inspected = engine.inspect(id).await?;
    if inspected.image != plan.image {
        printer.warn(&format!(
            "{} was created from {}, but the configuration now says {}: the container \
             wins, since its writable layer holds what was done in it; `--recreate` \
             switches (after the unsaved-work check)",
            plan.container_name, inspected.image, plan.image
        ));
    }
    let action = match inspected.state {
        State::Running => {
            printer.note(&format!("{} is already running", plan.container_name));
            return Ok("running");
        }
        State::Paused => {
            engine.unpause(id).await?;
            "unpaused"
        }
        State::Stopped => {
            let watch = Watch::before_start(engine, id, settle);
            engine.start(id).await.map_err(|err| {
                // The workspace, the home, or berth's identity files, removed meanwhile.
                if err.message.contains("bind source path does not exist") {
                    err.hint(format!(
                        "something {} mounts is gone: put it back, or `berth deploy {} \
                         --recreate` makes a new container (after the unsaved-work check)",
                        plan.container_name, plan.project
                    ))
                } else {
                    err
                }
            })?;
            ensure_running(engine, id, plan, watch).await?;
            "started"
        }
        State::Busy => {
            return Err(Error::failed(format!(
                "{} is restarting or being removed; try again in a moment",
                plan.container_name
            )))
        }
    };
    printer.note(&format!("{action} {}", plan.container_name));
    Ok(action)
}

/// Creates the workspace and home if needed, the image if missing, then the container.
/// `image_id` is the image's, if the engine has it.
async fn create(
    engine: &Engine,
    prepared: &Prepared,
    image_id: Option<String>,
    settle: Option<Duration>,
    printer: &Printer,
) -> Result<(String, &'static str)> {
    let (ctx, plan) = (&prepared.ctx, &prepared.plan);
    prepared.check_with_engine(engine, &plan.to_spec()).await?;
    // The image first: a failed pull must leave no new workspace behind.
    let image_id = launch::pulled_if_missing(engine, &plan.image, image_id, printer).await?;
    let folders = prepared.make_folders(engine, image_id.as_deref()).await?;
    let take_back = |err| folders.take_back(err);
    let mut spec = plan.to_spec();
    let identity = identity::prepare(
        engine,
        &mut spec,
        image_id.as_deref(),
        &ctx.user,
        &plan.home,
        &ctx.paths.state_dir,
    )
    .await
    .map_err(take_back)?;
    // `berth shell` picks bash where the image has it; a `docker exec` is told which.
    let shell = identity
        .as_ref()
        .and_then(|pending| pending.shell())
        .and_then(|shell| shell.rsplit('/').next())
        .unwrap_or("sh")
        .to_string();
    // From here until the container has started, or has been removed, a signal waits:
    // an interrupted deploy leaves no container half-made.
    let mut signals = Signals::install()?;
    let base = spec;
    let mut attempt = 1;
    let (id, gpus) = loop {
        let mut spec = base.clone();
        // From here until the create has returned and been checked, the GPU lock is held.
        let claim = gpu::claim::begin(engine, ctx.policy.as_ref(), &ctx.user, &mut spec, printer)
            .await
            .map_err(take_back)?;
        let made = prepared.make_volumes(engine).await.map_err(take_back)?;
        let created = match engine.create(&spec).await {
            Ok(created) => created,
            Err(err) => {
                // Nothing mounted them: they go with the container that was not made.
                for volume in &made {
                    engine.remove_volume(volume).await.ok();
                }
                return Err(take_back(err));
            }
        };
        if created.is_some() && attempt == 1 {
            for note in folders.notes(&ctx.workspace, &plan.image) {
                printer.note(&note);
            }
        }
        let Some(id) = created else {
            drop(claim);
            drop(signals);
            signals::exit_on_signal(*printer)?;
            // The project lock keeps this user's deploys apart, but not those of another
            // state dir: use the container a deploy there created first.
            let container = engine
                .find(ctx.project.as_str(), ctx.user.uid)
                .await?
                .ok_or_else(|| {
                    Error::failed(format!(
                        "a container named {} exists, but berth did not create it",
                        plan.container_name
                    ))
                    .hint(format!(
                        "rename or remove it: `docker rename {0} {0}.old`",
                        plan.container_name
                    ))
                })?;
            let action = resume(engine, &container.id, plan, settle, printer).await?;
            return Ok((container.id, action));
        };
        let confirmed = match claim {
            Some(claim) => claim.confirm(engine, &id).await,
            None => Ok(Confirmed::Kept(Vec::new())),
        };
        match confirmed {
            // Another berth, with a lock of its own, took a GPU of ours at the same
            // moment, and both gave way: decide again, at a moment of our own.
            Ok(Confirmed::GaveWay(err)) if attempt < GIVE_WAY_TRIES => {
                printer.note(&format!("{}; trying again", err.message));
                interrupted(&mut signals).map_err(take_back)?;
                tokio::time::sleep(gpu::claim::retry_pause(attempt)).await;
                attempt += 1;
            }
            confirmed => break (id, confirmed.and_then(Confirmed::kept)),
        }
    };
    let prepared_and_started = async {
        let gpus = gpus?;
        interrupted(&mut signals)?;
        identity::settle(engine, &id, identity).await?;
        interrupted(&mut signals)?;
        let watch = Watch::before_start(engine, &id, settle);
        engine
            .start(&id)
            .await
            .map_err(|err| err.hint(gpu_hint(plan)))?;
        Ok((gpus, watch))
    }
    .await;
    let (gpus, watch) = match prepared_and_started {
        Ok(started) => started,
        Err(err) => {
            // A container that never ran holds nothing: do not leave it half-made.
            engine.remove(&id).await.ok();
            return Err(err);
        }
    };
    // Started: a signal that came meanwhile ends berth now, and later ones as usual.
    if let Err(err) = interrupted(&mut signals) {
        return Err(Error::interrupted(format!(
            "{}, but {} had started and is running",
            err.message, plan.container_name
        ))
        .hint(format!("`berth retire {}` removes it", ctx.project)));
    }
    drop(signals);
    signals::exit_on_signal(*printer)?;
    ensure_running(engine, &id, plan, watch).await?;
    let with_gpus = if gpus.is_empty() {
        String::new()
    } else {
        format!(" with GPUs {}", gpus.join(","))
    };
    printer.note(&format!(
        "deployed {} ({}){with_gpus}; enter it with: berth shell {} (or docker exec -it {} {shell})",
        plan.container_name, plan.image, plan.project, plan.container_name
    ));
    Ok((id, "created"))
}

/// The signal that arrived while one was held, as the error that ends the deploy.
fn interrupted(signals: &mut Signals) -> Result<()> {
    match signals.next().now_or_never() {
        Some(signal) => Err(Error::interrupted(format!(
            "interrupted by {}",
            signal.describe()
        ))),
        None => Ok(()),
    }
}

fn gpu_hint(plan: &LaunchPlan) -> String {
    if plan.gpus.is_some() {
        "GPUs were requested: does this engine have the NVIDIA container runtime? \
         Deploy without --gpus to check the rest"
            .into()
    } else {
        "`berth check PROJECT` shows the plan; `docker info` shows the engine".into()
    }
}

/// How deploy learns whether the container it starts stays up.
enum Watch {
    /// One inspect after the start.
    Once,
    /// `--settle`: the engine's wait, asked before the start (so that no exit comes
    /// before it is asked), and given this long.
    For(JoinHandle<Result<i64>>, Duration),
}

impl Watch {
    /// Set up just before container `id` starts.
    fn before_start(engine: &Engine, id: &str, settle: Option<Duration>) -> Self {
        match settle {
            Some(settle) => Self::For(tokio::spawn(engine.wait(id, false)), settle),
            None => Self::Once,
        }
    }

    /// The exit code, if the container has stopped.
    async fn exit_code(self, engine: &Engine, id: &str) -> Result<Option<i64>> {
        match self {
            Self::For(exited, settle) => match tokio::time::timeout(settle, exited).await {
                Ok(Ok(Ok(code))) => Ok(Some(code)),
                Ok(Ok(Err(err))) => Err(err),
                Ok(Err(_)) | Err(_) => Ok(None),
            },
            Self::Once => {
                let inspected = engine.inspect(id).await?;
                Ok((inspected.state == State::Stopped).then_some(inspected.exit_code))
            }
        }
    }
}

/// A container that exits straight away is an error with its exit code and last words.
/// Without a settle time that is one inspect: an exit the engine has registered by then.
/// With one, the wait sent before the start is given that long to resolve.
async fn ensure_running(engine: &Engine, id: &str, plan: &LaunchPlan, watch: Watch) -> Result<()> {
    let Some(code) = watch.exit_code(engine, id).await? else {
        return Ok(());
    };
    let logs = engine.log_tail(id, 10).await;
    Err(Error::failed(format!(
        "{} exited right after it started (exit code {code})",
        plan.container_name
    ))
    .details(logs)
    .hint(format!(
        "check `command` in berth.toml; `docker logs {}` shows all it printed",
        plan.container_name
    )))
}
