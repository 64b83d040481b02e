//! `berth restore ARCHIVE [--as PROJECT] [--context NAME]`: a project back from an
//! archive of `berth backup`, onto this host and the engine of any docker context.
//!
//! The archive is read once, and nothing is put in place before all of it has been
//! read and agrees with its manifest: the workspace and the home are written into
//! `.<project>.partial` beside where they go (through [`crate::unpack`], never through
//! a link), the volumes into new volumes through a helper container that mounts them.
//! Only then are the folders renamed into place. A damaged or cut-short archive, an
//! error or Ctrl-C removes all of it. A restore killed outright leaves a record in the
//! state dir ([`Pending`]): deploy refuses the project until a restore has finished,
//! and the next restore first clears what the killed one left.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DataRoot, Header, UPLOAD_CHUNK};
use crate::archive::{self, Entry, Kind};
use crate::cli::RestoreArgs;
use crate::config::file::FileConfig;
use crate::content;
use crate::context::Context;
use crate::engine::BlockingWriter;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::label;
use crate::lock::Lock;
use crate::signals::{self, Signals, Stop};
use crate::ui::Printer;
use crate::units::human_size;
use crate::unpack::{self, Extractor, Folder};

/// The [`label::HELPER`] value of the container that writes the volumes.
const PURPOSE: &str = "restore";

/// The name of the helper container of a restore of `project`: one at a time, under
/// the project's lock, and found by name when a killed restore left it.
fn helper_name(ctx: &Context) -> String {
    format!("berth-restore.{}.{}", ctx.user.uid, ctx.project)
}

/// What a restore has made and not yet put in place, kept in
/// `<state dir>/restoring/<project>.json` from before the first write until the end.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Pending {
    pub archive: PathBuf,
    /// The partial folders, beside where they go.
    pub folders: Vec<PathBuf>,
    /// The volumes it made.
    pub volumes: Vec<String>,
    /// The name of the helper container that writes them.
    #[serde(default)]
    pub helper: Option<String>,
}

impl Pending {
    fn path(state_dir: &Path, project: &str) -> PathBuf {
        state_dir.join("restoring").join(format!("{project}.json"))
    }

    /// The record of a restore of `project` that did not finish, if there is one.
    pub fn find(state_dir: &Path, project: &str) -> Option<Self> {
        let text = std::fs::read(Self::path(state_dir, project)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn save(&self, state_dir: &Path, project: &str) -> Result<()> {
        let path = Self::path(state_dir, project);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| Error::io("create", dir, err))?;
        }
        let text = serde_json::to_vec_pretty(self).unwrap_or_default();
        crate::files::write_atomically(&path, &text).map_err(|err| Error::io("write", &path, err))
    }

    fn forget(state_dir: &Path, project: &str) {
        std::fs::remove_file(Self::path(state_dir, project)).ok();
    }

    /// Removes what it names: the partial folders, the helper and the volumes.
    async fn clear(&self, engine: &Engine) {
        for folder in &self.folders {
            std::fs::remove_dir_all(folder).ok();
        }
        if let Some(helper) = &self.helper {
            engine.remove_helper_named(helper).await.ok();
        }
        for volume in &self.volumes {
            // The helper of a restore killed outright still mounts it.
            for helper in engine.helpers_mounting(volume).await.unwrap_or_default() {
                engine.remove_helper(&helper).await.ok();
            }
            engine.remove_volume(volume).await.ok();
        }
    }
}

/// What a restore (or its `--dry-run`) says, and `--json` prints.
#[derive(Debug, Serialize)]
struct Outcome<'a> {
    project: &'a str,
    archive: &'a Path,
    /// `restored`, or `verified` with `--dry-run`.
    action: &'static str,
    files: u64,
    bytes: u64,
    workspace: &'a Path,
    home: Option<&'a Path>,
    volumes: Vec<(&'a str, String)>,
}

impl Outcome<'_> {
    fn tell(&self, printer: &Printer, json: bool) {
        let mut places = self.workspace.display().to_string();
        if let Some(home) = self.home {
            places += &format!(", {}", home.display());
        }
        for (_, volume) in &self.volumes {
            places += &format!(", volume {volume}");
        }
        let (archive, files, size) = (self.archive.display(), self.files, human_size(self.bytes));
        printer.note(&match self.action {
            "verified" => format!(
                "{archive} is whole: {files} file(s), {size}; it would restore {} into {places}",
                self.project
            ),
            _ => format!(
                "restored {} from {archive}: {files} file(s), {size}, into {places}",
                self.project
            ),
        });
        if json {
            printer.json(self);
        }
    }
}

pub async fn restore(args: &RestoreArgs, printer: &Printer) -> Result<()> {
    let header = read_header(&args.archive)?;
    let project = args.as_project.as_deref().unwrap_or(&header.project);
    let ctx = Context::load(project, &FileConfig::default())?;
    ctx.warn(printer);
    let project = ctx.project.as_str();
    let home = ctx.paths.container_home(&ctx.project);
    let volumes: Vec<(&super::Volume, String)> = header
        .volumes
        .iter()
        .map(|v| {
            let name =
                crate::host::persist_volume(&ctx.user.name, project, &v.path).ok_or_else(|| {
                    Error::failed(format!(
                        "the archive names volume path {:?}, which no project can persist",
                        v.path
                    ))
                })?;
            Ok((v, name))
        })
        .collect::<Result<_>>()?;
    let outcome = |action, files, bytes| Outcome {
        project,
        archive: &args.archive,
        action,
        files,
        bytes,
        workspace: &ctx.workspace,
        home: header.home.is_some().then_some(home.as_path()),
        volumes: volumes
            .iter()
            .map(|(v, name)| (v.path.as_str(), name.clone()))
            .collect(),
    };
    if args.dry_run {
        let whole = verify(&args.archive).await?;
        let files = whole
            .manifest
            .entries
            .iter()
            .filter(|e| e.kind != Kind::Dir);
        outcome("verified", files.count() as u64, whole.bytes).tell(printer, args.json);
        return Ok(());
    }
    let engine = match &args.context {
        Some(name) => Engine::connect_to_context(name).await?,
        None => Engine::connect().await?,
    };
    let _held = Lock::project(&ctx.paths.state_dir, project, printer).await?;
    let state_dir = ctx.paths.state_dir.clone();
    if let Some(left) = Pending::find(&state_dir, project) {
        printer.note(&format!(
            "clearing what an unfinished restore of {project} (from {}) left",
            left.archive.display()
        ));
        left.clear(&engine).await;
        Pending::forget(&state_dir, project);
    }
    check_data_root(&ctx, header.data_root.as_ref())?;
    refuse_non_empty(&ctx.workspace, "workspace")?;
    if header.home.is_some() {
        refuse_non_empty(&home, "persistent home")?;
    }
    if let Some(container) = engine.find(project, ctx.user.uid).await? {
        return Err(Error::refused(format!(
            "{} exists on this engine: not restoring {project} under it",
            container.name
        ))
        .hint(format!(
            "`berth retire {project}` first, or restore --as another name"
        )));
    }
    let names: Vec<&str> = volumes.iter().map(|(_, name)| name.as_str()).collect();
    refuse_full_volumes(&engine, &names, &helper_name(&ctx)).await?;

    // From here on, what is made is recorded first, and removed should anything fail.
    let mut pending = Pending {
        archive: std::fs::canonicalize(&args.archive).unwrap_or_else(|_| args.archive.clone()),
        ..Pending::default()
    };
    pending.save(&state_dir, project)?;
    let mut signals = Signals::install()?;
    let stop = Stop::default();
    let writing = write(
        &engine,
        &ctx,
        &header,
        &args.archive,
        &volumes,
        &mut pending,
        &stop,
    );
    let restored = signals::finish_on_signal(&mut signals, &stop, writing).await;
    let restored = match restored {
        Ok(restored) => restored,
        Err(err) => {
            // What the blocking reader holds open goes with it; what it made goes here.
            pending.clear(&engine).await;
            Pending::forget(&state_dir, project);
            return Err(err.details(["nothing was restored".to_string()]));
        }
    };
    Pending::forget(&state_dir, project);
    outcome("restored", restored.files, restored.bytes).tell(printer, args.json);
    Ok(())
}

/// Reads the whole archive, writing nothing.
async fn verify(path: &Path) -> Result<archive::Whole> {
    let file = open(path)?;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        archive::read(io::BufReader::with_capacity(1 << 20, file), |_, _| Ok(()))
            .map_err(|broken| damaged(&path, &broken))
    })
    .await
    .map_err(|err| Error::failed(format!("the check stopped: {err}")))?
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|err| Error::io("open", path, err))
}

fn damaged(path: &Path, broken: &archive::Broken) -> Error {
    Error::failed(format!(
        "{} is damaged at {}: {}",
        path.display(),
        broken.entry,
        broken.reason
    ))
}

/// The archive's header: its first entry.
fn read_header(path: &Path) -> Result<Header> {
    let file = open(path)?;
    let not_ours =
        |why: String| Error::failed(format!("{} is not a berth backup: {why}", path.display()));
    let decoder = zstd::stream::read::Decoder::new(file).map_err(|e| not_ours(e.to_string()))?;
    let mut tar = tar::Archive::new(decoder);
    let mut entries = tar.entries().map_err(|e| not_ours(e.to_string()))?;
    let mut first = entries
        .next()
        .ok_or_else(|| not_ours("it is empty".into()))?
        .map_err(|e| not_ours(crate::error::io_reason(&e)))?;
    if &*first.path_bytes() != archive::HEADER.as_bytes() {
        return Err(not_ours(format!(
            "it does not open with {}",
            archive::HEADER
        )));
    }
    let mut text = Vec::new();
    first
        .by_ref()
        .take(1 << 20)
        .read_to_end(&mut text)
        .map_err(|e| not_ours(crate::error::io_reason(&e)))?;
    let header: Header = serde_json::from_slice(&text).map_err(|e| not_ours(e.to_string()))?;
    if header.format != archive::FORMAT {
        return Err(not_ours(format!(
            "format {} (this berth reads {})",
            header.format,
            archive::FORMAT
        )));
    }
    Ok(header)
}

/// The data root the archive was made beside must be the one the project mounts here:
/// another one would be the split-brain berth refuses at deploy.
fn check_data_root(ctx: &Context, recorded: Option<&DataRoot>) -> Result<()> {
    let Some(DataRoot { path, id: Some(id) }) = recorded else {
        return Ok(());
    };
    let here = super::data_root(ctx)?;
    let (here_path, here_id) = match &here {
        Some(root) => (root.path.display().to_string(), root.id.clone()),
        None => ("none".to_string(), None),
    };
    if here_id.as_deref() == Some(id.as_str()) {
        return Ok(());
    }
    Err(Error::refused(format!(
        "split-brain: the archive was made beside data root {} (id {id}), but here the \
         project's data root is {here_path} ({})",
        path.display(),
        match &here_id {
            Some(other) => format!("id {other}"),
            None => "without that marker".to_string(),
        }
    ))
    .hint("mount the same share here and name it in [data] host_path or HOST_DATA_PATH, then restore again"))
}

/// Refuses a folder that exists and holds anything (exit 3).
fn refuse_non_empty(path: &Path, what: &str) -> Result<()> {
    let holds = std::fs::read_dir(path).map(|mut entries| entries.next().is_some());
    match holds {
        Ok(true) => Err(Error::refused(format!(
            "the {what} {} exists and is not empty: not restoring into it",
            path.display()
        ))
        .hint("move it away, or restore --as another name")),
        Ok(false) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io("read", path, err)),
    }
}

/// Refuses volumes that exist and hold files (exit 3).
async fn refuse_full_volumes(engine: &Engine, names: &[&str], helper: &str) -> Result<()> {
    let mut existing = Vec::new();
    for name in names {
        if engine.volume_labels(name).await?.is_some() {
            existing.push(*name);
        }
    }
    if existing.is_empty() {
        return Ok(());
    }
    let helper = content::volume_helper(engine, PURPOSE, &existing, true, Some(helper)).await?;
    let counted = async {
        for (at, name) in existing.iter().enumerate() {
            let path = content::volume_path(at);
            let count =
                content::count_in(engine, &helper, &path, &format!("volume {name}")).await?;
            if count.files > 0 {
                return Err(Error::refused(format!(
                    "volume {name} exists and holds {} file(s): not restoring into it",
                    count.files
                ))
                .hint(
                    "`berth forget PROJECT --volumes` removes it, or restore --as another name",
                ));
            }
        }
        Ok(())
    }
    .await;
    engine.remove_helper(&helper).await.ok();
    counted
}

/// What [`write`] restored.
struct Restored {
    files: u64,
    bytes: u64,
}

/// Reads the archive once: the workspace and home into partial folders, the volumes
/// into new ones; then, the archive whole, puts the folders in place.
async fn write(
    engine: &Engine,
    ctx: &Context,
    header: &Header,
    path: &Path,
    volumes: &[(&super::Volume, String)],
    pending: &mut Pending,
    stop: &Stop,
) -> Result<Restored> {
    let state_dir = &ctx.paths.state_dir;
    let project = ctx.project.as_str();
    let home = ctx.paths.container_home(&ctx.project);
    let mut folders: Vec<(&'static str, PathBuf)> = vec![("workspace", ctx.workspace.clone())];
    if header.home.is_some() {
        folders.push(("home", home));
    }
    let mut sinks = BTreeMap::new();
    for (section, target) in &folders {
        let (Some(parent), Some(name)) =
            (target.parent(), target.file_name().and_then(|n| n.to_str()))
        else {
            return Err(Error::failed(format!(
                "cannot restore into {}",
                target.display()
            )));
        };
        stop.check()?;
        std::fs::create_dir_all(parent).map_err(|err| Error::io("create", parent, err))?;
        // Recorded before it is made: a restore killed in between leaves nothing unnamed.
        pending.folders.push(Folder::exact_partial(parent, name));
        pending.save(state_dir, project)?;
        let folder = Folder::exact(parent, name).map_err(|err| Error::io("create", target, err))?;
        let extractor = Extractor::new(folder)
            .standing_for(&format!("/{section}"))
            .keeping_modes();
        sinks.insert(section.to_string(), extractor);
    }
    // The volumes, each written by its own upload through one helper.
    let mut uploads = Vec::new();
    let mut senders = BTreeMap::new();
    let mut helper = None;
    if !volumes.is_empty() {
        for (volume, name) in volumes {
            stop.check()?;
            pending.volumes.push(name.clone());
            pending.save(state_dir, project)?;
            if engine.volume_labels(name).await?.is_none() {
                let labels = BTreeMap::from([
                    (label::PROJECT.to_string(), project.to_string()),
                    (label::USER.to_string(), ctx.user.uid.to_string()),
                    (label::PERSIST.to_string(), volume.path.clone()),
                ]);
                engine.create_volume(name, &labels).await?;
            }
        }
        let names: Vec<&str> = volumes.iter().map(|(_, name)| name.as_str()).collect();
        stop.check()?;
        let name = helper_name(ctx);
        pending.helper = Some(name.clone());
        pending.save(state_dir, project)?;
        let id = content::volume_helper(engine, PURPOSE, &names, false, Some(&name)).await?;
        for (at, (volume, _)) in volumes.iter().enumerate() {
            let (writer, body) = BlockingWriter::new(UPLOAD_CHUNK, "the volume");
            let (helper, path) = (id.clone(), content::volume_path(at));
            uploads.push(async move { engine.upload_stream(&helper, &path, body).await });
            senders.insert(volume.entry.clone(), writer);
        }
        helper = Some(id);
    }
    // The container's unsaved changes go where a rescue at the backup's time would.
    let rescued = header
        .container
        .as_ref()
        .map(|_| format!("/workspace/.rescued/{}", header.created).into_bytes());
    let file = stop.reader(open(path)?);
    let archive_path = path.to_path_buf();
    let reading = tokio::task::spawn_blocking(move || {
        let mut split = Split {
            folders: sinks,
            rescued,
            volumes: senders
                .into_iter()
                .map(|(entry, writer)| (entry, Volume::new(writer)))
                .collect(),
        };
        let whole = archive::read(
            io::BufReader::with_capacity(1 << 20, file),
            |entry, contents| split.put(entry, contents),
        );
        match whole {
            Ok(whole) => {
                split.finish_volumes().map_err(|err| {
                    Error::failed(format!(
                        "cannot write the volumes: {}",
                        crate::error::io_reason(&err)
                    ))
                })?;
                Ok((whole, split.folders))
            }
            Err(broken) => Err(damaged(&archive_path, &broken)),
        }
    });
    let (read, uploaded) = tokio::join!(reading, futures_util::future::join_all(uploads));
    if let Some(id) = &helper {
        engine.remove_helper(id).await.ok();
    }
    let (whole, extractors) =
        read.map_err(|err| Error::failed(format!("the restore stopped: {err}")))??;
    for upload in uploaded {
        upload?;
    }
    // All of it read and whole: the folders go in place. An empty folder where one
    // goes (checked above) gives way.
    let mut extractors = extractors;
    for (section, target) in &folders {
        if let Some(extractor) = extractors.remove(*section) {
            std::fs::remove_dir(target).ok();
            extractor.complete().map_err(|failure| {
                Error::failed(format!(
                    "cannot put {} in place: {}",
                    failure.path, failure.reason
                ))
            })?;
        }
    }
    let files = whole
        .manifest
        .entries
        .iter()
        .filter(|e| e.kind != Kind::Dir)
        .count() as u64;
    Ok(Restored {
        files,
        bytes: whole.bytes,
    })
}

/// Hands each entry of the archive to where it goes.
struct Split {
    /// By section: `workspace`, `home`.
    folders: BTreeMap<String, Extractor>,
    /// By entry: `volumes/0`, ….
    volumes: BTreeMap<String, Volume>,
    /// Where `container/` goes in the workspace, as a container path.
    rescued: Option<Vec<u8>>,
}

impl Split {
    /// The container path an archive path stands for: `workspace/a` is `/workspace/a`,
    /// `container/opt/a` is `/workspace/.rescued/<time>/opt/a`.
    fn at(&self, path: &[u8]) -> Vec<u8> {
        match (path.strip_prefix(b"container"), &self.rescued) {
            (Some(rest), Some(rescued)) if rest.is_empty() || rest.starts_with(b"/") => {
                let mut at = rescued.clone();
                at.extend_from_slice(rest);
                at
            }
            _ => {
                let mut at = b"/".to_vec();
                at.extend_from_slice(path);
                at
            }
        }
    }

    fn put(&mut self, entry: &Entry, contents: &mut dyn Read) -> io::Result<()> {
        let path = entry.path.bytes();
        let section = path.split(|&b| b == b'/').next().unwrap_or_default();
        let section = match section {
            b"container" if self.rescued.is_some() => &b"workspace"[..],
            other => other,
        };
        let at = self.at(&path);
        // The container's files come back as a rescue's do: never group or world
        // writable, without set-id bits.
        let mode = match section == b"workspace" && path.starts_with(b"container") {
            true => entry.mode & 0o755,
            false => entry.mode,
        };
        let kind = match entry.kind {
            Kind::Dir => unpack::Kind::Dir,
            Kind::File => unpack::Kind::File,
            Kind::Symlink => unpack::Kind::Symlink(link(entry)),
            Kind::Link => unpack::Kind::Link(self.at(&link(entry))),
        };
        if let Some(extractor) = std::str::from_utf8(section)
            .ok()
            .and_then(|s| self.folders.get_mut(s))
        {
            return extractor
                .put(at, kind, mode, entry.mtime, contents)
                .map_err(|failure| io::Error::other(failure.reason));
        }
        // `volumes/<n>/…`
        let mut parts = path.splitn(3, |&b| b == b'/');
        let (first, second) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let key = format!(
            "{}/{}",
            String::from_utf8_lossy(first),
            String::from_utf8_lossy(second)
        );
        match self.volumes.get_mut(&key) {
            Some(volume) => {
                volume.put(entry, parts.next().unwrap_or_default(), key.len(), contents)
            }
            None => Err(io::Error::other("an entry of no part the header names")),
        }
    }

    fn finish_volumes(&mut self) -> io::Result<()> {
        for (_, volume) in std::mem::take(&mut self.volumes) {
            volume.finish()?;
        }
        Ok(())
    }
}

fn link(entry: &Entry) -> Vec<u8> {
    entry.link.as_ref().map(|l| l.bytes()).unwrap_or_default()
}

/// One volume's tar stream, as the engine's upload takes it.
struct Volume {
    tar: tar::Builder<BlockingWriter>,
}

impl Volume {
    fn new(writer: BlockingWriter) -> Self {
        Self {
            tar: tar::Builder::new(writer),
        }
    }

    /// The entry `rest` below the volume's folder (the folder itself where empty);
    /// `prefix` is the length of `volumes/<n>`, which a hard link's target loses too.
    fn put(
        &mut self,
        entry: &Entry,
        rest: &[u8],
        prefix: usize,
        contents: &mut dyn Read,
    ) -> io::Result<()> {
        if rest.is_empty() {
            // The volume's own folder: it is the mount point.
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(entry.mtime);
        let name = archive::os_path(rest);
        match entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                self.tar.append_data(&mut header, name, io::empty())
            }
            Kind::File => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(entry.size);
                self.tar.append_data(&mut header, name, contents)
            }
            Kind::Symlink => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                let target = link(entry);
                self.tar
                    .append_link(&mut header, name, archive::os_path(&target))
            }
            Kind::Link => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                let target = link(entry);
                let below = target.get(prefix + 1..).unwrap_or_default();
                self.tar
                    .append_link(&mut header, name, archive::os_path(below))
            }
        }
    }

    fn finish(self) -> io::Result<()> {
        let mut chunks = self.tar.into_inner()?;
        chunks.send()
    }
}
