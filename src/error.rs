//! Error kinds, their exit codes (README, "Exit codes") and the hint each may carry.
//!
//! Every failure berth reports is an [`Error`]: a one-line message, optional detail
//! lines (a table, a list of paths) and an optional hint. [`crate::run`] prints it
//! once, in one place, and returns [`Error::code`] for `main` to exit with.

use std::fmt;

/// What went wrong, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The engine, a config file, or I/O: exit 1.
    Failed,
    /// The command line itself is wrong: exit 2.
    Usage,
    /// A guard said no (split-brain, unsaved work, policy): exit 3.
    Refused,
    /// Ctrl-C, SIGTERM or a hang-up stopped the command: exit 130, as shells report
    /// SIGINT.
    Interrupted,
    /// A drop-in `docker` command's own code: 125 (the command or the daemon failed),
    /// 126 (the command cannot be run), 127 (not found).
    Status(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// Lines printed under the message, indented, before the hint.
    pub details: Vec<String>,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message)
    }

    /// An error that exits with `code`, as docker's own commands do.
    pub fn status(code: i32, message: impl Into<String>) -> Self {
        Self::new(Kind::Status(code), message)
    }

    pub fn interrupted(message: impl Into<String>) -> Self {
        Self::new(Kind::Interrupted, message)
    }

    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            details: Vec::new(),
            hint: None,
        }
    }

    /// The same error, exiting with `code` as docker's own command would.
    pub fn with_status(self, code: i32) -> Self {
        Self {
            kind: Kind::Status(code),
            ..self
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn details(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.details.extend(lines);
        self
    }

    pub fn code(&self) -> i32 {
        match self.kind {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::Refused => 3,
            Kind::Interrupted => 130,
            Kind::Status(code) => code,
        }
    }

    /// An I/O failure on `path`, phrased for a person.
    pub fn io(action: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        Self::failed(format!(
            "cannot {action} {}: {}",
            path.display(),
            io_reason(&err)
        ))
    }
}

/// The OS's words for an I/O error, without Rust's "(os error 13)" suffix.
pub fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_lowercase(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_design() {
        assert_eq!(Error::failed("x").code(), 1);
        assert_eq!(Error::usage("x").code(), 2);
        assert_eq!(Error::refused("x").code(), 3);
        assert_eq!(Error::interrupted("x").code(), 130);
    }

    #[test]
    fn io_reason_drops_the_os_error_number() {
        let err = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_reason(&err), "permission denied");
    }
}
