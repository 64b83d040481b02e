//! Hostile input against a real engine: project names that could escape, TOML that is
//! broken, huge, deep, mistyped or not text, env files in every odd syntax, symlink loops
//! where the data root should be, and a workspace that is not a directory. Each is read
//! as docker or compose would read it, or refused with a clear message and the right exit
//! code; either way nothing is left behind that the refusal did not need.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Nothing of berth's exists: no container of the project, no persistent home, no
/// remembered data root, and no identity marker anywhere in the sandbox.
#[track_caller]
fn assert_nothing_created(sb: &Sandbox) {
    assert_eq!(sb.container_ids().trim(), "", "a container was created");
    let share = sb.home.join(".local/share/berth");
    assert!(!share.exists(), "{} was created", share.display());
    let remembered = sb.state_dir().join("data-roots.json");
    assert!(!remembered.exists(), "a data root was remembered");
    assert_eq!(
        markers(sb.path()),
        Vec::<String>::new(),
        "a marker was written"
    );
}

/// Every `.berth-data-id` under `dir`, symlinks not followed (the tests make loops).
fn markers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name() == ".berth-data-id" {
            found.push(path.display().to_string());
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(markers(&path));
        }
    }
    found
}

/// Runs berth, failing the test if it takes more than `limit`.
#[track_caller]
fn berth_within(sb: &Sandbox, limit: Duration, args: &[&str]) -> std::process::Output {
    let start = Instant::now();
    let out = sb.berth(args);
    let took = start.elapsed();
    assert!(took < limit, "{args:?} took {took:?}");
    out
}

// ---- Project names ----

#[test]
fn hostile_project_names_are_usage_errors_for_check_shell_run_and_create() {
    let sb = Sandbox::new();
    let long = "x".repeat(70);
    for name in [
        "..",
        ".",
        "/",
        "",
        "Upper",
        "-dash",
        "a/../../b",
        long.as_str(),
    ] {
        for args in [
            vec!["check", name],
            vec!["shell", name],
            vec!["deploy", name, "--image", &sb.image.tag, "--new"],
            vec!["run", "--project", name, &sb.image.tag, "true"],
            vec!["create", "--project", name, &sb.image.tag],
        ] {
            let out = sb.berth(&args);
            assert_code(&out, 2);
            // clap refuses `-dash` after check and shell as an unknown flag.
            let err = stderr(&out);
            assert!(
                err.contains(&format!("invalid project name {name:?}"))
                    || err.contains("unexpected argument '-d'"),
                "{args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{args:?}: {err}");
        }
    }
    assert!(!sb.workspace_root.exists(), "no workspace root was made");
    assert!(!sb.path().join("b").exists());
    assert_nothing_created(&sb);
}

// ---- TOML ----

#[test]
fn a_huge_or_endless_config_file_is_refused_at_once() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("berth.toml");
    // 50 MB of valid TOML: parsing it would take minutes and gigabytes.
    let mut text = format!("image = \"{}\"\n[env]\n", sb.image.tag);
    let mut n = 0;
    while text.len() < 50 << 20 {
        text.push_str(&format!("VARIABLE_{n} = \"value\"\n"));
        n += 1;
    }
    sb.project_toml(&text);
    for args in [
        vec!["deploy", &sb.project],
        vec!["check", &sb.project],
        vec!["run", "--project", &sb.project, &sb.image.tag, "true"],
    ] {
        let out = berth_within(&sb, Duration::from_secs(10), &args);
        assert_code(&out, 1);
        assert_stderr_has(
            &out,
            format!(
                "error: {} is larger than 1 MiB, the most berth reads",
                file.display()
            ),
        );
        assert_stderr_has(&out, "hint:");
    }
    // A device that never ends, where the file should be.
    fs::remove_file(&file).unwrap();
    symlink("/dev/zero", &file).unwrap();
    let out = berth_within(&sb, Duration::from_secs(10), &["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "is larger than 1 MiB");
    // The policy and the user config have the same limit.
    fs::remove_file(&file).unwrap();
    fs::write(&sb.policy, "#".repeat(2 << 20)).unwrap();
    let out = berth_within(&sb, Duration::from_secs(10), &["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, format!("{} is larger", sb.policy.display()));
    assert_nothing_created(&sb);
}

#[test]
fn deeply_nested_toml_is_a_clear_error_not_a_stack_overflow() {
    let sb = Sandbox::new();
    let deep = 100_000;
    for text in [
        format!("image = {}{}\n", "[".repeat(deep), "]".repeat(deep)),
        format!("env = {}1{}\n", "{ a = ".repeat(deep), " }".repeat(deep)),
        format!("{} = 1\n", vec!["a"; deep].join(".")),
        format!("[{}]\n", vec!["t"; deep].join(".")),
    ] {
        sb.project_toml(&text);
        let out = berth_within(&sb, Duration::from_secs(10), &["deploy", &sb.project]);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("berth.toml:1:"), "{err}");
        assert!(err.contains("recurs"), "{err}");
        assert!(
            !err.contains("overflow") && !err.contains("panicked"),
            "{err}"
        );
    }
    assert_nothing_created(&sb);
}

#[test]
fn wrong_types_and_values_in_berth_toml_name_the_file_and_line() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("berth.toml");
    let image = format!("image = \"{}\"\n", sb.image.tag);
    let cases: Vec<(String, i32, String)> = vec![
        (
            format!("{image}env = \"x\"\n"),
            1,
            ":2:7: invalid type: string \"x\", expected a map".into(),
        ),
        (
            "image = []\n".into(),
            1,
            ":1:9: invalid type: sequence, expected a string".into(),
        ),
        (
            format!("{image}[data]\nhost_path = 1\n"),
            1,
            ":3:13: invalid type: integer `1`, expected a string".into(),
        ),
        (
            format!("{image}memory = 5\n"),
            1,
            format!(
                "memory 5 bytes is below docker's minimum of 6 MiB (from project {})",
                file.display()
            ),
        ),
        (
            format!("{image}memory = \"lots\"\n"),
            1,
            ":2:10: invalid size \"lots\"".into(),
        ),
        (
            format!("{image}env = {{ \"\" = \"x\" }}\n"),
            1,
            ":2:7: invalid variable name \"\"".into(),
        ),
        (
            format!("{image}env = {{ A = \"x\\u0000y\" }}\n"),
            1,
            "the value of A holds a NUL byte".into(),
        ),
        ("image = \"\"\n".into(), 1, "the image is empty".into()),
        (
            format!("{image}command = [\"\"]\n"),
            1,
            "the command's first word is empty".into(),
        ),
    ];
    for (text, code, want) in cases {
        sb.project_toml(&text);
        let out = sb.berth(&["deploy", &sb.project]);
        assert_code(&out, code);
        assert_stderr_has(&out, &want);
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
        assert_stderr_has(&out, "hint: ");
        assert_nothing_created(&sb);
    }
}

#[test]
fn a_data_target_that_cannot_hold_the_root_is_refused_before_anything_exists() {
    let sb = Sandbox::new();
    let root = sb.path().join("share");
    fs::create_dir(&root).unwrap();
    for (target, code, want) in [
        ("relative", 1, "cannot hold the data root"),
        ("/", 1, "cannot hold the data root"),
        ("/workspace", 3, "would shadow the workspace"),
        ("/workspace/data", 3, "would shadow the workspace"),
    ] {
        sb.project_toml(&format!(
            "image = \"{}\"\n[data]\nhost_path = \"{}\"\ntarget = \"{target}\"\n",
            sb.image.tag,
            root.display()
        ));
        for args in [
            vec!["deploy", &sb.project],
            vec!["run", "--project", &sb.project, &sb.image.tag, "true"],
        ] {
            let out = sb.berth(&args);
            assert_code(&out, code);
            assert_stderr_has(&out, want);
            assert_nothing_created(&sb);
        }
    }
}

#[test]
fn a_config_that_is_not_a_readable_text_file_is_a_clear_error() {
    let sb = Sandbox::new();
    let file = sb.workspace().join("berth.toml");
    // Not UTF-8: the line of the first bad byte.
    sb.project_toml("");
    fs::write(&file, b"# ok\nimage = \"\xff\xfe\"\n").unwrap();
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!(
            "error: {}:2: not a text file (TOML must be UTF-8)",
            file.display()
        ),
    );
    // A directory where the file should be.
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!("error: cannot read {}: is a directory", file.display()),
    );
    // A user config named by BERTH_CONFIG that is a directory.
    fs::remove_dir(&file).unwrap();
    let root = sb.workspace_root.display().to_string();
    let sb = sb.env("BERTH_CONFIG", &root);
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, ": is a directory");
    assert_nothing_created(&sb);
}

#[test]
fn an_unreadable_config_is_a_clear_error() {
    // Root reads any file: the test needs berth to run as another user.
    let run_as = match test_user() {
        Some((uid, gid)) => RunAs::Other { uid, gid },
        None => RunAs::Me,
    };
    let sb = Sandbox::with_user(run_as);
    sb.project_toml(&format!("image = \"{}\"\n", sb.image.tag));
    let file = sb.workspace().join("berth.toml");
    set_mode(&file, 0o000);
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!("error: cannot read {}: permission denied", file.display()),
    );
    assert_nothing_created(&sb);
}

// ---- Env files ----

/// The environment `check --json` plans for the project, without HOME.
fn planned_env(sb: &Sandbox) -> Value {
    let out = sb.berth(&["check", &sb.project, "--json"]);
    assert_code(&out, 0);
    let mut plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let env = plan["plan"]["env"].take();
    let mut env = env.as_object().unwrap().clone();
    env.remove("HOME");
    Value::Object(env)
}

#[test]
fn env_files_in_berth_toml_read_compose_syntax_or_name_the_file_and_line() {
    let sb = Sandbox::new().env("FROM_HOST", "host value");
    sb.project_toml(&format!(
        "image = \"{}\"\nenv_files = [\"vars.env\"]\n",
        sb.image.tag
    ));
    let vars = sb.workspace().join("vars.env");
    // What compose accepts: CRLF, `export`, quotes, comments, a bare name taken from the
    // environment (or left out), `=` in a value, an empty value.
    fs::write(
        &vars,
        "\u{feff}# settings\r\nexport A=1\r\nB = 'single # kept' # comment\r\n\
         C=\"double \\\"q\\\" \\n\"\r\nFROM_HOST\r\nNOT_SET\r\nD=x=y\r\nE=\r\n",
    )
    .unwrap();
    let env = planned_env(&sb);
    assert_eq!(
        env,
        serde_json::json!({
            "A": "1", "B": "single # kept", "C": "double \"q\" \n", "D": "x=y", "E": "",
            "FROM_HOST": "host value"
        })
    );
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    let c = sb.inspect().unwrap();
    let set: Vec<&str> = c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for entry in [
        "A=1",
        "B=single # kept",
        "D=x=y",
        "E=",
        "FROM_HOST=host value",
    ] {
        assert!(set.contains(&entry), "{entry} not in {set:?}");
    }
    assert_code(&sb.berth(&["retire", &sb.project, "--yes"]), 0);
    fs::remove_dir_all(sb.home.join(".local/share/berth")).unwrap();

    let file = vars.display().to_string();
    let listed_by = format!(
        "hint: project {} lists it in env_files",
        sb.workspace().join("berth.toml").display()
    );
    let huge = format!("A={}\n", "x".repeat(2 << 20));
    let cases: Vec<(&[u8], String)> = vec![
        (
            b"A=1\n=1\n",
            format!("{file}:2: missing variable name before '='"),
        ),
        (
            b"A B=1\n",
            format!("{file}:1: invalid variable name \"A B\""),
        ),
        (
            b"A=1\nB=x\0y\n",
            format!("{file}:2: the value of B holds a NUL byte"),
        ),
        (
            b"A\0=1\n",
            format!("{file}:1: invalid variable name \"A\\0\""),
        ),
        (
            b"A=1\nB=\"open\nC=2\n",
            format!("{file}:2: unterminated double-quoted value"),
        ),
        (
            b"A=1\r\nB=\xff\r\n",
            format!("{file}:2: not a text file (an env file must be UTF-8)"),
        ),
        (huge.as_bytes(), format!("{file} is larger than 1 MiB")),
    ];
    for (bytes, want) in cases {
        fs::write(&vars, bytes).unwrap();
        let out = sb.berth(&["deploy", &sb.project]);
        assert_code(&out, 1);
        assert_stderr_has(&out, format!("error: {want}"));
        assert_nothing_created(&sb);
    }
    // Missing, or a directory: the hint says which file lists it.
    fs::remove_file(&vars).unwrap();
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, format!("error: the env file {file} does not exist"));
    assert_stderr_has(&out, &listed_by);
    fs::create_dir(&vars).unwrap();
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, format!("error: cannot read {file}: is a directory"));
    assert_stderr_has(&out, &listed_by);
    assert_nothing_created(&sb);
}

#[test]
fn a_dot_env_directory_is_a_virtualenv_not_an_env_file() {
    let sb = Sandbox::new();
    sb.project_toml(&format!("image = \"{}\"\n", sb.image.tag));
    fs::create_dir_all(sb.workspace().join(".env/bin")).unwrap();
    assert_eq!(planned_env(&sb), serde_json::json!({}));
}

#[test]
fn run_env_file_reads_dockers_syntax_or_exits_125_naming_the_file_and_line() {
    let sb = Sandbox::new().env("SET_HERE", "v");
    sb.project_toml("");
    let vars = sb.path().join("run.env");
    let file = vars.display().to_string();
    // docker's rules: taken literally (quotes, spaces and CR kept off only at the end of
    // the line), a bare name from the environment or left out.
    fs::write(
        &vars,
        "# c\r\nA='q' \r\n  B=\"x y\"\r\nSET_HERE\r\nNOT_SET\r\nC=a=b\r\n",
    )
    .unwrap();
    let out = sb.berth(&[
        "run",
        "--dry-run",
        "--project",
        &sb.project,
        "--env-file",
        &file,
        &sb.image.tag,
    ]);
    assert_code(&out, 0);
    let line = stdout(&out);
    for want in [
        "--env 'A='\\''q'\\'' '",
        "--env 'B=\"x y\"'",
        "--env SET_HERE=v",
        "--env C=a=b",
    ] {
        assert!(line.contains(want), "{want} not in {line}");
    }
    assert!(!line.contains("NOT_SET"), "{line}");

    let long = format!("A={}\n", "x".repeat(70_000));
    let cases: Vec<(&[u8], String)> = vec![
        (b"=1\n", "line 1: no variable name in '=1'".into()),
        (
            b"A=1\nA B=1\n",
            "line 2: variable 'A B' contains whitespaces".into(),
        ),
        (
            b"export X=1\n",
            "line 1: variable 'export X' contains whitespaces".into(),
        ),
        (b"A=x\0y\n", "line 1: variable 'A' holds a NUL byte".into()),
        (
            b"A=1\nB=\xff\n",
            "invalid utf8 bytes at line 2: [66 61 255]".into(),
        ),
        (
            long.as_bytes(),
            "line 1 is longer than docker's limit of 65535 bytes".into(),
        ),
    ];
    for (bytes, want) in cases {
        fs::write(&vars, bytes).unwrap();
        for command in ["run", "create"] {
            let out = sb.berth(&[
                command,
                "--project",
                &sb.project,
                "--env-file",
                &file,
                &sb.image.tag,
            ]);
            assert_code(&out, 125);
            assert_stderr_has(&out, format!("invalid env file ({file}): {want}"));
            assert_nothing_created(&sb);
        }
    }
    let missing = sb.path().join("missing.env");
    for (path, want) in [
        (
            missing.display().to_string(),
            format!("open {}: no such file or directory", missing.display()),
        ),
        (
            sb.path().display().to_string(),
            format!("read {}: is a directory", sb.path().display()),
        ),
        ("/dev/zero".to_string(), "line 1 is longer".to_string()),
    ] {
        let out = berth_within(
            &sb,
            Duration::from_secs(10),
            &[
                "run",
                "--project",
                &sb.project,
                "--env-file",
                &path,
                &sb.image.tag,
            ],
        );
        assert_code(&out, 125);
        assert_stderr_has(&out, &want);
    }
    assert_nothing_created(&sb);
}

// ---- Symlink loops in the data root ----

/// Runs berth with HOST_DATA_PATH set to `value`.
fn with_data_path(sb: &Sandbox, value: &str, args: &[&str]) -> std::process::Output {
    sb.command(env!("CARGO_BIN_EXE_berth"), args)
        .env("HOST_DATA_PATH", value)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("berth runs")
}

#[test]
fn a_data_root_that_is_a_symlink_loop_is_refused_and_nothing_is_written() {
    let sb = Sandbox::new();
    let dir = sb.path();
    symlink(dir.join("b"), dir.join("a")).unwrap();
    symlink(dir.join("a"), dir.join("b")).unwrap();
    // A loop among the root's own path components.
    symlink(dir.join("loop2"), dir.join("loop1")).unwrap();
    symlink(dir.join("loop1"), dir.join("loop2")).unwrap();
    sb.project_toml(&format!("image = \"{}\"\n", sb.image.tag));
    // The data root named in the environment.
    for value in [
        dir.join("a").display().to_string(),
        dir.join("loop1/share/data").display().to_string(),
    ] {
        let out = with_data_path(&sb, &value, &["deploy", &sb.project]);
        assert_code(&out, 3);
        assert_stderr_has(&out, "environment HOST_DATA_PATH is unusable");
        assert_stderr_has(
            &out,
            format!("{value} cannot be followed: too many levels of symbolic links"),
        );
        assert_stderr_has(&out, "hint: berth never creates a data root");
        let out = with_data_path(&sb, &value, &["check", &sb.project]);
        assert_code(&out, 3);
        assert_nothing_created(&sb);
    }
    // Named by berth.toml, relative to it.
    sb.project_toml(&format!(
        "image = \"{}\"\n[data]\nhost_path = \"../../../a/\"\n",
        sb.image.tag
    ));
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "too many levels of symbolic links");
    assert_stderr_has(&out, "berth.toml is unusable");
    assert_nothing_created(&sb);
}

#[test]
fn a_marker_planted_in_a_shared_root_is_refused_not_followed() {
    let sb = Sandbox::new();
    let root = sb.path().join("share");
    fs::create_dir(&root).unwrap();
    sb.project_toml(&format!(
        "image = \"{}\"\n[data]\nhost_path = \"{}\"\n",
        sb.image.tag,
        root.display()
    ));
    let marker = root.join(".berth-data-id");
    // Another user of the share points the marker at a file of the deployer's, or at a
    // device that never ends.
    let victim = sb.home.join("victim");
    for target in [victim.as_path(), Path::new("/dev/zero")] {
        symlink(target, &marker).unwrap();
        let out = berth_within(&sb, Duration::from_secs(10), &["deploy", &sb.project]);
        assert_code(&out, 3);
        assert_stderr_has(
            &out,
            format!(
                "error: the data root's identity marker {} is not a file berth wrote",
                marker.display()
            ),
        );
        assert_stderr_has(&out, "hint: it is a symlink");
        fs::remove_file(&marker).unwrap();
    }
    assert!(!victim.exists());
    assert_nothing_created(&sb);
}

// ---- A workspace that is not a directory ----

#[test]
fn a_workspace_that_is_a_file_or_a_dangling_symlink_is_a_clear_error() {
    let sb = Sandbox::new();
    fs::create_dir_all(&sb.workspace_root).unwrap();
    let workspace = sb.workspace();
    let commands = |sb: &Sandbox| {
        [
            vec![
                "deploy".to_string(),
                sb.project.clone(),
                "--image".into(),
                sb.image.tag.clone(),
            ],
            vec!["check".into(), sb.project.clone()],
            vec![
                "run".into(),
                "--project".into(),
                sb.project.clone(),
                sb.image.tag.clone(),
            ],
        ]
    };
    // A regular file.
    fs::write(&workspace, "not a directory").unwrap();
    for args in commands(&sb) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.berth(&args);
        assert_code(&out, 1);
        assert_stderr_has(
            &out,
            format!(
                "error: the workspace {} exists but is not a directory",
                workspace.display()
            ),
        );
        assert_stderr_has(&out, "hint: move it aside");
    }
    assert_eq!(fs::read_to_string(&workspace).unwrap(), "not a directory");
    // A dangling symlink: nothing is made where it points.
    fs::remove_file(&workspace).unwrap();
    let target = sb.path().join("elsewhere/project");
    symlink(&target, &workspace).unwrap();
    for args in commands(&sb) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.berth(&args);
        assert_code(&out, 1);
        assert_stderr_has(
            &out,
            format!(
                "error: the workspace {} is a symlink to {}, which does not exist",
                workspace.display(),
                target.display()
            ),
        );
    }
    assert!(!sb.path().join("elsewhere").exists());
    // The workspace root itself is a file.
    fs::remove_file(&workspace).unwrap();
    fs::remove_dir(&sb.workspace_root).unwrap();
    fs::write(&sb.workspace_root, "").unwrap();
    for args in commands(&sb) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.berth(&args);
        assert_code(&out, 1);
        assert_stderr_has(
            &out,
            format!(
                "error: the workspace root {} is not a directory",
                sb.workspace_root.display()
            ),
        );
    }
    assert!(sb.workspace_root.is_file());
    assert_nothing_created(&sb);
}
