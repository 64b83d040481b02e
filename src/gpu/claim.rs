//! GPU allocation, carried out: the inventory the host reports, the lock every user's
//! berth shares, and the claim that holds that lock from reading the labels until the
//! container exists and its GPUs have been checked once more.
//!
//! The lock is an exclusive `flock` on one file all users can open
//! ([`DEFAULT_LOCK`], or the policy's `[gpus] lock`). It is never released before the
//! create call has returned: a GPU is held by a label, and a label exists only once its
//! container does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{allocate, apply, check_limit, crossed, holdings, requested, table, Request};
use crate::config::policy::{GpuRequest as Mode, Policy};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::host::HostUser;
use crate::lock::{Lock, Purpose};
use crate::spec::ContainerSpec;
use crate::ui::Printer;

/// Where the lock lives unless the policy names another file: `/run/lock` is a tmpfs
/// every user may write to (mode 1777) on current Linux systems; without it, `/tmp`.
pub const DEFAULT_LOCK: &str = "/run/lock/berth-gpus.lock";
const FALLBACK_LOCK: &str = "/tmp/berth-gpus.lock";
/// Who waits for the GPU lock, and for how long at most.
const LOCK: Purpose = Purpose {
    waiting_for: "finish allocating GPUs",
    give_up_after: Some(Duration::from_secs(60)),
    mode: 0o666,
};

/// The GPUs berth hands out, and who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub ids: Vec<String>,
    pub origin: String,
}

/// The GPUs of `engine`'s host. The policy's `[gpus.contexts.NAME] inventory` for the
/// engine's context where it names one; else, for an engine on this host (a unix
/// socket), [`host_inventory`]. An engine elsewhere with no inventory in the policy is
/// an error: its GPUs would be booked from this host's list.
pub fn inventory(
    policy: Option<&(PathBuf, Policy)>,
    engine: &crate::endpoint::Endpoint,
) -> Result<Option<Inventory>> {
    let context = engine.context();
    let listed = policy.and_then(|(path, policy)| {
        let ids = policy.gpus.contexts.get(context)?.inventory.as_ref()?;
        Some(Inventory {
            ids: super::sorted(ids.iter().map(|id| id.0.trim().to_string())),
            origin: format!("[gpus.contexts.{context}] in the policy {}", path.display()),
        })
    });
    if listed.is_some() {
        return Ok(listed);
    }
    if !engine.is_local() {
        return Err(Error::refused(format!(
            "berth does not know the GPUs of the engine at {engine}"
        ))
        .hint(format!(
            "the admin lists them in the policy: [gpus.contexts.{context}] inventory = [\"0\", \"1\"]"
        )));
    }
    Ok(host_inventory(policy))
}

/// The policy's `[gpus] inventory`, else the GPUs the host reports (`nvidia-smi -L`,
/// else `/proc/driver/nvidia/gpus`). None when neither knows of any GPU: berth then
/// allocates nothing and passes the request to docker as written, as `docker run` would.
pub fn host_inventory(policy: Option<&(PathBuf, Policy)>) -> Option<Inventory> {
    if let Some((path, policy)) = policy {
        if let Some(ids) = &policy.gpus.inventory {
            return Some(Inventory {
                ids: super::sorted(ids.iter().map(|id| id.0.trim().to_string())),
                origin: format!("the policy {}", path.display()),
            });
        }
    }
    let from_smi = std::process::Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| super::parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout)))
        .filter(|ids| !ids.is_empty());
    if let Some(ids) = from_smi {
        return Some(Inventory {
            ids,
            origin: "nvidia-smi -L".into(),
        });
    }
    let proc = Path::new("/proc/driver/nvidia/gpus");
    let ids = super::sorted(
        std::fs::read_dir(proc)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| std::fs::read_to_string(entry.path().join("information")).ok())
            .filter_map(|text| super::parse_proc_information(&text)),
    );
    (!ids.is_empty()).then(|| Inventory {
        ids,
        origin: proc.display().to_string(),
    })
}

/// The lock file: the policy's `[gpus] lock`, else [`DEFAULT_LOCK`] (or `/tmp` on a
/// host without `/run/lock`).
pub fn lock_path(policy: Option<&(PathBuf, Policy)>) -> PathBuf {
    if let Some(path) = policy.and_then(|(_, p)| p.gpus.lock.clone()) {
        return path;
    }
    if Path::new(DEFAULT_LOCK).parent().is_some_and(Path::is_dir) {
        PathBuf::from(DEFAULT_LOCK)
    } else {
        PathBuf::from(FALLBACK_LOCK)
    }
}

/// GPUs decided and written into a create request, with the lock still held.
pub struct Claim {
    _lock: Lock,
    pub ids: Vec<String>,
    inventory: Vec<String>,
}

fn name_of(uid: &str) -> String {
    uid.parse()
        .ok()
        .and_then(crate::host::passwd_name)
        .unwrap_or_else(|| uid.to_string())
}

/// The GPUs Slurm gave the job this process runs in: taken as they are.
static GIVEN: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Makes [`begin`] take `ids` as they are, with no inventory, lock or labels read:
/// Slurm is the allocator and the queue, and gave them to the job.
pub fn given_by_slurm(ids: Vec<String>) {
    GIVEN.get_or_init(|| ids);
}

/// Decides the GPUs of `spec` and writes them in (the `berth.gpus` label, and device
/// requests or variables as the policy says). Holds the lock in the returned claim until
/// [`Claim::confirm`]. None when no GPU is asked for, or no inventory is known.
pub async fn begin(
    engine: &Engine,
    policy: Option<&(PathBuf, Policy)>,
    user: &HostUser,
    spec: &mut ContainerSpec,
    printer: &Printer,
) -> Result<Option<Claim>> {
    let mode = policy.map_or(Mode::default(), |(_, p)| p.gpus.request);
    let Some(request) = spec.host.gpus.as_ref().and_then(Request::from_spec) else {
        if mode == Mode::Env {
            apply(spec, mode, None);
        }
        return Ok(None);
    };
    if let Some(ids) = GIVEN.get() {
        apply(spec, mode, Some(ids));
        return Ok(None);
    }
    let Some(inventory) = inventory(policy, &engine.endpoint)? else {
        return Ok(None);
    };
    let lock = Lock::acquire(&lock_path(policy), &LOCK, printer).await?;
    let ids = decide(engine, policy, user, &inventory, &request).await?;
    apply(spec, mode, Some(&ids));
    Ok(Some(Claim {
        _lock: lock,
        ids,
        inventory: inventory.ids,
    }))
}

/// The GPUs `request` would get now, without the lock: for `berth check`, which must
/// refuse where a deploy would. None when no inventory is known.
pub async fn preview(
    engine: &Engine,
    policy: Option<&(PathBuf, Policy)>,
    user: &HostUser,
    request: &Request,
) -> Result<Option<Vec<String>>> {
    let Some(inventory) = inventory(policy, &engine.endpoint)? else {
        return Ok(None);
    };
    decide(engine, policy, user, &inventory, request)
        .await
        .map(Some)
}

/// Reads every label and decides, within the per-user limit.
async fn decide(
    engine: &Engine,
    policy: Option<&(PathBuf, Policy)>,
    user: &HostUser,
    inventory: &Inventory,
    request: &Request,
) -> Result<Vec<String>> {
    let containers = engine.list(None, None, false).await?;
    let held = holdings(&inventory.ids, &containers);
    let max = policy.and_then(|(_, p)| p.limits.max_gpus_per_user);
    check_limit(
        max,
        &user.uid.to_string(),
        &held,
        requested(&inventory.ids, request),
    )?;
    allocate(&inventory.ids, &held, request, &name_of)
        .map_err(|err| err.details([format!("(GPUs from {})", inventory.origin)]))
}

/// What [`Claim::confirm`] found on the engine.
pub enum Confirmed {
    /// No other container claims the GPUs: they are this one's.
    Kept(Vec<String>),
    /// Another did at the same moment: this container was removed, and the error says
    /// so. Trying again, a moment later, decides anew.
    GaveWay(Error),
}

impl Confirmed {
    /// The GPUs kept, or the error of giving way.
    pub fn kept(self) -> Result<Vec<String>> {
        match self {
            Confirmed::Kept(ids) => Ok(ids),
            Confirmed::GaveWay(err) => Err(err),
        }
    }
}

impl Claim {
    /// After the create: no other container may claim one of ours. Only a berth that
    /// does not share the lock can cause that (another host's, or one with another
    /// `[gpus] lock`): the claim is settled on the engine itself, by its labels. Ours
    /// gives way whenever it sees another (it is removed), so that a GPU is never held
    /// twice. Keeping the one created first would not do: the engine stamps a
    /// container's creation before the list shows it, so the later one may have looked
    /// while the first was not yet there. Of two that see each other, both give way;
    /// a deploy then tries again after a random pause ([`retry_pause`]). Releases the
    /// lock.
    pub async fn confirm(self, engine: &Engine, id: &str) -> Result<Confirmed> {
        let containers = engine.list(None, None, false).await?;
        let held = holdings(&self.inventory, &containers);
        let crossed = crossed(id, &self.ids, &held);
        if crossed.is_empty() {
            return Ok(Confirmed::Kept(self.ids));
        }
        engine.remove(id).await?;
        Ok(Confirmed::GaveWay(
            Error::refused(format!(
                "GPU {} was claimed by another container while this one was being created; \
                 it was removed",
                self.ids.join(", ")
            ))
            .details(table(&crossed, &name_of))
            .hint(
                "another berth uses a different GPU lock (`[gpus] lock` in the policy); try again",
            ),
        ))
    }
}

/// How long a deploy that gave way waits before trying again after its `attempt`-th
/// try (from 1): a random 0.5 to 2.5 s, times the attempt, so that two that gave way to
/// each other try again at moments further apart than a create takes.
pub fn retry_pause(attempt: u32) -> Duration {
    let noise = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    pause(attempt, noise)
}

fn pause(attempt: u32, noise: u32) -> Duration {
    let ms = 500 + u64::from(noise % 2000);
    Duration::from_millis(ms * u64::from(attempt.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_after_giving_way_is_half_a_second_to_two_and_a_half_times_the_attempt() {
        for noise in [0, 1, 1999, 2000, 123_456_789, u32::MAX] {
            for attempt in 1..=3 {
                let pause = pause(attempt, noise).as_millis();
                let attempt = u128::from(attempt);
                assert!((500 * attempt..2500 * attempt).contains(&pause), "{pause}");
            }
        }
        assert_ne!(pause(1, 7), pause(1, 8), "the noise decides");
    }
}
