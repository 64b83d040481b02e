//! The one-node Slurm of the tests (scripts/slurm.sh): started once, shared by every
//! test, four fake GPUs as gres.

use std::path::PathBuf;
use std::process::Command;

/// The `SLURM_CONF` of the running test Slurm, started if it is not.
pub fn conf() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("bash runs scripts/slurm.sh");
    assert!(
        out.status.success(),
        "the Slurm tests need slurm-wlm and munge (apt-get install slurm-wlm munge): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Cancels a job when dropped, so that a failed test leaves none running.
pub struct JobGuard {
    pub id: String,
    pub conf: PathBuf,
}

impl JobGuard {
    /// Runs a Slurm command against the test Slurm.
    pub fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .expect("Slurm's commands run")
    }

    /// Whether the job is still in the queue.
    pub fn queued(&self) -> bool {
        let out = self.run("squeue", &["-h", "-j", &self.id, "-o", "%T"]);
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.run("scancel", &[&self.id]);
    }
}
