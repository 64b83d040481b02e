//! The event log: one JSON line per deploy, retire, reap action and refusal, so that
//! everything that happens on a shared server leaves a trace.
//!
//! The log is `[events] path` from the policy, else `<state dir>/events.jsonl`. Each
//! event is one `write` on a file opened for appending, so lines from concurrent berths
//! never interleave.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::clock;
use crate::config::policy::Policy;
use crate::error::{Error, Kind, Result};
use crate::host::{HostUser, Paths};
use crate::ui::Printer;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// RFC 3339, UTC.
    pub time: String,
    /// The host user's login name, and uid.
    pub user: String,
    pub uid: u32,
    pub project: String,
    /// `deploy`, `retire`, `run`, `create`, `reap-stop`, `reap-retire`, ...
    pub action: String,
    /// `created`, `started`, `removed`, `refused`, `stopped`, `failed`, ...
    pub outcome: String,
    /// Why, for refusals and failures (the error's message); else null.
    pub reason: Option<String>,
    /// How long berth held the container paused, where it paused it (a retire's or a
    /// reap's check, and a rescue's wait for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_ms: Option<u64>,
}

impl Event {
    pub fn now(user: &str, uid: u32, project: &str, action: &str, outcome: &str) -> Self {
        Self {
            time: clock::rfc3339(SystemTime::now()),
            user: user.to_string(),
            uid,
            project: project.to_string(),
            action: action.to_string(),
            outcome: outcome.to_string(),
            reason: None,
            paused_ms: None,
        }
    }

    pub fn paused(mut self, paused_ms: Option<u64>) -> Self {
        self.paused_ms = paused_ms;
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Appends `event` to the log at `path`, creating the file (and its folder) if needed.
pub fn record(path: &Path, event: &Event) -> Result<()> {
    let mut line = serde_json::to_vec(event)
        .map_err(|err| Error::failed(format!("cannot write an event: {err}")))?;
    line.push(b'\n');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| Error::io("create", parent, err))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(|err| Error::io("open the event log", path, err))?;
    // One write: O_APPEND places it at the end as a whole.
    file.write_all(&line)
        .map_err(|err| Error::io("write the event log", path, err))
}

/// Records one command's event: `outcome` names what a success did (and why, where it
/// did less than asked); an error is `refused` or `failed` with its message as the
/// reason. Never fails the command: a log that cannot be written is a warning.
pub fn log<T>(
    printer: &Printer,
    action: &str,
    project: &str,
    result: &Result<T>,
    outcome: impl FnOnce(&T) -> (&'static str, Option<String>),
) {
    log_paused(printer, action, project, result, outcome, None);
}

/// [`log`], for a command that held a container paused for `paused_ms`.
pub fn log_paused<T>(
    printer: &Printer,
    action: &str,
    project: &str,
    result: &Result<T>,
    outcome: impl FnOnce(&T) -> (&'static str, Option<String>),
    paused_ms: Option<u64>,
) {
    let (outcome, reason) = match result {
        Ok(done) => outcome(done),
        Err(err) => (
            match err.kind {
                Kind::Refused => "refused",
                Kind::Interrupted => "interrupted",
                _ => "failed",
            },
            Some(err.message.clone()),
        ),
    };
    let user = HostUser::current();
    let mut event = Event::now(&user.name, user.uid, project, action, outcome).paused(paused_ms);
    event.reason = reason;
    if let Err(err) = log_path().and_then(|path| record(&path, &event)) {
        printer.warn(&format!("the event was not logged: {}", err.message));
    }
}

/// The policy's `[events] path`, else `<state dir>/events.jsonl`. Read afresh, so that
/// a command that failed before it read the policy still leaves its trace; a policy
/// that cannot be read leaves the default.
fn log_path() -> Result<std::path::PathBuf> {
    let paths = Paths::from_env()?;
    let policy = Policy::read(&paths.policy)
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(policy.event_log(&paths.state_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_appended_one_json_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("state/events.jsonl");
        record(&log, &Event::now("ana", 1000, "alpha", "deploy", "created")).unwrap();
        let refused = Event::now("ana", 1000, "alpha", "deploy", "refused").reason("policy");
        record(&log, &refused).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["outcome"], "created");
        assert!(lines[0]["reason"].is_null());
        assert_eq!(lines[1]["reason"], "policy");
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    }
}
