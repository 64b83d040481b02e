//! `berth build PROJECT`: the project's image, built from its Dockerfile through the
//! Engine API and tagged `berth/<user>/<project>:<hash>`, where the hash covers what
//! the build reads: the context files sent, the Dockerfile's name, the build args, the
//! target and the base images' ids. A tag is never re-pointed: changed inputs give a
//! new tag, and unchanged ones make no build call at all. The built image is
//! remembered as the project's, so a deploy that names no image starts it.

pub mod context;
pub mod generated;
pub mod ignore;
mod progress;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use crate::cli::BuildArgs;
use crate::context::Context;
use crate::engine::{BlockingWriter, BuildRequest, Engine};
use crate::error::{Error, Result};
use crate::host::image_repo;
use crate::label;
use crate::lock::Lock;
use crate::remember;
use crate::ui::Printer;
use crate::units::human_size;
use context::{Digests, Hasher, Kind, Measure, Refusal, Rules};
use generated::Lists;
use ignore::Ignore;

/// The label that carries a build's input hash.
pub const INPUT: &str = "berth.input";

/// The largest context sent unless `[build] max_context` says otherwise.
pub const MAX_CONTEXT: u64 = 1 << 30;

/// `berth build PROJECT`.
pub async fn build(args: &BuildArgs, printer: &Printer) -> Result<()> {
    let ctx = Context::load(&args.project, &Default::default())?;
    ctx.warn(printer);
    let engine = Engine::connect().await?;
    // Builds (and deploys) of one project take turns: the second finds the image the
    // first built, and builds nothing.
    let _held = Lock::project(&ctx.paths.state_dir, ctx.project.as_str(), printer).await?;
    let (built, base) = match applies(&ctx) {
        true => (build_project(&engine, &ctx, printer).await?, None),
        false => {
            let lists = Lists::read(&ctx.workspace);
            let base = generated_base(&ctx)
                .filter(|_| lists.any())
                .ok_or_else(|| no_dockerfile(&ctx))?;
            let planned = plan_generated(&engine, &ctx, &base, lists).await?;
            (run(&engine, &ctx, planned, printer).await?, Some(base))
        }
    };
    if let Err(err) = remember::remember_image(
        &ctx.paths.state_dir,
        ctx.project.as_str(),
        &built.image,
        "build",
        base.as_deref(),
    ) {
        printer.warn(&format!(
            "cannot remember {} as the project's image: {err}",
            built.image
        ));
    }
    match built.fresh {
        true => printer.note(&format!("built {}", built.image)),
        false => printer.note(&format!(
            "{} is up to date: nothing changed since it was built",
            built.image
        )),
    }
    printer.line(&built.image);
    Ok(())
}

/// The refusal of `berth build` for a project with nothing to build.
fn no_dockerfile(ctx: &Context) -> Error {
    Error::failed(format!(
        "nothing to build for project {}: {} does not exist, and there are no saved \
         package lists on a known image",
        ctx.project,
        ctx.workspace.join("Dockerfile").display()
    ))
    .hint(format!(
        "write a Dockerfile there, or save packages with `berth retire {} --save-packages` \
         from a container of the image",
        ctx.project
    ))
}

/// The image a generated build starts from, where nothing else is deployed: the one
/// the configuration names, else the base of the project's last generated build, else
/// the image it last used.
pub fn generated_base(ctx: &Context) -> Option<String> {
    if let Some(image) = &ctx.settings.image {
        return Some(image.value.clone());
    }
    let memory = remember::image(&ctx.paths.state_dir, ctx.project.as_str())?;
    Some(memory.base.unwrap_or(memory.image))
}

/// A project's image, built or found.
pub struct Built {
    /// `berth/<user>/<project>:<tag>`.
    pub image: String,
    pub id: String,
    /// Whether this call built it (else an image of the same inputs existed).
    pub fresh: bool,
}

/// What the build of a project reads, from its workspace and `[build]`.
struct Inputs {
    /// The context folder.
    context: PathBuf,
    /// The Dockerfile, relative to the context.
    dockerfile: String,
    args: BTreeMap<String, String>,
    target: Option<String>,
    max_context: u64,
    /// What is never sent, relative to the context.
    never: Vec<String>,
    /// A generated build's Dockerfile, sent as [`generated::DOCKERFILE`].
    generated: Option<String>,
}

impl Inputs {
    fn of(ctx: &Context) -> Result<Self> {
        let (file, section) = &ctx.settings.build;
        let named = |what: &str| match file {
            Some(file) => format!("{what} (in {})", file.display()),
            None => what.to_string(),
        };
        let inside = |raw: &str, what: &str| -> Result<PathBuf> {
            relative_inside(raw).ok_or_else(|| {
                Error::failed(format!(
                    "the build {} {raw:?} is outside the workspace",
                    named(what)
                ))
                .hint("name a path inside the workspace, relative to it")
            })
        };
        let context_rel = inside(section.context.as_deref().unwrap_or("."), "context")?;
        let dockerfile_rel = match &section.dockerfile {
            Some(raw) => inside(raw, "dockerfile")?,
            None => context_rel.join("Dockerfile"),
        };
        let dockerfile = dockerfile_rel
            .strip_prefix(&context_rel)
            .map_err(|_| {
                Error::failed(format!(
                    "the Dockerfile {} is not inside the build context {}",
                    dockerfile_rel.display(),
                    context_rel.display()
                ))
                .hint("move it into the context, or set [build] context to a folder above it")
            })?
            .to_string_lossy()
            .into_owned();
        let context = ctx.workspace.join(&context_rel);
        let dockerfile_path = context.join(&dockerfile);
        if !dockerfile_path.is_file() {
            return Err(Error::failed(format!(
                "no Dockerfile for project {}: {} does not exist",
                ctx.project,
                dockerfile_path.display()
            ))
            .hint("write one there, or name it with `dockerfile =` under [build] in berth.toml"));
        }
        // `.rescued` lives in the workspace; the data root may too.
        let real_context = crate::files::resolve(&context);
        let rel_to_context = |path: &Path| {
            crate::files::resolve(path)
                .strip_prefix(&real_context)
                .ok()
                .map(|rel| rel.to_string_lossy().into_owned())
                .filter(|rel| !rel.is_empty())
        };
        let mut never = Vec::new();
        never.extend(rel_to_context(&ctx.workspace.join(".rescued")));
        for root in ctx
            .settings
            .data_roots
            .iter()
            .filter(|r| !r.value.raw.is_empty())
        {
            never.extend(rel_to_context(&root.value.base.join(&root.value.raw)));
        }
        Ok(Self {
            context,
            dockerfile,
            args: build_args(section),
            target: section.target.clone(),
            max_context: max_context(section),
            never,
            generated: None,
        })
    }

    /// The generated build's: the workspace's lists folder alone, and `dockerfile`.
    fn generated(ctx: &Context, dockerfile: String) -> Self {
        let (_, section) = &ctx.settings.build;
        Self {
            context: ctx.workspace.clone(),
            dockerfile: generated::DOCKERFILE.to_string(),
            args: build_args(section),
            target: None,
            max_context: max_context(section),
            never: Vec::new(),
            generated: Some(dockerfile),
        }
    }
}

/// `[build] args`, as the engine takes them.
fn build_args(section: &crate::config::file::BuildSection) -> BTreeMap<String, String> {
    section
        .args
        .iter()
        .map(|(key, value)| (key.clone(), value.0.clone()))
        .collect()
}

/// `[build] max_context`, else [`MAX_CONTEXT`].
fn max_context(section: &crate::config::file::BuildSection) -> u64 {
    section.max_context.as_ref().map_or(MAX_CONTEXT, |s| s.0)
}

/// `raw` as a path inside the folder it is relative to, with `.` and `..` resolved;
/// `None` when it is absolute or climbs out.
fn relative_inside(raw: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in Path::new(raw).components() {
        match part {
            Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Builds the project's image unless one of the same inputs exists.
pub async fn build_project(engine: &Engine, ctx: &Context, printer: &Printer) -> Result<Built> {
    let planned = plan(engine, ctx, Inputs::of(ctx)?).await?;
    run(engine, ctx, planned, printer).await
}

/// Whether the project builds its image from a Dockerfile: it names one (or a
/// context) under `[build]`, or has a `<workspace>/Dockerfile`. (Build args and
/// `max_context` alone also serve the generated build.)
pub fn applies(ctx: &Context) -> bool {
    let (_, section) = &ctx.settings.build;
    section.dockerfile.is_some()
        || section.context.is_some()
        || section.target.is_some()
        || ctx.workspace.join("Dockerfile").is_file()
}

/// Plans the generated build of the project on `base` with its saved `lists`
/// ([`Lists::read`]). `base` must be on the engine: the build never pulls it.
pub async fn plan_generated(
    engine: &Engine,
    ctx: &Context,
    base: &str,
    lists: Lists,
) -> Result<Planned> {
    if !generated::fit_for_from(base) {
        return Err(Error::failed(format!(
            "{base:?} cannot be the base of project {}'s generated build: it is not an \
             image name",
            ctx.project
        )));
    }
    let Some(facts) = engine.image_facts(base).await? else {
        return Err(Error::failed(format!(
            "project {} builds on {base} with {}, and {base} is not on this engine",
            ctx.project,
            lists.describe()
        ))
        .hint(format!(
            "pull or load {base} first, or name an image that is here with --image; \
             --no-build deploys the last build as it is"
        )));
    };
    let dockerfile = generated::dockerfile(base, &facts.user, &lists);
    plan(engine, ctx, Inputs::generated(ctx, dockerfile)).await
}

/// A build decided: its inputs measured and hashed, its tag known; nothing sent.
pub struct Planned {
    inputs: Inputs,
    ignore: Ignore,
    always: Vec<String>,
    measured: Measure,
    input: String,
    /// `berth/<user>/<project>:<tag>`, the tag the input hash's first 12 digits.
    pub image: String,
    /// The id of the image of these inputs, where the engine has it: then there is
    /// nothing to build.
    pub id: Option<String>,
    /// What the build reads, for the next one to say what changed.
    manifest: Manifest,
}

/// What one build read, kept beside its log (`<tag>.json`), so that a later check can
/// say what changed since: each file's content digest, the Dockerfile's path, the base
/// images' ids, the args and the target.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Manifest {
    files: BTreeMap<String, String>,
    dockerfile: String,
    bases: BTreeMap<String, String>,
    args: BTreeMap<String, String>,
    target: Option<String>,
}

impl Manifest {
    /// What differs from `before`, as a person says it: `the Dockerfile, 3 context
    /// files and the base image`.
    fn changes_since(&self, before: &Manifest) -> Option<String> {
        let mut parts = Vec::new();
        let dockerfile = |m: &Manifest| m.files.get(&m.dockerfile).cloned();
        if self.dockerfile != before.dockerfile || dockerfile(self) != dockerfile(before) {
            parts.push("the Dockerfile".to_string());
        }
        let paths: std::collections::BTreeSet<&String> =
            self.files.keys().chain(before.files.keys()).collect();
        let files = paths
            .into_iter()
            .filter(|path| **path != self.dockerfile && **path != before.dockerfile)
            .filter(|path| self.files.get(*path) != before.files.get(*path))
            .count();
        if files > 0 {
            let what = match self.dockerfile == generated::DOCKERFILE {
                true => "saved package file",
                false => "context file",
            };
            parts.push(format!(
                "{files} {what}{}",
                if files == 1 { "" } else { "s" }
            ));
        }
        if self.bases != before.bases {
            parts.push("the base image".to_string());
        }
        if self.args != before.args || self.target != before.target {
            parts.push("the build args or target".to_string());
        }
        let last = parts.pop()?;
        Some(match parts.is_empty() {
            true => last,
            false => format!("{} and {last}", parts.join(", ")),
        })
    }
}

/// Measures and hashes what a build of the project would read, and asks the engine
/// whether an image of those inputs exists. Reads files; changes nothing.
pub async fn plan_project(engine: &Engine, ctx: &Context) -> Result<Planned> {
    plan(engine, ctx, Inputs::of(ctx)?).await
}

async fn plan(engine: &Engine, ctx: &Context, inputs: Inputs) -> Result<Planned> {
    let ignore_path = inputs.context.join(".dockerignore");
    let (ignore, always) = match &inputs.generated {
        Some(_) => (
            Ignore::parse(generated::IGNORE).expect("the generated build's ignore parses"),
            Vec::new(),
        ),
        None => (
            match crate::config::file::read_text(&ignore_path, "text")? {
                Some(text) => Ignore::parse(&text)
                    .map_err(|why| Error::failed(format!("{}: {why}", ignore_path.display())))?,
                None => Ignore::default(),
            },
            vec![inputs.dockerfile.clone(), ".dockerignore".to_string()],
        ),
    };
    let (context, never) = (inputs.context.clone(), inputs.never.clone());
    let (ignore_for_walk, always_for_walk) = (ignore.clone(), always.clone());
    // The content digests of the last walk: a file whose stamp is unchanged is not
    // read again, so an unchanged context costs a walk of stats.
    let digests_path = builds_dir(ctx).join("digests.json");
    let known_path = digests_path.clone();
    let walking = tokio::task::spawn_blocking(move || {
        let known: Digests = std::fs::read(&known_path)
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default();
        let rules = Rules {
            ignore: &ignore_for_walk,
            never: &never,
            always: &always_for_walk,
        };
        context::measure(&context, &rules, &known)
    });
    // The engine names the base images while the walk goes on.
    let read_dockerfile = || match &inputs.generated {
        Some(text) => Ok(text.clone()),
        None => std::fs::read_to_string(inputs.context.join(&inputs.dockerfile))
            .map_err(|err| Error::io("read", &inputs.context.join(&inputs.dockerfile), err)),
    };
    let mut dockerfile = read_dockerfile()?;
    let (walked, mut bases) = tokio::join!(walking, base_ids(engine, &dockerfile, &inputs.args));
    let (measured, digests) = walked
        .map_err(|err| Error::failed(format!("cannot walk the build context: {err}")))?
        .map_err(refused)?;
    let mut files = digests.paths();
    if inputs.generated.is_none()
        && files.get(&inputs.dockerfile) != Some(&context::digest(dockerfile.as_bytes()))
    {
        // Rewritten between the read and the walk: the bases are the walked one's.
        dockerfile = read_dockerfile()?;
        bases = base_ids(engine, &dockerfile, &inputs.args).await;
    }
    let bases = bases?;
    if measured.read > 0 || !digests_path.exists() {
        let text = serde_json::to_vec(&digests).unwrap_or_default();
        if let Some(dir) = digests_path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        crate::files::write_atomically(&digests_path, &text).ok();
    }
    if measured.bytes > inputs.max_context {
        return Err(too_large(&inputs, &measured));
    }

    let mut hasher = Hasher::default();
    hasher.input("context", measured.hash.as_bytes());
    if let Some(text) = &inputs.generated {
        hasher.input("generated", text.as_bytes());
        files.insert(inputs.dockerfile.clone(), context::digest(text.as_bytes()));
    }
    hasher.input("dockerfile", inputs.dockerfile.as_bytes());
    for (key, value) in &inputs.args {
        hasher.input("arg", format!("{key}={value}").as_bytes());
    }
    hasher.input(
        "target",
        inputs.target.as_deref().unwrap_or_default().as_bytes(),
    );
    for (base, id) in &bases {
        hasher.input("base", format!("{base}@{id}").as_bytes());
    }
    let manifest = Manifest {
        files,
        dockerfile: inputs.dockerfile.clone(),
        bases,
        args: inputs.args.clone(),
        target: inputs.target.clone(),
    };
    let input = hasher.finish();
    let image = format!(
        "{}:{}",
        image_repo(&ctx.user.name, ctx.project.as_str()),
        &input[..12]
    );
    let id = engine.image_id(&image).await?;
    Ok(Planned {
        inputs,
        ignore,
        always,
        measured,
        input,
        image,
        id,
        manifest,
    })
}

/// What changed since the project's newest build (the one berth remembers), where
/// `planned` would build anew and that build's manifest is kept.
pub fn changes(ctx: &Context, planned: &Planned) -> Option<String> {
    let newest = remember::image(&ctx.paths.state_dir, ctx.project.as_str())?;
    let tag = newest.image.rsplit_once(':')?.1.to_string();
    let text = std::fs::read(builds_dir(ctx).join(format!("{tag}.json"))).ok()?;
    let before: Manifest = serde_json::from_slice(&text).ok()?;
    planned.manifest.changes_since(&before)
}

/// Builds what `planned` decided, unless the image exists.
pub async fn run(
    engine: &Engine,
    ctx: &Context,
    planned: Planned,
    printer: &Printer,
) -> Result<Built> {
    let Planned {
        inputs,
        ignore,
        always,
        measured,
        input,
        image,
        id,
        manifest,
    } = planned;
    if let Some(id) = id {
        return Ok(Built {
            image,
            id,
            fresh: false,
        });
    }
    let (repo, tag) = image.rsplit_once(':').expect("a planned image has a tag");
    printer.note(&format!(
        "building {image}: {} file(s), {} of context",
        measured.files,
        human_size(measured.bytes)
    ));

    let request = BuildRequest {
        dockerfile: inputs.dockerfile.clone(),
        args: inputs.args.clone(),
        labels: BTreeMap::from([
            (label::PROJECT.to_string(), ctx.project.to_string()),
            (label::USER.to_string(), ctx.user.uid.to_string()),
            (INPUT.to_string(), input.clone()),
        ]),
        target: inputs.target.clone(),
    };
    let log_path = builds_dir(ctx).join(format!("{tag}.log"));
    let mut log = open_log(&log_path);
    // The tar adds a header a file and pads each to 512 bytes: at most this much.
    let tar_bytes = measured.bytes + (measured.files + 2) * 1024;
    let shown = progress::Shown::new(printer, &image, tar_bytes);
    let counter = shown.counter();
    let (writer, body) = BlockingWriter::new(CONTEXT_CHUNK, "the build context");
    let bar = counter.clone();
    let writer = writer.on_send(move |n| bar.inc(n));
    let context = inputs.context.clone();
    let never = inputs.never.clone();
    let extra = inputs
        .generated
        .clone()
        .map(|text| (inputs.dockerfile.clone(), text.into_bytes()));
    let sending = tokio::task::spawn_blocking(move || {
        let rules = Rules {
            ignore: &ignore,
            never: &never,
            always: &always,
        };
        let sent = send_context(&context, &rules, extra, writer);
        // Whatever the estimate, all of it is sent now.
        counter.set_length(counter.position());
        sent
    });
    let built = engine
        .build(&request, body, |line| {
            if let Some(log) = log.as_mut() {
                writeln!(log, "{line}").ok();
            }
            shown.line(line);
        })
        .await;
    let sent = sending
        .await
        .map_err(|err| Error::failed(format!("cannot send the build context: {err}")))?;
    let kept = format!("the build's output is in {}", log_path.display());
    let dockerfile = match inputs.generated {
        Some(_) => format!(
            "the Dockerfile is berth's, generated for the lists in {}",
            generated::LISTS
        ),
        None => format!(
            "the Dockerfile is {}",
            inputs.context.join(&inputs.dockerfile).display()
        ),
    };
    let id = built.map_err(|err| {
        err.details([dockerfile, kept.clone()])
            .hint("the project's previous image, if it has one, stays in use")
    })?;
    match sent {
        Ok(hash) if hash == measured.hash => {}
        Ok(_) => {
            engine.remove_image(&id).await.ok();
            return Err(Error::failed(
                "the build context changed while it was sent: the image would not be what \
                 its tag says, so it was removed",
            )
            .hint("build again once nothing writes into the context"));
        }
        Err(refusal) => {
            engine.remove_image(&id).await.ok();
            return Err(refused(refusal));
        }
    }
    engine.tag(&id, repo, tag).await?;
    let manifest_path = builds_dir(ctx).join(format!("{tag}.json"));
    let text = serde_json::to_vec(&manifest).unwrap_or_default();
    crate::files::write_atomically(&manifest_path, &text).ok();
    Ok(Built {
        image,
        id,
        fresh: true,
    })
}

fn refused(refusal: Refusal) -> Error {
    Error::failed(refusal.to_string()).hint("leave it out with a line in .dockerignore")
}

/// The refusal of a context over the limit: its largest top-level entries, and the
/// `.dockerignore` lines that would leave them out.
fn too_large(inputs: &Inputs, measured: &Measure) -> Error {
    let mut largest: Vec<(&String, &u64)> = measured.by_top.iter().collect();
    largest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let largest: Vec<_> = largest
        .into_iter()
        .filter(|(name, _)| **name != inputs.dockerfile)
        .take(5)
        .collect();
    let mut details: Vec<String> = largest
        .iter()
        .map(|(name, bytes)| format!("{:>10}  {name}", human_size(**bytes)))
        .collect();
    details.push("add to .dockerignore, for example:".to_string());
    details.extend(largest.iter().take(3).map(|(name, _)| format!("  {name}")));
    Error::failed(format!(
        "the build context {} holds {} in {} file(s), more than the {} limit \
         ([build] max_context)",
        inputs.context.display(),
        human_size(measured.bytes),
        measured.files,
        human_size(inputs.max_context)
    ))
    .details(details)
    .hint("nothing was sent; leave the data out with .dockerignore, or raise max_context")
}

/// Each base image of `dockerfile` with its id (empty where the engine has none), in
/// name order.
async fn base_ids(
    engine: &Engine,
    dockerfile: &str,
    args: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut bases = BTreeMap::new();
    for base in base_images(dockerfile, args) {
        let id = engine.image_id(&base).await?.unwrap_or_default();
        bases.insert(base, id);
    }
    Ok(bases)
}

/// The images the Dockerfile builds on: each `FROM` that is not an earlier stage,
/// with `${ARG}` filled in from the build args where it can be.
fn base_images(dockerfile: &str, args: &BTreeMap<String, String>) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut bases = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("FROM"))
        {
            continue;
        }
        let mut words = words.filter(|word| !word.starts_with("--"));
        let Some(image) = words.next() else { continue };
        let mut image = image.to_string();
        for (key, value) in args {
            image = image
                .replace(&format!("${{{key}}}"), value)
                .replace(&format!("${key}"), value);
        }
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AS")) {
            if let Some(name) = words.next() {
                stages.push(name.to_ascii_lowercase());
            }
        }
        if !stages
            .iter()
            .any(|stage| *stage == image.to_ascii_lowercase())
            && image != "scratch"
            && !bases.contains(&image)
        {
            bases.push(image);
        }
    }
    bases
}

/// Where the project's build logs and file digests are kept, in the state dir.
fn builds_dir(ctx: &Context) -> PathBuf {
    ctx.paths
        .state_dir
        .join("builds")
        .join(ctx.project.as_str())
}

/// The build log, made where it can be; a build without one still runs.
fn open_log(path: &Path) -> Option<std::fs::File> {
    std::fs::create_dir_all(path.parent()?).ok()?;
    std::fs::File::create(path).ok()
}

/// The chunks a build context goes to the engine in.
const CONTEXT_CHUNK: usize = 256 * 1024;

/// Writes the context as a tar stream into `sender`, `extra` (a generated Dockerfile,
/// held in memory) first, hashing the walk on the way; returns the hash of what the
/// walk sent.
fn send_context(
    root: &Path,
    rules: &Rules<'_>,
    extra: Option<(String, Vec<u8>)>,
    writer: BlockingWriter,
) -> std::result::Result<String, Refusal> {
    let mut hasher = Hasher::default();
    let mut tar = tar::Builder::new(writer);
    if let Some((name, content)) = extra {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, content.as_slice())
            .map_err(|err| Refusal::Io("the generated Dockerfile".into(), err))?;
    }
    context::walk(root, rules, &mut |mut entry| {
        hasher.meta(&entry);
        let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(entry.path);
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_mtime(u64::try_from(entry.mtime).unwrap_or(0));
        header.set_uid(0);
        header.set_gid(0);
        match entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, path, io::empty())
            }
            Kind::Symlink => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                let target = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                    entry.target.as_deref().unwrap_or_default(),
                );
                tar.append_link(&mut header, path, target)
            }
            Kind::File => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(entry.size);
                let size = entry.size;
                let mut content = hasher.content(entry.open()?, size);
                tar.append_data(&mut header, path, &mut content)?;
                content.finish().map(drop)
            }
        }
    })?;
    tar.into_inner()
        .and_then(|mut writer| writer.send())
        .map_err(|err| Refusal::Io("the context".into(), err))?;
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_are_the_froms_that_are_not_stages() {
        let dockerfile = "ARG V=1\nFROM python:${V} AS base\nRUN x\nFROM --platform=linux/amd64 base AS two\nfrom busybox\nFROM scratch\nFROM python:3.11\n";
        let args = BTreeMap::from([("V".to_string(), "3.11".to_string())]);
        assert_eq!(base_images(dockerfile, &args), ["python:3.11", "busybox"]);
    }

    #[test]
    fn a_stale_build_says_what_changed() {
        let files = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(p, d)| (p.to_string(), d.to_string()))
                .collect()
        };
        let before = Manifest {
            files: files(&[("Dockerfile", "1"), ("a", "1"), ("b", "1")]),
            dockerfile: "Dockerfile".into(),
            bases: BTreeMap::from([("busybox".into(), "sha256:1".into())]),
            ..Default::default()
        };
        assert_eq!(before.changes_since(&before), None);
        let mut now = before.clone();
        now.files = files(&[("Dockerfile", "1"), ("a", "2"), ("c", "1")]);
        assert_eq!(now.changes_since(&before).unwrap(), "3 context files");
        now.files.insert("Dockerfile".into(), "2".into());
        now.bases.insert("busybox".into(), "sha256:2".into());
        assert_eq!(
            now.changes_since(&before).unwrap(),
            "the Dockerfile, 3 context files and the base image"
        );
    }

    #[test]
    fn paths_stay_inside_what_they_are_relative_to() {
        assert_eq!(relative_inside("."), Some(PathBuf::new()));
        assert_eq!(
            relative_inside("./docker/../app"),
            Some(PathBuf::from("app"))
        );
        assert_eq!(relative_inside("../elsewhere"), None);
        assert_eq!(relative_inside("/etc"), None);
    }
}
