//! Reading back the shell lines berth prints (`deploy --dry-run`, `run --dry-run`):
//! shared by the integration tests and the versus-docker bench.

/// Splits a line a POSIX shell would read (as berth quotes its `docker run` line) into
/// its words; a line no shell could read fails the test.
pub fn shell_words(line: &str) -> Vec<String> {
    shlex::split(line).unwrap_or_else(|| panic!("a shell cannot read {line:?}"))
}
