//! What a container changed in its writable layer, from the cheapest source that
//! answers exactly as the engine would (issue 26):
//!
//! - **direct:** berth walks the overlay upper directory itself ([`overlay`]), which
//!   costs what the container changed, not what the image holds. Root may; so does
//!   `berth reap` from a timer.
//! - **helper:** the same walk, run by the engine in a short-lived container that
//!   mounts the layer's directories read-only ([`helper`]): for every other user of a
//!   local or remote engine.
//! - **engine:** the changes call, which on overlay drivers walks the whole image and
//!   the `-init` layer, for as long as that takes. Used where the direct walk cannot
//!   answer exactly: another storage driver, a user who cannot read the engine's
//!   directories, data-only lower layers, a mark the walker does not follow.
//!
//! [`Reader::read`] says which source answered, and why the engine had to.

pub mod helper;
pub mod list;
pub mod overlay;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::container::{ChangeKind, Storage};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ui::Printer;
pub use list::{raw_paths, ChangeList, PathText, RawPath};
pub use overlay::Stamped;
use overlay::{Dialect, Layers, Stamp, Unreadable};

/// `engine`, `helper` or `direct` picks the source (where it can answer at all): to
/// compare them, or to work around a bug in one.
pub const READER_VAR: &str = "BERTH_LAYER_READER";

/// Which source answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Direct,
    Helper,
    Engine,
}

/// A container's changes, as the engine lists them, and where they came from.
#[derive(Debug, Clone)]
pub struct Changes {
    pub list: ChangeList,
    pub read_by: ReadBy,
    /// The walk's [`Stamp`], where one was asked for and berth walked the layer (the
    /// engine's list has no times).
    pub stamp: Option<Stamped>,
}

/// Which source answered, and why not the direct walk (`--json`: `read_by`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadBy {
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The overlay directories of a container, when berth can walk them: the storage
/// driver is an overlay one, and the engine named them.
pub fn plan(storage: &Storage) -> std::result::Result<Planned, Unreadable> {
    let dialect = match storage.driver.as_str() {
        "overlay2" => Dialect::Kernel,
        "fuse-overlayfs" => Dialect::Fuse,
        "" => return Err(Unreadable("the engine named no storage driver".into())),
        other => {
            return Err(Unreadable(format!(
                "the {other} storage driver is not overlay"
            )))
        }
    };
    let (Some(upper), Some(lower)) = (&storage.upper, &storage.lower) else {
        return Err(Unreadable(
            "the engine named no upper and lower directories (the containerd image store?)".into(),
        ));
    };
    if lower.contains("::") {
        return Err(Unreadable("the image has data-only lower layers".into()));
    }
    Ok(Planned {
        upper: PathBuf::from(upper),
        lowers: lower
            .split(':')
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect(),
        dialect,
    })
}

impl ReadBy {
    /// For a person: who listed the changes, and why not berth's walk.
    pub fn describe(&self) -> String {
        match (self.source, &self.fallback) {
            (Source::Direct, _) => "berth read the container's layer itself".into(),
            (Source::Helper, _) => {
                "berth read the container's layer through a helper container".into()
            }
            (Source::Engine, Some(why)) => format!(
                "the engine's changes call listed them (berth could not read the layer \
                 itself: {why})"
            ),
            (Source::Engine, None) => "the engine's changes call listed them".into(),
        }
    }
}

/// Where [`plan`] found a container's layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub upper: PathBuf,
    /// Top first: the `-init` layer, then the image's.
    pub lowers: Vec<PathBuf>,
    pub dialect: Dialect,
}

impl Planned {
    /// Walks the layer, stamping it ([`Stamp`]) where asked; blocking.
    pub fn walk(
        &self,
        emit: &mut dyn FnMut(&[u8], ChangeKind),
        stamp: Option<&mut Stamp>,
    ) -> std::result::Result<(), Unreadable> {
        let lowers: Vec<&Path> = self.lowers.iter().map(PathBuf::as_path).collect();
        overlay::walk(
            &Layers {
                upper: &self.upper,
                lowers: &lowers,
                dialect: self.dialect,
            },
            emit,
            stamp,
        )
    }
}

/// Reads one container's changes, as often as asked, from the cheapest exact source:
/// berth's own walk as root, else a helper container (started once, at [`Reader::open`],
/// so that its start overlaps the caller's pause), else the engine.
pub struct Reader<'a> {
    engine: &'a Engine,
    id: &'a str,
    printer: Option<&'a Printer>,
    way: Way,
}

enum Way {
    Direct(Planned),
    Helper(Box<helper::Session>),
    /// Why berth's walk cannot answer.
    Engine(String),
}

impl<'a> Reader<'a> {
    /// Picks the source for container `id`, and starts its helper if that is the one.
    /// Notes (a helper image imported, a slow engine) go to `printer`.
    pub async fn open(
        engine: &'a Engine,
        id: &'a str,
        storage: &Storage,
        printer: Option<&'a Printer>,
    ) -> Reader<'a> {
        let chosen = std::env::var(READER_VAR).unwrap_or_default();
        let root = crate::os::is_root();
        let way = match plan(storage) {
            Err(Unreadable(why)) => Way::Engine(why),
            Ok(_) if chosen == "engine" => Way::Engine(format!("{READER_VAR}=engine")),
            Ok(planned) if (root && chosen != "helper") || chosen == "direct" => {
                Way::Direct(planned)
            }
            Ok(planned) => match helper::Session::start(engine, &planned, printer).await {
                Ok(session) => Way::Helper(Box::new(session)),
                Err(Unreadable(why)) => Way::Engine(why),
            },
        };
        Reader {
            engine,
            id,
            printer,
            way,
        }
    }

    /// The container it reads.
    pub fn container(&self) -> &'a str {
        self.id
    }

    /// The container's changes now. With `paused`, the container waits paused for the
    /// answer, and a slow engine is told about. A walk that cannot answer leaves this
    /// read, and the later ones, to the engine.
    pub async fn read(&mut self, paused: bool) -> Result<Changes> {
        self.read_with(paused, false).await
    }

    /// [`Reader::read`], with the walk's [`Stamp`] where berth walks the layer.
    pub async fn read_stamped(&mut self, paused: bool) -> Result<Changes> {
        self.read_with(paused, true).await
    }

    async fn read_with(&mut self, paused: bool, stamped: bool) -> Result<Changes> {
        let walked = match &mut self.way {
            Way::Direct(planned) => direct(planned.clone(), stamped)
                .await?
                .map(|l| (l, Source::Direct)),
            Way::Helper(session) => session.walk(stamped).await.map(|l| (l, Source::Helper)),
            Way::Engine(why) => Err(Unreadable(why.clone())),
        };
        let why = match walked {
            Ok(((list, stamp), source)) => {
                let read_by = ReadBy {
                    source,
                    fallback: None,
                };
                return Ok(Changes {
                    list,
                    read_by,
                    stamp,
                });
            }
            Err(Unreadable(why)) => why,
        };
        self.way = Way::Engine(why.clone());
        let paused = self.printer.filter(|_| paused);
        Ok(Changes {
            list: engine_telling(self.engine, self.id, paused, &why).await?,
            read_by: ReadBy {
                source: Source::Engine,
                fallback: Some(why),
            },
            stamp: None,
        })
    }
}

/// `berth layer-changes CONTAINER`: what it changed, from the source [`Reader`] picks.
pub async fn print_changes(args: &crate::cli::LayerChangesArgs, printer: &Printer) -> Result<()> {
    let engine = Engine::connect().await?;
    let inspected = engine.inspect(&args.container).await?;
    let mut reader =
        Reader::open(&engine, &args.container, &inspected.storage, Some(printer)).await;
    let changes = reader.read(false).await?;
    printer.json(&Printed {
        changes: &changes.list,
        read_by: &changes.read_by,
    });
    Ok(())
}

/// What `berth layer-changes` prints.
#[derive(Serialize)]
struct Printed<'a> {
    changes: &'a ChangeList,
    read_by: &'a ReadBy,
}

/// A walk's changes, and its stamp where asked for.
type Walked = std::result::Result<(ChangeList, Option<Stamped>), Unreadable>;

/// berth's own walk, off the async threads.
async fn direct(planned: Planned, stamped: bool) -> Result<Walked> {
    tokio::task::spawn_blocking(move || {
        let mut list = list::Builder::default();
        let mut stamp = stamped.then(Stamp::default);
        planned.walk(
            &mut |path, kind| list.push_bytes(path, kind),
            stamp.as_mut(),
        )?;
        Ok((list.finish()?, stamp.map(Stamp::finish)))
    })
    .await
    .map_err(|err| Error::failed(format!("the layer walk stopped: {err}")))
}

/// The engine's changes call, which walks the whole image on overlay drivers: while the
/// container waits paused for it, a note after two seconds and every ten after that
/// says so, and the first says `why` berth could not read the layer itself.
async fn engine_telling(
    engine: &Engine,
    id: &str,
    paused: Option<&Printer>,
    why: &str,
) -> Result<ChangeList> {
    let call = async { Ok(engine.changes(id).await?.into_iter().collect()) };
    let Some(printer) = paused else {
        return call.await;
    };
    tokio::pin!(call);
    let started = tokio::time::Instant::now();
    const FIRST: Duration = Duration::from_secs(2);
    const EVERY: Duration = Duration::from_secs(10);
    let mut after = FIRST;
    loop {
        tokio::select! {
            changes = &mut call => return changes,
            () = tokio::time::sleep_until(started + after) => {
                printer.note(&format!(
                    "still waiting for the engine to list the container's changes ({}s); \
                     it stays paused until the engine answers",
                    after.as_secs()
                ));
                if after == FIRST {
                    printer.note(&format!(
                        "  (the engine walks the whole image; berth could not read the \
                         layer itself: {why})"
                    ));
                }
                // 2 s, then 10, 20, 30, ...
                after = if after < EVERY { EVERY } else { after + EVERY };
            }
        }
    }
}
