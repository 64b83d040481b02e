//! `deploy` and `check`: resolve, guard, plan, then (deploy only) create and start.
//!
//! Both share [`prepare`], which decides everything without changing anything, so
//! `check` and `deploy --dry-run` show exactly what a deploy would do or refuse.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::cli::{CheckArgs, DeployArgs};
use crate::config::{self, Source, Sourced};
use crate::container::{ContainerInfo, State};
use crate::context::Context;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events;
use crate::gpu;
use crate::guard::policy::{Joined, NamedVolume, OwnMount};
use crate::guard::{self, data::Identity, data::Row, workspace::Workspace};
use crate::identity;
use crate::label;
use crate::lock::{self, Lock};
use crate::plan::{self, DataRoot, HostFacts, LaunchPlan, Mount};
use crate::pull::Progress;
use crate::retire;
use crate::signals::{self, Signals};
use crate::spec::ContainerSpec;
use crate::ui::Printer;
use crate::units::{format_cpus, format_size};

/// A deploy decided but not carried out.
pub struct Prepared {
    pub ctx: Context,
    /// The agreed data root and its identity, still to be settled (marker written) by a
    /// deploy.
    pub data_root: Option<(PathBuf, Identity)>,
    pub workspace: Workspace,
    pub data_rows: Vec<Row>,
    pub plan: LaunchPlan,
}

/// Resolves and guards everything, the policy included; changes nothing. The engine,
/// where there is one, is asked only when the project names no image: then its
/// existing container's image is the one ([`adopt_container_image`]).
pub async fn prepare(
    project: &str,
    args: Option<&DeployArgs>,
    engine: Option<&Engine>,
    printer: &Printer,
) -> Result<Prepared> {
    let command_line = match args {
        Some(args) => config::command_line_layer(args)?,
        None => Default::default(),
    };
    let mut ctx = Context::load(project, &command_line)?;
    ctx.warn(printer);
    if let Some(engine) = engine {
        adopt_container_image(&mut ctx, engine).await?;
    }
    let prepared = prepare_in(ctx, args.is_some_and(|a| a.new))?;
    prepared.check_policy(&prepared.plan.to_spec())?;
    Ok(prepared)
}

/// Where a project names no image (no `--image`, nothing in berth.toml, the user
/// config or the policy) but has a container, that container's image: so
/// `container-deploy P` starts what `--image` made, and `check P` reads it. Without a
/// container nothing changes, and the plan says there is no image.
async fn adopt_container_image(ctx: &mut Context, engine: &Engine) -> Result<()> {
    if ctx.settings.image.is_some() {
        return Ok(());
    }
    if let Some(container) = engine.find(ctx.project.as_str(), ctx.user.uid).await? {
        ctx.settings.image = Some(Sourced {
            value: container.image,
            source: Source::Container(container.name),
        });
    }
    Ok(())
}

/// [`prepare`] with the command line's layer given (`berth run` makes its own, and
/// checks the policy against its own request); `allow_new` is `--new`.
pub fn prepare_with(
    project: &str,
    command_line: &config::file::FileConfig,
    allow_new: bool,
    printer: &Printer,
) -> Result<Prepared> {
    let ctx = Context::load(project, command_line)?;
    ctx.warn(printer);
    prepare_in(ctx, allow_new)
}

/// The workspace, the data root and the plan of a loaded context.
fn prepare_in(ctx: Context, allow_new: bool) -> Result<Prepared> {
    let workspace = ctx.check_workspace(allow_new)?;
    let data_rows = crate::dataroot::resolve(&ctx.settings.data_roots);
    let data_root = match guard::data::decide(&data_rows)? {
        Some(root) => {
            let identity = crate::dataroot::identify(&root, &ctx.paths.state_dir)?;
            Some((root, identity))
        }
        None => None,
    };
    let host = HostFacts {
        user: ctx.user.clone(),
        workspace: ctx.workspace.clone(),
        home: ctx.paths.container_home(&ctx.project),
        data_root: data_root.as_ref().map(|(path, identity)| DataRoot {
            path: path.clone(),
            id: match identity {
                Identity::Known(id) | Identity::Adopt(id) => id.clone(),
                Identity::New => String::new(),
            },
        }),
    };
    let plan = plan::build(&ctx.project, &ctx.settings, &host)?;
    Ok(Prepared {
        ctx,
        data_root,
        workspace,
        data_rows,
        plan,
    })
}

impl Prepared {
    /// The policy's rules over `spec`, the request the engine would get. berth's own
    /// mounts must be the caller's ([`guard::policy::check_own`]); then bind mounts may
    /// come from the workspace root, the data root, berth's own mount sources (the
    /// persistent home) and `allowed_mount_roots`.
    pub fn check_policy(&self, spec: &ContainerSpec) -> Result<()> {
        let Some((path, policy)) = &self.ctx.policy else {
            return Ok(());
        };
        let (ctx, user) = (&self.ctx, &self.ctx.user);
        // The password database's home: `$HOME` is the caller's to set.
        let home = crate::host::passwd_home(user.uid);
        let pinned = policy.pinned_workspace_root(
            &user.name,
            home.as_deref().unwrap_or(Path::new("/nonexistent")),
        );
        let own_roots = guard::policy::Roots::new(
            home.into_iter()
                .chain(pinned)
                .chain(policy.allowed_mount_roots.iter().flatten().cloned()),
        );
        let own: Vec<OwnMount> = [
            ("the workspace root", ctx.paths.workspace_root.clone()),
            ("the workspace", ctx.workspace.clone()),
            (
                "the persistent home",
                ctx.paths.container_home(&ctx.project),
            ),
        ]
        .into_iter()
        .map(|(what, path)| own_mount(what, path))
        .collect();
        guard::policy::check_own(path, policy, &own, user.uid, &own_roots)?;

        let own = self.plan.mounts.iter().filter_map(|mount| match mount {
            Mount::Bind { source, .. } => Some(source.clone()),
            Mount::Volume(_) => None,
        });
        let roots = guard::policy::Roots::new(
            [self.ctx.paths.workspace_root.clone()]
                .into_iter()
                .chain(self.data_root.as_ref().map(|(root, _)| root.clone()))
                .chain(own)
                .chain(policy.allowed_mount_roots.iter().flatten().cloned()),
        );
        guard::policy::check(path, policy, spec, &roots)
    }

    /// What only the engine can tell, asked when a container would be created: the
    /// user's container count (`max_containers_per_user`), the driver options of the
    /// named volumes `spec` mounts, and whose the containers it joins are.
    pub async fn check_with_engine(&self, engine: &Engine, spec: &ContainerSpec) -> Result<()> {
        let Some((path, policy)) = &self.ctx.policy else {
            return Ok(());
        };
        if policy.limits.max_containers_per_user.is_some() {
            let have = engine.list(Some(self.ctx.user.uid), None, false).await?;
            guard::policy::check_container_count(path, policy, have.len())?;
        }
        if policy.allowed_mount_roots.is_some() {
            let mut volumes = Vec::new();
            for name in guard::policy::named_volumes(spec) {
                if let Some(options) = engine.volume_options(&name).await? {
                    volumes.push(NamedVolume { name, options });
                }
            }
            let roots =
                guard::policy::Roots::new(policy.allowed_mount_roots.iter().flatten().cloned());
            guard::policy::check_volumes(path, policy, &volumes, &roots)?;
        }
        let mut joined = Vec::new();
        for (spelled, name) in guard::policy::joins(spec) {
            let owner = engine.container_owner(&name).await?.flatten();
            joined.push(Joined {
                spelled,
                name,
                owner,
            });
        }
        guard::policy::check_joins(path, &joined, self.ctx.user.uid)
    }
}

/// One of berth's own mount sources as the host has it now: resolved, and its owner.
fn own_mount(what: &'static str, path: PathBuf) -> OwnMount {
    use std::os::unix::fs::MetadataExt;
    OwnMount {
        what,
        resolved: guard::policy::resolve(&path),
        owner: std::fs::metadata(&path).ok().map(|meta| meta.uid()),
        path,
    }
}

#[derive(Serialize)]
struct DeployOutcome<'a> {
    project: &'a str,
    container: &'a str,
    id: String,
    /// `created`, `started`, `unpaused` or `running` (it already was).
    action: &'static str,
    image: &'a str,
}

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
    // A dry run touches nothing, and needs the engine only to name an image: without
    // one it still shows the plan.
    let engine = match args.dry_run {
        true => Engine::connect().await.ok(),
        false => Some(Engine::connect().await?),
    };
    let mut prepared = prepare(&args.project, Some(args), engine.as_ref(), printer).await?;
    let Some(engine) = engine.filter(|_| !args.dry_run) else {
        if args.json {
            printer.json(&report(&prepared, None));
        } else {
            print_plan(&prepared, printer);
        }
        return Ok("dry-run");
    };
    // One deploy or retire of a project at a time: the others wait, then find its
    // container as that one left it.
    let lock = lock::project_path(&prepared.ctx.paths.state_dir, prepared.ctx.project.as_str());
    let _deploying = Lock::acquire(&lock, &lock::PROJECT, printer).await?;
    // Three questions to the engine that do not depend on each other, asked at once.
    let (group, existing, image_id) = tokio::join!(
        check_group(&engine, &prepared),
        engine.find(prepared.ctx.project.as_str(), prepared.ctx.user.uid),
        engine.image_id(&prepared.plan.image),
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
        check_own(container, &prepared)?;
    }
    settle_identity(&mut prepared)?;
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

    let (id, action) = match existing {
        Some(container) => (
            container.id.clone(),
            resume(&engine, &container.id, plan, args.settle, printer).await?,
        ),
        None => create(&engine, &prepared, image_id?, args.settle, printer).await?,
    };
    if args.json {
        printer.json(&DeployOutcome {
            project: &plan.project,
            container: &plan.container_name,
            id,
            action,
            image: &plan.image,
        });
    }
    Ok(action)
}

/// The engine-side guard: no other container of the data group may use another root.
pub(crate) async fn check_group(engine: &Engine, prepared: &Prepared) -> Result<()> {
    let group = plan::data_group(&prepared.ctx.project, &prepared.ctx.settings);
    let others = engine.list_group(&group).await?;
    let root = prepared.data_root.as_ref().map(|(path, _)| path.as_path());
    guard::data::check_group(&group, &prepared.plan.container_name, root, &others)
}

/// The project's existing container must mount the workspace and data root the
/// configuration names now ([`guard::data::check_own`]).
fn check_own(container: &ContainerInfo, prepared: &Prepared) -> Result<()> {
    let label = |key: &str| {
        prepared
            .plan
            .labels
            .get(key)
            .map(String::as_str)
            .unwrap_or_default()
    };
    guard::data::check_own(
        container,
        prepared.ctx.project.as_str(),
        label(label::WORKSPACE),
        label(label::DATA),
    )
}

/// Writes the data root's marker on first use (or remembers another user's), and labels
/// the plan with its id.
pub(crate) fn settle_identity(prepared: &mut Prepared) -> Result<()> {
    let Some((root, identity)) = &prepared.data_root else {
        return Ok(());
    };
    let id = crate::dataroot::settle(identity.clone(), root, &prepared.ctx.paths.state_dir)?;
    prepared.plan.labels.insert(label::DATA_ID.to_string(), id);
    Ok(())
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
    let image_id = pulled_if_missing(engine, &plan.image, image_id, printer).await?;
    let home = ctx.paths.container_home(&ctx.project);
    // Made here, and taken back (while still empty) should the GPUs or the engine
    // refuse the container: a refused deploy leaves no new directory behind.
    let fresh: Vec<&Path> = [
        (prepared.workspace == Workspace::New).then_some(ctx.workspace.as_path()),
        Some(home.as_path()).filter(|home| !home.exists()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if prepared.workspace == Workspace::New {
        std::fs::create_dir_all(&ctx.workspace)
            .map_err(|err| Error::io("create the workspace", &ctx.workspace, err))?;
    }
    std::fs::create_dir_all(&home).map_err(|err| Error::io("create", &home, err))?;
    let take_back = |err: Error| {
        for dir in &fresh {
            std::fs::remove_dir(dir).ok();
        }
        err
    };
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
    // From here until the create has returned and been checked, the GPU lock is held.
    let claim = gpu::claim::begin(engine, ctx.policy.as_ref(), &ctx.user, &mut spec, printer)
        .await
        .map_err(take_back)?;
    let created = engine.create(&spec).await.map_err(take_back)?;
    if created.is_some() && prepared.workspace == Workspace::New {
        printer.note(&format!("created workspace {}", ctx.workspace.display()));
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
    let gpus = match claim {
        Some(claim) => claim.confirm(engine, &id).await,
        None => Ok(Vec::new()),
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

/// The id of `image`: `known` (what the engine said of it), else the pulled image's.
pub(crate) async fn pulled_if_missing(
    engine: &Engine,
    image: &str,
    known: Option<String>,
    printer: &Printer,
) -> Result<Option<String>> {
    if known.is_some() {
        return Ok(known);
    }
    pull(engine, image, printer).await?;
    engine.image_id(image).await
}

async fn pull(engine: &Engine, image: &str, printer: &Printer) -> Result<()> {
    printer.note(&format!("pulling {image} (not on this engine yet)"));
    let mut progress = Progress::new(printer);
    let pulled = engine.pull(image, |event| progress.event(event)).await;
    progress.finish(image, pulled.is_ok(), printer);
    pulled
}

/// `berth check PROJECT`.
pub async fn check(args: &CheckArgs, printer: &Printer) -> Result<()> {
    let verdict = async {
        // The engine is asked too, so that check answers as deploy would.
        let engine = Engine::connect().await?;
        let prepared = prepare(&args.project, None, Some(&engine), printer).await?;
        check_group(&engine, &prepared).await?;
        let existing = engine
            .find(prepared.ctx.project.as_str(), prepared.ctx.user.uid)
            .await?;
        let mut gpus = None;
        if existing.is_none() {
            prepared
                .check_with_engine(&engine, &prepared.plan.to_spec())
                .await?;
            if let Some(request) = prepared
                .plan
                .to_spec()
                .host
                .gpus
                .as_ref()
                .and_then(gpu::Request::from_spec)
            {
                let ctx = &prepared.ctx;
                gpus =
                    gpu::claim::preview(&engine, ctx.policy.as_ref(), &ctx.user, &request).await?;
            }
        }
        // What retire would ask about, read without pausing it.
        let existing = match existing {
            Some(container) => {
                check_own(&container, &prepared)?;
                let target = retire::Target::new(&prepared.ctx, &container);
                let report = retire::unsaved(&engine, &container, &target, printer).await?;
                Some(Existing {
                    name: container.name,
                    state: container.state,
                    unsaved_files: report.unsaved_files(),
                    unsaved_volumes: report.volumes.len(),
                    read_by: report.read_by,
                })
            }
            None => None,
        };
        Ok::<_, Error>((prepared, existing, gpus))
    }
    .await;
    let (prepared, existing, gpus) = match verdict {
        Ok(ready) => ready,
        Err(err) if args.json && err.code() == 3 => {
            printer.json(&serde_json::json!({
                "project": args.project,
                "verdict": "refused",
                "refusal": { "message": err.message, "details": err.details, "hint": err.hint },
            }));
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    if args.json {
        printer.json(&report(&prepared, existing.as_ref()));
    } else {
        print_plan(&prepared, printer);
        if let Some(gpus) = gpus.filter(|_| existing.is_none()) {
            printer.line(&format!(
                "gpus free    {} (deploy would take them)",
                gpus.join(",")
            ));
        }
        if let Some(container) = existing {
            printer.line(&format!(
                "container    {} exists ({:?}); deploy would start it, not create it",
                container.name, container.state
            ));
            printer.line(&format!(
                "unsaved      {}",
                container.unsaved(&args.project)
            ));
        }
        printer.line(&format!(
            "verdict      {}",
            printer.green("ok: deploy would proceed")
        ));
    }
    Ok(())
}

/// The project's existing container, as `check` reports it.
#[derive(Serialize)]
struct Existing {
    name: String,
    state: State,
    /// Unsaved files in its writable layer, as retire would count them.
    unsaved_files: usize,
    /// Anonymous volumes that hold data.
    unsaved_volumes: usize,
    /// Who listed its changes: berth's walk of the layer, or the engine.
    read_by: crate::layer::ReadBy,
}

impl Existing {
    fn unsaved(&self, project: &str) -> String {
        if self.unsaved_files == 0 && self.unsaved_volumes == 0 {
            return format!(
                "none: retire would remove it without asking ({})",
                self.read_by.describe()
            );
        }
        let mut parts = vec![format!("{} file(s)", self.unsaved_files)];
        if self.unsaved_volumes > 0 {
            parts.push(format!(
                "{} anonymous volume(s) holding data",
                self.unsaved_volumes
            ));
        }
        format!(
            "{}; `berth retire {project} --dry-run` shows them ({})",
            parts.join(", "),
            self.read_by.describe()
        )
    }
}

#[derive(Serialize)]
struct Report<'a> {
    project: &'a str,
    workspace: &'a std::path::Path,
    workspace_state: Workspace,
    data_root: &'a [Row],
    sources: Sources<'a>,
    plan: &'a LaunchPlan,
    docker_run: String,
    /// The project's container, where it exists (`check` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a Existing>,
    verdict: &'static str,
}

/// Where each chosen value came from.
#[derive(Serialize)]
struct Sources<'a> {
    image: Option<&'a Source>,
    command: Option<&'a Source>,
    user: Option<&'a Source>,
    gpus: Option<&'a Source>,
    cpus: Option<&'a Source>,
    memory: Option<&'a Source>,
    shm_size: Option<&'a Source>,
    data_target: &'a Source,
}

fn source<T>(value: &Option<Sourced<T>>) -> Option<&Source> {
    value.as_ref().map(|v| &v.source)
}

fn report<'a>(prepared: &'a Prepared, existing: Option<&'a Existing>) -> Report<'a> {
    let s = &prepared.ctx.settings;
    Report {
        project: prepared.ctx.project.as_str(),
        workspace: &prepared.ctx.workspace,
        workspace_state: prepared.workspace,
        data_root: &prepared.data_rows,
        sources: Sources {
            image: source(&s.image),
            command: source(&s.command),
            user: source(&s.user),
            gpus: source(&s.gpus),
            cpus: source(&s.nano_cpus),
            memory: source(&s.memory),
            shm_size: source(&s.shm_size),
            data_target: &s.data_target.source,
        },
        plan: &prepared.plan,
        docker_run: prepared.plan.docker_run_line(),
        container: existing,
        verdict: "ok",
    }
}

/// The plan as people read it: each value with where it came from.
fn print_plan(prepared: &Prepared, printer: &Printer) {
    let (ctx, plan, s) = (&prepared.ctx, &prepared.plan, &prepared.ctx.settings);
    let from = |source: Option<&Source>, default: &str| match source {
        Some(source) => format!("({source})"),
        None => format!("({default})"),
    };
    let workspace_note = match prepared.workspace {
        Workspace::Existing => "existing",
        Workspace::New => "new: deploy creates it",
    };
    let mut rows: Vec<Vec<String>> = vec![
        vec!["project".into(), plan.project.clone(), String::new()],
        vec![
            "workspace".into(),
            ctx.workspace.display().to_string(),
            format!("({workspace_note})"),
        ],
        vec![
            "container".into(),
            plan.container_name.clone(),
            String::new(),
        ],
        vec![
            "image".into(),
            plan.image.clone(),
            from(source(&s.image), "default"),
        ],
        vec![
            "command".into(),
            plan.cmd.join(" "),
            from(source(&s.command), "default: keep alive for `shell`"),
        ],
        vec![
            "user".into(),
            plan.user.clone(),
            from(source(&s.user), "the host user"),
        ],
        vec!["home".into(), plan.home.clone(), "(persistent)".into()],
    ];
    for mount in &plan.mounts {
        let text = match mount {
            Mount::Bind { source, target, .. } => format!("{target} <- {}", source.display()),
            Mount::Volume(spec) => format!("{} <- -v {}", spec.target, spec.to_arg()),
        };
        rows.push(vec!["mount".into(), text, String::new()]);
    }
    for (key, value) in &plan.env {
        rows.push(vec!["env".into(), format!("{key}={value}"), String::new()]);
    }
    if let Some(gpus) = &plan.gpus {
        rows.push(vec![
            "gpus".into(),
            gpus.to_string(),
            from(source(&s.gpus), ""),
        ]);
    }
    if let Some(nano) = plan.nano_cpus {
        rows.push(vec![
            "cpus".into(),
            format_cpus(nano),
            from(source(&s.nano_cpus), ""),
        ]);
    }
    if let Some(bytes) = plan.memory {
        rows.push(vec![
            "memory".into(),
            format_size(bytes),
            from(source(&s.memory), ""),
        ]);
    }
    if let Some(bytes) = plan.shm_size {
        rows.push(vec![
            "shm size".into(),
            format_size(bytes),
            from(source(&s.shm_size), ""),
        ]);
    }
    for line in crate::ui::table(&rows) {
        printer.line(line.trim_end());
    }
    if !prepared.data_rows.is_empty() {
        printer.line(&printer.bold("data root sources"));
        for line in guard::data::table(&prepared.data_rows) {
            printer.line(&format!("  {line}"));
        }
    }
    printer.line(&printer.bold("equivalent docker run"));
    printer.line(&format!("  {}", plan.docker_run_line()));
}
