//! The admin policy: `/etc/berth/policy.toml` (or `BERTH_POLICY`, honoured for root
//! only, so that no user can point berth at a policy of their own).
//!
//! The policy has its own schema. Some of it fixes values the other layers cannot
//! override (`[data]`, `[retire]`, `env`: see [`Policy::fixed_layer`]); the rest are
//! rules checked against the final create request (allowed images, forbidden options,
//! mount roots, `[limits]`), defaults below every other layer (`[defaults]`), the GPU
//! inventory (`[gpus]`), the reaper's timings (`[reap]`) and the event log (`[events]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::file::{
    self, BackupSection, Cpus, DataSection, FileConfig, RetireSection, ScalarText, Size,
    SlurmSection, SnapshotSection,
};
use crate::error::Result;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Image references that may be run, as glob patterns (`*` within a path component,
    /// `**` across them). Empty: any image.
    #[serde(default)]
    pub allowed_images: Vec<String>,
    /// Options nobody may use.
    #[serde(default)]
    pub forbid: Vec<Forbidden>,
    /// Host directories, besides the workspace root and the data root, that may be
    /// mounted. None (the key left out): bind mounts are not restricted; `[]`: only the
    /// workspace root and the data root.
    pub allowed_mount_roots: Option<Vec<PathBuf>>,
    /// Pins the workspace root, so that no user's `BERTH_WORKSPACE_ROOT` can move it:
    /// `~` is the user's home from the password database (not `$HOME`), `{user}` the
    /// login name (`/scratch/{user}/workspace`).
    pub workspace_root: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub defaults: Defaults,
    /// A fixed data root, target and group.
    #[serde(default)]
    pub data: DataSection,
    /// Environment variables every container gets, which nobody can change.
    #[serde(default, deserialize_with = "file::env_table")]
    pub env: BTreeMap<String, ScalarText>,
    #[serde(default)]
    pub retire: RetireSection,
    #[serde(default)]
    pub gpus: Gpus,
    #[serde(default)]
    pub reap: Reap,
    #[serde(default)]
    pub events: Events,
    #[serde(default)]
    pub images: Images,
    #[serde(default)]
    pub backup: PolicyBackup,
    #[serde(default)]
    pub snapshot: PolicySnapshot,
    #[serde(default)]
    pub slurm: PolicySlurm,
}

/// `[slurm]` of the policy: defaults for every project's job, and whether a deploy
/// must go through Slurm.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySlurm {
    /// Deploys without `--slurm` are refused: on a cluster's login node, containers
    /// belong on the nodes Slurm gives out.
    #[serde(default)]
    pub require: bool,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub account: Option<String>,
    pub options: Option<Vec<String>>,
}

/// `[snapshot]` of the policy: defaults for everyone's, and bounds that hold whatever a
/// user's config or a project's file says.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySnapshot {
    pub every: Option<Span>,
    pub keep: Option<usize>,
    pub all: Option<bool>,
    /// The floor: no project is snapshotted more often than this.
    pub min_every: Option<Span>,
    /// The ceiling: every project with a container is snapshotted at least this often,
    /// whether its files ask for snapshots or not.
    pub max_every: Option<Span>,
    /// The most snapshots a project keeps.
    pub max_keep: Option<usize>,
    /// The most all of a user's snapshots may take (what they copied): past it, the
    /// oldest go first, of whichever project.
    pub budget: Option<Size>,
}

impl PolicySnapshot {
    /// `every` and `keep` as asked for, within the bounds; `every` none: no snapshots.
    pub fn bound(&self, every: Option<Duration>, keep: usize) -> (Option<Duration>, usize) {
        let every = match (every, self.max_every) {
            (Some(every), Some(Span(max))) => Some(every.min(max)),
            (None, Some(Span(max))) => Some(max),
            (every, None) => every,
        };
        let every = match (every, self.min_every) {
            (Some(every), Some(Span(min))) => Some(every.max(min)),
            (every, _) => every,
        };
        let keep = self.max_keep.map_or(keep, |max| keep.min(max)).max(1);
        (every, keep)
    }
}

/// `[backup]` of the policy: where archives go when the user config does not say, and
/// the schedule of `berth reap`'s backups, which users cannot change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBackup {
    pub dir: Option<PathBuf>,
    pub every: Option<Span>,
    pub keep: Option<usize>,
}

/// An option the policy may forbid, named as in `forbid = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Forbidden {
    Privileged,
    HostNetwork,
    HostPid,
    HostIpc,
    CapAdd,
    Devices,
    /// Joining another container's namespaces or volumes: `--network`, `--pid`,
    /// `--ipc container:X`, `--volumes-from X`, `--link X`. Without it, only the
    /// caller's own containers may be joined.
    Join,
}

impl Forbidden {
    pub fn name(self) -> &'static str {
        match self {
            Forbidden::Privileged => "privileged",
            Forbidden::HostNetwork => "host-network",
            Forbidden::HostPid => "host-pid",
            Forbidden::HostIpc => "host-ipc",
            Forbidden::CapAdd => "cap-add",
            Forbidden::Devices => "devices",
            Forbidden::Join => "join",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_gpus_per_user: Option<u32>,
    pub max_containers_per_user: Option<u32>,
    pub max_memory: Option<Size>,
    pub max_cpus: Option<Cpus>,
}

/// Values used where no other layer sets one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub shm_size: Option<Size>,
    pub memory: Option<Size>,
    pub cpus: Option<Cpus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpus {
    /// The GPU ids to hand out. None: what the host reports.
    pub inventory: Option<Vec<ScalarText>>,
    #[serde(default)]
    pub request: GpuRequest,
    /// The lock file every user's berth takes while it allocates. None:
    /// [`crate::gpu::claim::DEFAULT_LOCK`].
    pub lock: Option<PathBuf>,
    /// The GPUs of the engine of each docker context, by its name
    /// (`[gpus.contexts.NAME] inventory`): another host's, which this one cannot ask.
    #[serde(default)]
    pub contexts: BTreeMap<String, GpuContext>,
}

/// `[gpus.contexts.NAME]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuContext {
    pub inventory: Option<Vec<ScalarText>>,
}

/// How a container is given its GPUs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpuRequest {
    /// Docker's DeviceRequests (`--gpus`), for the nvidia container toolkit.
    #[default]
    DeviceRequests,
    /// `NVIDIA_VISIBLE_DEVICES` and `CUDA_VISIBLE_DEVICES`, for hosts whose default
    /// runtime is nvidia.
    Env,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reap {
    /// A container whose CPU use since a sample at least this old is negligible is idle.
    /// None: `berth reap` stops nothing.
    pub idle_after: Option<Span>,
    /// A workspace `.keep-alive` younger than this exempts its container.
    #[serde(default = "Reap::default_keep_alive_max")]
    pub keep_alive_max: Span,
    /// A container stopped for longer than this is retired, its work rescued first.
    /// None: stopped containers are kept.
    pub hold_stopped: Option<Span>,
    /// Below this CPU use, in percent of one CPU averaged over the window, a container
    /// is idle.
    #[serde(default = "Reap::default_idle_cpu", deserialize_with = "percent")]
    pub idle_cpu: f64,
    /// Below this utilisation, in percent, on every GPU it holds for all of
    /// `idle_after`, a container that holds GPUs is idle, whatever its CPU.
    #[serde(default = "Reap::default_idle_gpu", deserialize_with = "percent")]
    pub idle_gpu: f64,
    /// A stop is announced this long before it comes (a notice, an event, a line on
    /// the owner's terminals); activity or a `.keep-alive` meanwhile cancels it.
    pub warn_before: Option<Span>,
    /// A container running for longer than this is stopped, busy or not, whatever its
    /// `.keep-alive` (after the warning).
    pub max_runtime: Option<Span>,
    /// Where a reap as root leaves the GPU utilisation it read, for `berth list`.
    /// None: `/run/berth/gpus.json`.
    pub readings: Option<PathBuf>,
}

impl Reap {
    /// 1% of one CPU: a shell, `sleep` or an idle notebook server stays well below it;
    /// anything computing is far above.
    pub const DEFAULT_IDLE_CPU: f64 = 1.0;

    fn default_keep_alive_max() -> Span {
        Span(Duration::from_secs(24 * 3600))
    }

    fn default_idle_cpu() -> f64 {
        Self::DEFAULT_IDLE_CPU
    }

    /// 5%: a notebook that holds GPUs and polls now and then stays below it.
    pub const DEFAULT_IDLE_GPU: f64 = 5.0;

    fn default_idle_gpu() -> f64 {
        Self::DEFAULT_IDLE_GPU
    }
}

/// A percentage: a number from 0 up (`1`, `0.5`); more than 100 means more than one CPU.
fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(de::Error::custom(format!(
            "{value} is not a percentage of one CPU (like 1 or 0.5)"
        )))
    }
}

impl Default for Reap {
    fn default() -> Self {
        Self {
            idle_after: None,
            keep_alive_max: Self::default_keep_alive_max(),
            hold_stopped: None,
            idle_cpu: Self::DEFAULT_IDLE_CPU,
            idle_gpu: Self::DEFAULT_IDLE_GPU,
            warn_before: None,
            max_runtime: None,
            readings: None,
        }
    }
}

/// `berth images --prune`: how many builds each project keeps, and how much each user's
/// images may take.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// The newest builds kept per project (3 when unset); `--keep` may ask for fewer.
    pub keep: Option<usize>,
    /// The most a user's berth images may take, as `docker images` sizes them: prune
    /// removes unused builds past it, oldest first.
    pub budget: Option<Size>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// The event log. None: `<state dir>/events.jsonl`.
    pub path: Option<PathBuf>,
}

/// A duration as people write it: `90s`, `30m`, `24h`, `7d`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ScalarText(text) = ScalarText::deserialize(deserializer)?;
        crate::units::parse_duration(&text)
            .map(Span)
            .map_err(de::Error::custom)
    }
}

impl Policy {
    /// Whether the policy restricts what berth mounts: `allowed_mount_roots` or
    /// `workspace_root` is set.
    pub fn restricts_mounts(&self) -> bool {
        self.allowed_mount_roots.is_some() || self.workspace_root.is_some()
    }

    /// The pinned workspace root for a user called `name` whose home is `home`.
    pub fn pinned_workspace_root(&self, name: &str, home: &Path) -> Option<PathBuf> {
        let raw = self.workspace_root.as_deref()?.replace("{user}", name);
        Some(match raw.strip_prefix('~') {
            Some(rest) => home.join(rest.trim_start_matches('/')),
            None => PathBuf::from(raw),
        })
    }

    /// Reads the policy at `path`; none when there is no file (nothing is forbidden
    /// beyond docker's own rules).
    pub fn read(path: &Path) -> Result<Option<Self>> {
        file::read_as(path)
    }

    /// The values the policy fixes, as the top configuration layer.
    pub fn fixed_layer(&self) -> FileConfig {
        FileConfig {
            env: self.env.clone(),
            data: self.data.clone(),
            retire: self.retire.clone(),
            backup: BackupSection {
                every: self.backup.every,
                keep: self.backup.keep,
                ..BackupSection::default()
            },
            ..FileConfig::default()
        }
    }

    /// The `[defaults]`, as the bottom configuration layer. Where `[limits]` caps memory
    /// or cpus and `[defaults]` says nothing, the cap is the default: a container that
    /// asks for nothing gets the most it may have, not no limit at all.
    pub fn defaults_layer(&self) -> FileConfig {
        FileConfig {
            shm_size: self.defaults.shm_size.clone(),
            memory: self
                .defaults
                .memory
                .clone()
                .or_else(|| self.limits.max_memory.clone()),
            cpus: self
                .defaults
                .cpus
                .clone()
                .or_else(|| self.limits.max_cpus.clone()),
            snapshot: SnapshotSection {
                every: self.snapshot.every,
                keep: self.snapshot.keep,
                all: self.snapshot.all,
            },
            slurm: SlurmSection {
                partition: self.slurm.partition.clone(),
                time: self.slurm.time.clone(),
                account: self.slurm.account.clone(),
                options: self.slurm.options.clone(),
            },
            ..FileConfig::default()
        }
    }

    /// Where events are written: `[events] path`, else `<state dir>/events.jsonl`.
    pub fn event_log(&self, state_dir: &Path) -> PathBuf {
        self.events
            .path
            .clone()
            .unwrap_or_else(|| state_dir.join("events.jsonl"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_schedules_stay_within_the_policys_bounds() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let bounds: PolicySnapshot = file::parse_as(
            "min_every = \"1h\"\nmax_every = \"1d\"\nmax_keep = 3",
            Path::new("/p.toml"),
        )
        .unwrap();
        // Too often is slowed to the floor, too seldom or never hurried to the ceiling.
        assert_eq!(
            bounds.bound(Some(Duration::from_secs(1)), 5),
            (Some(hours(1)), 3)
        );
        assert_eq!(bounds.bound(Some(hours(48)), 2), (Some(hours(24)), 2));
        assert_eq!(bounds.bound(None, 0), (Some(hours(24)), 1));
        assert_eq!(bounds.bound(Some(hours(6)), 3), (Some(hours(6)), 3));
        // No bounds: as asked; no `every`: no snapshots.
        let free = PolicySnapshot::default();
        assert_eq!(free.bound(None, 5), (None, 5));
        assert_eq!(free.bound(Some(hours(2)), 9), (Some(hours(2)), 9));
    }

    #[test]
    fn a_pinned_workspace_root_takes_the_password_databases_home_and_the_user() {
        let pin = |raw: &str| Policy {
            workspace_root: Some(raw.into()),
            ..Default::default()
        };
        let home = Path::new("/home/alice");
        assert_eq!(
            pin("~/workspace").pinned_workspace_root("alice", home),
            Some(PathBuf::from("/home/alice/workspace"))
        );
        assert_eq!(
            pin("/scratch/{user}/ws").pinned_workspace_root("alice", home),
            Some(PathBuf::from("/scratch/alice/ws"))
        );
        assert_eq!(
            pin("~").pinned_workspace_root("alice", home),
            Some(PathBuf::from("/home/alice"))
        );
        assert_eq!(Policy::default().pinned_workspace_root("alice", home), None);
        assert!(!Policy::default().restricts_mounts());
    }

    #[test]
    fn a_whole_policy_parses() {
        let text = r#"
            allowed_images = ["pytorch/*", "nvcr.io/nvidia/**"]
            forbid = ["privileged", "host-network", "host-pid", "host-ipc", "cap-add", "devices", "join"]
            allowed_mount_roots = ["/scratch"]
            workspace_root = "~/workspace"
            env = { TZ = "UTC" }
            [limits]
            max_gpus_per_user = 2
            max_containers_per_user = 3
            max_memory = "64g"
            max_cpus = 16
            [defaults]
            shm_size = "8g"
            memory = "32g"
            cpus = 4
            [data]
            host_path = "/mnt/data"
            [gpus]
            inventory = [0, 1, "2"]
            request = "env"
            [reap]
            idle_after = "2h"
            hold_stopped = "7d"
            [events]
            path = "/var/log/berth/events.jsonl"
        "#;
        let policy: Policy = file::parse_as(text, Path::new("policy.toml")).unwrap();
        assert_eq!(policy.forbid.len(), 7);
        assert!(policy.restricts_mounts());
        assert_eq!(policy.limits.max_memory, Some(Size(64 << 30)));
        assert_eq!(policy.gpus.request, GpuRequest::Env);
        assert_eq!(
            policy.gpus.inventory.clone().unwrap(),
            [
                ScalarText("0".into()),
                ScalarText("1".into()),
                ScalarText("2".into())
            ]
        );
        assert_eq!(
            policy.reap.idle_after,
            Some(Span(Duration::from_secs(7200)))
        );
        assert_eq!(policy.reap.keep_alive_max, Span(Duration::from_secs(86400)));
        assert_eq!(policy.reap.idle_cpu, Reap::DEFAULT_IDLE_CPU);
        assert_eq!(
            policy.fixed_layer().data.host_path.as_deref(),
            Some("/mnt/data")
        );
    }

    #[test]
    fn limits_are_the_defaults_where_defaults_say_nothing() {
        let text = "[limits]\nmax_memory = \"8g\"\nmax_cpus = 4\n[defaults]\nmemory = \"2g\"\n";
        let policy: Policy = file::parse_as(text, Path::new("p.toml")).unwrap();
        let layer = policy.defaults_layer();
        assert_eq!(layer.memory, Some(Size(2 << 30)));
        assert_eq!(layer.cpus, Some(Cpus(4_000_000_000)));
    }

    #[test]
    fn unknown_policy_keys_and_bad_values_name_their_line() {
        let err =
            file::parse_as::<Policy>("forbid = [\"root\"]\n", Path::new("p.toml")).unwrap_err();
        assert!(err.message.starts_with("p.toml:1:"), "{}", err.message);
        let err =
            file::parse_as::<Policy>("\n[reap]\nidle_after = \"soon\"\n", Path::new("p.toml"))
                .unwrap_err();
        assert!(err.message.starts_with("p.toml:3:"), "{}", err.message);
        let err =
            file::parse_as::<Policy>("[limits]\nmax_gpu = 1\n", Path::new("p.toml")).unwrap_err();
        assert!(
            err.message.contains("unknown key `max_gpu`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn idle_cpu_is_a_percentage_of_one_cpu() {
        let reap = |text: &str| file::parse_as::<Policy>(text, Path::new("p.toml")).map(|p| p.reap);
        assert_eq!(reap("[reap]\nidle_cpu = 0.5\n").unwrap().idle_cpu, 0.5);
        assert_eq!(reap("[reap]\nidle_cpu = 2\n").unwrap().idle_cpu, 2.0);
        assert_eq!(reap("").unwrap().idle_cpu, 1.0);
        let err = reap("[reap]\nidle_cpu = -1\n").unwrap_err();
        assert!(err.message.starts_with("p.toml:2:"), "{}", err.message);
    }
}
