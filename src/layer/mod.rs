//! What a container changed in its writable layer, from the cheapest source that
//! answers exactly as the engine would (issue 26):
//!
//! - **direct:** berth walks the overlay upper directory itself ([`overlay`]), which
//!   costs what the container changed, not what the image holds. Root may; so does
//!   `berth reap` from a timer.
//! - **engine:** the changes call, which on overlay drivers walks the whole image and
//!   the `-init` layer, for as long as that takes. Used where the direct walk cannot
//!   answer exactly: another storage driver, a user who cannot read the engine's
//!   directories, data-only lower layers, a mark the walker does not follow.
//!
//! [`read`] says which source answered, and why the engine had to.

pub mod overlay;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::engine::{ChangeKind, Engine, Storage};
use crate::error::{Error, Result};
use crate::names::lossy;
use crate::ui::Printer;
use overlay::{Dialect, Layers, Unreadable};

/// Which source answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Direct,
    Engine,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Direct => "direct",
            Source::Engine => "engine",
        }
    }
}

/// A container's changes, as the engine lists them (paths as the engine's JSON writes
/// them: bytes that are not UTF-8 become U+FFFD), and where they came from.
#[derive(Debug, Clone)]
pub struct Changes {
    pub list: Vec<(String, ChangeKind)>,
    pub read_by: ReadBy,
}

/// Which source answered, and why not the direct walk (`--json`: `read_by`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadBy {
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// The overlay directories of a container, when berth can walk them: the storage
/// driver is an overlay one, the engine named them, and the caller may read them.
pub fn plan(storage: &Storage, root: bool) -> std::result::Result<Planned, Unreadable> {
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
    if !root {
        return Err(Unreadable(
            "only root may read the engine's layer directories".into(),
        ));
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

/// Where [`plan`] found a container's layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub upper: PathBuf,
    /// Top first: the `-init` layer, then the image's.
    pub lowers: Vec<PathBuf>,
    pub dialect: Dialect,
}

impl Planned {
    /// Walks the layer; blocking.
    pub fn walk(
        &self,
        emit: &mut dyn FnMut(&[u8], ChangeKind),
    ) -> std::result::Result<(), Unreadable> {
        let lowers: Vec<&Path> = self.lowers.iter().map(PathBuf::as_path).collect();
        overlay::walk(
            &Layers {
                upper: &self.upper,
                lowers: &lowers,
                dialect: self.dialect,
            },
            emit,
        )
    }
}

/// `engine` makes every read ask the engine: to compare, or to work around a bug in
/// berth's walk.
pub const READER_VAR: &str = "BERTH_LAYER_READER";

/// Container `id`'s changes from the cheapest exact source. With `paused`, the
/// container waits paused for the answer, and a slow engine is told about.
pub async fn read(
    engine: &Engine,
    id: &str,
    storage: &Storage,
    paused: Option<&Printer>,
) -> Result<Changes> {
    let root = rustix::process::geteuid().is_root();
    let chosen = match std::env::var(READER_VAR).as_deref() {
        Ok("engine") => Err(Unreadable(format!("{READER_VAR}=engine"))),
        _ => plan(storage, root),
    };
    let why = match chosen {
        Ok(planned) => {
            let walked = tokio::task::spawn_blocking(move || {
                let mut list = Vec::new();
                planned
                    .walk(&mut |path, kind| list.push((lossy(path), kind)))
                    .map(|()| list)
            })
            .await
            .map_err(|err| Error::failed(format!("the layer walk stopped: {err}")))?;
            match walked {
                Ok(list) => {
                    return Ok(Changes {
                        list,
                        read_by: ReadBy {
                            source: Source::Direct,
                            fallback: None,
                        },
                    })
                }
                Err(unreadable) => unreadable,
            }
        }
        Err(unreadable) => unreadable,
    };
    Ok(Changes {
        list: engine_telling(engine, id, paused, &why.0).await?,
        read_by: ReadBy {
            source: Source::Engine,
            fallback: Some(why.0),
        },
    })
}

/// The engine's changes call, which walks the whole image on overlay drivers: while the
/// container waits paused for it, a note after two seconds and every ten after that
/// says so, and the first says `why` berth could not read the layer itself.
async fn engine_telling(
    engine: &Engine,
    id: &str,
    paused: Option<&Printer>,
    why: &str,
) -> Result<Vec<(String, ChangeKind)>> {
    let call = engine.changes(id);
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
