//! `berth reap` against a real engine: idle containers are stopped after a notice and
//! an event, `.keep-alive` and real work spare them, long-stopped ones are retired only
//! after their work is rescued, and a dry run changes nothing. Every run is scoped with
//! `--project`: the tests run as root, and must not touch each other's containers.

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Longer than the tests' `idle_after` and `hold_stopped` of 1s.
const PAST_WINDOW: Duration = Duration::from_millis(2500);

fn sandbox(reap: &str) -> Sandbox {
    let sb = Sandbox::new();
    fs::write(&sb.policy, format!("[reap]\n{reap}")).unwrap();
    sb
}

fn deploy(sb: &Sandbox, command: &[&str]) {
    let mut args = vec!["deploy", &sb.project, "--image", &sb.image.tag];
    if !command.is_empty() {
        args.push("--");
        args.extend_from_slice(command);
    }
    assert_code(&sb.berth(&args), 0);
}

fn reap(sb: &Sandbox, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["reap", "--project", &sb.project];
    args.extend_from_slice(extra);
    let out = sb.berth(&args);
    assert_code(&out, 0);
    out
}

/// The reaper's events in the log (deploy and retire write theirs there too).
fn events(sb: &Sandbox) -> Vec<Value> {
    fs::read_to_string(sb.state_dir().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("reap")))
        .collect()
}

fn notice(sb: &Sandbox) -> Option<String> {
    fs::read_to_string(sb.workspace().join("BERTH-NOTICE.txt")).ok()
}

#[test]
fn reap_stops_an_idle_container_after_a_notice_and_an_event() {
    let sb = sandbox("idle_after = \"1s\"\n");
    deploy(&sb, &[]);
    // The first run only records a sample.
    let out = reap(&sb, &[]);
    assert!(!stdout(&out).contains("stopped"), "{}", stdout(&out));
    assert_eq!(sb.state(), "running");
    assert!(notice(&sb).is_none());

    sleep(PAST_WINDOW);
    let out = reap(&sb, &[]);
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!("stopped {}: idle", sb.container())),
        "{line}"
    );
    assert_eq!(sb.state(), "exited", "stopped, not removed");
    let text = notice(&sb).expect("a notice in the workspace");
    assert!(
        text.contains(&format!("container-deploy {}", sb.project)),
        "{text}"
    );
    assert!(text.contains("stopped your container"), "{text}");
    let events = events(&sb);
    let outcomes: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "reap-stop" && e["project"] == sb.project.as_str())
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["stopping", "stopped"]);
    assert!(events[0]["reason"].as_str().unwrap().contains("idle"));

    // Deploy brings it back.
    deploy(&sb, &[]);
    assert_eq!(sb.state(), "running");
}

#[test]
fn a_fresh_keep_alive_spares_an_idle_container() {
    let sb = sandbox("idle_after = \"1s\"\n");
    deploy(&sb, &[]);
    fs::write(sb.workspace().join(".keep-alive"), "").unwrap();
    reap(&sb, &[]);
    sleep(PAST_WINDOW);
    let out = reap(&sb, &["--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let me = &report["containers"][0];
    assert_eq!(me["decision"], "keep", "{report}");
    assert!(
        me["reason"].as_str().unwrap().contains(".keep-alive"),
        "{report}"
    );
    assert_eq!(sb.state(), "running");
    assert!(notice(&sb).is_none());
}

#[test]
fn a_busy_container_is_not_stopped() {
    let sb = sandbox("idle_after = \"1s\"\n");
    deploy(&sb, &["sh", "-c", "while :; do :; done"]);
    reap(&sb, &[]);
    sleep(PAST_WINDOW);
    let out = reap(&sb, &["--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let me = &report["containers"][0];
    assert_eq!(me["decision"], "keep", "{report}");
    assert!(
        me["reason"].as_str().unwrap().starts_with("busy"),
        "{report}"
    );
    assert_eq!(sb.state(), "running");
}

/// Work outside the mounts, as in retire's tests.
fn make_work(sb: &Sandbox) {
    assert_code(
        &sb.exec_as_root("mkdir -p /opt/results/run1 && echo 42 > /opt/results/run1/a.csv"),
        0,
    );
}

#[test]
fn a_long_stopped_container_is_retired_only_after_its_work_is_rescued() {
    let sb = sandbox("hold_stopped = \"1s\"\n");
    deploy(&sb, &[]);
    make_work(&sb);
    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);
    sleep(PAST_WINDOW);

    // A rescue that cannot happen removes nothing.
    let blocker = sb.workspace().join(".rescued");
    fs::write(&blocker, "not a folder").unwrap();
    let out = sb.berth(&["reap", "--project", &sb.project]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));
    assert_eq!(sb.state(), "exited", "not removed");
    fs::remove_file(&blocker).unwrap();

    let out = reap(&sb, &[]);
    assert!(
        stdout(&out).starts_with(&format!("retired {}", sb.container())),
        "{}",
        stdout(&out)
    );
    assert!(!sb.exists(), "removed");
    let stamps: Vec<_> = fs::read_dir(&blocker)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stamps.len(), 1);
    let rescued = stamps[0].join("opt/results/run1/a.csv");
    assert_eq!(fs::read_to_string(&rescued).unwrap(), "42\n");
    let text = notice(&sb).expect("a notice");
    assert!(text.contains("retired your stopped container"), "{text}");
    assert!(text.contains(".rescued/"), "{text}");
    let outcomes: Vec<String> = events(&sb)
        .iter()
        .filter(|e| e["action"] == "reap-retire")
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["retiring", "failed", "retiring", "removed"]);
}

#[test]
fn dry_run_says_what_it_would_do_and_changes_nothing() {
    let sb = sandbox("idle_after = \"1s\"\nhold_stopped = \"1s\"\n");
    deploy(&sb, &[]);
    // Not even a first sample.
    let out = reap(&sb, &["--dry-run"]);
    assert!(stdout(&out).starts_with("record"), "{}", stdout(&out));
    assert!(!sb.state_dir().join("reap").exists());

    reap(&sb, &[]);
    let samples = fs::read_dir(sb.state_dir().join("reap"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    sleep(PAST_WINDOW);
    let out = reap(&sb, &["--dry-run"]);
    assert!(
        stdout(&out).starts_with(&format!("would stop {}", sb.container())),
        "{}",
        stdout(&out)
    );
    assert_eq!(sb.state(), "running");
    assert!(notice(&sb).is_none());
    assert!(events(&sb).is_empty());
    let after = fs::read_dir(sb.state_dir().join("reap"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(samples, after, "samples untouched");

    // A long-stopped one: the check runs, nothing is removed.
    make_work(&sb);
    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);
    sleep(PAST_WINDOW);
    let out = reap(&sb, &["--dry-run"]);
    assert!(
        stdout(&out).starts_with(&format!("would retire {}", sb.container())),
        "{}",
        stdout(&out)
    );
    assert_stderr_has(&out, "/opt/results");
    assert!(sb.exists());
    assert!(!sb.workspace().join(".rescued").exists());
}

#[test]
fn without_reap_settings_it_only_records() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    let out = reap(&sb, &[]);
    assert_stderr_has(&out, "nothing needs doing");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(
        fs::read_dir(sb.state_dir().join("reap")).unwrap().count(),
        1
    );
    assert_eq!(sb.state(), "running");
}
