//! Exclusive `flock`s that serialize the steps two berths must not interleave: every
//! user's GPU allocation (one shared file) and each deploy or retire of one project (a
//! file in the caller's state dir). The kernel drops a lock when its holder exits, however it exits,
//! so a killed berth never leaves one behind.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::os;
use crate::ui::Printer;

/// An exclusive hold on a lock file; released when dropped (the file is closed).
pub struct Lock {
    _file: File,
    /// Whether another berth held it first: what it did may have changed things.
    pub waited: bool,
}

/// Deploys and retires of one project wait for each other for as long as it takes: the
/// one holding the lock may be pulling an image, or asking its user `[y/N]`.
pub const PROJECT: Purpose = Purpose {
    waiting_for: "finish its deploy or retire of this project",
    give_up_after: None,
    mode: 0o600,
};

/// What a lock guards, for the messages of whoever waits for it.
pub struct Purpose<'a> {
    /// Noted after two seconds of waiting: "waiting for another berth to …".
    pub waiting_for: &'a str,
    /// Give up after this long; `None` waits as long as the holder lives.
    pub give_up_after: Option<Duration>,
    /// Who else must be able to open the file: 0o666 for a lock all users share.
    pub mode: u32,
}

impl Lock {
    pub async fn acquire(path: &Path, purpose: &Purpose<'_>, printer: &Printer) -> Result<Self> {
        let file = open(path, purpose.mode)?;
        let started = Instant::now();
        let mut told = false;
        let mut attempts = 0u32;
        loop {
            if os::try_lock(&file).map_err(|err| Error::io("lock", path, err))? {
                return Ok(Self {
                    _file: file,
                    waited: attempts > 0,
                });
            }
            attempts += 1;
            if let Some(limit) = purpose.give_up_after.filter(|l| started.elapsed() > *l) {
                return Err(Error::failed(format!(
                    "another berth has held the lock {} for more than {}s",
                    path.display(),
                    limit.as_secs()
                ))
                .hint("try again; `fuser -v` on the lock file shows who holds it"));
            }
            if !told && started.elapsed() > Duration::from_secs(2) {
                printer.note(&format!(
                    "waiting for another berth to {}",
                    purpose.waiting_for
                ));
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Lock {
    /// Takes `project`'s lock, which its deploys, builds, retires and forgets share,
    /// waiting for as long as another berth holds it.
    pub async fn project(state_dir: &Path, project: &str, printer: &Printer) -> Result<Self> {
        Self::acquire(&project_path(state_dir, project), &PROJECT, printer).await
    }
}

/// The lock file of `project`'s deploys and retires, in the caller's state dir.
fn project_path(state_dir: &Path, project: &str) -> PathBuf {
    state_dir.join("locks").join(format!("{project}.lock"))
}

/// Opens the lock file, creating it (and its directory) with `mode` when it is missing.
/// An existing file is opened without `O_CREAT`: in a sticky, world-writable directory
/// (`fs.protected_regular`) the kernel refuses `O_CREAT` on another user's file. `flock`
/// needs no write access, so reading is enough.
fn open(path: &Path, mode: u32) -> Result<File> {
    match File::open(path) {
        Ok(file) => return Ok(file),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::io("open the lock", path, err)),
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.exists()) {
        std::fs::create_dir_all(dir).map_err(|err| Error::io("create", dir, err))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(file) => {
            // The umask took bits away; everyone `mode` names must be able to open it.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|err| Error::io("open the lock", path, err))?;
            Ok(file)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            File::open(path).map_err(|err| Error::io("open the lock", path, err))
        }
        Err(err) => Err(Error::io("create the lock", path, err)),
    }
}
