//! An engine that stops answering on cue: a unix-socket proxy in front of the real
//! engine which passes everything through until a request names `cue`, then answers
//! nothing more, on any connection, old or new, while keeping every one of them open.
//! That is what a client sees of a dockerd that froze mid-command.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct Freezer {
    path: PathBuf,
    frozen: Arc<AtomicBool>,
    /// Every connection, so that none is closed (a close would be an answer).
    held: Arc<Mutex<Vec<UnixStream>>>,
}

impl Freezer {
    /// Listens at `<dir>/frozen.sock`. The request that names `cue` (in its request
    /// line, e.g. `/containers/create`) is the first one the engine never sees.
    pub fn start(dir: &Path, cue: &str) -> Self {
        Self::start_at(dir, cue, 1)
    }

    /// [`Freezer::start`], freezing at the `nth` request that names `cue`.
    pub fn start_at(dir: &Path, cue: &str, nth: usize) -> Self {
        let cue = Cue {
            text: cue.to_string(),
            left: Arc::new(AtomicUsize::new(nth)),
        };
        let path = dir.join("frozen.sock");
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let frozen = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (shared_frozen, shared_held) = (frozen.clone(), held.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                shared_held
                    .lock()
                    .unwrap()
                    .push(client.try_clone().unwrap());
                let upstream = if shared_frozen.load(Ordering::SeqCst) {
                    None
                } else {
                    UnixStream::connect(super::engine_socket()).ok()
                };
                let (cue, frozen) = (cue.clone(), shared_frozen.clone());
                thread::spawn(move || pump(client, upstream, &cue, frozen));
            }
        });
        Self { path, frozen, held }
    }

    /// The DOCKER_HOST that leads through the proxy.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Whether the cue came.
    pub fn frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        for stream in self.held.lock().unwrap().drain(..) {
            stream.shutdown(std::net::Shutdown::Both).ok();
        }
        std::fs::remove_file(&self.path).ok();
    }
}

/// What to freeze at: the request naming `text` when `left` counts down to 0.
#[derive(Clone)]
struct Cue {
    text: String,
    left: Arc<AtomicUsize>,
}

impl Cue {
    /// Whether `request` is the one to freeze at.
    fn came(&self, request: &[u8]) -> bool {
        String::from_utf8_lossy(request).contains(&self.text)
            && self.left.fetch_sub(1, Ordering::SeqCst) == 1
    }
}

/// Copies the client's requests up and the engine's answers down, until frozen; from
/// then on reads and drops whatever the client sends.
fn pump(mut client: UnixStream, upstream: Option<UnixStream>, cue: &Cue, frozen: Arc<AtomicBool>) {
    if let Some(upstream) = &upstream {
        let (mut from_engine, mut to_client) =
            (upstream.try_clone().unwrap(), client.try_clone().unwrap());
        let frozen = frozen.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 64 * 1024];
            while let Ok(n @ 1..) = from_engine.read(&mut buf) {
                if !frozen.load(Ordering::SeqCst) && to_client.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
    let mut to_engine = upstream;
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n @ 1..) = client.read(&mut buf) {
        if cue.came(&buf[..n]) {
            frozen.store(true, Ordering::SeqCst);
        }
        if frozen.load(Ordering::SeqCst) {
            continue;
        }
        if let Some(engine) = &mut to_engine {
            if engine.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    }
}
