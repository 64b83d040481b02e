//! berth's record of the pauses it makes, so that a retire killed while it held a
//! container paused (SIGKILL, an OOM kill, a lost terminal) never leaves a frozen job:
//! the next berth command that touches the project resumes it, and a pause that is
//! not berth's (someone's `docker pause`) is left alone.
//!
//! The record is `<state dir>/paused/<container id>`, holding the pausing process's
//! pid and its start time (from `/proc/<pid>/stat`), so that a reused pid is not taken
//! for the same process. Root (`berth reap` from a timer) records in [`ROOT_RECORDS`]
//! instead, which only root can write and everyone reads: so the owner's next command
//! finds a pause that a killed reaper left, and no user can forge one.

use std::path::{Path, PathBuf};

use crate::engine::Engine;

use crate::container::{ContainerInfo, State};
use crate::error::{Error, Result};
use crate::files::write_atomically;
use crate::ui::Printer;

/// Where root's pauses are recorded.
pub const ROOT_RECORDS: &str = "/run/berth";

/// Where this process records its pauses: root's go where every user looks.
fn own_dir(state_dir: &Path) -> PathBuf {
    if crate::os::is_root() {
        PathBuf::from(ROOT_RECORDS)
    } else {
        state_dir.to_path_buf()
    }
}

fn record_path(state_dir: &Path, id: &str) -> Option<PathBuf> {
    let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| state_dir.join("paused").join(id))
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, in clock ticks
/// since boot); `None` when there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The record of one pause this process makes: written before the pause, and removed
/// by [`clear`] once the container is unpaused. Nothing removes it on its own: a
/// process killed outright, or a command given up half-way (its future dropped while
/// the engine stopped answering), leaves it for the next command to find.
pub struct Record {
    state_dir: PathBuf,
    id: String,
}

impl Record {
    /// Records that this process is about to pause container `id`. A record that
    /// cannot be written costs only the recovery, never the retire.
    pub fn make(state_dir: &Path, id: &str) -> Self {
        let state_dir = own_dir(state_dir);
        record(&state_dir, id).ok();
        Self {
            state_dir,
            id: id.to_string(),
        }
    }
}

/// Runs `work` with container `id` paused where `running` (recorded first, so that a
/// berth killed meanwhile leaves no frozen job), and unpaused after, whatever came of
/// it; with how long it was held, in milliseconds. A signal meanwhile ends the work
/// (`interrupted`, saying `left`) and still unpauses. The error is the pause's or the
/// unpause's; the work's comes back as it is.
pub async fn holding<T>(
    engine: &Engine,
    state_dir: &Path,
    id: &str,
    running: bool,
    left: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<(Result<T>, Option<u64>)> {
    let record = running.then(|| Record::make(state_dir, id));
    if running {
        engine.pause(id).await?;
    }
    let paused_at = std::time::Instant::now();
    let mut signals = crate::signals::Signals::install()?;
    let done = tokio::select! {
        done = work => done,
        signal = signals.next() => Err(Error::interrupted(format!(
            "interrupted by {}{left}",
            signal.describe()
        ))),
    };
    let paused_ms = running.then(|| paused_at.elapsed().as_millis() as u64);
    if running {
        engine.unpause(id).await?;
        clear(record);
    }
    Ok((done, paused_ms))
}

/// Forgets `record`, if there is one: its container is no longer paused by berth.
pub fn clear(record: Option<Record>) {
    if let Some(record) = record {
        remove(&record.state_dir, &record.id);
    }
}

fn record(state_dir: &Path, id: &str) -> std::io::Result<()> {
    let Some(path) = record_path(state_dir, id) else {
        return Ok(());
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let pid = std::process::id();
    let started = start_time(pid).unwrap_or(0);
    write_atomically(&path, format!("{pid} {started}\n").as_bytes())
}

/// Forgets the record of container `id`: it was unpaused, or removed.
fn remove(state_dir: &Path, id: &str) {
    if let Some(path) = record_path(state_dir, id) {
        std::fs::remove_file(path).ok();
    }
}

/// Whether a record, the caller's or root's, says a berth that has since died paused
/// container `id`.
pub fn left_by_a_dead_berth(state_dir: &Path, id: &str) -> bool {
    abandoned_in(state_dir, id).is_some()
}

/// Which of the caller's and root's record folders holds a record of a dead berth's
/// pause of `id`.
fn abandoned_in(state_dir: &Path, id: &str) -> Option<PathBuf> {
    [state_dir.to_path_buf(), PathBuf::from(ROOT_RECORDS)]
        .into_iter()
        .find(|dir| left_in(dir, id))
}

/// Whether the record in `state_dir` says a berth that has since died paused `id`.
fn left_in(state_dir: &Path, id: &str) -> bool {
    let Some(text) = record_path(state_dir, id).and_then(|p| std::fs::read_to_string(p).ok())
    else {
        return false;
    };
    abandoned(&text, start_time)
}

/// Whether the record `text` ("PID START") names a process that no longer runs, as
/// `start_time_of` tells.
fn abandoned(text: &str, start_time_of: impl Fn(u32) -> Option<u64>) -> bool {
    let mut fields = text.split_whitespace();
    let (Some(Ok(pid)), Some(Ok(started))) = (
        fields.next().map(str::parse::<u32>),
        fields.next().map(str::parse::<u64>),
    ) else {
        // Not a record berth wrote: leave the container alone.
        return false;
    };
    start_time_of(pid) != Some(started)
}

/// Resumes `container` if a berth that died left it paused, and says so; a pause that
/// is not berth's, or that a living berth holds, is left as it is.
pub async fn resume_if_abandoned(
    engine: &Engine,
    state_dir: &Path,
    container: &mut ContainerInfo,
    printer: &Printer,
) -> Result<()> {
    let Some(dir) = abandoned_in(state_dir, &container.id) else {
        return Ok(());
    };
    if container.state != State::Paused {
        // A record of a pause that is over (the retire unpaused it, then failed). A
        // user cannot remove root's; root's next reap does.
        remove(&dir, &container.id);
        return Ok(());
    }
    engine.unpause(&container.id).await?;
    remove(&dir, &container.id);
    container.state = State::Running;
    printer.note(&format!(
        "resumed {}: a berth retire that was stopped while it checked the container had \
         left it paused",
        container.name
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_a_living_process_is_not_abandoned_and_a_reused_pid_is() {
        let alive = |pid: u32| (pid == 42).then_some(1000);
        assert!(!abandoned("42 1000\n", alive));
        assert!(abandoned("42 999\n", alive), "the pid was reused");
        assert!(abandoned("43 1000\n", alive), "no such process");
        assert!(!abandoned("garbage", alive), "not berth's record");
        assert!(!abandoned("", alive));
    }

    #[test]
    fn records_are_written_read_and_cleared_by_container_id() {
        let state = tempfile::tempdir().unwrap();
        // Unique: root's records are shared by every test that runs as root.
        let id = &format!("0123abcd{:x}", std::process::id());
        let id = id.as_str();
        assert!(!left_by_a_dead_berth(state.path(), id));
        record(state.path(), id).unwrap();
        assert!(
            !left_by_a_dead_berth(state.path(), id),
            "this process lives"
        );
        std::fs::write(state.path().join("paused").join(id), "4000000 1\n").unwrap();
        assert!(left_by_a_dead_berth(state.path(), id));
        remove(state.path(), id);
        assert!(!left_by_a_dead_berth(state.path(), id));
        // A record made through `Record` stays when dropped (a command given up
        // half-way), and goes when cleared.
        // Root's go to ROOT_RECORDS.
        let made = Record::make(state.path(), id);
        drop(made);
        let at = own_dir(state.path()).join("paused").join(id);
        assert!(at.exists());
        clear(Some(Record::make(state.path(), id)));
        assert!(!at.exists());
        // An id that is not one is never a path.
        record(state.path(), "../../etc").unwrap();
        assert!(!state.path().join("etc").exists());
    }

    #[test]
    fn this_process_has_a_start_time() {
        assert!(start_time(std::process::id()).is_some());
    }
}
