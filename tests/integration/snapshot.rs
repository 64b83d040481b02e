//! `berth snapshot` and `berth snapshots`: the unsaved changes copied out of a living
//! container, outside the workspace, while it runs on.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::*;

fn snapshot(sb: &Sandbox) -> Value {
    let out = sb.berth(&["snapshot", &sb.project, "--json"]);
    assert_code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn snapshots(sb: &Sandbox) -> Vec<Value> {
    let out = sb.berth(&["snapshots", &sb.project, "--json"]);
    assert_code(&out, 0);
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn check(run_as: RunAs) {
    let sb = Sandbox::with_image(run_as, Layout::MergedUsr);
    sb.deployed();
    // Nothing unsaved: no snapshot.
    let none = sb.berth(&["snapshot", &sb.project, "--json"]);
    assert_code(&none, 0);
    assert_stderr_has(&none, "no unsaved changes");
    assert!(snapshots(&sb).is_empty());

    let work = "mkdir -p /opt/r && echo checkpoint > /opt/r/model.ckpt && \
                echo cached > /tmp/cache.bin && mkfifo /opt/r/pipe";
    assert_code(&sb.exec_as_root(work), 0);
    let taken = snapshot(&sb);
    let path = PathBuf::from(taken["path"].as_str().unwrap());
    let root = sb
        .home
        .join(".local/share/berth/snapshots")
        .join(&sb.project);
    assert_eq!(path.parent(), Some(root.as_path()), "{taken:#}");
    assert!(
        !path.starts_with(sb.workspace()),
        "out of the container's reach"
    );
    let copied = fs::read_to_string(path.join("opt/r/model.ckpt")).unwrap();
    assert_eq!(copied, "checkpoint\n");
    assert!(
        !path.join("tmp/cache.bin").exists(),
        "disposable paths are left out"
    );
    assert_eq!(taken["not_copied"], serde_json::json!(["/opt/r/pipe"]));
    assert!(taken["paused_ms"].as_u64().is_some(), "{taken:#}");
    assert_eq!(sb.state(), "running", "the container runs on");
    if let RunAs::Other { uid, .. } = run_as {
        assert_eq!(owner(&path.join("opt/r/model.ckpt")), uid);
    }
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(root.parent().unwrap()), 0o700);

    // The pause is in the event log.
    let log = fs::read_to_string(sb.state_dir().join("events.jsonl")).unwrap();
    let event: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["action"] == "snapshot" && e["outcome"] == "taken")
        .unwrap();
    assert!(event["paused_ms"].as_u64().is_some(), "{event:#}");

    let listed = snapshots(&sb);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["files"], 1);
    assert_eq!(listed[0]["container_exists"], true);

    // Removed behind berth's back: the snapshot stays, and the listing says so.
    docker(&["rm", "-f", &sb.container()]);
    let listed = snapshots(&sb);
    assert_eq!(listed[0]["container_exists"], false);
    let out = sb.berth(&["snapshots", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "is gone");
    assert!(stdout(&out).contains(path.to_str().unwrap()));
    assert!(path.join("opt/r/model.ckpt").exists());
}

#[test]
fn a_snapshot_copies_the_unsaved_changes_out_while_the_container_runs_on_as_root() {
    check(RunAs::Me);
}

#[test]
fn a_snapshot_copies_the_unsaved_changes_out_while_the_container_runs_on_as_a_user() {
    let Some((uid, gid)) = test_user() else {
        eprintln!("skipped: making a user needs root");
        return;
    };
    check(RunAs::Other { uid, gid });
}

#[test]
fn the_projects_file_hides_nothing_from_a_snapshot() {
    let sb = Sandbox::new();
    sb.project_toml("[retire]\ndisposable = [\"/opt\"]\n");
    sb.deployed();
    assert_code(
        &sb.exec_as_root("mkdir -p /opt/r && echo work > /opt/r/a.txt"),
        0,
    );
    let taken = snapshot(&sb);
    let path = PathBuf::from(taken["path"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(path.join("opt/r/a.txt")).unwrap(),
        "work\n"
    );
}

#[test]
fn a_layer_as_it_was_at_the_newest_snapshot_gives_none_and_a_rewrite_of_one_size_one() {
    let sb = Sandbox::with_image(RunAs::Me, Layout::MergedUsr);
    sb.deployed();
    let same_size = |text: &str| {
        format!("mkdir -p /opt/r && echo {text} > /opt/r/w && touch -d @1000000000 /opt/r/w")
    };
    assert_code(&sb.exec_as_root(&same_size("aaaa")), 0);
    let first = snapshot(&sb);
    assert!(first["path"].is_string(), "{first:#}");

    // Read by berth's walk as root, then through the helper: both stamp it alike.
    for reader in ["direct", "helper"] {
        let command = sb.command(
            env!("CARGO_BIN_EXE_berth"),
            &["snapshot", &sb.project, "--json"],
        );
        let out = with_reader(command, reader);
        assert_code(&out, 0);
        assert_stderr_has(&out, "as they were at snapshot");
        assert_eq!(stdout(&out).trim(), "null", "{reader}");
    }
    assert_eq!(snapshots(&sb).len(), 1);
    let log = fs::read_to_string(sb.state_dir().join("events.jsonl")).unwrap();
    assert!(log.contains("\"outcome\":\"unchanged\""), "{log}");

    // The same size and modification time: the change time still tells.
    assert_code(&sb.exec_as_root(&same_size("bbbb")), 0);
    let second = snapshot(&sb);
    let path = PathBuf::from(second["path"].as_str().unwrap());
    assert_eq!(fs::read_to_string(path.join("opt/r/w")).unwrap(), "bbbb\n");
    assert_eq!(snapshots(&sb).len(), 2);
}

fn with_reader(mut command: std::process::Command, reader: &str) -> std::process::Output {
    command
        .env("BERTH_LAYER_READER", reader)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_project_without_a_container_is_a_clear_error() {
    let sb = Sandbox::new();
    let out = sb.berth(&["snapshot", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "has no container");
    assert!(!sb.home.join(".local/share/berth/snapshots").exists());
}

/// `berth reap` as root, as the timer runs it, for the sandbox's project alone; its one
/// snapshot report.
fn reap_snapshot(sb: &Sandbox) -> Value {
    let out = sb.berth_as_root(&["reap", "--project", &sb.project, "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let snapshots = report["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{report:#}");
    snapshots[0].clone()
}

fn wait_a_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn reap_takes_snapshots_as_the_owner_on_schedule_and_keeps_the_newest() {
    let Some(user) = OwnUser::new() else {
        eprintln!("skipped: making a user needs root");
        return;
    };
    let sb = Sandbox::with_image(user.run_as(), Layout::MergedUsr);
    user.set_home(&sb.home);
    let config = sb.home.join(".config/berth");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.toml"),
        "[snapshot]\nevery = \"1s\"\nkeep = 2\n",
    )
    .unwrap();
    sb.deployed();
    let container = format!("{}._.{}", sb.project, user.name);
    let exec = |script: &str| docker(&["exec", "-u", "0", &container, "sh", "-c", script]);
    assert_code(&exec("mkdir -p /opt/r && echo one > /opt/r/log"), 0);

    let first = reap_snapshot(&sb);
    assert_eq!(first["outcome"], "taken", "{first:#}");
    let path = PathBuf::from(first["path"].as_str().unwrap());
    assert_eq!(owner(&path.join("opt/r/log")), user.uid, "the owner's copy");
    // Within `every` it is not due; past it (a slow reap), the layer is as it was.
    let again = reap_snapshot(&sb);
    assert!(
        again["outcome"] == "not-due" || again["outcome"] == "unchanged",
        "{again:#}"
    );

    // A running container may have changed: each due snapshot is taken.
    assert_code(&exec("echo two >> /opt/r/log"), 0);
    wait_a_second();
    let second = reap_snapshot(&sb);
    assert_eq!(second["outcome"], "taken", "{second:#}");
    let copied = PathBuf::from(second["path"].as_str().unwrap()).join("opt/r/log");
    assert_eq!(fs::read_to_string(copied).unwrap(), "one\ntwo\n");

    // Changed, then stopped: one more (it stopped after the newest), then none while it
    // stays so.
    assert_code(&exec("echo three >> /opt/r/log"), 0);
    docker(&["stop", "-t", "0", &container]);
    wait_a_second();
    let third = reap_snapshot(&sb);
    assert_eq!(third["outcome"], "taken", "{third:#}");
    assert_eq!(third["pruned"][0], first["path"], "keep = 2: {third:#}");
    assert!(!path.exists());
    wait_a_second();
    let fourth = reap_snapshot(&sb);
    assert_eq!(fourth["outcome"], "unchanged", "{fourth:#}");
    assert_eq!(snapshots(&sb).len(), 2);
}

#[test]
fn the_policy_bounds_how_often_a_project_file_asks_for_snapshots() {
    let Some((uid, gid)) = test_user() else {
        eprintln!("skipped: making a user needs root");
        return;
    };
    let sb = Sandbox::with_image(RunAs::Other { uid, gid }, Layout::MergedUsr);
    sb.project_toml("[snapshot]\nevery = \"1s\"\nkeep = 100\n");
    sb.deployed();
    assert_code(&sb.exec_as_root("mkdir -p /opt/r && echo x > /opt/r/a"), 0);
    let policy = "[snapshot]\nmin_every = \"1h\"\nmax_keep = 1\n";
    let scheduled = || -> Value {
        let args = ["snapshot", &sb.project, "--scheduled", "--json"];
        let out = sb.berth_under_admin_policy(policy, &args);
        assert_code(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(scheduled()["outcome"], "taken");
    wait_a_second();
    let again = scheduled();
    assert_eq!(
        again["outcome"], "not-due",
        "every is raised to min_every: {again:#}"
    );

    // A ceiling on `every` takes snapshots of projects that ask for none.
    let quiet = Sandbox::with_image(RunAs::Other { uid, gid }, Layout::MergedUsr);
    quiet.deployed();
    assert_code(
        &quiet.exec_as_root("mkdir -p /opt/q && echo x > /opt/q/a"),
        0,
    );
    let args = ["snapshot", &quiet.project, "--scheduled", "--json"];
    let out = quiet.berth_under_admin_policy("[snapshot]\nmax_every = \"1d\"\n", &args);
    assert_code(&out, 0);
    let forced: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(forced["outcome"], "taken", "{forced:#}");
    let out = quiet.berth(&args);
    let unscheduled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(unscheduled["outcome"], "unscheduled");
}

#[test]
fn a_restore_puts_back_what_the_container_lost_and_keeps_what_differs_unless_forced() {
    let run_as = test_user().map_or(RunAs::Me, |(uid, gid)| RunAs::Other { uid, gid });
    let sb = Sandbox::with_image(run_as, Layout::MergedUsr);
    sb.deployed();
    let work = "mkdir -p /opt/r/sub && echo one > /opt/r/a && echo keep > /opt/r/b && \
                ln -s a /opt/r/link && echo deep > /opt/r/sub/c && chmod 600 /opt/r/sub/c";
    assert_code(&sb.exec_as_root(work), 0);
    let taken = snapshot(&sb);
    let name = PathBuf::from(taken["path"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let lose = "rm -rf /opt/r/sub /opt/r/link && echo changed > /opt/r/b";
    assert_code(&sb.exec_as_root(lose), 0);
    let read = |script: &str| stdout(&docker(&["exec", &sb.container(), "sh", "-c", script]));

    let out = sb.berth(&["snapshot", &sb.project, "--restore", &name, "--json"]);
    assert_code(&out, 0);
    let restored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        restored["restored"],
        serde_json::json!(["/opt/r/link", "/opt/r/sub/c"]),
        "{restored:#}"
    );
    assert_eq!(restored["skipped"], serde_json::json!(["/opt/r/b"]));
    assert_eq!(restored["same"], 1, "/opt/r/a is as it was");
    assert_stderr_has(&out, "kept /opt/r/b");
    assert_eq!(read("cat /opt/r/sub/c"), "deep\n");
    assert_eq!(read("readlink /opt/r/link"), "a\n");
    assert_eq!(read("cat /opt/r/b"), "changed\n", "what differs is kept");
    assert_eq!(read("stat -c %a /opt/r/sub/c"), "600\n");
    if let RunAs::Other { uid, .. } = run_as {
        assert_eq!(read("stat -c %u /opt/r/sub/c"), format!("{uid}\n"));
    }
    assert_eq!(sb.state(), "running", "unpaused after");

    // Forced, what differs is overwritten and said so.
    let out = sb.berth(&[
        "snapshot",
        &sb.project,
        "--restore",
        taken["taken"].as_str().unwrap(),
        "--force",
        "--json",
    ]);
    assert_code(&out, 0);
    let forced: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        forced["overwritten"],
        serde_json::json!(["/opt/r/b"]),
        "{forced:#}"
    );
    assert_eq!(forced["same"], 3);
    assert_eq!(read("cat /opt/r/b"), "keep\n");

    // Bad input: a clear message, nothing written.
    let out = sb.berth(&["snapshot", &sb.project, "--restore", "1999"]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "no snapshot at 1999");
    let out = sb.berth(&["snapshot", &sb.project, "--force"]);
    assert_code(&out, 2);
}

#[test]
fn past_the_policys_budget_the_oldest_snapshots_go_first_and_the_owner_is_told() {
    let sb = Sandbox::with_image(RunAs::Me, Layout::MergedUsr);
    fs::write(&sb.policy, "[snapshot]\nbudget = \"150K\"\n").unwrap();
    sb.deployed();
    let write =
        |name: &str| format!("mkdir -p /opt/r && head -c 60000 /dev/urandom > /opt/r/{name}");
    assert_code(&sb.exec_as_root(&write("a")), 0);
    let first = PathBuf::from(snapshot(&sb)["path"].as_str().unwrap());
    // 60 kB, then 120 kB more (a rewritten, b new): past 150 KiB, and the oldest goes.
    assert_code(&sb.exec_as_root(&write("a")), 0);
    assert_code(&sb.exec_as_root(&write("b")), 0);
    let out = sb.berth(&["snapshot", &sb.project, "--json"]);
    assert_code(&out, 0);
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    assert_stderr_has(&out, format!("removed snapshot {name} of {}", sb.project));
    assert_stderr_has(&out, "[snapshot] budget");
    assert!(!first.exists());
    let listed = snapshots(&sb);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["bytes"], 120000);
    let log = fs::read_to_string(sb.state_dir().join("events.jsonl")).unwrap();
    assert!(log.contains("\"action\":\"snapshot-budget\""), "{log}");

    // The newest alone past it stays, and the owner is told.
    fs::write(&sb.policy, "[snapshot]\nbudget = \"10K\"\n").unwrap();
    assert_code(&sb.exec_as_root(&write("c")), 0);
    let out = sb.berth(&["snapshot", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "the newest alone does");
    assert_eq!(snapshots(&sb).len(), 1);
}

#[test]
fn a_snapshot_links_what_did_not_change_since_the_one_before_and_copies_the_rest() {
    use std::os::unix::fs::MetadataExt;
    let sb = Sandbox::with_image(RunAs::Me, Layout::MergedUsr);
    sb.deployed();
    let work = "mkdir -p /opt/r/deep && head -c 2000000 /dev/urandom > /opt/r/big && \
                echo one > /opt/r/small && echo d > /opt/r/deep/file && chmod 700 /opt/r/deep";
    assert_code(&sb.exec_as_root(work), 0);
    let first = PathBuf::from(snapshot(&sb)["path"].as_str().unwrap());
    assert_code(
        &sb.exec_as_root("echo two > /opt/r/small && echo new > /opt/r/new"),
        0,
    );

    // Taken through the helper this time: its walk signs the files as berth's own did.
    let command = sb.command(
        env!("CARGO_BIN_EXE_berth"),
        &["snapshot", &sb.project, "--json"],
    );
    let out = with_reader(command, "helper");
    assert_code(&out, 0);
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = PathBuf::from(second["path"].as_str().unwrap());
    assert_eq!(second["files"], 4, "{second:#}");
    assert_eq!(second["linked"], 2, "big and deep/file: {second:#}");
    assert_eq!(second["linked_bytes"], 2000002);
    let inode = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(
        inode(&path.join("opt/r/big")),
        inode(&first.join("opt/r/big"))
    );
    assert_ne!(
        inode(&path.join("opt/r/small")),
        inode(&first.join("opt/r/small"))
    );
    assert_eq!(
        fs::read_to_string(path.join("opt/r/small")).unwrap(),
        "two\n"
    );
    assert_eq!(fs::read_to_string(path.join("opt/r/new")).unwrap(), "new\n");
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(
        mode(&path.join("opt/r/deep")),
        0o700,
        "the folder as it was"
    );

    // The first one gone, the second still holds all of it; and it restores.
    fs::remove_dir_all(&first).unwrap();
    assert_eq!(fs::metadata(path.join("opt/r/big")).unwrap().len(), 2000000);
    assert_code(&sb.exec_as_root("rm -rf /opt/r"), 0);
    let name = path.file_name().unwrap().to_str().unwrap();
    let out = sb.berth(&["snapshot", &sb.project, "--restore", name]);
    assert_code(&out, 0);
    let sizes = docker(&[
        "exec",
        &sb.container(),
        "sh",
        "-c",
        "wc -c < /opt/r/big; cat /opt/r/deep/file",
    ]);
    assert_eq!(stdout(&sizes), "2000000\nd\n");
}
