//! The operating system, as `engine` is Docker: who the caller is (uid, gid, euid and the
//! password database), exclusive `flock`s, and the terminal (raw mode and window size).
//! Everything goes through `rustix`; the one `unsafe` block left in berth is here, around
//! `getpwuid_r`, which `rustix` does not wrap.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::FlockOperation;
use rustix::io::Errno;
use rustix::termios::{self, OptionalActions, Termios};

/// The real uid of this process.
pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The real gid of this process.
pub fn gid() -> u32 {
    rustix::process::getgid().as_raw()
}

/// Whether this process acts as root (its effective uid is 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A user's entry in the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    /// The primary group.
    pub gid: u32,
    /// The home directory: unlike `$HOME`, not the caller's to choose.
    pub home: PathBuf,
}

/// `uid`'s entry in the password database (local files, LDAP, whatever NSS says), if it
/// has one with a UTF-8 name.
pub fn passwd(uid: u32) -> Option<Passwd> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `pwd` is plain data that getpwuid_r fills in; every pointer passed is
        // valid for the length given, and the call writes only into `pwd` and `buf` and
        // sets `result` to `&mut pwd` or null. On success `pw_name` and `pw_dir` point to
        // NUL-terminated strings inside `buf`, which outlives the copies made here.
        let (rc, entry) = unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            );
            let found =
                rc == 0 && !result.is_null() && !pwd.pw_name.is_null() && !pwd.pw_dir.is_null();
            let entry = found.then(|| {
                (
                    CStr::from_ptr(pwd.pw_name).to_bytes().to_vec(),
                    pwd.pw_gid,
                    CStr::from_ptr(pwd.pw_dir).to_bytes().to_vec(),
                )
            });
            (rc, entry)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        let (name, gid, home) = entry?;
        return Some(Passwd {
            name: String::from_utf8(name).ok()?,
            gid,
            home: PathBuf::from(OsStr::from_bytes(&home)),
        });
    }
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when another holds
/// it. The kernel drops it when the file is closed, however its holder exits.
pub fn try_lock(file: &File) -> std::io::Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// Raw mode on standard input while it lives; the saved settings come back on drop, on
/// every path out (errors and signals included, as callers drop it before exiting).
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts the terminal on standard input into raw mode; `None` when it is not a terminal.
    pub fn enable() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Rows and columns of the terminal on standard output (or input).
pub fn window_size() -> Option<(u16, u16)> {
    let (stdout, stdin) = (std::io::stdout(), std::io::stdin());
    let size = [stdout.as_fd(), stdin.as_fd()].into_iter().find_map(|fd| {
        let size = termios::tcgetwinsize(fd).ok()?;
        (size.ws_row > 0).then_some((size.ws_row, size.ws_col))
    });
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_in_the_password_database_with_its_home() {
        let root = passwd(0).expect("uid 0 has an entry");
        assert_eq!(root.name, "root");
        assert!(root.home.is_absolute(), "{root:?}");
    }

    #[test]
    fn a_uid_nobody_has_has_no_entry() {
        assert_eq!(passwd(3_999_999_999), None);
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_until_the_first_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let first = File::create(&path).unwrap();
        assert!(try_lock(&first).unwrap());
        let second = File::open(&path).unwrap();
        assert!(!try_lock(&second).unwrap());
        drop(first);
        assert!(try_lock(&second).unwrap());
    }
}
