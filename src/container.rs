//! The containers berth acts on, as data: their state, what `list` and inspect report
//! of them, where their layer lives and what changed in it. A leaf under the engine's
//! client ([`crate::engine`] fills these in from the engine's answers), so that the
//! guards, the readers and the commands can take a container without the engine.

use serde::Serialize;

use crate::label::Written;

/// A container's state, as berth acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Running,
    Paused,
    /// Created, exited or dead: not running, can be started or removed.
    Stopped,
    /// Restarting or being removed: wait, do not act.
    Busy,
}

/// A berth container as `list` and `find` report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub project: String,
    pub user: String,
    pub state: State,
    /// Created and never started: what an interrupted deploy leaves.
    #[serde(skip)]
    pub never_started: bool,
    pub status: String,
    pub image: String,
    pub workspace: String,
    pub data: String,
    pub data_group: String,
    /// Bytes in the writable layer, where the engine was asked for sizes.
    pub size_rw: Option<i64>,
    /// Made by `berth run`/`create`, not by deploy.
    pub run: bool,
    /// The GPUs it holds (its `berth.gpus` label).
    pub gpus: Vec<String>,
}

/// What retire and reap need to know of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub state: State,
    pub timeline: Timeline,
    pub image: String,
    /// Where something is mounted (docker's init at `/sbin/docker-init` among them):
    /// changes there are not work. As the engine was asked for them: a path through a
    /// symlink of the image's (`/sbin` → `usr/sbin`) lands elsewhere in the layer.
    pub own_paths: Vec<String>,
    /// What berth wrote into `/etc/passwd` and `/etc/group`, where it did.
    pub identity: Option<Written>,
    pub exit_code: i64,
    /// Anonymous volumes: removing the container keeps them, but nothing points to them.
    pub anonymous_volumes: Vec<Volume>,
    /// Where its writable layer lives on the engine's host.
    pub storage: Storage,
}

/// A container's storage driver and, for the overlay drivers, its directories as
/// inspect names them (`GraphDriver`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Storage {
    pub driver: String,
    /// `UpperDir`: what the container wrote.
    pub upper: Option<String>,
    /// `LowerDir`: `:`-separated, top first (the `-init` layer, then the image's).
    pub lower: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub target: String,
}

/// When a container started and stopped, as the engine writes times (RFC 3339), for
/// `berth reap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub created: String,
    /// Empty, or the engine's year-1 time, when it never started.
    pub started_at: String,
    /// Likewise when it never stopped.
    pub finished_at: String,
    /// Started with `--rm`.
    pub auto_remove: bool,
}

/// What the archive endpoint says about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub size: u64,
    pub is_dir: bool,
    /// Where a symlink leads, resolved through the container's own links from its
    /// root (the engine's `linkTarget`): `/sbin` → `/usr/sbin`. `None` for the rest.
    pub link_target: Option<String>,
}

/// One line of the engine's changes call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}
