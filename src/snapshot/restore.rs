//! `berth snapshot PROJECT --restore TIME [--force]`: a snapshot's files back into the
//! project's container, through the archive endpoint.
//!
//! What the container holds now at the snapshot's paths is read back first (the paths
//! the snapshot was copied from, each in one archive call) and compared, file by file:
//! a path the container lacks is restored; one that holds what the snapshot holds is
//! left alone; one that holds something else is kept as it is and listed, unless
//! `--force`. A running container is paused from the comparison to the end of the
//! upload (recorded, as a snapshot's pause is), so nothing is written in between.
//! Restored files keep the snapshot copy's mode, owner and modification time; a folder
//! is written only where the container has none.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{metas_in, root, Meta};
use crate::archive;
use crate::backup::UPLOAD_CHUNK;
use crate::container::State;
use crate::context::Context;
use crate::engine::BlockingWriter;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::names::shown;
use crate::ui::Printer;

/// What a restore did, as `--json` prints it (paths as the summary shows them).
#[derive(Debug, Default, Serialize)]
struct Restored {
    snapshot: String,
    container: String,
    /// Written: the container lacked them (or `--force` overwrote them).
    restored: Vec<String>,
    /// Of those, the ones `--force` wrote over something else.
    overwritten: Vec<String>,
    /// Files the container holds as the snapshot does: left alone.
    same: u64,
    /// Files the container holds otherwise: kept as they are, without `--force`.
    skipped: Vec<String>,
}

pub async fn restore(
    ctx: &Context,
    time: &str,
    force: bool,
    json: bool,
    printer: &Printer,
) -> Result<()> {
    let project = ctx.project.as_str();
    let folder = root()?.join(project);
    let meta = pick(&metas_in(&folder)?, time).map_err(|err| {
        err.hint(format!(
            "`berth snapshots {project}` lists them, by TIME or by the folder's name"
        ))
    })?;
    let snapshot = folder.join(&meta.name);
    let engine = Engine::connect().await?;
    let _held = Lock::project(&ctx.paths.state_dir, project, printer).await?;
    let mut container = engine.find(project, ctx.user.uid).await?.ok_or_else(|| {
        Error::failed(format!("{project} has no container to restore into"))
            .hint(format!("`berth deploy {project}` first"))
    })?;
    crate::paused::resume_if_abandoned(&engine, &ctx.paths.state_dir, &mut container, printer)
        .await?;
    let reading = {
        let snapshot = snapshot.clone();
        tokio::task::spawn_blocking(move || read_snapshot(&snapshot))
    };
    let local = reading
        .await
        .map_err(|err| Error::failed(format!("the restore stopped: {err}")))?
        .map_err(|err| Error::io("read", &snapshot, err))?;
    let roots = match meta.roots.is_empty() {
        // Described before snapshots said where they were copied from: each path.
        true => local
            .iter()
            .filter(|l| l.kind != Kind::Dir)
            .map(|l| String::from_utf8_lossy(&l.path).into_owned())
            .collect(),
        false => meta.roots.clone(),
    };
    let running = container.state == State::Running;
    let id = container.id.clone();
    let (done, _) = crate::paused::holding(
        &engine,
        &ctx.paths.state_dir,
        &id,
        running,
        ": what was uploaded so far stays in the container",
        put_back(&engine, &id, &roots, local, force),
    )
    .await?;
    let mut restored = done?;
    restored.snapshot = meta.name.clone();
    restored.container = container.name.clone();
    tell(&restored, printer);
    if json {
        printer.json(&restored);
    }
    Ok(())
}

/// The snapshot `time` names: its `taken` time or its folder's name, or the start of
/// one folder's name.
fn pick(metas: &[Meta], time: &str) -> Result<Meta> {
    if let Some(meta) = metas.iter().find(|m| m.taken == time || m.name == time) {
        return Ok(meta.clone());
    }
    let started: Vec<&Meta> = metas.iter().filter(|m| m.name.starts_with(time)).collect();
    match started.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::failed(format!("no snapshot at {time}"))),
        many => Err(Error::failed(format!(
            "{time} names {} snapshots: {}",
            many.len(),
            many.iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn tell(restored: &Restored, printer: &Printer) {
    printer.note(&format!(
        "restored {} path(s) of snapshot {} into {}; {} file(s) there already held what it holds",
        restored.restored.len(),
        restored.snapshot,
        restored.container,
        restored.same
    ));
    for path in &restored.overwritten {
        printer.warn(&format!("overwrote {path} (--force)"));
    }
    for path in &restored.skipped {
        printer.warn(&format!(
            "kept {path}: the container's differs from the snapshot's (--force overwrites it)"
        ));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry of the snapshot, at its container path.
#[derive(Debug)]
struct Local {
    /// The container path, from `/`.
    path: Vec<u8>,
    host: PathBuf,
    kind: Kind,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    link: Vec<u8>,
}

/// The snapshot's entries, parents first, never following a link. What is neither a
/// file, a folder nor a link (none is copied into a snapshot) is left out.
fn read_snapshot(dir: &Path) -> io::Result<Vec<Local>> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), Vec::new())];
    while let Some((host, path)) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&host)?.collect::<io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let meta = entry.metadata()?;
            let mut at = path.clone();
            at.push(b'/');
            at.extend_from_slice(entry.file_name().as_bytes());
            let file_type = meta.file_type();
            let kind = if file_type.is_dir() {
                Kind::Dir
            } else if file_type.is_file() {
                Kind::File
            } else if file_type.is_symlink() {
                Kind::Symlink
            } else {
                continue;
            };
            let link = match kind {
                Kind::Symlink => std::fs::read_link(entry.path())?
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
                _ => Vec::new(),
            };
            found.push(Local {
                path: at.clone(),
                host: entry.path(),
                kind,
                size: meta.len(),
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: u64::try_from(meta.mtime()).unwrap_or(0),
                link,
            });
            if kind == Kind::Dir {
                pending.push((entry.path(), at));
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// What the container holds now at one of the snapshot's paths.
#[derive(Debug, PartialEq, Eq)]
enum Now {
    /// A file; its contents' sha256 where its size is the snapshot copy's.
    File(u64, Option<String>),
    Dir,
    Symlink(Vec<u8>),
    Other,
}

/// What the snapshot holds at a path, as far as the comparison goes: kind and size.
type Wanted = HashMap<Vec<u8>, (Kind, u64)>;

/// Reads the archive of container path `root` and says what it holds at each path of
/// `wanted`; the contents of a file are read only when its size is the wanted one's.
fn read_container(
    archive: impl Read,
    root: &str,
    wanted: &Wanted,
    now: &mut HashMap<Vec<u8>, Now>,
) -> io::Result<()> {
    // The archive names entries from the root's last component.
    let parent = match root.trim_end_matches('/').rfind('/') {
        Some(at) => &root.as_bytes()[..at],
        None => b"",
    };
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path_bytes().into_owned();
        let mut path = parent.to_vec();
        path.push(b'/');
        path.extend_from_slice(name.strip_suffix(b"/").unwrap_or(&name));
        let Some(&(kind, wanted_size)) = wanted.get(&path) else {
            continue;
        };
        let header = entry.header();
        let found = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = header.size()?;
                let sum = match kind == Kind::File && size == wanted_size {
                    true => Some(sha256(&mut entry)?),
                    false => None,
                };
                Now::File(size, sum)
            }
            // A second name of a file already passed: what it holds is that file's.
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let mut first = parent.to_vec();
                first.push(b'/');
                first.extend_from_slice(&target);
                match now.get(&first) {
                    Some(Now::File(size, sum)) => Now::File(*size, sum.clone()),
                    _ => Now::Other,
                }
            }
            tar::EntryType::Directory => Now::Dir,
            tar::EntryType::Symlink => {
                Now::Symlink(entry.link_name_bytes().unwrap_or_default().into_owned())
            }
            _ => Now::Other,
        };
        now.insert(path, found);
    }
    Ok(())
}

/// The sha256 of what `reader` holds, in hex.
fn sha256(reader: &mut impl Read) -> io::Result<String> {
    let mut hashing = archive::Hashing::new(reader);
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(hashing.hex())
}

/// What to do with one entry of the snapshot.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The container lacks it: restore it.
    Absent,
    /// The container holds what the snapshot holds.
    Same,
    /// The container holds something else there.
    Differs,
}

fn verdict(local: &Local, now: Option<&Now>) -> io::Result<Verdict> {
    Ok(match (local.kind, now) {
        (_, None) => Verdict::Absent,
        (Kind::Dir, Some(Now::Dir)) => Verdict::Same,
        (Kind::Symlink, Some(Now::Symlink(link))) if *link == local.link => Verdict::Same,
        (Kind::File, Some(Now::File(size, Some(sum)))) if *size == local.size => {
            match sha256(&mut std::fs::File::open(&local.host)?)? == *sum {
                true => Verdict::Same,
                false => Verdict::Differs,
            }
        }
        _ => Verdict::Differs,
    })
}

/// Compares, then uploads what is to be restored, in one archive.
async fn put_back(
    engine: &Engine,
    id: &str,
    roots: &[String],
    local: Vec<Local>,
    force: bool,
) -> Result<Restored> {
    let wanted: std::sync::Arc<Wanted> = std::sync::Arc::new(
        local
            .iter()
            .map(|l| (l.path.clone(), (l.kind, l.size)))
            .collect(),
    );
    let mut now = HashMap::new();
    for root in roots {
        if engine.stat(id, root).await?.is_none() {
            continue;
        }
        let reader = engine.download_reader(id, root);
        let (wanted, at) = (wanted.clone(), root.clone());
        let read = tokio::task::spawn_blocking(move || {
            read_container(reader, &at, &wanted, &mut now).map(|()| now)
        })
        .await
        .map_err(|err| Error::failed(format!("the restore stopped: {err}")))?;
        now = read.map_err(|err| {
            Error::failed(format!(
                "cannot read {root} in the container: {}",
                crate::error::io_reason(&err)
            ))
        })?;
    }
    let (writer, body) = BlockingWriter::new(UPLOAD_CHUNK, "the snapshot's files");
    let writing = tokio::task::spawn_blocking(move || write(local, &now, force, writer));
    let (written, uploaded) = tokio::join!(writing, engine.upload_stream(id, "/", body));
    let restored = written
        .map_err(|err| Error::failed(format!("the restore stopped: {err}")))?
        .map_err(|err| {
            Error::failed(format!(
                "cannot read the snapshot: {}",
                crate::error::io_reason(&err)
            ))
        })?;
    uploaded?;
    Ok(restored)
}

/// Writes the archive of what is to be restored into `writer`; says what it did.
fn write(
    local: Vec<Local>,
    now: &HashMap<Vec<u8>, Now>,
    force: bool,
    writer: BlockingWriter,
) -> io::Result<Restored> {
    let mut restored = Restored::default();
    let mut out = tar::Builder::new(writer);
    for l in &local {
        let verdict = verdict(l, now.get(&l.path))?;
        let shown_path = shown(&l.path);
        match (verdict, l.kind) {
            (Verdict::Same, Kind::Dir) => continue,
            (Verdict::Same, _) => {
                restored.same += 1;
                continue;
            }
            // A folder the container has otherwise (a file there) is no folder to write.
            (Verdict::Differs, Kind::Dir) if !force => continue,
            (Verdict::Differs, _) if !force => {
                restored.skipped.push(shown_path);
                continue;
            }
            (Verdict::Differs, _) => restored.overwritten.push(shown_path.clone()),
            (Verdict::Absent, _) => {}
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(l.mode);
        header.set_uid(u64::from(l.uid));
        header.set_gid(u64::from(l.gid));
        header.set_mtime(l.mtime);
        let name = archive::os_path(&l.path[1..]);
        match l.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                out.append_data(&mut header, name, io::empty())?;
            }
            Kind::File => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(l.size);
                let file = std::fs::File::open(&l.host)?;
                // A copy that grew or shrank since it was listed is refused mid-way.
                out.append_data(&mut header, name, file.take(l.size))?;
                restored.restored.push(shown_path);
            }
            Kind::Symlink => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                out.append_link(&mut header, name, archive::os_path(&l.link))?;
                restored.restored.push(shown_path);
            }
        }
    }
    out.into_inner()?.send()?;
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str, kind: Kind, host: &Path) -> Local {
        Local {
            path: path.as_bytes().to_vec(),
            host: host.to_path_buf(),
            kind,
            size: std::fs::symlink_metadata(host).map_or(0, |m| m.len()),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            link: Vec::new(),
        }
    }

    #[test]
    fn only_the_same_contents_are_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "abc").unwrap();
        let l = local("/opt/a", Kind::File, &file);
        let sum = sha256(&mut &b"abc"[..]).unwrap();
        let other = sha256(&mut &b"abd"[..]).unwrap();
        assert_eq!(verdict(&l, None).unwrap(), Verdict::Absent);
        assert_eq!(
            verdict(&l, Some(&Now::File(3, Some(sum)))).unwrap(),
            Verdict::Same
        );
        assert_eq!(
            verdict(&l, Some(&Now::File(3, Some(other)))).unwrap(),
            Verdict::Differs
        );
        assert_eq!(
            verdict(&l, Some(&Now::File(4, None))).unwrap(),
            Verdict::Differs
        );
        assert_eq!(verdict(&l, Some(&Now::Dir)).unwrap(), Verdict::Differs);
        let d = local("/opt", Kind::Dir, dir.path());
        assert_eq!(verdict(&d, Some(&Now::Dir)).unwrap(), Verdict::Same);
    }

    #[test]
    fn a_container_archive_is_read_at_the_snapshots_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w");
        std::fs::write(&file, "one").unwrap();
        let wanted_file = local("/opt/r/w", Kind::File, &file);
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, body: &[u8], kind: tar::EntryType| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, name, body).unwrap();
        };
        add("r/", b"", tar::EntryType::Directory);
        add("r/w", b"one", tar::EntryType::Regular);
        add("r/other", b"two", tar::EntryType::Regular);
        let bytes = tar.into_inner().unwrap();
        let wanted = Wanted::from([(wanted_file.path.clone(), (Kind::File, 3))]);
        let mut now = HashMap::new();
        read_container(&bytes[..], "/opt/r", &wanted, &mut now).unwrap();
        assert_eq!(now.len(), 1, "{now:?}");
        let found = now.get(&b"/opt/r/w"[..]);
        assert_eq!(verdict(&wanted_file, found).unwrap(), Verdict::Same);
    }
}
