//! Faults: an engine that stops answering, Ctrl-C at any moment of a deploy, deploys
//! racing each other, and a container that dies as it starts. Each ends in a clear
//! answer and a state the next command can build on.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::freeze::Freezer;
use crate::support::*;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A frozen engine is found out by the heartbeat (a ping every 2 s, 5 s to answer);
/// this bound leaves room for a loaded machine and still rules out bollard's 120 s.
const FOUND_OUT_WITHIN: Duration = Duration::from_secs(30);

fn berth_through(
    sb: &Sandbox,
    freezer: &Freezer,
    args: &[&str],
) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = sb
        .command(BERTH, args)
        .env("DOCKER_HOST", freezer.docker_host())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out, started.elapsed())
}

fn assert_found_out(out: &std::process::Output, took: Duration, code: i32) {
    assert_code(out, code);
    assert_stderr_has(out, "stopped answering");
    assert!(took < FOUND_OUT_WITHIN, "took {took:?}");
}

#[test]
fn an_engine_that_freezes_before_the_create_is_an_error_within_seconds_and_nothing_exists() {
    let sb = Sandbox::new();
    let freezer = Freezer::start(sb.path(), "/containers/create");
    let (out, took) = berth_through(
        &sb,
        &freezer,
        &["deploy", &sb.project, "--image", &sb.image.tag],
    );
    assert!(freezer.frozen(), "the deploy got as far as the create");
    assert_found_out(&out, took, 1);
    assert!(!sb.exists());
}

#[test]
fn an_engine_that_freezes_before_the_start_leaves_what_the_next_deploy_replaces() {
    let sb = Sandbox::new();
    let freezer = Freezer::start(sb.path(), "/start");
    let (out, took) = berth_through(
        &sb,
        &freezer,
        &["deploy", &sb.project, "--image", &sb.image.tag],
    );
    assert!(freezer.frozen());
    assert_found_out(&out, took, 1);
    // The engine itself never froze: it holds the created container berth could not
    // start, nor remove.
    assert_eq!(sb.state(), "created");
    drop(freezer);

    let out = sb.deployed();
    assert_stderr_has(
        &out,
        "an interrupted deploy had created it but never started it",
    );
    assert_one_correct_container(&sb);
}

#[test]
fn list_against_a_frozen_engine_ends_within_seconds() {
    let sb = Sandbox::new();
    let freezer = Freezer::start(sb.path(), "/containers/json");
    let (out, took) = berth_through(&sb, &freezer, &["list"]);
    assert_found_out(&out, took, 1);
}

#[test]
fn an_attached_run_whose_engine_freezes_mid_stream_ends_with_docker_s_125() {
    let sb = Sandbox::new();
    sb.project_toml("");
    // The heartbeat's first ping (the second ping: the first is the connect's) is the
    // cue: by then the container is running and berth is reading its output stream.
    let freezer = Freezer::start_at(sb.path(), "/_ping", 2);
    let args = [
        "run",
        "--project",
        &sb.project,
        "--rm",
        &sb.image.tag,
        "sleep",
        "60",
    ];
    let (out, took) = berth_through(&sb, &freezer, &args);
    assert!(freezer.frozen());
    assert_found_out(&out, took, 125);
}

/// Exactly one container of the project, running, made as a deploy makes it: the host
/// user inside, the workspace mounted.
fn assert_one_correct_container(sb: &Sandbox) {
    let ids = sb.container_ids();
    assert_eq!(ids.lines().count(), 1, "{ids}");
    assert_eq!(sb.state(), "running");
    let inside = sb.exec("id -un && test -d /workspace && echo mounted");
    assert_eq!(stdout(&inside), format!("{}\nmounted\n", whoami()));
}

fn spawn_deploy(sb: &Sandbox) -> Child {
    sb.command(BERTH, &["deploy", &sb.project, "--image", &sb.image.tag])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn ctrl_c_at_any_moment_of_a_deploy_leaves_at_most_one_container_and_the_next_deploy_works() {
    let sb = Sandbox::new();
    // Deploys show how long one takes here (the first also creates the workspace and
    // the home); the interrupts spread over the last one's length.
    let mut whole = Duration::ZERO;
    for _ in 0..2 {
        let started = Instant::now();
        sb.deployed();
        whole = started.elapsed();
        assert_code(&sb.berth(&["retire", &sb.project, "--yes"]), 0);
    }
    let mut outcomes = Vec::new();
    for step in 0..12u32 {
        let delay = whole * step / 10;
        let child = spawn_deploy(&sb);
        std::thread::sleep(delay);
        // SAFETY: a plain kill(2) of our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let ids = sb.container_ids();
        assert!(ids.lines().count() <= 1, "after {delay:?}: {ids}");
        // Never half-made: an interrupt before the start removes what was created.
        let state = sb.state();
        assert!(
            state.is_empty() || state == "running",
            "after {delay:?}, the container is {state:?}: {}",
            stderr(&out)
        );
        let how = match (out.status.code(), out.status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => unreachable!(),
        };
        outcomes.push(format!("{delay:>10.0?}: {how}, container {state:?}"));

        sb.deployed();
        assert_one_correct_container(&sb);
        assert_code(&sb.berth(&["retire", &sb.project, "--yes"]), 0);
        assert!(!sb.exists());
    }
    eprintln!("{}", outcomes.join("\n"));
}

#[test]
fn eight_concurrent_deploys_of_one_project_make_one_container_and_all_succeed() {
    let sb = Sandbox::new();
    let children: Vec<Child> = (0..8).map(|_| spawn_deploy(&sb)).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 0);
    }
    assert_one_correct_container(&sb);
}

#[test]
fn concurrent_deploys_of_different_projects_all_succeed() {
    let sandboxes: Vec<Sandbox> = (0..4).map(|_| Sandbox::new()).collect();
    let children: Vec<Child> = sandboxes.iter().map(spawn_deploy).collect();
    for child in children {
        assert_code(&child.wait_with_output().unwrap(), 0);
    }
    for sb in &sandboxes {
        assert_one_correct_container(sb);
    }
}

#[test]
fn a_container_that_exits_as_it_starts_is_reported_with_its_code_and_last_words() {
    let sb = Sandbox::new();
    sb.project_toml(&format!(
        "image = \"{}\"\ncommand = [\"sh\", \"-c\", \"echo loading; echo 'no such model: big' >&2; exit 3\"]\n",
        sb.image.tag
    ));
    // The settle time makes the outcome certain; the exit ends the watch at once.
    let started = Instant::now();
    let out = sb.berth(&["deploy", &sb.project, "--settle", "30s"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_code(&out, 1);
    assert_stderr_has(&out, "exited right after it started (exit code 3)");
    assert_stderr_has(&out, "no such model: big");
    assert_stderr_has(&out, format!("docker logs {}", sb.container()));
    assert_eq!(sb.state(), "exited", "kept, with its log");

    // Started again, by the next deploy, it is watched the same way.
    let out = sb.berth(&["deploy", &sb.project, "--settle", "30s"]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "(exit code 3)");
}

#[test]
fn a_container_that_stays_up_through_the_settle_time_is_deployed() {
    let sb = Sandbox::new();
    let started = Instant::now();
    let out = sb.berth(&[
        "deploy",
        &sb.project,
        "--image",
        &sb.image.tag,
        "--settle",
        "1s",
    ]);
    assert_code(&out, 0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_one_correct_container(&sb);
}

#[test]
fn a_create_the_engine_refuses_leaves_no_new_workspace_or_home_behind() {
    let sb = Sandbox::new();
    // More CPUs than the machine has: only the engine knows, and says so at the create.
    let out = sb.berth(&[
        "deploy",
        &sb.project,
        "--image",
        &sb.image.tag,
        "--cpus",
        "4096",
    ]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "CPU");
    assert!(!sb.exists());
    assert!(!sb.workspace().exists());
    let home = sb.container_home();
    assert!(!home.exists(), "{}", home.display());
}

/// The changes call walks the whole image on overlay drivers: while the container
/// waits paused for it, retire says so. An engine that stops answering then cannot be
/// told to unpause, and the next command resumes the container.
#[test]
fn a_slow_changes_call_says_the_container_stays_paused_and_the_next_command_resumes_it() {
    // As root berth reads the layer itself; the engine's call is what is slow here.
    let sb = Sandbox::new().env("BERTH_LAYER_READER", "engine");
    sb.deployed();
    let freezer = Freezer::start(sb.path(), "/changes");
    let (out, took) = berth_through(&sb, &freezer, &["retire", &sb.project, "--yes"]);
    assert!(freezer.frozen());
    assert_found_out(&out, took, 1);
    assert_stderr_has(&out, "it stays paused until the engine answers");
    drop(freezer);
    assert_eq!(sb.state(), "paused");

    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "resumed");
    assert_eq!(sb.state(), "running");
}
