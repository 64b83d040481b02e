//! Output as scripts and terminals expect it: colour decided by `--color`, then
//! `NO_COLOR`, then `CLICOLOR_FORCE`, then the terminal; `--json` that parses, in the
//! documented shape; `-q`; and a closed pipe that ends berth quietly.

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const ESC: &str = "\x1b[";

/// berth in the sandbox with colour settings of the test's choosing (the sandbox sets
/// NO_COLOR=1 for every other test).
fn coloured(sb: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = sb.command(env!("CARGO_BIN_EXE_berth"), args);
    command.env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// An invalid project name: an error that needs no engine.
const BAD: &[&str] = &["check", "Not..A..Project"];

fn piped_error(sb: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = coloured(sb, env, args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert_stderr_has(&out, "error:");
    out
}

fn has_colour(out: &Output) -> bool {
    stderr(out).contains(ESC)
}

#[test]
fn colour_follows_the_flag_then_no_color_then_clicolor_force_then_the_terminal() {
    let sb = Sandbox::new();
    let with = |flag: &'static str| {
        let mut args = vec!["--color", flag];
        args.extend_from_slice(BAD);
        args
    };

    // 1. The flag wins over everything.
    let out = piped_error(&sb, &[("NO_COLOR", "1")], &with("always"));
    assert!(has_colour(&out), "--color always: {}", stderr(&out));
    assert!(
        stderr(&out).contains("31m"),
        "error: is red: {}",
        stderr(&out)
    );
    let out = piped_error(&sb, &[("CLICOLOR_FORCE", "1")], &with("never"));
    assert!(!has_colour(&out), "--color never: {}", stderr(&out));
    // Also after the subcommand.
    let out = piped_error(&sb, &[], &["check", "Not..A..Project", "--color=always"]);
    assert!(has_colour(&out), "--color=always late: {}", stderr(&out));

    // 2. NO_COLOR (non-empty) turns it off, even with CLICOLOR_FORCE.
    let out = piped_error(&sb, &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")], BAD);
    assert!(!has_colour(&out), "NO_COLOR: {}", stderr(&out));
    // An empty NO_COLOR is not set.
    let out = piped_error(&sb, &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")], BAD);
    assert!(has_colour(&out), "empty NO_COLOR: {}", stderr(&out));

    // 3. CLICOLOR_FORCE turns it on where there is no terminal; "0" does not.
    let out = piped_error(&sb, &[("CLICOLOR_FORCE", "1")], BAD);
    assert!(has_colour(&out), "CLICOLOR_FORCE: {}", stderr(&out));
    let out = piped_error(&sb, &[("CLICOLOR_FORCE", "0")], BAD);
    assert!(!has_colour(&out), "CLICOLOR_FORCE=0: {}", stderr(&out));

    // 4. Otherwise: a pipe gets none...
    let out = piped_error(&sb, &[], BAD);
    assert!(!has_colour(&out), "a pipe: {}", stderr(&out));
    assert!(stderr(&out).starts_with("error: "));

    // ...and a terminal gets colour, unless NO_COLOR or --color never says otherwise.
    let on_terminal = |env: &[(&str, &str)], args: &[&str]| {
        let mut pty = pty::Pty::spawn(coloured(&sb, env, args));
        assert_eq!(pty.wait(Duration::from_secs(30)).code(), Some(2));
        pty.output()
    };
    let text = on_terminal(&[("TERM", "xterm")], BAD);
    assert!(text.contains(ESC), "a terminal: {text:?}");
    let text = on_terminal(&[("TERM", "xterm"), ("NO_COLOR", "1")], BAD);
    assert!(text.contains("error:") && !text.contains(ESC), "{text:?}");
    let text = on_terminal(&[("TERM", "xterm")], &with("never"));
    assert!(text.contains("error:") && !text.contains(ESC), "{text:?}");
}

#[test]
fn results_on_stdout_are_coloured_by_the_same_rules() {
    let sb = Sandbox::new();
    sb.project_toml(&format!("image = {:?}\n", sb.image.tag));
    let check = |env: &[(&str, &str)]| {
        let out = coloured(&sb, env, &["check", &sb.project])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_code(&out, 0);
        stdout(&out)
    };
    assert!(check(&[("CLICOLOR_FORCE", "1")]).contains(ESC));
    assert!(!check(&[]).contains(ESC));
    assert!(!check(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains(ESC));
}

#[test]
fn clap_help_and_usage_errors_follow_the_colour_flag() {
    let sb = Sandbox::new();
    let out = coloured(&sb, &[], &["--color", "always", "deploy", "--no-such-flag"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(has_colour(&out), "{}", stderr(&out));
    let out = coloured(
        &sb,
        &[("CLICOLOR_FORCE", "1")],
        &["--color", "never", "list", "--nope"],
    )
    .output()
    .unwrap();
    assert_code(&out, 2);
    assert!(!has_colour(&out), "{}", stderr(&out));
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", stdout(out)))
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

fn sorted<'a>(keys: &[&'a str]) -> Vec<&'a str> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys
}

/// The shapes README.md documents under "JSON", key for key.
#[test]
fn json_parses_and_has_the_documented_shape() {
    let sb = Sandbox::new();
    sb.project_toml(&format!("image = {:?}\n", sb.image.tag));
    let report = [
        "project",
        "workspace",
        "workspace_state",
        "data_root",
        "sources",
        "plan",
        "docker_run",
        "verdict",
    ];

    let out = sb.berth(&["check", &sb.project, "--json"]);
    assert_code(&out, 0);
    let check = json(&out);
    assert_eq!(keys(&check), sorted(&report));
    assert_eq!(check["verdict"], "ok");

    let data = sb.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let out = sb
        .command(
            env!("CARGO_BIN_EXE_berth"),
            &["check", &sb.project, "--json"],
        )
        .env("HOST_DATA_PATH", &data)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let row = &json(&out)["data_root"][0];
    assert_eq!(keys(row), ["problem", "raw", "resolved", "source"]);
    assert_eq!(row["resolved"], data.to_str().unwrap());
    assert!(row["problem"].is_null());

    let out = sb.berth(&["deploy", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    assert_eq!(keys(&json(&out)), sorted(&report));

    let out = sb.berth(&["deploy", &sb.project, "--json"]);
    assert_code(&out, 0);
    let deployed = json(&out);
    assert_eq!(
        keys(&deployed),
        sorted(&["project", "container", "id", "action", "image", "hidden"])
    );
    assert_eq!(deployed["action"], "created");
    let out = sb.berth(&["deploy", &sb.project, "--json"]);
    assert_eq!(json(&out)["action"], "running");

    let out = sb.berth(&["list", "--json"]);
    assert_code(&out, 0);
    let listing = json(&out);
    assert_eq!(keys(&listing), ["containers", "volumes"]);
    let mine = listing["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["project"] == sb.project.as_str())
        .expect("the project's container is listed");
    for key in [
        "id",
        "name",
        "project",
        "user",
        "state",
        "status",
        "image",
        "workspace",
        "data",
        "size_rw",
    ] {
        assert!(mine.get(key).is_some(), "list has no {key}: {mine}");
    }
    assert_eq!(mine["state"], "running");

    let retire_keys = sorted(&[
        "project",
        "container",
        "state",
        "action",
        "classes",
        "packages",
        "volumes",
        "disposable",
        "disposable_by_project",
        "disposable_volumes",
        "deleted",
        "touched_dirs",
        "layer",
        "rescued",
        "image",
        "appeared",
        "read_by",
        "paused_ms",
        "saved_packages",
    ]);
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    let dry = json(&out);
    assert_eq!(keys(&dry), retire_keys);
    assert_eq!(dry["action"], "would_remove");
    // The tests run as root, on an overlay driver: berth reads the layer itself.
    assert_eq!(dry["read_by"]["source"], "direct", "{dry:#}");
    let out = sb.berth(&["retire", &sb.project, "--json"]);
    assert_code(&out, 0);
    assert_eq!(json(&out)["action"], "removed");
}

#[test]
fn verbose_and_check_say_who_read_the_changes() {
    let sb = Sandbox::new();
    sb.deployed();
    let out = sb.berth(&["retire", &sb.project, "--dry-run"]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("changes:"), "{}", stderr(&out));
    // Root on an overlay driver: berth's own walk.
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "-v"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "changes: berth read the container's layer itself");
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("(berth read the container's layer itself)"),
        "{}",
        stdout(&out)
    );
    // Told to use the engine, it says so, and why.
    let out = sb
        .command(
            env!("CARGO_BIN_EXE_berth"),
            &["retire", &sb.project, "--dry-run", "--verbose"],
        )
        .env("BERTH_LAYER_READER", "engine")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_stderr_has(
        &out,
        "changes: the engine's changes call listed them (berth could not read the layer \
         itself: BERTH_LAYER_READER=engine)",
    );
}

#[test]
fn quiet_prints_results_and_errors_only() {
    let sb = Sandbox::new();
    let out = sb.berth(&["-q", "deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "", "no notes with -q");

    // `list -q` names the projects, one per line, as `docker ps -q` gives ids.
    let out = sb.berth(&["list", "-q"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).lines().any(|l| l == sb.project),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("PROJECT"));

    // Errors still print.
    let out = sb.berth(&["-q", "check", "Not..A..Project"]);
    assert_code(&out, 2);
    assert_stderr_has(&out, "error:");
}

/// Runs berth with its stdout a pipe whose reading end is already closed, as
/// `berth list | head -1` leaves it once head has read its line.
fn into_closed_pipe(sb: &Sandbox, args: &[&str]) -> Output {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    sb.command(env!("CARGO_BIN_EXE_berth"), args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_pipe_ends_berth_quietly() {
    let sb = Sandbox::new();
    sb.project_toml(&format!("image = {:?}\n", sb.image.tag));
    assert_code(&sb.berth(&["deploy", &sb.project]), 0);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["list", "-q"],
        &["check", &sb.project, "--json"],
        &["retire", &sb.project, "--dry-run", "--json"],
        &["man", "berth"],
        &["completions", "bash"],
        &["--help"],
    ] {
        let out = into_closed_pipe(&sb, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "berth {args:?}: {}",
            stderr(&out)
        );
        // Notes on stderr are fine; a complaint about the pipe is not.
        let err = stderr(&out).to_lowercase();
        for noise in ["error", "pipe", "panicked", "warning"] {
            assert!(!err.contains(noise), "berth {args:?} is not quiet: {err}");
        }
    }
    // The literal pipeline, as a user types it.
    let out = sb.run(
        "bash",
        &[
            "-o",
            "pipefail",
            "-c",
            &format!("{} list | head -1", env!("CARGO_BIN_EXE_berth")),
        ],
    );
    assert_code(&out, 0);
    assert!(stdout(&out).starts_with("PROJECT"));
    assert_eq!(stderr(&out), "");
}
