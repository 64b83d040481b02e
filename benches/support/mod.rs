//! What every bench needs: an engine client on a runtime of its own, medians, and the
//! tests' non-root user.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use bollard::Docker;

/// The user the tests and benches run berth as when they run as root.
pub const TEST_USER: &str = "berth-test-user";

/// A single-threaded runtime and a client of the engine the docker CLI would use.
pub fn engine() -> (tokio::runtime::Runtime, Docker) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let docker = runtime.block_on(async {
        Docker::connect_with_local_defaults()
            .expect("a Docker client")
            .negotiate_version()
            .await
            .expect("a Docker engine")
    });
    (runtime, docker)
}

/// The number in environment variable `name`, else `default`.
pub fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Makes [`TEST_USER`] as the tests do, a member of the group that may use the
/// engine's socket (needs root); its uid and gid.
pub fn test_user() -> (u32, u32) {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id(&["-u", TEST_USER]).is_none() {
        Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", TEST_USER])
            .output()
            .expect("useradd runs (the bench runs as root)");
    }
    Command::new("sh")
        .args(["-c", &format!(
            "getent group docker >/dev/null || groupadd docker; usermod -aG docker {TEST_USER}; \
             chgrp docker /var/run/docker.sock 2>/dev/null; chmod g+rw /var/run/docker.sock 2>/dev/null; true"
        )])
        .output()
        .expect("sh runs");
    (
        id(&["-u", TEST_USER]).expect("a uid"),
        id(&["-g", TEST_USER]).expect("a gid"),
    )
}

/// Imports the tests' busybox image as `tag` (scripts/busybox-image.sh).
pub fn busybox_image(tag: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/busybox-image.sh");
    let out = Command::new("sh")
        .args([script, tag])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "the busybox image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A temporary directory for a bench's berth environment, readable by the test user,
/// with an empty admin policy (`policy.toml`) for `BERTH_POLICY`.
pub fn hermetic_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(dir.path().join("policy.toml"), "").unwrap();
    dir
}
