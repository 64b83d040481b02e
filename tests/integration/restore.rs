//! `berth restore` and `berth move`: a project back from its archive, byte for byte,
//! onto this engine or a second one (a second dockerd on its own socket and data root,
//! standing in for another host); never into what holds files; nothing from a damaged
//! archive or an interrupted restore; a move verified there before anything goes here.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A running project with a workspace of every kind of entry, a home, and a persisted
/// `/srv` holding a file of uid 33, mode 0640.
fn project() -> Sandbox {
    let sb = Sandbox::new();
    assert_code(&sb.deploy_persisting(&["/srv"]), 0);
    let out = sb.exec_as_root(
        "echo served > /srv/run.log && chown 33:33 /srv/run.log && chmod 640 /srv/run.log",
    );
    assert_code(&out, 0);
    let ws = sb.workspace();
    fs::create_dir_all(ws.join("src/deep")).unwrap();
    fs::write(ws.join("src/deep/train.py"), "print('train')\n").unwrap();
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(ws.join("weights.bin"), &noise).unwrap();
    fs::write(
        ws.join(std::ffi::OsStr::from_bytes(b"name-\xff.txt")),
        "raw name",
    )
    .unwrap();
    std::os::unix::fs::symlink("src/deep/train.py", ws.join("link")).unwrap();
    fs::hard_link(ws.join("weights.bin"), ws.join("weights.hard")).unwrap();
    fs::set_permissions(ws.join("src/deep"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(sb.container_home().join(".history"), "ls\n").unwrap();
    sb
}

fn backup(sb: &Sandbox) -> PathBuf {
    let out = sb.berth(&[
        "backup",
        &sb.project,
        "--to",
        sb.path().to_str().unwrap(),
        "--json",
    ]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(report["path"].as_str().unwrap())
}

/// Every entry below `root`: its path, kind, mode, contents or link target, and
/// which entries share an inode.
fn tree(root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inodes = std::collections::HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                lines.push(format!(
                    "{name} -> {}",
                    fs::read_link(&path).unwrap().display()
                ));
            } else if meta.is_dir() {
                lines.push(format!("{name}/ {mode:o}"));
                stack.push(path);
            } else {
                let first = inodes
                    .entry(meta.ino())
                    .or_insert_with(|| name.clone())
                    .clone();
                let digest = stdout(&Command::new("sha256sum").arg(&path).output().unwrap());
                let digest = digest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                lines.push(format!("{name} {mode:o} {digest} first-name={first}"));
            }
        }
    }
    lines.sort();
    lines
}

/// The docker CLI against the engine at `host`.
fn docker_at(host: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .unwrap()
}

/// The second engine, started the first time, and a context `second` for it in the
/// sandbox's docker config.
fn second_engine(sb: &Sandbox) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/second-engine.sh");
    let out = Command::new("sh").arg(script).output().unwrap();
    assert!(out.status.success(), "the second engine: {}", stderr(&out));
    let host = stdout(&out).trim().to_string();
    let config = sb.home.join(".docker");
    let out = Command::new("docker")
        .arg("--config")
        .arg(&config)
        .args([
            "context",
            "create",
            "second",
            "--docker",
            &format!("host={host}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker context create: {}",
        stderr(&out)
    );
    host
}

/// Removes a volume on the engine at a host, on drop.
struct VolumeAt(String, String);

impl Drop for VolumeAt {
    fn drop(&mut self) {
        docker_at(&self.0, &["volume", "rm", "-f", &self.1]);
    }
}

/// The file `path` in volume `volume` on the engine at `host`, and its owner, read
/// through a created container that never runs.
fn in_volume(host: &str, volume: &str, path: &str) -> (String, String) {
    let out = docker_at(
        host,
        &[
            "create",
            "-v",
            &format!("{volume}:/v"),
            "berth/empty:1",
            "true",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let listing = docker_at(host, &["cp", &format!("{id}:/v/{path}"), "-"]);
    docker_at(host, &["rm", "-f", &id]);
    let mut tar = Command::new("tar")
        .args(["-xO", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    tar.stdin
        .take()
        .unwrap()
        .write_all(&listing.stdout)
        .unwrap();
    let contents = String::from_utf8(tar.wait_with_output().unwrap().stdout).unwrap();
    let mut list = Command::new("tar")
        .args(["-tv", "--numeric-owner", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    list.stdin
        .take()
        .unwrap()
        .write_all(&listing.stdout)
        .unwrap();
    let listed = String::from_utf8(list.wait_with_output().unwrap().stdout).unwrap();
    (contents, listed)
}

#[test]
fn a_project_restored_on_another_engine_is_the_same_byte_for_byte() {
    let sb = project();
    let archive = backup(&sb);
    let host = second_engine(&sb);
    let other = unique("r");
    let volume = format!("berth.{}.{other}.srv", whoami());
    let _cleanup = VolumeAt(host.clone(), volume.clone());

    let out = sb.berth(&[
        "restore",
        archive.to_str().unwrap(),
        "--as",
        &other,
        "--context",
        "second",
        "--json",
    ]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["action"], "restored", "{report:#}");
    assert_stderr_has(&out, "restored");
    let restored = sb.workspace_root.join(&other);
    assert_eq!(tree(&restored), tree(&sb.workspace()));
    let home = sb.container_home().with_file_name(&other);
    assert_eq!(fs::read_to_string(home.join(".history")).unwrap(), "ls\n");
    // The volume is on the second engine, labelled as the project's, with its file
    // and that file's owner and mode.
    let labels = docker_at(
        &host,
        &["volume", "inspect", &volume, "--format", "{{json .Labels}}"],
    );
    assert!(labels.status.success(), "{}", stderr(&labels));
    let labels: Value = serde_json::from_slice(&labels.stdout).unwrap();
    assert_eq!(labels["berth.project"], other.as_str());
    assert_eq!(labels["berth.persist"], "/srv");
    let (contents, listed) = in_volume(&host, &volume, "run.log");
    assert_eq!(contents, "served\n");
    assert!(listed.starts_with("-rw-r----- 33/33"), "{listed}");
    // Not on this engine: it is another host's now.
    assert_ne!(
        docker(&["volume", "inspect", &volume]).status.code(),
        Some(0)
    );
    // No helper left behind there.
    let helpers = docker_at(
        &host,
        &["ps", "-aq", "--filter", "label=berth.helper=restore"],
    );
    assert_eq!(stdout(&helpers), "");
}

#[test]
fn what_holds_files_is_never_restored_into() {
    let sb = project();
    let archive = backup(&sb);
    let before = tree(&sb.workspace());
    // The project itself: its workspace holds files.
    let out = sb.berth(&["restore", archive.to_str().unwrap()]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "exists and is not empty: not restoring into it");
    assert_eq!(tree(&sb.workspace()), before);
    // Another name, whose volume holds a file: refused before anything is written.
    let other = unique("r");
    let volume = format!("berth.{}.{other}.srv", whoami());
    let _cleanup = VolumeGuard(volume.clone());
    assert_code(&docker(&["volume", "create", &volume]), 0);
    let out = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        &sb.image.tag,
        "sh",
        "-c",
        "echo theirs > /v/f",
    ]);
    assert_code(&out, 0);
    let out = sb.berth(&["restore", archive.to_str().unwrap(), "--as", &other]);
    assert_code(&out, 3);
    assert_stderr_has(&out, format!("volume {volume} exists and holds 1 file(s)"));
    assert!(!sb.workspace_root.join(&other).exists());
    assert!(!sb.workspace_root.join(format!(".{other}.partial")).exists());
}

/// Where a restore of `project` would write, none of which may be there after a
/// restore that failed.
fn assert_nothing_restored(sb: &Sandbox, project: &str) {
    assert!(!sb.workspace_root.join(project).exists(), "no workspace");
    assert!(
        !sb.workspace_root
            .join(format!(".{project}.partial"))
            .exists(),
        "no partial"
    );
    let home = sb.container_home().with_file_name(project);
    assert!(!home.exists(), "no home");
    let volume = format!("berth.{}.{project}.srv", whoami());
    assert_ne!(
        docker(&["volume", "inspect", &volume]).status.code(),
        Some(0),
        "no volume"
    );
    let pending = sb
        .state_dir()
        .join("restoring")
        .join(format!("{project}.json"));
    assert!(!pending.exists(), "no record of a restore under way");
}

#[test]
fn a_damaged_or_cut_short_archive_restores_nothing() {
    let sb = project();
    let archive = backup(&sb);
    let bytes = fs::read(&archive).unwrap();
    let damaged = sb.path().join("damaged.tar.zst");
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x55;
    fs::write(&damaged, &flipped).unwrap();
    let cut = sb.path().join("cut.tar.zst");
    fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    for broken in [&damaged, &cut] {
        let out = sb.berth(&["restore", broken.to_str().unwrap(), "--dry-run"]);
        assert_ne!(out.status.code(), Some(0));
        assert_stderr_has(&out, "is damaged at");
        let other = unique("r");
        let out = sb.berth(&["restore", broken.to_str().unwrap(), "--as", &other]);
        assert_ne!(out.status.code(), Some(0), "{}", broken.display());
        assert_stderr_has(&out, "is damaged at");
        assert_stderr_has(&out, "nothing was restored");
        assert_nothing_restored(&sb, &other);
    }
    // The whole one says so.
    let out = sb.berth(&["restore", archive.to_str().unwrap(), "--dry-run"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "is whole");
}

/// A restore of a large archive, signalled once its partial workspace appears.
fn interrupted(sb: &Sandbox, archive: &Path, project: &str, signal: &str) -> Output {
    let child = sb
        .command(
            env!("CARGO_BIN_EXE_berth"),
            &["restore", archive.to_str().unwrap(), "--as", project],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partial = sb.workspace_root.join(format!(".{project}.partial"));
    let start = Instant::now();
    while !partial.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(partial.exists(), "the restore began");
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A workspace large enough that a restore takes a while: random, so that it does
/// not compress away.
fn large_project() -> (Sandbox, PathBuf) {
    let sb = project();
    let out = Command::new("head")
        .args(["-c", "400000000", "/dev/urandom"])
        .output()
        .unwrap();
    fs::write(sb.workspace().join("big.bin"), &out.stdout).unwrap();
    let archive = backup(&sb);
    (sb, archive)
}

#[test]
fn an_interrupted_restore_leaves_nothing_or_a_project_deploy_refuses() {
    let (sb, archive) = large_project();
    // Ctrl-C: everything written is taken back.
    let other = unique("r");
    let out = interrupted(&sb, &archive, &other, "INT");
    assert_ne!(out.status.code(), Some(0));
    assert_stderr_has(&out, "interrupted");
    assert_nothing_restored(&sb, &other);

    // Killed outright: the record stays, and deploy refuses the half-restored project.
    let other = unique("r");
    let out = interrupted(&sb, &archive, &other, "KILL");
    assert_eq!(out.status.code(), None, "killed");
    let out = sb.berth(&["deploy", &other, "--image", &sb.image.tag]);
    assert_code(&out, 3);
    assert_stderr_has(
        &out,
        "did not finish: not deploying a half-restored project",
    );
    // The next restore clears what was left, and restores it whole.
    let out = sb.berth(&["restore", archive.to_str().unwrap(), "--as", &other]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "clearing what an unfinished restore");
    let volume = format!("berth.{}.{other}.srv", whoami());
    let helpers = docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=berth.helper",
        "--filter",
        &format!("volume={volume}"),
    ]);
    assert_eq!(stdout(&helpers), "", "the killed restore's helper is gone");
    assert_eq!(tree(&sb.workspace_root.join(&other)), tree(&sb.workspace()));
    let _cleanup = VolumeGuard(format!("berth.{}.{other}.srv", whoami()));
    assert_code(&sb.berth(&["deploy", &other, "--image", &sb.image.tag]), 0);
    docker(&["rm", "-f", &format!("{other}._.{}", whoami())]);
}

#[test]
fn a_data_root_that_differs_here_is_the_split_brain_it_would_be() {
    let data = tempfile::tempdir().unwrap();
    let sb = Sandbox::new().env("HOST_DATA_PATH", data.path().to_str().unwrap());
    fs::create_dir_all(sb.workspace()).unwrap();
    fs::write(sb.workspace().join("a.txt"), "a").unwrap();
    // The deploy writes the data root's marker; the backup records its id.
    assert_code(
        &sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]),
        0,
    );
    let archive = backup(&sb);
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = Sandbox::new().env("HOST_DATA_PATH", elsewhere.path().to_str().unwrap());
    let out = moved.berth(&["restore", archive.to_str().unwrap(), "--as", &moved.project]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "split-brain");
    assert!(!moved.workspace().exists());
}

/// Removes a container and an image on the engine at a host, on drop.
struct ThereToo {
    host: String,
    container: String,
    image: String,
}

impl Drop for ThereToo {
    fn drop(&mut self) {
        docker_at(&self.host, &["rm", "-f", "-v", &self.container]);
        docker_at(&self.host, &["rmi", "-f", &self.image]);
    }
}

#[test]
fn a_moved_project_is_verified_there_before_it_is_retired_here() {
    let sb = project();
    let before = tree(&sb.workspace());
    let host = second_engine(&sb);
    let volume = format!("berth.{}.{}.srv", whoami(), sb.project);
    let _volume = VolumeAt(host.clone(), volume.clone());
    let _there = ThereToo {
        host: host.clone(),
        container: sb.container(),
        image: sb.image.tag.clone(),
    };
    let out = sb.berth(&["move", &sb.project, "--to-context", "second", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["volumes"][0]["volume"],
        volume.as_str(),
        "{report:#}"
    );
    assert_eq!(report["retired"], sb.container().as_str());
    // Gone here, the workspace and home as they were; there, the volume and the image.
    assert!(!sb.exists());
    assert_ne!(
        docker(&["volume", "inspect", &volume]).status.code(),
        Some(0)
    );
    assert_eq!(tree(&sb.workspace()), before);
    let (contents, listed) = in_volume(&host, &volume, "run.log");
    assert_eq!(contents, "served\n");
    assert!(listed.starts_with("-rw-r----- 33/33"), "{listed}");
    // A deploy there, by the context, finds all of it.
    let there = sb.berth_in_context("second", &["deploy", &sb.project, "--persist", "/srv"]);
    assert_code(&there, 0);
    let out = docker_at(
        &host,
        &[
            "exec",
            &sb.container(),
            "cat",
            "/srv/run.log",
            "/workspace/src/deep/train.py",
        ],
    );
    assert_eq!(stdout(&out), "served\nprint('train')\n", "{}", stderr(&out));
}

#[test]
fn a_move_keeps_a_container_with_unsaved_work_here_and_says_so() {
    let sb = project();
    assert_code(&sb.exec_as_root("echo notes > /root-notes.txt"), 0);
    let host = second_engine(&sb);
    let volume = format!("berth.{}.{}.srv", whoami(), sb.project);
    let _volume = VolumeAt(host.clone(), volume.clone());
    let _there = ThereToo {
        host: host.clone(),
        container: sb.container(),
        image: sb.image.tag.clone(),
    };
    let out = sb.berth(&["move", &sb.project, "--to-context", "second"]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "verified, but");
    assert_stderr_has(&out, "was kept here");
    // Whole here still: the container and its volume; and a verified copy there.
    assert!(sb.exists());
    assert_code(&docker(&["volume", "inspect", &volume]), 0);
    assert_eq!(in_volume(&host, &volume, "run.log").0, "served\n");
}
