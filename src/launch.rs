//! The launch that `deploy` and `run` share: load the project's context, guard it,
//! plan the container ([`prepare`], which changes nothing, so `check` and
//! `deploy --dry-run` show exactly what a deploy would do or refuse), then the steps
//! before a create: the policy's engine-side checks, the data root's identity, the
//! workspace and home folders, and the image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::build;
use crate::cli::DeployArgs;
use crate::config::{self, Source, Sourced};
use crate::container::ContainerInfo;
use crate::content;
use crate::context::Context;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::files;
use crate::guard::policy::{Joined, NamedVolume, OwnMount};
use crate::guard::{self, data::Identity, data::Row, workspace::Workspace};
use crate::label;
use crate::plan::{self, DataRoot, HostFacts, LaunchPlan, Mount};
use crate::pull::Progress;
use crate::remember;
use crate::seed;
use crate::spec::ContainerSpec;
use crate::ui::Printer;

/// A deploy decided but not carried out.
pub struct Prepared {
    pub ctx: Context,
    /// The agreed data root and its identity, still to be settled (marker written) by a
    /// deploy.
    pub data_root: Option<(PathBuf, Identity)>,
    pub workspace: Workspace,
    pub data_rows: Vec<Row>,
    pub plan: LaunchPlan,
    pub learned: Learned,
}

/// Resolves and guards everything, the policy included; changes nothing but a build
/// (a deploy's, which holds the project's lock). The engine, where there is one, is
/// asked only when the project names no image or has saved packages: then its existing
/// container's image is the one, else its build, else the last deploy's
/// ([`adopt_image`]).
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
    let mut learned = Learned::default();
    if let Some(engine) = engine {
        let building = match args {
            Some(args) if args.no_build => Building::No,
            Some(args) if !args.dry_run => Building::Build,
            _ => Building::Report,
        };
        learned = adopt_image(&mut ctx, engine, building, printer).await?;
    }
    let mut prepared = prepare_in(ctx, args.is_some_and(|a| a.new))?;
    prepared.learned = learned;
    prepared.check_policy(&prepared.plan.to_spec())?;
    Ok(prepared)
}

/// What a deploy does with the project's Dockerfile when nothing names an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Building {
    /// Build it first, unless an image of the same inputs exists (a deploy).
    Build,
    /// Only say whether it is up to date (`check`, `deploy --dry-run`).
    Report,
    /// Use the newest build as it is (`deploy --no-build`).
    No,
}

/// What [`prepare`] learned from the engine on the way, so that a deploy, which holds
/// the project's lock throughout, need not ask again.
#[derive(Debug, Default)]
pub struct Learned {
    /// The project's container: `None` where nobody asked, `Some(None)` where it has
    /// none.
    pub container: Option<Option<ContainerInfo>>,
    /// The id of the image chosen, where a build found or made it.
    pub image_id: Option<String>,
}

/// Where a project names no image (no `--image`, nothing in berth.toml, the user
/// config or the policy): its container's image, so that `container-deploy P` starts
/// what `--image` made and `check P` reads it; else, where it has a Dockerfile, its
/// build ([`Building`]); else the image its last deploy or build used ([`remember`]),
/// so that a retired project comes back as it was. Then, where the workspace has
/// saved package lists and no Dockerfile, the image is the generated build: those
/// packages on that image ([`build::plan_generated`]). With none, nothing changes,
/// and the plan says there is no image. A deploy holds the project's lock meanwhile,
/// so builds of one project take turns: the second finds the first's image.
async fn adopt_image(
    ctx: &mut Context,
    engine: &Engine,
    building: Building,
    printer: &Printer,
) -> Result<Learned> {
    let mut learned = Learned::default();
    let named = ctx.settings.image.is_some();
    let find = || engine.find(ctx.project.as_str(), ctx.user.uid);
    if !named {
        // The container and the build's plan, asked at once: a container wins.
        let (found, planned) = match building != Building::No && build::applies(ctx) {
            true => {
                let (found, planned) = tokio::join!(find(), build::plan_project(engine, ctx));
                (found?, Some(planned))
            }
            false => (find().await?, None),
        };
        if let Some(container) = found {
            ctx.settings.image = Some(Sourced {
                value: container.image.clone(),
                source: Source::Container(container.name.clone()),
            });
            learned.container = Some(Some(container));
            return Ok(learned);
        }
        learned.container = Some(None);
        if let Some(planned) = planned {
            let (image, id, state) =
                build_planned(ctx, engine, building, planned?, printer).await?;
            ctx.settings.image = Some(Sourced {
                value: image,
                source: Source::Build(state),
            });
            learned.image_id = id;
            return Ok(learned);
        }
        if let Some(memory) = remember::image(&ctx.paths.state_dir, ctx.project.as_str()) {
            // A generated build is made again from its base, so that changed lists
            // are seen; `--no-build` takes it as it is.
            let image = match building {
                Building::No => memory.image,
                _ => memory.base.unwrap_or(memory.image),
            };
            ctx.settings.image = Some(Sourced {
                value: image,
                source: Source::Remembered {
                    by: memory.by,
                    at: memory.deployed,
                },
            });
        }
    }
    if building == Building::No || build::applies(ctx) {
        return Ok(learned);
    }
    let Some(base) = ctx.settings.image.as_ref().map(|i| i.value.clone()) else {
        return Ok(learned);
    };
    let lists = build::generated::Lists::read(&ctx.workspace);
    if !lists.any() {
        return Ok(learned);
    }
    // A project's container keeps its image.
    if learned.container.is_none() {
        let found = find().await?;
        let exists = found.is_some();
        learned.container = Some(found);
        if exists {
            return Ok(learned);
        }
    }
    let planned = build::plan_generated(engine, ctx, &base, lists).await?;
    let (image, id, state) = build_planned(ctx, engine, building, planned, printer).await?;
    ctx.settings.image = Some(Sourced {
        value: image,
        source: Source::Generated { base, state },
    });
    learned.image_id = id;
    Ok(learned)
}

/// A planned build, only reported for a [`Building::Report`], else built unless an
/// image of the same inputs exists: its image, the image's id where the engine has it,
/// and its state as check and deploy say it.
async fn build_planned(
    ctx: &Context,
    engine: &Engine,
    building: Building,
    planned: build::Planned,
    printer: &Printer,
) -> Result<(String, Option<String>, String)> {
    if building == Building::Report {
        let state = report(ctx, &planned);
        return Ok((planned.image, planned.id, state));
    }
    let built = build::run(engine, ctx, planned, printer).await?;
    let state = match built.fresh {
        true => "built now",
        false => "up to date",
    };
    Ok((built.image, Some(built.id), state.to_string()))
}

/// A planned build's state, as check says it.
fn report(ctx: &Context, planned: &build::Planned) -> String {
    if planned.id.is_some() {
        return "up to date".to_string();
    }
    match build::changes(ctx, planned) {
        Some(changed) => format!("stale: {changed} changed; deploy builds it first"),
        None => "stale: deploy builds it first".to_string(),
    }
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
        learned: Learned::default(),
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
            files::resolve,
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
            Mount::Volume(_) | Mount::Persist { .. } => None,
        });
        let roots = guard::policy::Roots::new(
            [self.ctx.paths.workspace_root.clone()]
                .into_iter()
                .chain(self.data_root.as_ref().map(|(root, _)| root.clone()))
                .chain(own)
                .chain(policy.allowed_mount_roots.iter().flatten().cloned()),
            files::resolve,
        );
        guard::policy::check(path, policy, spec, &roots)
    }

    /// The `persist` volumes, each with its labels where it exists: one that another
    /// user or project made (or anyone by hand) is refused, not mounted.
    async fn persisted(&self, engine: &Engine) -> Result<Vec<(String, String, bool)>> {
        let mut volumes = Vec::new();
        for mount in &self.plan.mounts {
            let Mount::Persist { volume, target } = mount else {
                continue;
            };
            let labels = engine.volume_labels(volume).await?;
            if let Some(labels) = &labels {
                let ours = labels.get(label::USER) == Some(&self.ctx.user.uid.to_string())
                    && labels.get(label::PROJECT).map(String::as_str)
                        == Some(self.ctx.project.as_str());
                if !ours {
                    return Err(Error::refused(format!(
                        "the volume {volume} for persist {target:?} exists, and it is not \
                         this project's: berth did not make it for you"
                    ))
                    .hint(format!(
                        "look at it with `docker volume inspect {volume}`; persist another \
                         path, or have its owner remove it"
                    )));
                }
            }
            volumes.push((volume.clone(), target.clone(), labels.is_some()));
        }
        Ok(volumes)
    }

    /// The mounts over host folders that hold something, where the image has files at
    /// the target: the image's files there are out of reach, not deleted. Asked of
    /// the image (`image_id`, on the engine) once, then kept per image id.
    pub async fn hidden(&self, engine: &Engine, image_id: &str) -> Result<Vec<Hidden>> {
        let candidates: Vec<(String, PathBuf)> = self
            .plan
            .mounts
            .iter()
            .filter_map(|mount| match mount {
                Mount::Bind { source, target, .. } => Some((target.clone(), source.clone())),
                Mount::Volume(spec) if spec.is_host_path() => {
                    let source = spec.source.as_deref()?;
                    Some((spec.target.clone(), PathBuf::from(source)))
                }
                Mount::Volume(_) | Mount::Persist { .. } => None,
            })
            .filter(|(_, source)| {
                std::fs::read_dir(source).is_ok_and(|mut entries| entries.next().is_some())
            })
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let targets: Vec<String> = candidates.iter().map(|(t, _)| t.clone()).collect();
        let holds = crate::content::image_holds(
            engine,
            &self.plan.image,
            image_id,
            &targets,
            &self.ctx.paths.state_dir,
        )
        .await?;
        Ok(candidates
            .into_iter()
            .filter_map(|(target, source)| {
                // What the host folder has by the same name and size is not missed.
                let hidden = holds.get(&target)?.missing_from(&source);
                (hidden.files > 0).then_some(Hidden {
                    target,
                    source,
                    files: hidden.files,
                    bytes: hidden.bytes,
                    complete: hidden.complete,
                })
            })
            .collect())
    }

    /// Makes the `persist` volumes that do not exist yet, labelled as the project's;
    /// returns the names of those it made. The engine fills each from the image the
    /// first time a container mounts it.
    pub async fn make_volumes(&self, engine: &Engine) -> Result<Vec<String>> {
        let mut made = Vec::new();
        for (volume, target, exists) in self.persisted(engine).await? {
            if !exists {
                let labels = BTreeMap::from([
                    (label::PROJECT.to_string(), self.ctx.project.to_string()),
                    (label::USER.to_string(), self.ctx.user.uid.to_string()),
                    (label::PERSIST.to_string(), target),
                ]);
                engine.create_volume(&volume, &labels).await?;
                made.push(volume);
            }
        }
        Ok(made)
    }

    /// What only the engine can tell, asked when a container would be created: the
    /// user's container count (`max_containers_per_user`), the driver options of the
    /// named volumes `spec` mounts, and whose the containers it joins are.
    pub async fn check_with_engine(&self, engine: &Engine, spec: &ContainerSpec) -> Result<()> {
        self.persisted(engine).await?;
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
            let allowed = policy.allowed_mount_roots.iter().flatten().cloned();
            let roots = guard::policy::Roots::new(allowed, files::resolve);
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

    /// The engine-side guard: no other container of the data group may use another
    /// root.
    pub async fn check_group(&self, engine: &Engine) -> Result<()> {
        let group = plan::data_group(&self.ctx.project, &self.ctx.settings);
        let others = engine.list_group(&group).await?;
        let root = self.data_root.as_ref().map(|(path, _)| path.as_path());
        guard::data::check_group(&group, &self.plan.container_name, root, &others)
    }

    /// The project's existing container must mount the workspace and data root the
    /// configuration names now ([`guard::data::check_own`]).
    pub fn check_own(&self, container: &ContainerInfo) -> Result<()> {
        let label = |key: &str| {
            self.plan
                .labels
                .get(key)
                .map(String::as_str)
                .unwrap_or_default()
        };
        guard::data::check_own(
            container,
            self.ctx.project.as_str(),
            label(label::WORKSPACE),
            label(label::DATA),
        )
    }

    /// Writes the data root's marker on first use (or remembers another user's), and
    /// labels the plan with its id.
    pub fn settle_identity(&mut self) -> Result<()> {
        let Some((root, identity)) = &self.data_root else {
            return Ok(());
        };
        let id = crate::dataroot::settle(identity.clone(), root, &self.ctx.paths.state_dir)?;
        self.plan.labels.insert(label::DATA_ID.to_string(), id);
        Ok(())
    }

    /// Makes the workspace (when it is new) and the persistent home (when missing) for
    /// a container about to be created from image `image_id`, each seeded with what
    /// the image has at its target ([`crate::seed`]). Both are taken back by
    /// [`Folders::take_back`] should the container not come to be: a refused launch
    /// leaves no new directory behind.
    pub async fn make_folders(&self, engine: &Engine, image_id: Option<&str>) -> Result<Folders> {
        let ctx = &self.ctx;
        let home = ctx.paths.container_home(&ctx.project);
        let new_workspace = self.workspace == Workspace::New;
        let fresh: Vec<(PathBuf, &str)> = [
            new_workspace.then(|| (ctx.workspace.clone(), plan::WORKSPACE_TARGET)),
            (!home.exists()).then(|| (home.clone(), self.plan.home.as_str())),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut folders = Folders {
            fresh: Vec::new(),
            seeded: Vec::new(),
            new_workspace,
        };
        let holds = match image_id {
            Some(id) if !fresh.is_empty() => {
                let targets: Vec<String> = fresh.iter().map(|(_, t)| t.to_string()).collect();
                let state_dir = &ctx.paths.state_dir;
                content::image_holds(engine, &self.plan.image, id, &targets, state_dir).await?
            }
            _ => BTreeMap::new(),
        };
        let (to_seed, plain): (Vec<_>, Vec<_>) = fresh
            .into_iter()
            .partition(|(_, target)| holds.get(*target).is_some_and(|held| held.count.files > 0));
        for (path, _) in plain {
            std::fs::create_dir_all(&path)
                .map_err(|err| folders.take_back(Error::io("create", &path, err)))?;
            folders.fresh.push(path);
        }
        if to_seed.is_empty() {
            return Ok(folders);
        }
        let helper = engine
            .create_helper(&self.plan.image, "seed")
            .await
            .map_err(|err| folders.take_back(err))?;
        let mut failed = None;
        for (path, target) in to_seed {
            match seed::seed(engine, &helper, target, &path).await {
                Ok(seeded) => folders.seeded.push(seeded),
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        engine.remove_helper(&helper).await.ok();
        match failed {
            Some(err) => Err(folders.take_back(err)),
            None => Ok(folders),
        }
    }
}

/// What a mount hides of the image: its files at `target`, out of reach under the
/// host folder `source`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hidden {
    pub target: String,
    pub source: PathBuf,
    pub files: u64,
    pub bytes: u64,
    /// False where the count stopped at 64 MiB: "at least".
    pub complete: bool,
}

impl Hidden {
    /// The warning a deploy and check give.
    pub fn warning(&self, image: &str) -> String {
        let at_least = if self.complete { "" } else { "at least " };
        format!(
            "the mount of {} at {} hides {at_least}{} file(s) ({}) that {image} has \
             there: they are not deleted, only out of reach in the container",
            self.source.display(),
            self.target,
            self.files,
            crate::units::human_size(self.bytes)
        )
    }
}

/// The folders [`Prepared::make_folders`] made.
pub struct Folders {
    /// Made empty.
    fresh: Vec<PathBuf>,
    /// Made with what the image has at their targets.
    pub seeded: Vec<seed::Seeded>,
    /// Whether the workspace is one of them, to say so once the container exists.
    new_workspace: bool,
}

impl Folders {
    /// Removes the folders made for a container that did not come to be: an empty one,
    /// and a seeded one, which holds only copies of the image's files (one that is no
    /// longer empty stays). Returns `err`, to be used in `map_err`.
    pub fn take_back(&self, err: Error) -> Error {
        for dir in &self.fresh {
            std::fs::remove_dir(dir).ok();
        }
        for seeded in &self.seeded {
            std::fs::remove_dir_all(&seeded.path).ok();
        }
        err
    }

    /// What a launch says of them once its container exists: the workspace it made,
    /// and what it copied from `image`.
    pub fn notes(&self, workspace: &Path, image: &str) -> Vec<String> {
        let mut notes = Vec::new();
        let seeded_workspace = self.seeded.iter().any(|s| s.path == workspace);
        if self.new_workspace && !seeded_workspace {
            notes.push(format!("created workspace {}", workspace.display()));
        }
        for seeded in &self.seeded {
            notes.push(format!(
                "created {} with {} file(s) ({}) that {image} has at {}; they are yours",
                seeded.path.display(),
                seeded.files,
                crate::units::human_size(seeded.bytes),
                seeded.target
            ));
            for special in &seeded.special {
                notes.push(format!("  not copied: {} ({})", special.path, special.kind));
            }
        }
        notes
    }
}

/// One of berth's own mount sources as the host has it now: resolved, and its owner.
fn own_mount(what: &'static str, path: PathBuf) -> OwnMount {
    use std::os::unix::fs::MetadataExt;
    OwnMount {
        what,
        resolved: files::resolve(&path),
        owner: std::fs::metadata(&path).ok().map(|meta| meta.uid()),
        path,
    }
}

/// The id of `image`: `known` (what the engine said of it), else the pulled image's.
pub async fn pulled_if_missing(
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
