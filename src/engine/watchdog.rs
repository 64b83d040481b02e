//! The engine's heartbeat. A request to an engine that has stopped answering (a frozen
//! dockerd, a TCP peer that vanished) would wait for bollard's two-minute limit, and a
//! stream (a pull, an attached run) for ever. While a command runs, the watchdog pings
//! the engine every few seconds on a connection of its own; a ping left unanswered ends
//! the command with one clear error instead ([`silenced`]).
//!
//! A busy engine still answers pings (`/_ping` takes no lock in dockerd), so a long
//! changes call or a slow pull is never cut short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use bollard::Docker;
use tokio::sync::Notify;

use crate::error::Error;

/// How long the engine may be left unasked.
const EVERY: Duration = Duration::from_secs(2);
/// How long one ping may take before the engine counts as stopped.
const PATIENCE: Duration = Duration::from_secs(5);

static STARTED: AtomicBool = AtomicBool::new(false);
/// The endpoint that stopped answering, once one has.
static SILENT: OnceLock<String> = OnceLock::new();
static WAKE: Notify = Notify::const_new();

/// Starts the heartbeat for the process's engine (once; later calls do nothing).
pub(super) fn start(docker: &Docker, endpoint: String) {
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let docker = docker.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(EVERY).await;
            if !matches!(
                tokio::time::timeout(PATIENCE, docker.ping()).await,
                Ok(Ok(_))
            ) {
                SILENT.set(endpoint).ok();
                WAKE.notify_one();
                return;
            }
        }
    });
}

/// Resolves once the engine has stopped answering: never, while it answers.
pub async fn silenced() -> Error {
    WAKE.notified().await;
    let endpoint = SILENT.get().map_or("", String::as_str);
    Error::failed(format!(
        "the Docker engine at {endpoint} stopped answering (a ping got no reply in {}s)",
        PATIENCE.as_secs()
    ))
    .hint("is dockerd stuck or overloaded? `docker info` tells; what berth had not done yet was left undone")
}
