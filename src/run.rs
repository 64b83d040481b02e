//! `berth run` and `berth create`: docker's own flags, read as docker reads them
//! ([`crate::dockerflags`], [`crate::dockerargs`]), with berth's additions on top: the
//! project's workspace at /workspace, its persistent home, the data root, the host
//! user's uid:gid, berth's labels, and every guard. Then docker's behaviour: `create`
//! and `run -d` print the id; an attached run streams, forwards stdin with `-i`, puts
//! the terminal in raw mode with `-t`, and exits with the container's status.

use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::config::file::{FileConfig, Size};
use crate::config::Source;
use crate::dockerargs;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu;
use crate::guard;
use crate::host::Paths;
use crate::identity;
use crate::label;
use crate::launch::{self, Prepared};
use crate::os::{self, RawMode};
use crate::plan;
use crate::spec::{ContainerSpec, MountSpec};
use crate::terminal;
use crate::ui::Printer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Create,
}

/// Runs `berth run`/`create`; returns the exit status (the container's, for an attached
/// run). One event: `created` once the container exists, or why it does not (a dry run
/// records nothing).
pub async fn run(args: &RunArgs, mode: Mode, printer: &Printer) -> Result<i32> {
    let mut created = false;
    let result = run_inner(args, mode, printer, &mut created).await;
    if !args.dry_run {
        let action = match mode {
            Mode::Run => "run",
            Mode::Create => "create",
        };
        let project = args
            .project
            .clone()
            .or_else(|| project_for(args).ok())
            .unwrap_or_default();
        // Once created, what the container itself did is not berth's outcome.
        let logged = if created {
            Ok(())
        } else {
            result.as_ref().map(|_| ()).map_err(Clone::clone)
        };
        crate::events::log(printer, action, &project, &logged, |()| ("created", None));
    }
    result
}

async fn run_inner(
    args: &RunArgs,
    mode: Mode,
    printer: &Printer,
    created: &mut bool,
) -> Result<i32> {
    let mut spec = dockerargs::spec_from_args(args, &|key| std::env::var(key).ok())
        .map_err(|err| Error::status(125, err.0))?;
    let client = Client::from_args(args, printer)?;
    let project = project_for(args)?;
    let command_line = FileConfig {
        image: Some(spec.image.clone()),
        ..Default::default()
    };
    let mut prepared = launch::prepare_with(&project, &command_line, false, printer)?;
    add_berth(&mut spec, &prepared)?;
    apply_policy(&mut spec, &prepared);
    prepared.check_policy(&spec)?;

    if args.dry_run {
        let mut line = vec!["docker".to_string(), "run".to_string()];
        line.extend(dockerargs::spec_to_args(&spec));
        printer.line(&dockerargs::shell_line(&line));
        return Ok(0);
    }

    // docker's `run` and `create` exit 125 when the daemon cannot be reached.
    let engine = Engine::connect()
        .await
        .map_err(|err| err.with_status(125))?;
    prepared.check_group(&engine).await?;
    prepared.check_with_engine(&engine, &spec).await?;
    prepared.settle_identity()?;
    // The identity the guard settled goes on the container too.
    if let Some(id) = prepared.plan.labels.get(label::DATA_ID) {
        spec.labels.insert(label::DATA_ID.to_string(), id.clone());
    }
    if args.use_api_socket {
        add_api_socket(&engine, &mut spec)?;
        prepared.check_policy(&spec)?;
    }
    let known = engine.image_id(&spec.image).await?;
    let known = match client.pull {
        Pull::Missing => known,
        Pull::Always => None,
        Pull::Never if known.is_none() => {
            return Err(Error::status(125, format!("No such image: {}", spec.image))
                .hint("--pull=never uses only local images; `docker images` lists them"))
        }
        Pull::Never => known,
    };
    let image_id = launch::pulled_if_missing(&engine, &spec.image, known, printer)
        .await
        .map_err(|err| Error::status(125, err.message).details(err.details))?;
    if let Some(path) = &client.cidfile {
        if path.exists() {
            return Err(Error::status(
                125,
                format!(
                    "Container ID file found, make sure the other container isn't running or delete {}",
                    path.display()
                ),
            ));
        }
    }
    // Taken back, while still empty, should the container not come to be.
    let folders = prepared.make_folders(&engine, image_id.as_deref()).await?;
    // The project's `persist` volumes, labelled as its own (the engine would make them
    // unlabelled, and the next deploy would refuse them).
    prepared
        .make_volumes(&engine)
        .await
        .map_err(|err| folders.take_back(err))?;
    let identity = identity::prepare(
        &engine,
        &mut spec,
        image_id.as_deref(),
        &prepared.ctx.user,
        &prepared.plan.home,
        &prepared.ctx.paths.state_dir,
    )
    .await
    .map_err(|err| folders.take_back(Error::status(125, err.message).details(err.details)))?;
    // From here until the create has returned and been checked, the GPU lock is held.
    let claim = gpu::claim::begin(
        &engine,
        prepared.ctx.policy.as_ref(),
        &prepared.ctx.user,
        &mut spec,
        printer,
    )
    .await
    .map_err(|err| folders.take_back(err))?;
    // Docker exits 125 when the engine refuses a create.
    let id = engine
        .create(&spec)
        .await
        .map_err(|err| folders.take_back(Error::status(125, err.message)))?
        .ok_or_else(|| {
            let name = spec.name.as_deref().unwrap_or_default();
            folders.take_back(
                Error::status(
                    125,
                    format!("the container name \"{name}\" is already in use"),
                )
                .hint(format!(
                    "remove it (`docker rm {name}`) or choose another --name"
                )),
            )
        })?;
    for note in folders.notes(&prepared.ctx.workspace, &spec.image) {
        printer.note(&note);
    }
    if let Some(claim) = claim {
        claim.confirm(&engine, &id).await?.kept()?;
    }
    identity::settle(&engine, &id, identity).await?;
    *created = true;
    if let Some(path) = &client.cidfile {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut file| file.write_all(id.as_bytes()))
            .map_err(|err| {
                Error::status(
                    125,
                    format!(
                        "failed to write the container ID to {}: {err}",
                        path.display()
                    ),
                )
            })?;
    }
    match mode {
        Mode::Create => {
            printer.line(&id);
            Ok(0)
        }
        Mode::Run if args.detach => {
            start(&engine, &id, &spec).await?;
            printer.line(&id);
            Ok(0)
        }
        Mode::Run => attached(&engine, &id, &spec, &client, printer).await,
    }
}

/// The flags that change what berth does around the create, not the container.
struct Client {
    pull: Pull,
    /// docker's `--sig-proxy` (default true): pass the signals berth gets on.
    sig_proxy: bool,
    cidfile: Option<PathBuf>,
    detach_keys: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pull {
    Missing,
    Always,
    Never,
}

impl Client {
    fn from_args(args: &RunArgs, printer: &Printer) -> Result<Self> {
        let usage = |message: String| Error::status(125, message);
        let pull = match args.pull.as_deref() {
            None | Some("missing") => Pull::Missing,
            Some("always") => Pull::Always,
            Some("never") => Pull::Never,
            Some(other) => {
                return Err(usage(format!(
                    "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
                )))
            }
        };
        let sig_proxy = match &args.sig_proxy {
            Some(raw) => dockerargs::bool_flag("--sig-proxy", raw).map_err(usage)?,
            None => true,
        };
        if let Some(raw) = &args.disable_content_trust {
            // berth verifies no signatures; docker's default is to skip them too.
            dockerargs::bool_flag("--disable-content-trust", raw).map_err(usage)?;
        }
        if args.kernel_memory.is_some() {
            printer.warn(
                "--kernel-memory is ignored: kernel memory limits are deprecated, and engines \
                 since API 1.42 ignore them",
            );
        }
        Ok(Self {
            pull,
            sig_proxy,
            cidfile: args
                .cidfile
                .as_ref()
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            detach_keys: args.detach_keys.clone().filter(|k| !k.is_empty()),
        })
    }
}

/// `--use-api-socket`: the engine's own socket, mounted where docker clients look for
/// it. A bind like any other, so the policy's mount roots apply.
fn add_api_socket(engine: &Engine, spec: &mut ContainerSpec) -> Result<()> {
    match &engine.endpoint.transport {
        crate::endpoint::Transport::Unix(path) => {
            spec.host
                .binds
                .push(format!("{}:/var/run/docker.sock", path.display()));
            Ok(())
        }
        _ => Err(Error::status(
            125,
            format!(
                "--use-api-socket needs an engine on a local socket; {} is not one",
                engine.endpoint
            ),
        )),
    }
}

/// `--project`, else the project whose workspace holds the current directory.
fn project_for(args: &RunArgs) -> Result<String> {
    if let Some(project) = &args.project {
        return Ok(project.clone());
    }
    let paths = Paths::from_env()?;
    let cwd = std::env::current_dir()
        .map_err(|err| Error::failed(format!("cannot read the current directory: {err}")))?;
    infer_project(&paths.workspace_root, &cwd).ok_or_else(|| {
        Error::status(
            125,
            format!(
                "no project: pass --project NAME, or run from inside {}/NAME",
                paths.workspace_root.display()
            ),
        )
        .hint("berth mounts that project's workspace at /workspace and its data root")
    })
}

/// The first component of `cwd` below `workspace_root`, when `cwd` lies inside it.
pub fn infer_project(workspace_root: &Path, cwd: &Path) -> Option<String> {
    let root = workspace_root
        .canonicalize()
        .unwrap_or_else(|_| workspace_root.to_path_buf());
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    let first = cwd.strip_prefix(&root).ok()?.components().next()?;
    first.as_os_str().to_str().map(str::to_string)
}

/// berth's mounts, environment, user, working directory and labels, added to what the
/// flags asked for; a flag's own user, working directory or variable wins. Refuses a
/// user mount that would shadow the workspace or the data root.
fn add_berth(spec: &mut ContainerSpec, prepared: &Prepared) -> Result<()> {
    check_shadowing(spec, prepared)?;
    let plan = &prepared.plan;
    // berth's own binds, as deploy would make them. A line berth printed (`--dry-run`)
    // already holds them: add each once.
    let own: Vec<MountSpec> = plan
        .to_spec()
        .host
        .mounts
        .into_iter()
        .filter(|own| !spec.host.mounts.contains(own))
        .collect();
    spec.host.mounts.splice(0..0, own);

    let set: Vec<String> = spec
        .env
        .iter()
        .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    for key in ["HOME", "HOST_DATA_PATH"] {
        if let Some(value) = plan.env.get(key) {
            if !set.iter().any(|k| k == key) {
                spec.env.push(format!("{key}={value}"));
            }
        }
    }
    let own_user = spec.user.is_some();
    if !own_user {
        spec.user = Some(plan.user.clone());
    }
    if spec.workdir.is_none() {
        spec.workdir = Some(plan.workdir.clone());
    }
    for (key, value) in &plan.labels {
        spec.labels.insert(key.clone(), value.clone());
    }
    spec.labels.insert(label::RUN.to_string(), "1".to_string());
    if own_user {
        // `-u` chose someone else: their identity is the image's business.
        spec.labels.remove(label::IDENTITY);
    }
    Ok(())
}

/// The policy's fixed `env` (which no `-e` overrides) and its `[defaults]` where no
/// flag set a value (docker's own defaults otherwise).
fn apply_policy(spec: &mut ContainerSpec, prepared: &Prepared) {
    let Some((_, policy)) = &prepared.ctx.policy else {
        return;
    };
    for (key, value) in &prepared.ctx.settings.env {
        if matches!(value.source, Source::Policy(_)) {
            spec.env
                .retain(|entry| entry.split('=').next() != Some(key.as_str()));
            spec.env.push(format!("{key}={}", value.value));
        }
    }
    let defaults = policy.defaults_layer();
    let bytes = |size: Option<Size>| size.and_then(|s| i64::try_from(s.0).ok());
    if spec.host.memory.is_none() {
        spec.host.memory = bytes(defaults.memory);
    }
    if spec.host.shm_size.is_none() {
        spec.host.shm_size = bytes(defaults.shm_size);
    }
    if spec.host.nano_cpus.is_none() {
        spec.host.nano_cpus = defaults.cpus.map(|c| c.0);
    }
}

/// The mount guard of deploy, over every way the flags can mount something.
fn check_shadowing(spec: &ContainerSpec, prepared: &Prepared) -> Result<()> {
    let data_target = prepared.ctx.settings.data_target.value.as_str();
    let data = prepared
        .data_root
        .as_ref()
        .map(|(root, _)| (data_target, root.as_path()));
    let protected = plan::protected(&prepared.ctx.workspace, data);
    let mut user_mounts: Vec<guard::mounts::UserMount> = Vec::new();
    for bind in &spec.host.binds {
        let mut parts = bind.splitn(3, ':');
        let (source, target) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        user_mounts.push(guard::mounts::UserMount {
            spelled: format!("-v {bind}"),
            source: Some(source.to_string()),
            target: target.to_string(),
        });
    }
    for target in &spec.volumes {
        user_mounts.push(guard::mounts::UserMount {
            spelled: format!("-v {target}"),
            source: None,
            target: target.clone(),
        });
    }
    for mount in &spec.host.mounts {
        user_mounts.push(guard::mounts::UserMount {
            spelled: format!("--mount target={}", mount.target),
            source: mount.source.clone(),
            target: mount.target.clone(),
        });
    }
    for target in spec.host.tmpfs.keys() {
        user_mounts.push(guard::mounts::UserMount {
            spelled: format!("--tmpfs {target}"),
            source: None,
            target: target.clone(),
        });
    }
    guard::mounts::check_user(&protected, &user_mounts)
}

/// Starts the container; a start that fails exits as docker's does: 127 when the
/// command is not found, 126 when it cannot be run, else 125.
async fn start(engine: &Engine, id: &str, spec: &ContainerSpec) -> Result<()> {
    if let Err(err) = engine.start(id).await {
        if spec.host.auto_remove {
            // It never ran, so the engine will not remove it for --rm.
            engine.remove(id).await.ok();
        }
        let message = err.message;
        let code = if message.contains("executable file not found")
            || message.contains("no such file or directory")
        {
            127
        } else if message.contains("permission denied") {
            126
        } else {
            125
        };
        return Err(Error::status(code, message));
    }
    Ok(())
}

/// How often an attached run whose output has ended checks that its container exists.
const LOST_WAIT_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Attach, start, stream until the container exits, and return its status.
async fn attached(
    engine: &Engine,
    id: &str,
    spec: &ContainerSpec,
    client: &Client,
    printer: &Printer,
) -> Result<i32> {
    let stdin = spec.attach_stdin;
    // `-a` picks the streams; without it, stdout and stderr.
    let streams = [stdin, spec.attach_stdout, spec.attach_stderr];
    let session = engine
        .attach(id, streams, client.detach_keys.as_deref())
        .await?;
    // The wait goes out before the start, as docker's does: a wait that reaches the
    // engine after a `--rm` container has exited and is being removed is never answered.
    let wait = tokio::spawn(engine.wait(id, spec.host.auto_remove));
    tokio::task::yield_now().await;
    let raw = (spec.tty && stdin).then(RawMode::enable).flatten();
    start(engine, id, spec).await?;
    if spec.tty {
        if let Some((rows, cols)) = os::window_size() {
            engine.resize(id, rows, cols).await.ok();
        }
    }
    let mut resizes = spec.tty.then(terminal::resizes).flatten();
    let mut signals = crate::signals::Signals::install()?;
    let pump = terminal::pump(session, stdin);
    tokio::pin!(pump, wait);
    let mut pumped = false;
    // Should the wait still be lost, berth does not hang once the output has ended: it
    // looks for the container now and then, and says so when it is gone.
    let mut gone_check = tokio::time::interval(LOST_WAIT_CHECK);
    gone_check.reset();
    let status = loop {
        tokio::select! {
            done = &mut pump, if !pumped => {
                pumped = true;
                if let Err(err) = done {
                    if err.kind() != std::io::ErrorKind::BrokenPipe {
                        printer.warn(&format!("cannot pass the container's streams on: {err}"));
                    }
                }
            }
            status = &mut wait => {
                break status.map_err(|err| Error::status(125, format!("waiting for the container failed: {err}")))??;
            }
            _ = gone_check.tick(), if pumped => {
                if engine.inspect(id).await.is_err() {
                    return Err(Error::status(
                        125,
                        format!("container {id} was removed before the engine reported its exit status"),
                    ));
                }
            }
            Some(()) = async { resizes.as_mut()?.recv().await }, if resizes.is_some() => {
                if let Some((rows, cols)) = os::window_size() {
                    engine.resize(id, rows, cols).await.ok();
                }
            }
            signal = signals.next() => {
                if spec.tty || !client.sig_proxy {
                    // With a terminal, Ctrl-C reaches the container as a keystroke; a
                    // signal sent to berth itself ends berth (the container runs on, as
                    // with docker), with the terminal restored.
                    drop(raw);
                    return Ok(128 + signal.number());
                }
                // docker's sig-proxy: the container gets the signal, and decides. With
                // no container left to decide, the signal ends berth.
                if engine.kill(id, signal.name()).await.is_err() && engine.inspect(id).await.is_err() {
                    return Ok(128 + signal.number());
                }
            }
        }
    };
    if !pumped {
        // The last output can trail the exit by a moment.
        tokio::time::timeout(std::time::Duration::from_secs(2), &mut pump)
            .await
            .ok();
    }
    drop(raw);
    Ok(i32::try_from(status).unwrap_or(125))
}
