//! `berth move PROJECT --to-context NAME`: the project's state that lives in the engine
//! (its persisted volumes, and the image it was deployed with) streamed from this
//! engine to the engine of another docker context, read back there and compared, file
//! by file (sha256, mode, owner), and only then is the container retired here (with
//! retire's unsaved-work check) and the volumes here removed. The workspace and the
//! home are the host's folders, which berth mounts from where it runs: they stay.
//!
//! The container is stopped while its volumes are copied, so nothing is written to
//! them meanwhile. Until the retire, the project is whole here: a failure, or Ctrl-C,
//! removes what was made there and starts the container again.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::time::Duration;

use serde::Serialize;

use super::UPLOAD_CHUNK;
use crate::archive::{below_first, Hashing};
use crate::cli::MoveArgs;
use crate::config::file::FileConfig;
use crate::container::State;
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

/// The [`label::HELPER`] value of the helpers that read and write the volumes.
const PURPOSE: &str = "move";
/// How long the container has to stop before it is killed, as `docker stop`.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One volume, as it was moved.
#[derive(Debug, Serialize)]
struct Moved {
    path: String,
    volume: String,
    entries: usize,
    bytes: u64,
}

#[derive(Serialize)]
struct Outcome<'a> {
    project: &'a str,
    context: &'a str,
    image: Option<String>,
    volumes: Vec<Moved>,
    retired: Option<String>,
}

pub async fn move_project(args: &MoveArgs, printer: &Printer) -> Result<()> {
    let ctx = Context::load(&args.project, &FileConfig::default())?;
    ctx.warn(printer);
    let project = ctx.project.as_str();
    let here = Engine::connect().await?;
    let there = Engine::connect_to_context(&args.to_context).await?;
    if here.endpoint.host == there.endpoint.host {
        return Err(Error::usage(format!(
            "context {} is the engine {project} is on already ({})",
            args.to_context, here.endpoint
        )));
    }
    let _held = Lock::project(&ctx.paths.state_dir, project, printer).await?;
    if let Some(container) = there.find(project, ctx.user.uid).await? {
        return Err(Error::refused(format!(
            "{} exists on context {}: not moving {project} there",
            container.name, args.to_context
        ))
        .hint("retire it there first"));
    }
    let mut container = here.find(project, ctx.user.uid).await?;
    if let Some(found) = &mut container {
        crate::paused::resume_if_abandoned(&here, &ctx.paths.state_dir, found, printer).await?;
    }
    let volumes = super::volumes(&here, &ctx).await?;
    for volume in &volumes {
        if there.volume_labels(&volume.volume).await?.is_some() {
            return Err(Error::refused(format!(
                "volume {} exists on context {}: not moving {project} over it",
                volume.volume, args.to_context
            ))
            .hint(format!(
                "`DOCKER_CONTEXT={} berth forget {project} --volumes` removes it there",
                args.to_context
            )));
        }
    }
    // The image the next deploy there starts: the container's, else the remembered one.
    let image = container
        .as_ref()
        .map(|c| c.image.clone())
        .or_else(|| crate::remember::image(&ctx.paths.state_dir, project).map(|i| i.image));
    let running = container.as_ref().filter(|c| c.state == State::Running);
    if let Some(c) = running {
        printer.note(&format!("stopping {} while its volumes are copied", c.name));
        here.stop(&c.id, STOP_TIMEOUT).await?;
    }
    let mut signals = Signals::install()?;
    let stop = Stop::default();
    let copying = copy(
        &here,
        &there,
        &ctx,
        image.as_deref(),
        &volumes,
        &stop,
        printer,
    );
    let copied = signals::finish_on_signal(&mut signals, &stop, copying).await;
    let moved = match copied {
        Ok(moved) => moved,
        Err(err) => {
            for volume in &volumes {
                there.remove_volume(&volume.volume).await.ok();
            }
            if let Some(c) = running {
                here.start(&c.id).await.ok();
            }
            return Err(err.details([format!(
                "nothing was moved: {project} is whole here, as it was"
            )]));
        }
    };
    drop(signals);
    let mut retired = None;
    if let Some(container) = &container {
        let target = crate::retire::Target::new(&ctx, container);
        let outcome = crate::retire::retire_container(
            &here,
            container,
            &target,
            &Default::default(),
            printer,
        )
        .await?;
        if let Some(refusal) = outcome.refusal() {
            // Kept here, as it was: running again, if it ran.
            if running.is_some() {
                here.start(&container.id).await.ok();
            }
            return Err(Error::refused(format!(
                "{project}'s volumes are on context {} now, verified, but {} was kept here: {}",
                args.to_context, container.name, refusal.message
            ))
            .details(refusal.details)
            .hint(format!(
                "`berth retire {project}` with --rescue, --commit or --yes, then `berth forget {project} --volumes` here"
            )));
        }
        retired = Some(container.name.clone());
    }
    for volume in &volumes {
        here.remove_volume(&volume.volume).await?;
    }
    let bytes: u64 = moved.iter().map(|m| m.bytes).sum();
    printer.note(&format!(
        "moved {project} to context {}: {} volume(s), {}{}; the workspace and home stay in \
         their folders; `DOCKER_CONTEXT={} container-deploy {project}` starts it there",
        args.to_context,
        moved.len(),
        human_size(bytes),
        image
            .as_deref()
            .map(|i| format!(", image {i}"))
            .unwrap_or_default(),
        args.to_context
    ));
    if args.json {
        printer.json(&Outcome {
            project,
            context: &args.to_context,
            image,
            volumes: moved,
            retired,
        });
    }
    Ok(())
}

/// The image (where the other engine lacks it) and each volume, each volume read back
/// there and compared.
async fn copy(
    here: &Engine,
    there: &Engine,
    ctx: &Context,
    image: Option<&str>,
    volumes: &[super::Volume],
    stop: &Stop,
    printer: &Printer,
) -> Result<Vec<Moved>> {
    if let Some(image) = image {
        let id = here.image_id(image).await?;
        if id.is_some() && there.image_id(image).await? != id {
            printer.note(&format!("copying image {image}"));
            here.copy_image(image, there).await?;
        }
    }
    if volumes.is_empty() {
        return Ok(Vec::new());
    }
    for volume in volumes {
        stop.check()?;
        let labels = BTreeMap::from([
            (label::PROJECT.to_string(), ctx.project.to_string()),
            (label::USER.to_string(), ctx.user.uid.to_string()),
            (label::PERSIST.to_string(), volume.path.clone()),
        ]);
        there.create_volume(&volume.volume, &labels).await?;
    }
    let names: Vec<&str> = volumes.iter().map(|v| v.volume.as_str()).collect();
    stop.check()?;
    let from = content::volume_helper(here, PURPOSE, &names, true, None).await?;
    let to = match content::volume_helper(there, PURPOSE, &names, false, None).await {
        Ok(to) => to,
        Err(err) => {
            here.remove_helper(&from).await.ok();
            return Err(err);
        }
    };
    let copied = async {
        let mut moved = Vec::new();
        for (at, volume) in volumes.iter().enumerate() {
            let path = content::volume_path(at);
            let reader = stop.reader(here.download_reader(&from, &path));
            let (writer, body) = BlockingWriter::new(UPLOAD_CHUNK, "the volume");
            let sending = tokio::task::spawn_blocking(move || relay(reader, writer));
            let (sent, uploaded) = tokio::join!(sending, there.upload_stream(&to, &path, body));
            let sent = sent
                .map_err(|err| Error::failed(format!("the move stopped: {err}")))?
                .map_err(|err| cannot(volume, "read", &err))?;
            uploaded?;
            // Read back there, and compared.
            let reader = there.download_reader(&to, &path);
            let found = tokio::task::spawn_blocking(move || listing(reader, None))
                .await
                .map_err(|err| Error::failed(format!("the move stopped: {err}")))?
                .map_err(|err| cannot(volume, "read back", &err))?;
            if found != sent.entries {
                let differs = sent
                    .entries
                    .iter()
                    .find(|(name, what)| found.get(*name) != Some(what))
                    .or_else(|| {
                        found
                            .iter()
                            .find(|(name, _)| !sent.entries.contains_key(*name))
                    })
                    .map(|(name, _)| crate::names::shown(name))
                    .unwrap_or_default();
                return Err(Error::failed(format!(
                    "volume {} reads back different on the other engine, at {differs}",
                    volume.volume
                )));
            }
            moved.push(Moved {
                path: volume.path.clone(),
                volume: volume.volume.clone(),
                entries: sent.entries.len(),
                bytes: sent.bytes,
            });
        }
        Ok::<_, Error>(moved)
    }
    .await;
    here.remove_helper(&from).await.ok();
    there.remove_helper(&to).await.ok();
    copied
}

fn cannot(volume: &super::Volume, what: &str, err: &io::Error) -> Error {
    Error::failed(format!(
        "cannot {what} volume {} ({}): {}",
        volume.volume,
        volume.path,
        crate::error::io_reason(err)
    ))
}

/// What a volume holds, entry by entry: kind, mode, owner and, for a file, sha256.
type Listing = BTreeMap<Vec<u8>, String>;

/// What [`relay`] sent.
struct Sent {
    entries: Listing,
    bytes: u64,
}

/// Re-emits the engine's archive of a volume folder (named after its last component)
/// as the entries below it, into `writer`, listing each as it passes.
fn relay(archive: impl Read, writer: BlockingWriter) -> io::Result<Sent> {
    let mut out = tar::Builder::new(writer);
    let entries = listing(archive, Some(&mut out))?;
    let mut writer = out.into_inner()?;
    writer.send()?;
    let bytes = writer.sent;
    Ok(Sent { entries, bytes })
}

/// Lists an archive of a volume folder, and copies each entry below the folder into
/// `out` where given.
fn listing(
    archive: impl Read,
    mut out: Option<&mut tar::Builder<BlockingWriter>>,
) -> io::Result<Listing> {
    let mut listed = Listing::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path_bytes().into_owned();
        let below = below_first(&name).to_vec();
        if below.is_empty() {
            continue;
        }
        let header = entry.header().clone();
        let kind = header.entry_type();
        let owner = format!(
            "{:o} {}:{}",
            header.mode().unwrap_or(0) & 0o7777,
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0)
        );
        let link = || {
            entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default()
        };
        let what = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Hashing::new(&mut entry);
                if let Some(out) = out.as_deref_mut() {
                    let mut header = header.clone();
                    out.append_data(&mut header, crate::archive::os_path(&below), &mut data)?;
                } else {
                    io::copy(&mut data, &mut io::sink())?;
                }
                format!("file {owner} {}", data.hex())
            }
            tar::EntryType::Link => {
                let target = below_first(&link()).to_vec();
                if let Some(out) = out.as_deref_mut() {
                    let mut header = header.clone();
                    out.append_link(
                        &mut header,
                        crate::archive::os_path(&below),
                        crate::archive::os_path(&target),
                    )?;
                }
                format!("link {}", crate::names::shown(&target))
            }
            _ => {
                if let Some(out) = out.as_deref_mut() {
                    let mut header = header.clone();
                    if kind == tar::EntryType::Symlink {
                        out.append_link(
                            &mut header,
                            crate::archive::os_path(&below),
                            crate::archive::os_path(&link()),
                        )?;
                    } else {
                        out.append_data(&mut header, crate::archive::os_path(&below), io::empty())?;
                    }
                }
                match kind {
                    tar::EntryType::Symlink => {
                        format!("symlink {owner} {}", crate::names::shown(&link()))
                    }
                    tar::EntryType::Directory => format!("dir {owner}"),
                    other => format!("{other:?} {owner}"),
                }
            }
        };
        listed.insert(below, what);
    }
    Ok(listed)
}
