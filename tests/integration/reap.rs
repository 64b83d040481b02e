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

/// `berth reap --json` once more; what it says of the sandbox's one container.
fn mine(sb: &Sandbox) -> Value {
    let out = reap(sb, &["--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    report["containers"][0].clone()
}

/// The reaper's events in the log (deploy and retire write theirs there too).
fn events(sb: &Sandbox) -> Vec<Value> {
    fs::read_to_string(sb.state_dir().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            let action = e["action"].as_str().unwrap_or_default();
            action.starts_with("reap") || action == "warn-cancelled"
        })
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
    let me = &mine(&sb);
    assert_eq!(me["decision"], "keep", "{me}");
    assert!(
        me["reason"].as_str().unwrap().contains(".keep-alive"),
        "{me}"
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
    let me = &mine(&sb);
    assert_eq!(me["decision"], "keep", "{me}");
    assert!(me["reason"].as_str().unwrap().starts_with("busy"), "{me}");
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

/// A sandbox whose policy reaps after 1 s and gives GPU `<project>-0` in env mode, with
/// `nvidia-smi` answering `answer` for it (none: no `nvidia-smi` on the PATH).
fn gpu_sandbox(answer: Option<&str>) -> Sandbox {
    let sb = Sandbox::new();
    let bin = sb.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let sb = sb.env("PATH", &path);
    let gpu = format!("{}-0", sb.project);
    if let Some(percent) = answer {
        let script = format!("#!/bin/sh\necho '{gpu}, GPU-fake-uuid, {percent}'\n");
        fs::write(bin.join("nvidia-smi"), script).unwrap();
        set_mode(&bin.join("nvidia-smi"), 0o755);
    }
    let policy = format!(
        "[reap]\nidle_after = \"1s\"\n[gpus]\ninventory = [\"{gpu}\"]\nrequest = \"env\"\n"
    );
    fs::write(&sb.policy, policy).unwrap();
    let args = sb.deploy_args(&["--gpus", "1", "--", "sh", "-c", "while :; do :; done"]);
    assert_code(&sb.berth(&args), 0);
    sb
}

#[test]
fn a_container_on_idle_gpus_is_stopped_however_busy_its_cpu() {
    let sb = gpu_sandbox(Some("0"));
    reap(&sb, &[]);
    sleep(PAST_WINDOW);
    let me = &mine(&sb);
    assert_eq!(me["decision"], "stop", "{me}");
    let reason = me["reason"].as_str().unwrap();
    assert!(reason.contains("GPUs"), "{reason}");
    assert_eq!(sb.state(), "exited");
}

#[test]
fn gpus_that_cannot_be_read_are_not_idle_and_the_reason_is_logged() {
    let sb = gpu_sandbox(None);
    reap(&sb, &[]);
    sleep(PAST_WINDOW);
    let me = &mine(&sb);
    assert_eq!(me["decision"], "keep", "{me}");
    assert!(
        me["reason"]
            .as_str()
            .unwrap()
            .starts_with("not idle by GPU"),
        "{me}"
    );
    assert_eq!(sb.state(), "running");
    let logged = events(&sb)
        .into_iter()
        .any(|e| e["action"] == "reap-gpu" && e["outcome"] == "unreadable");
    assert!(logged);
}

#[test]
fn an_nvidia_smi_that_hangs_is_given_up_on_and_the_gpus_are_not_idle() {
    let sb = gpu_sandbox(Some("0")).env("BERTH_NVIDIA_SMI_TIMEOUT_MS", "300");
    // As one does when a GPU has fallen off the bus.
    let smi = sb.path().join("bin/nvidia-smi");
    fs::write(&smi, "#!/bin/sh\nexec sleep 600\n").unwrap();
    set_mode(&smi, 0o755);
    reap(&sb, &[]);
    sleep(PAST_WINDOW);
    let me = &mine(&sb);
    assert_eq!(me["decision"], "keep", "{me}");
    let reason = me["reason"].as_str().unwrap();
    assert!(reason.starts_with("not idle by GPU"), "{me}");
    assert!(reason.contains("did not answer within 0.3 s"), "{me}");
    assert_eq!(sb.state(), "running");
}

fn decision(sb: &Sandbox) -> (String, String) {
    let me = mine(sb);
    let field = |key: &str| me[key].as_str().unwrap_or_default().to_string();
    (field("decision"), field("reason"))
}

#[test]
fn an_idle_container_is_warned_first_and_stopped_only_after_warn_before() {
    let sb = sandbox("idle_after = \"1s\"\nwarn_before = \"2s\"\n");
    deploy(&sb, &[]);
    reap(&sb, &[]);
    sleep(PAST_WINDOW);
    let (first, reason) = decision(&sb);
    assert_eq!(first, "warn", "{reason}");
    assert!(reason.contains("stops in 2s"), "{reason}");
    assert_eq!(sb.state(), "running", "a warning stops nothing");
    let text = notice(&sb).expect("a notice");
    assert!(text.contains("will stop your container"), "{text}");
    assert_eq!(decision(&sb).0, "warned");
    assert_eq!(sb.state(), "running");

    sleep(PAST_WINDOW);
    let (last, reason) = decision(&sb);
    assert_eq!(last, "stop", "{reason}");
    assert_eq!(sb.state(), "exited");
    let actions: Vec<String> = events(&sb)
        .iter()
        .filter(|e| e["project"] == sb.project.as_str())
        .map(|e| {
            format!(
                "{}:{}",
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "reap-warn:warned",
            "reap-stop:stopping",
            "reap-stop:stopped"
        ]
    );
}

#[test]
fn a_keep_alive_after_the_warning_cancels_the_stop() {
    let sb = sandbox("idle_after = \"1s\"\nwarn_before = \"2s\"\n");
    deploy(&sb, &[]);
    reap(&sb, &[]);
    sleep(PAST_WINDOW);
    assert_eq!(decision(&sb).0, "warn");
    fs::write(sb.workspace().join(".keep-alive"), "").unwrap();
    sleep(PAST_WINDOW);
    assert_eq!(decision(&sb).0, "keep");
    assert_eq!(sb.state(), "running");
    let cancelled = events(&sb);
    assert!(
        cancelled.iter().any(|e| e["action"] == "warn-cancelled"),
        "{cancelled:?}"
    );
}

#[test]
fn list_shows_the_gpu_utilisation_the_reaper_last_read() {
    let sb = gpu_sandbox(Some("37"));
    let readings = sb.path().join("run/gpus.json");
    let policy = fs::read_to_string(&sb.policy).unwrap().replace(
        "[reap]\n",
        &format!("[reap]\nreadings = \"{}\"\n", readings.display()),
    );
    fs::write(&sb.policy, policy).unwrap();
    let before = sb.berth(&["list", "--json"]);
    let listed: Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(listed["containers"][0]["gpu_utilisation"], Value::Null);

    reap(&sb, &[]);
    assert_eq!(mode_of(&readings), 0o644, "everyone may read it");
    let out = sb.berth(&["list", "--json"]);
    assert_code(&out, 0);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reading = &listed["containers"][0]["gpu_utilisation"];
    assert_eq!(reading["percent"], 37.0, "{listed:#}");
    assert!(reading["at_ms"].as_u64().is_some());
    let table = stdout(&sb.berth(&["list"]));
    assert!(table.contains("GPU%"), "{table}");
    assert!(table.contains("37% "), "{table}");
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}
