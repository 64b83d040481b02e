//! The alarm on entry: `berth shell` and a deploy of a running project say, on stderr,
//! when the container holds more than `[retire] warn_over`.

use std::fs;

use crate::support::*;

/// A deployed busybox project whose user config sets `warn_over` to 1 MiB; the engine
/// is waited for, however busy the machine.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new().env("BERTH_ALARM_BUDGET_MS", "30000");
    let config = sb.home.join(".config/berth");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("config.toml"), "[retire]\nwarn_over = \"1M\"\n").unwrap();
    sb.deployed();
    sb
}

const ALARM: &str = "more than [retire] warn_over (1.0 MiB)";

#[test]
fn shell_and_deploy_of_a_running_project_say_when_it_holds_much() {
    let sb = sandbox();
    let shell = |sb: &Sandbox| sb.berth(&["shell", &sb.project, "--", "echo", "in"]);
    let quiet = shell(&sb);
    assert_code(&quiet, 0);
    assert!(!stderr(&quiet).contains("warn_over"), "{}", stderr(&quiet));

    assert_code(&sb.exec_as_root("head -c 3000000 /dev/zero > /opt/big"), 0);
    let out = shell(&sb);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "in\n", "stdout is the command's");
    assert_stderr_has(&out, ALARM);
    assert_stderr_has(&out, format!("`berth retire {} --dry-run`", sb.project));
    let said = stderr(&out);
    let warned = said.lines().filter(|l| l.contains("warn_over")).count();
    assert_eq!(warned, 1, "one line: {said}");

    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&out, 0);
    assert_stderr_has(&out, ALARM);

    // The project's file, which the container can write, cannot silence it.
    sb.project_toml("[retire]\nwarn_over = \"1G\"\n");
    assert_stderr_has(&shell(&sb), ALARM);
}

#[test]
fn a_layer_the_engine_cannot_size_in_time_is_not_waited_for() {
    let sb = sandbox();
    assert_code(&sb.exec_as_root("head -c 3000000 /dev/zero > /opt/big"), 0);
    let mut command = sb.command(
        env!("CARGO_BIN_EXE_berth"),
        &["shell", &sb.project, "--", "true"],
    );
    let out = command
        .env("BERTH_ALARM_BUDGET_MS", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("warn_over"), "{}", stderr(&out));
}
