//! Real pulls, offline: each test serves its own image from a registry on 127.0.0.1
//! (support/registry.rs). A log gets a few plain lines per layer, a terminal gets bars
//! that leave nothing behind, `--quiet` gets nothing; `run` pulls as `deploy` does, and
//! a tag the registry does not have is a clear error that leaves nothing.

use std::time::Duration;

use crate::support::registry::Registry;
use crate::support::*;

const TERMINAL: Duration = Duration::from_secs(60);

#[test]
fn deploy_pulls_with_a_few_plain_lines_per_layer_when_not_on_a_terminal() {
    let registry = Registry::start();
    let sb = Sandbox::new();
    let out = sb.berth(&["deploy", &sb.project, "--image", &registry.image]);
    assert_code(&out, 0);

    let c = sb.inspect().expect("the container exists");
    assert_eq!(c["Config"]["Image"], registry.image.as_str());
    assert_eq!(c["State"]["Status"], "running");
    assert_code(&sb.exec("test -x /bin/busybox && test -L /bin/ls"), 0);

    let err = stderr(&out);
    assert!(
        !err.contains('\r') && !err.contains('\x1b'),
        "a log gets no redrawing:\n{err:?}"
    );
    assert_stderr_has(
        &out,
        format!("pulling {} (not on this engine yet)", registry.image),
    );
    for id in &registry.layer_ids {
        let lines = err
            .lines()
            .filter(|line| line.starts_with(&format!("{id}: ")))
            .count();
        assert!(
            (2..=8).contains(&lines),
            "{lines} lines for layer {id}:\n{err}"
        );
        assert!(err.contains(&format!("{id}: Pull complete")), "{err}");
    }
    assert!(err.contains("Digest: sha256:"), "{err}");
    assert_stderr_has(
        &out,
        format!("Status: Downloaded newer image for {}", registry.image),
    );
}

#[test]
fn deploy_on_a_terminal_draws_bars_then_ends_with_its_usual_lines() {
    let registry = Registry::start();
    let sb = Sandbox::new().env("TERM", "xterm");
    // Wide enough for berth's lines not to wrap.
    let args = ["deploy", &sb.project, "--image", &registry.image];
    let mut pty = sb.berth_pty_sized(&args, 24, 240);
    let status = pty.wait(TERMINAL);
    let output = pty.output();
    assert_eq!(status.code(), Some(0), "{output:?}");
    assert_eq!(sb.state(), "running");

    // The bars: each layer's id and status, and bytes of bytes, redrawn in place.
    for id in &registry.layer_ids {
        assert!(output.contains(&format!("{id}: Downloading")), "{output:?}");
    }
    assert!(output.contains("iB/"), "bytes of bytes:\n{output:?}");
    assert!(output.contains("\x1b["), "drawn in place:\n{output:?}");

    // What stays on the screen: no bar, berth's usual lines, the cursor after them.
    let (lines, cursor) = screen(&output, 240);
    assert_eq!(lines.len(), 4, "{lines:#?}\n{output:?}");
    assert_eq!(
        lines[0],
        format!("pulling {} (not on this engine yet)", registry.image)
    );
    let size = lines[1]
        .strip_prefix(&format!("pulled {} (2 layers, ", registry.image))
        .and_then(|rest| rest.strip_suffix(')'));
    assert!(size.is_some_and(|s| s.ends_with("MiB")), "{lines:#?}");
    assert!(lines[2].starts_with("created workspace "), "{lines:#?}");
    assert!(
        lines[3].starts_with(&format!("deployed {} ", sb.container())),
        "{lines:#?}"
    );
    assert_eq!(cursor, (4, 0), "the cursor is on a fresh line");
}

#[test]
fn a_pull_that_fails_on_a_terminal_takes_its_bars_away() {
    let registry = Registry::with_a_corrupt_layer();
    let sb = Sandbox::new().env("TERM", "xterm");
    // Wide enough for the error not to wrap.
    let args = ["deploy", &sb.project, "--image", &registry.image];
    let mut pty = sb.berth_pty_sized(&args, 24, 240);
    let status = pty.wait(TERMINAL);
    let output = pty.output();
    assert_eq!(status.code(), Some(1), "{output:?}");
    assert!(
        output.contains("Downloading"),
        "bars were drawn:\n{output:?}"
    );

    let (lines, cursor) = screen(&output, 240);
    assert_eq!(lines.len(), 3, "{lines:#?}\n{output:?}");
    assert_eq!(
        lines[0],
        format!("pulling {} (not on this engine yet)", registry.image)
    );
    assert!(
        lines[1].starts_with(&format!(
            "error: cannot pull image {}: filesystem layer verification failed",
            registry.image
        )),
        "{lines:#?}"
    );
    assert!(lines[2].starts_with("hint: "), "{lines:#?}");
    assert_eq!(cursor, (3, 0), "the cursor is on a fresh line");
    assert!(!sb.exists());
    assert!(!sb.workspace().exists());
}

#[test]
fn a_dumb_terminal_gets_the_plain_lines() {
    let registry = Registry::start();
    let sb = Sandbox::new().env("TERM", "dumb");
    let mut pty = sb.berth_pty(&["deploy", &sb.project, "--image", &registry.image]);
    let status = pty.wait(TERMINAL);
    let screen = pty.output();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(!screen.contains('\x1b'), "{screen:?}");
    for id in &registry.layer_ids {
        assert!(
            screen.contains(&format!("{id}: Pull complete\r\n")),
            "{screen:?}"
        );
    }
}

#[test]
fn quiet_pulls_print_nothing() {
    let registry = Registry::start();
    let sb = Sandbox::new();
    let out = sb.berth(&["-q", "deploy", &sb.project, "--image", &registry.image]);
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "");
    assert_eq!(sb.state(), "running");
}

#[test]
fn run_pulls_a_missing_image_too() {
    let registry = Registry::start();
    let sb = Sandbox::new();
    sb.project_toml("");
    let out = sb.berth(&[
        "run",
        "--rm",
        "--project",
        &sb.project,
        &registry.image,
        "ls",
        "/bin/busybox",
    ]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "/bin/busybox\n");
    for id in &registry.layer_ids {
        assert_stderr_has(&out, format!("{id}: Pull complete"));
    }
    assert_code(&docker(&["image", "inspect", &registry.image]), 0);
    assert_eq!(sb.container_ids(), "", "--rm removed the container");
}

#[test]
fn a_tag_the_registry_does_not_have_is_a_clear_error_and_leaves_nothing() {
    let registry = Registry::start();
    let sb = Sandbox::new();
    let missing = registry.missing();
    let out = sb.berth(&["deploy", &sb.project, "--image", &missing]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!("error: cannot pull image {missing}: manifest unknown"),
    );
    assert_stderr_has(&out, "hint: check the name with `docker images`");
    assert!(!sb.exists());
    assert!(!sb.workspace().exists());
    assert_code(&docker(&["image", "inspect", &missing]), 1);
}

/// What a terminal shows after `output`: its lines (trailing blanks trimmed) and where
/// the cursor is (row, column). Enough of a VT100 for what indicatif and berth write:
/// text that wraps at `cols` (once a character is written past the last column, as
/// terminals do), CR, LF, cursor up and down, erase in line; other escape sequences are
/// skipped.
fn screen(output: &str, cols: usize) -> (Vec<String>, (usize, usize)) {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col, mut pending_wrap) = (0usize, 0usize, false);
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => (col, pending_wrap) = (0, false),
            '\n' => (row, pending_wrap) = (row + 1, false),
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut params = String::new();
                let mut action = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        action = c;
                        break;
                    }
                    params.push(c);
                }
                let n: usize = params.parse().unwrap_or(1);
                pending_wrap = false;
                match action {
                    'A' => row = row.saturating_sub(n),
                    'B' => row += n,
                    'K' => {
                        let line = &mut rows[row];
                        match params.as_str() {
                            "2" => line.clear(),
                            "" | "0" => line.truncate(col),
                            _ => line.truncate(0),
                        }
                    }
                    _ => {}
                }
            }
            c => {
                if pending_wrap {
                    (row, col, pending_wrap) = (row + 1, 0, false);
                }
                while rows.len() <= row {
                    rows.push(Vec::new());
                }
                let line = &mut rows[row];
                while line.len() <= col {
                    line.push(' ');
                }
                line[col] = c;
                if col + 1 == cols {
                    pending_wrap = true;
                } else {
                    col += 1;
                }
            }
        }
        while rows.len() <= row {
            rows.push(Vec::new());
        }
    }
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| r.iter().collect::<String>().trim_end().to_string())
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    (lines, (row, col))
}
