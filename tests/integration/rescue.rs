//! A rescue against a hostile or unlucky layer, on a real engine: a checkpoint the
//! program writes when it is told to stop, hard links whose first name is disposable,
//! FIFOs, names that are not UTF-8 or that hold a newline or an ESC, a neighbour
//! container that swaps the rescue's folders for links while it runs, and a root
//! reaper rescuing into a user's workspace. Nothing is written outside `.rescued`, the
//! count printed is the count copied, and what the rescue makes belongs to the
//! workspace's owner.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

fn as_user() -> RunAs {
    let (uid, gid) = test_user().expect("the tests run as root, to make a test user");
    RunAs::Other { uid, gid }
}

fn deploy(sb: &Sandbox, command: &[&str]) {
    let mut args = vec!["deploy", &sb.project, "--image", &sb.image.tag, "--new"];
    if !command.is_empty() {
        args.push("--");
        args.extend_from_slice(command);
    }
    assert_code(&sb.berth(&args), 0);
}

/// `retire --rescue --json`, which must succeed: the outcome and the rescue folder.
fn retire_rescue(sb: &Sandbox) -> (Value, PathBuf, String) {
    let out = sb.berth(&["retire", &sb.project, "--rescue", "--json"]);
    assert_code(&out, 0);
    assert!(!sb.exists(), "removed");
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let folder = PathBuf::from(outcome["rescued"]["path"].as_str().unwrap());
    assert!(
        folder.starts_with(sb.workspace().join(".rescued")),
        "{folder:?}"
    );
    (outcome, folder, stderr(&out))
}

/// Every file and folder below `dir`, links not followed.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            pending.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
        all.push(path);
    }
    all
}

#[test]
fn a_checkpoint_written_when_told_to_stop_is_rescued_in_its_final_version() {
    let sb = Sandbox::new();
    // A job that saves its state on SIGTERM, and drops one more file it never showed.
    deploy(
        &sb,
        &[
            "sh",
            "-c",
            "trap 'echo final > /opt/job/ckpt; echo late > /opt/job/late; exit 0' TERM; \
             mkdir -p /opt/job && echo first > /opt/job/ckpt; \
             while :; do sleep 1; done",
        ],
    );
    for _ in 0..50 {
        if stdout(&sb.exec("cat /opt/job/ckpt 2>/dev/null")) == "first\n" {
            break;
        }
        sleep(Duration::from_millis(100));
    }
    let (outcome, folder, err) = retire_rescue(&sb);
    assert_eq!(fs::read(folder.join("opt/job/ckpt")).unwrap(), b"final\n");
    assert_eq!(fs::read(folder.join("opt/job/late")).unwrap(), b"late\n");
    assert!(err.contains("written while it stopped"), "{err}");
    // The checkpoint was shown, but not what it holds now: both were written as it
    // stopped.
    let mut appeared: Vec<&str> = outcome["appeared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    appeared.sort();
    assert_eq!(appeared, ["/opt/job/ckpt", "/opt/job/late"]);
    assert_eq!(outcome["action"], "removed");
}

#[test]
fn a_hard_link_whose_first_name_is_disposable_is_copied_and_counted() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    // As uv and conda do: the cache's name comes first in the archive's order.
    assert_code(
        &sb.exec_as_root(
            "mkdir -p /opt/env/.cache /opt/env/lib && echo wheel > /opt/env/.cache/w.so \
             && ln /opt/env/.cache/w.so /opt/env/lib/w.so && echo own > /opt/env/lib/own.py \
             && ln /opt/env/lib/own.py /opt/env/lib/twin.py && mkfifo /opt/env/pipe",
        ),
        0,
    );
    let (outcome, folder, err) = retire_rescue(&sb);
    assert_eq!(
        fs::read(folder.join("opt/env/lib/w.so")).unwrap(),
        b"wheel\n"
    );
    assert!(!folder.join("opt/env/.cache").exists(), "disposable");
    assert_eq!(
        fs::read(folder.join("opt/env/lib/twin.py")).unwrap(),
        b"own\n"
    );
    assert_eq!(outcome["rescued"]["files"], 3, "{outcome:#}");
    // The FIFO is named, not skipped in silence.
    assert!(err.contains("not copied: /opt/env/pipe (a FIFO"), "{err}");
    assert_eq!(outcome["rescued"]["special"][0]["path"], "/opt/env/pipe");
}

#[test]
fn names_that_are_not_utf8_or_hold_control_characters_are_rescued_under_their_own_names() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    assert_code(
        &sb.exec_as_root(
            "mkdir -p /opt/names && cd /opt/names && echo raw > \"$(printf 'x\\377\\376')\" \
             && echo nl > \"$(printf 'a\\nretired everything')\" \
             && echo esc > \"$(printf '\\033[2Kb')\" \
             && echo img > \"/etc/$(printf 'y\\377')\"",
        ),
        0,
    );
    let out = sb.berth(&["retire", &sb.project, "--dry-run"]);
    assert_code(&out, 0);
    let text = stderr(&out);
    assert!(
        !text.contains('\u{1b}'),
        "an ESC reached the terminal: {text:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("retired everything")),
        "a name forged a line: {text}"
    );
    // The JSON gives such names lossily in `paths`, and losslessly in `paths_raw`,
    // wherever berth read the layer itself (the engine's changes call cannot).
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(outcome["read_by"]["source"], "engine", "{outcome:#}");
    let raw: Vec<(&str, &str)> = outcome["classes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|class| class["paths_raw"].as_array().into_iter().flatten())
        .map(|raw| (raw["path"].as_str().unwrap(), raw["hex"].as_str().unwrap()))
        .collect();
    // "/opt/names/x\xff\xfe" and "/etc/y\xff"
    assert!(
        raw.contains(&(
            "/opt/names/x\u{FFFD}\u{FFFD}",
            "2f6f70742f6e616d65732f78fffe"
        )),
        "{outcome:#}"
    );
    assert!(
        raw.contains(&("/etc/y\u{FFFD}", "2f6574632f79ff")),
        "{outcome:#}"
    );
    assert_eq!(raw.len(), 2, "{outcome:#}");

    let (_, folder, _) = retire_rescue(&sb);
    let names = folder.join("opt/names");
    let raw = names.join(std::ffi::OsStr::from_bytes(b"x\xff\xfe"));
    assert_eq!(fs::read(raw).unwrap(), b"raw\n");
    assert_eq!(
        fs::read(names.join("a\nretired everything")).unwrap(),
        b"nl\n"
    );
    assert_eq!(fs::read(names.join("\u{1b}[2Kb")).unwrap(), b"esc\n");
    // A lone new file in an image folder, whose name the engine reports lossily.
    let in_etc = folder
        .join("etc")
        .join(std::ffi::OsStr::from_bytes(b"y\xff"));
    assert_eq!(fs::read(in_etc).unwrap(), b"img\n");
    assert!(
        !folder.join("etc/passwd").exists(),
        "only that file of /etc"
    );
}

/// A second container of the project mounts the same workspace and, while the rescue
/// runs, swaps every folder of it that it can find for a link to a canary folder.
fn a_neighbour_swapping_folders_never_gets_a_write_outside(run_as: RunAs) {
    let sb = Sandbox::with_user(run_as);
    sb.project_toml("");
    deploy(&sb, &[]);
    assert_code(
        &sb.exec_as_root(
            "for d in a b c d e f g h; do mkdir -p /opt/w/$d/deep; \
             for i in $(seq 1 150); do echo $i > /opt/w/$d/deep/$i; done; done",
        ),
        0,
    );
    let canary = tempfile::tempdir().unwrap();
    set_mode(canary.path(), 0o777);
    let canary_path = canary.path().to_str().unwrap().to_string();
    let neighbour = format!("{}-neighbour", sb.project);
    let racer = format!(
        "while :; do for d in /ws/.rescued/*/opt/w/* /ws/.rescued/*/opt/w \
         /ws/.rescued/*/opt /ws/.rescued/*; do \
         [ -d \"$d\" ] && [ ! -L \"$d\" ] && mv \"$d\" \"$d.moved\" 2>/dev/null \
         && ln -s {canary_path} \"$d\"; done; done"
    );
    let started = docker(&[
        "run",
        "-d",
        "--name",
        &neighbour,
        "-v",
        &format!("{}:/ws", sb.workspace().display()),
        &sb.image.tag,
        "sh",
        "-c",
        &racer,
    ]);
    assert_code(&started, 0);
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.0]);
        }
    }
    let _neighbour = Remove(neighbour);

    let out = sb.berth(&["retire", &sb.project, "--rescue"]);
    assert_eq!(
        fs::read_dir(canary.path()).unwrap().count(),
        0,
        "a write went through a swapped link: {}",
        stderr(&out)
    );
    let swapped = walk(&sb.workspace())
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".moved"));
    eprintln!(
        "swapped: {swapped}; exit {:?}: {}",
        out.status.code(),
        stderr(&out)
    );
    match out.status.code() {
        // The rescue held on to its folders, or it noticed a swap and refused.
        Some(0) => assert!(!sb.exists()),
        Some(1) => {
            assert_stderr_has(&out, "nothing was removed");
            assert!(sb.exists());
        }
        code => panic!("exit {code:?}: {}", stderr(&out)),
    }
}

#[test]
fn a_neighbour_swapping_folders_never_gets_a_write_outside_as_root() {
    a_neighbour_swapping_folders_never_gets_a_write_outside(RunAs::Me);
}

#[test]
fn a_neighbour_swapping_folders_never_gets_a_write_outside_as_a_user() {
    a_neighbour_swapping_folders_never_gets_a_write_outside(as_user());
}

/// `berth reap` from a timer runs as root: what it rescues into a user's workspace is
/// the user's, every file and folder of it, and `.rescued` too.
#[test]
fn what_a_root_reaper_rescues_belongs_to_the_workspaces_owner() {
    let run_as = as_user();
    let RunAs::Other { uid, .. } = run_as else {
        unreachable!()
    };
    let sb = Sandbox::with_user(run_as);
    fs::write(&sb.policy, "[reap]\nhold_stopped = \"1s\"\n").unwrap();
    deploy(&sb, &[]);
    assert_code(
        &sb.exec_as_root(
            "mkdir -p /opt/r/sub && echo 1 > /opt/r/sub/a && ln -s a /opt/r/sub/l \
             && chmod 555 /opt/r/sub",
        ),
        0,
    );
    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);
    sleep(Duration::from_millis(2500));
    let out = sb.berth_as_root(&["reap", "--project", &sb.project]);
    assert_code(&out, 0);
    assert!(!sb.exists(), "{}", stdout(&out));
    let rescued = sb.workspace().join(".rescued");
    let all = walk(&rescued);
    assert!(all.len() >= 6, "{all:?}");
    for path in &all {
        assert_eq!(owner(path), uid, "{path:?} is not the user's");
        assert!(
            !path.to_string_lossy().ends_with(".partial"),
            "renamed when complete: {path:?}"
        );
    }
}
