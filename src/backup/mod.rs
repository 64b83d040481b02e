//! `berth backup PROJECT [--to PATH]`: one archive ([`crate::archive`]) of what the
//! project keeps: the workspace (less `[backup] exclude`; never the data root, which is
//! shared), the persistent home, and the persisted volumes. The folders are read on
//! this host, never through a link ([`walk`]); the volumes through the archive
//! endpoint of a helper container that mounts them and never runs, while the project's
//! container, if it runs, is paused, so that they are copied as of one moment. The
//! archive is written to `.<name>.partial` beside its final name and renamed when
//! complete; a failure or an interruption removes it and unpauses the container.

pub mod moving;
pub mod restore;
mod schedule;
pub mod walk;

pub use schedule::{due, Done};

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::archive::{self, Writer};
use crate::cli::BackupArgs;
use crate::config::file::FileConfig;
use crate::container::State;
use crate::content;
use crate::context::Context;
use crate::engine::{BlockingReader, Engine};
use crate::error::{Error, Result};
use crate::glob::Patterns;
use crate::guard::data::Identity;
use crate::label;
use crate::lock::Lock;
use crate::signals::{self, Signals, Stop};
use crate::ui::Printer;
use crate::units::human_size;

/// The [`label::HELPER`] value of the container that reads the volumes.
const PURPOSE: &str = "backup";
/// zstd's level: the fastest, as `zstd -1`.
const LEVEL: i32 = 1;

/// What an archive is of: its first entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    pub project: String,
    pub user: String,
    pub uid: u32,
    /// When it was made, UTC.
    pub created: String,
    pub host: String,
    /// Where the workspace was, as `workspace/` holds it.
    pub workspace: PathBuf,
    /// Where the persistent home was, as `home/` holds it; none without one.
    pub home: Option<PathBuf>,
    /// The image the project was last deployed with.
    pub image: Option<String>,
    /// The data root the project mounts, and its marker's id: not in the archive.
    pub data_root: Option<DataRoot>,
    /// The persisted volumes, each as `volumes/<n>/` holds it.
    pub volumes: Vec<Volume>,
    /// With `--with-container`: the container whose unsaved changes `container/` holds,
    /// by their paths in it.
    #[serde(default)]
    pub container: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataRoot {
    pub path: PathBuf,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    /// The path in the container.
    pub path: String,
    /// The volume's name on the engine it came from.
    pub volume: String,
    /// Its folder in the archive.
    pub entry: String,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Outcome {
    project: String,
    path: PathBuf,
    files: u64,
    bytes: u64,
    archive_bytes: u64,
    volumes: Vec<Volume>,
    paused_ms: Option<u64>,
    not_copied: Vec<String>,
}

pub async fn backup(args: &BackupArgs, printer: &Printer) -> Result<()> {
    let ctx = Context::load(&args.project, &FileConfig::default())?;
    ctx.warn(printer);
    if args.scheduled {
        let done = schedule::run(&ctx, printer).await?;
        if args.json {
            printer.json(&done);
        }
        return Ok(());
    }
    let (engine, _held) = open(&ctx, printer).await?;
    let target = destination(&ctx, args.to.as_deref())?;
    let outcome = take(&engine, &ctx, target, args.with_container, printer).await?;
    if args.json {
        printer.json(&outcome);
    }
    Ok(())
}

/// The engine, once the project is known to have a workspace, and the project's lock:
/// not while a deploy, retire or forget of the project changes what is read.
async fn open(ctx: &Context, printer: &Printer) -> Result<(Engine, Lock)> {
    let project = ctx.project.as_str();
    if !ctx.workspace.is_dir() {
        return Err(Error::failed(format!(
            "{project} has no workspace at {}: nothing to back up",
            ctx.workspace.display()
        )));
    }
    let engine = Engine::connect().await?;
    let held = Lock::project(&ctx.paths.state_dir, project, printer).await?;
    Ok((engine, held))
}

/// Writes the project's archive at `target`, and says so.
async fn take(
    engine: &Engine,
    ctx: &Context,
    target: PathBuf,
    with_container: bool,
    printer: &Printer,
) -> Result<Outcome> {
    let project = ctx.project.as_str();
    let volumes = volumes(engine, ctx).await?;
    let home = ctx.paths.container_home(&ctx.project);
    let container = match with_container {
        true => Some(engine.find(project, ctx.user.uid).await?.ok_or_else(|| {
            Error::failed(format!(
                "{project} has no container: nothing for --with-container to copy"
            ))
        })?),
        false => None,
    };
    let header = Header {
        format: archive::FORMAT,
        project: project.to_string(),
        user: ctx.user.name.clone(),
        uid: ctx.user.uid,
        created: crate::clock::utc_stamp(SystemTime::now()),
        host: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        workspace: ctx.workspace.clone(),
        home: home.is_dir().then(|| home.clone()),
        image: crate::remember::image(&ctx.paths.state_dir, project).map(|i| i.image),
        data_root: data_root(ctx)?,
        volumes,
        container: container.as_ref().map(|c| c.name.clone()),
    };
    let partial = partial_of(&target);
    // Readable by the user alone: an archive holds all of a project.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|err| Error::io("create", &partial, err))?;
    let mut signals = Signals::install()?;
    let stop = Stop::default();
    let bar = Bar::new(printer, project);
    let writing = write(engine, ctx, &header, file, &stop, &bar, printer);
    let written = signals::finish_on_signal(&mut signals, &stop, writing).await;
    bar.finish();
    let written = written.and_then(|written| {
        rename_into_place(&partial, &target)?;
        Ok(written)
    });
    let written = match written {
        Ok(written) => written,
        Err(err) => {
            std::fs::remove_file(&partial).ok();
            return Err(err.details(["no archive was written; nothing else changed".to_string()]));
        }
    };
    let archive_bytes = std::fs::metadata(&target).map_or(0, |m| m.len());
    printer.note(&format!(
        "backed up {project} to {}: {} file(s), {} ({} compressed)",
        target.display(),
        written.files,
        human_size(written.bytes),
        human_size(archive_bytes)
    ));
    for path in &written.not_copied {
        printer.warn(&format!("not copied: {path} (not a file, folder or link)"));
    }
    Ok(Outcome {
        project: project.to_string(),
        path: target,
        files: written.files,
        bytes: written.bytes,
        archive_bytes,
        volumes: header.volumes,
        paused_ms: written.paused_ms,
        not_copied: written.not_copied,
    })
}

/// What [`write`] wrote.
struct Written {
    files: u64,
    bytes: u64,
    paused_ms: Option<u64>,
    not_copied: Vec<String>,
}

/// Writes the archive into `file`: the volumes first, while the container is paused,
/// then the workspace and the home. Synced before it returns.
async fn write(
    engine: &Engine,
    ctx: &Context,
    header: &Header,
    file: File,
    stop: &Stop,
    bar: &Bar,
    printer: &Printer,
) -> Result<Written> {
    let out = BufWriter::with_capacity(1 << 20, file);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let mut writer = Writer::new(out, LEVEL, threads, header).map_err(|e| cannot_write(&e))?;
    let (watch_stop, counter) = (stop.clone(), bar.counter());
    writer.watch(Box::new(move |bytes| {
        counter.set_position(bytes);
        match watch_stop.asked() {
            true => Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted")),
            false => Ok(()),
        }
    }));
    let mut not_copied = Vec::new();
    let mut files = 0;
    let mut paused_ms = None;
    if !header.volumes.is_empty() || header.container.is_some() {
        let (back, volumes) = write_engine_state(engine, ctx, header, writer, printer).await?;
        writer = back;
        paused_ms = volumes.paused_ms;
        files += volumes.files;
        not_copied.extend(volumes.not_copied);
    }
    let exclude = Patterns::new(&ctx.settings.backup_exclude);
    let folders: Vec<(PathBuf, &'static [u8])> = [
        Some((header.workspace.clone(), &b"workspace"[..])),
        header.home.clone().map(|home| (home, &b"home"[..])),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (files, bytes, not_copied) = tokio::task::spawn_blocking(move || {
        let mut files = files;
        for (folder, prefix) in folders {
            // `[backup] exclude` is the workspace's; the home is copied whole.
            let none = Patterns::default();
            let exclude = if prefix == b"workspace" {
                &exclude
            } else {
                &none
            };
            let mut archiving = walk::Archiving::new(&mut writer);
            let walked = walk::walk(&folder, prefix, exclude, &mut archiving)
                .map_err(|err| cannot_read(&folder, &err))?;
            files += walked.files;
            not_copied.extend(walked.special);
        }
        let bytes = writer.bytes;
        let out = writer.finish().map_err(|e| cannot_write(&e))?;
        let file = out.into_inner().map_err(|e| cannot_write(e.error()))?;
        file.sync_all().map_err(|e| cannot_write(&e))?;
        Ok::<_, Error>((files, bytes, not_copied))
    })
    .await
    .map_err(|err| Error::failed(format!("the backup stopped: {err}")))??;
    Ok(Written {
        files,
        bytes,
        paused_ms,
        not_copied,
    })
}

/// What [`write_engine_state`] copied.
struct VolumesWritten {
    files: u64,
    paused_ms: Option<u64>,
    not_copied: Vec<String>,
}

/// Copies each volume through a helper container that mounts them, and with
/// `--with-container` the container's unsaved changes, the project's container paused
/// (and recorded as paused by berth) meanwhile if it runs.
async fn write_engine_state<W: io::Write + Send + 'static>(
    engine: &Engine,
    ctx: &Context,
    header: &Header,
    writer: Writer<W>,
    printer: &Printer,
) -> Result<(Writer<W>, VolumesWritten)> {
    let volumes = &header.volumes;
    let names: Vec<&str> = volumes.iter().map(|v| v.volume.as_str()).collect();
    let helper = match names.is_empty() {
        true => None,
        false => Some(content::volume_helper(engine, PURPOSE, &names, true, None).await?),
    };
    let mut container = engine.find(ctx.project.as_str(), ctx.user.uid).await?;
    if let Some(found) = &mut container {
        crate::paused::resume_if_abandoned(engine, &ctx.paths.state_dir, found, printer).await?;
    }
    let layer_of = container.clone().filter(|_| header.container.is_some());
    let running = container.filter(|c| c.state == State::Running);
    let record = running
        .as_ref()
        .map(|c| crate::paused::Record::make(&ctx.paths.state_dir, &c.id));
    let paused_at = match &running {
        Some(c) => {
            engine.pause(&c.id).await?;
            Some(std::time::Instant::now())
        }
        None => None,
    };
    let readers: Vec<(Volume, BlockingReader)> = match &helper {
        Some(helper) => volumes
            .iter()
            .enumerate()
            .map(|(at, volume)| {
                let path = content::volume_path(at);
                (volume.clone(), engine.download_reader(helper, &path))
            })
            .collect(),
        None => Vec::new(),
    };
    let copied = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut not_copied = Vec::new();
        let before = writer.files;
        for (volume, reader) in readers {
            let entry = volume.entry.as_bytes();
            let skipped = writer.copy_from(entry, reader).map_err(|err| {
                if err.kind() == io::ErrorKind::Interrupted {
                    return Error::interrupted("interrupted");
                }
                Error::failed(format!(
                    "cannot back up volume {} ({}): {}",
                    volume.volume,
                    volume.path,
                    crate::error::io_reason(&err)
                ))
            })?;
            let left = skipped.special.iter().chain(&skipped.unlinked);
            not_copied.extend(left.map(|name| crate::names::shown(name)));
        }
        let files = writer.files - before;
        Ok::<_, Error>((writer, files, not_copied))
    })
    .await
    .map_err(|err| Error::failed(format!("the backup stopped: {err}")));
    let copied = match (copied, &layer_of) {
        (Ok(Ok((writer, files, not_copied))), Some(container)) => {
            let paused = paused_at.is_some();
            copy_layer(engine, ctx, container, paused, writer)
                .await
                .map(|(writer, more, special)| {
                    let mut not_copied = not_copied;
                    not_copied.extend(special);
                    Ok((writer, files + more, not_copied))
                })
        }
        (copied, _) => copied,
    };
    let paused_ms = paused_at.map(|at| at.elapsed().as_millis() as u64);
    if let Some(c) = &running {
        let unpaused = engine.unpause(&c.id).await;
        if unpaused.is_ok() {
            crate::paused::clear(record);
        }
        unpaused?;
    }
    if let Some(helper) = &helper {
        engine.remove_helper(helper).await.ok();
    }
    let (writer, files, not_copied) = copied??;
    Ok((
        writer,
        VolumesWritten {
            files,
            paused_ms,
            not_copied,
        },
    ))
}

/// Copies what the container holds that exists nowhere else (what retire would rescue)
/// as `container/<path in the container>`; every unsaved path must come. Returns the
/// writer, the files copied, and what was left out (FIFOs, device nodes).
async fn copy_layer<W: io::Write + Send + 'static>(
    engine: &Engine,
    ctx: &Context,
    container: &crate::container::ContainerInfo,
    paused: bool,
    writer: Writer<W>,
) -> Result<(Writer<W>, u64, Vec<String>)> {
    use crate::retire::rescue::{self, Root};
    let target = crate::retire::Target::new(ctx, container);
    let assessment = crate::retire::assessment(engine, container, &target, paused).await?;
    let mut queue: std::collections::VecDeque<Root> = rescue::roots(&assessment, &[], false).into();
    let mut writer = writer;
    let before = writer.files;
    let mut special = Vec::new();
    while let Some(root) = queue.pop_front() {
        let reader = engine.download_reader(&container.id, &root.path);
        let wanted = root.clone();
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result =
                writer.copy_as_paths(b"container", &wanted.path, reader, |p| wanted.wants(p));
            (writer, result)
        })
        .await
        .map_err(|err| Error::failed(format!("the backup stopped: {err}")))?;
        writer = back;
        let left_out = result.map_err(|err| {
            if err.kind() == io::ErrorKind::Interrupted {
                return Error::interrupted("interrupted");
            }
            Error::failed(format!(
                "cannot back up {} of {}: {}",
                crate::names::shown(root.path.as_bytes()),
                container.name,
                crate::error::io_reason(&err)
            ))
        })?;
        special.extend(left_out.special);
        // Hard links whose first name was elsewhere come next, each as the file it is.
        queue.extend(
            left_out
                .unlinked
                .into_iter()
                .filter_map(|path| String::from_utf8(path).ok())
                .map(|path| Root::new(path, false)),
        );
    }
    let mut copied = writer.paths_under(b"container");
    copied.extend(special.iter().map(|p| crate::names::lossy(p)));
    let missing: Vec<&str> = assessment
        .unsaved
        .iter()
        .filter(|c| c.kind != crate::container::ChangeKind::Deleted)
        .map(|c| &*c.path)
        .filter(|path| !copied.contains(*path))
        .collect();
    if let Some(first) = missing.first() {
        return Err(Error::failed(format!(
            "{} unsaved path(s) of {} were not in what the engine sent, {} first",
            missing.len(),
            container.name,
            crate::names::shown(first.as_bytes())
        ))
        .hint("back up again"));
    }
    let special = special.iter().map(|p| crate::names::shown(p)).collect();
    let files = writer.files - before;
    Ok((writer, files, special))
}

/// The project's persisted volumes, by the path they keep, each with its folder in
/// the archive.
pub(crate) async fn volumes(engine: &Engine, ctx: &Context) -> Result<Vec<Volume>> {
    let filters = vec![
        label::PERSIST.to_string(),
        format!("{}={}", label::USER, ctx.user.uid),
        format!("{}={}", label::PROJECT, ctx.project),
    ];
    let mut found: Vec<(String, String)> = engine
        .volumes_labelled(filters)
        .await?
        .into_iter()
        .map(|(name, labels)| {
            let path = labels.get(label::PERSIST).cloned().unwrap_or_default();
            (path, name)
        })
        .collect();
    found.sort();
    Ok(found
        .into_iter()
        .enumerate()
        .map(|(at, (path, volume))| Volume {
            path,
            volume,
            entry: format!("volumes/{at}"),
        })
        .collect())
}

/// The data root the project's configuration names, and its marker's id.
pub(crate) fn data_root(ctx: &Context) -> Result<Option<DataRoot>> {
    let rows = crate::dataroot::resolve(&ctx.settings.data_roots);
    let Some(path) = crate::guard::data::decide(&rows)? else {
        return Ok(None);
    };
    let id = match crate::dataroot::identify(&path, &ctx.paths.state_dir) {
        Ok(Identity::Known(id) | Identity::Adopt(id)) => Some(id),
        _ => None,
    };
    Ok(Some(DataRoot { path, id }))
}

/// Where the archive goes: `--to` (a folder, or the file itself), else `[backup] dir`
/// of the user config, else of the policy (in a folder of the user's own), else
/// `$XDG_DATA_HOME/berth/backups`. The folder is made private to the user.
fn destination(ctx: &Context, to: Option<&Path>) -> Result<PathBuf> {
    let name = format!(
        "{}-{}.berth.tar.zst",
        ctx.project,
        crate::clock::utc_stamp(SystemTime::now())
    );
    let (dir, file) = match to {
        Some(path) if path.is_dir() => (path.to_path_buf(), name),
        Some(path) => {
            let file = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                Error::usage(format!("--to {}: name a folder or a file", path.display()))
            })?;
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            (
                dir.unwrap_or(Path::new(".")).to_path_buf(),
                file.to_string(),
            )
        }
        None => (default_dir(ctx)?, name),
    };
    if to.is_none() {
        crate::files::private_dir(&dir).map_err(|err| Error::io("create", &dir, err))?;
    }
    let target = dir.join(file);
    if target.exists() {
        return Err(Error::refused(format!(
            "{} exists: not writing over it",
            target.display()
        )));
    }
    Ok(target)
}

fn default_dir(ctx: &Context) -> Result<PathBuf> {
    if let Some(dir) = &ctx.settings.backup_dir {
        return Ok(dir.value.clone());
    }
    if let Some(dir) = ctx.policy.as_ref().and_then(|(_, p)| p.backup.dir.as_ref()) {
        return Ok(dir.join(&ctx.user.name));
    }
    let data = dirs::data_dir()
        .ok_or_else(|| Error::failed("cannot tell your data directory: set XDG_DATA_HOME"))?;
    Ok(data.join("berth").join("backups"))
}

/// `dir/.<name>.partial`, beside `target`.
fn partial_of(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.partial"))
}

/// Renames the complete archive to its name, never over a file that appeared there.
fn rename_into_place(partial: &Path, target: &Path) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, partial, CWD, target, RenameFlags::NOREPLACE)
        .map_err(|errno| Error::io("rename into place", target, errno.into()))?;
    if let Some(dir) = target.parent() {
        File::open(dir).and_then(|d| d.sync_all()).ok();
    }
    Ok(())
}

fn cannot_write(err: &io::Error) -> Error {
    if err.kind() == io::ErrorKind::Interrupted {
        return Error::interrupted("interrupted");
    }
    Error::failed(format!(
        "cannot write the archive: {}",
        crate::error::io_reason(err)
    ))
}

fn cannot_read(folder: &Path, err: &io::Error) -> Error {
    if err.kind() == io::ErrorKind::Interrupted {
        return Error::interrupted("interrupted");
    }
    Error::failed(format!(
        "cannot back up {}: {}",
        folder.display(),
        crate::error::io_reason(err)
    ))
    .hint("`[backup] exclude` in berth.toml leaves out what need not be kept")
}

/// The bytes copied, on a terminal.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new(printer: &Printer, project: &str) -> Self {
        let target = indicatif::ProgressDrawTarget::stderr();
        if printer.quiet() || !printer.live_progress() || target.is_hidden() {
            return Self(indicatif::ProgressBar::hidden());
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, target);
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} backing up {msg}: {binary_bytes} ({binary_bytes_per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(project.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Self(bar)
    }

    fn counter(&self) -> indicatif::ProgressBar {
        self.0.clone()
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// The chunks an upload of berth's own archive goes in
/// ([`crate::engine::BlockingWriter`]).
pub const UPLOAD_CHUNK: usize = 1 << 20;
