//! berth against a real Docker engine: every test runs the real binaries in a hermetic
//! sandbox (see support/) and observes the result with the docker CLI.

mod support;

#[path = "integration/alarm.rs"]
mod alarm;
#[path = "integration/backup.rs"]
mod backup;
#[path = "integration/build.rs"]
mod build;
#[path = "integration/complete.rs"]
mod complete;
#[path = "integration/contexts.rs"]
mod contexts;
#[path = "integration/faults.rs"]
mod faults;
#[path = "integration/gpu.rs"]
mod gpu;
#[path = "integration/hostile.rs"]
mod hostile;
#[path = "integration/layer.rs"]
mod layer;
#[path = "integration/layouts.rs"]
mod layouts;
#[path = "integration/output.rs"]
mod output;
#[path = "integration/persist.rs"]
mod persist;
#[path = "integration/policy.rs"]
mod policy;
#[path = "integration/pull.rs"]
mod pull;
#[path = "integration/reap.rs"]
mod reap;
#[path = "integration/rescue.rs"]
mod rescue;
#[path = "integration/restore.rs"]
mod restore;
#[path = "integration/retire.rs"]
mod retire;
#[path = "integration/run.rs"]
mod run;
#[path = "integration/slurm.rs"]
mod slurm;
#[path = "integration/snapshot.rs"]
mod snapshot;

use std::fs;

use support::*;

#[test]
fn deploy_creates_exactly_the_planned_container() {
    let sb = Sandbox::new();
    let out = sb.berth(&[
        "deploy",
        &sb.project,
        "--image",
        &sb.image.tag,
        "--cpus",
        "1.5",
        "--memory",
        "256m",
        "--shm-size",
        "64m",
        "-e",
        "FOO=bar",
    ]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "created workspace");

    let c = sb.inspect().expect("the container exists");
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["Config"]["WorkingDir"], "/workspace");
    let uid = unsafe { libc::getuid() };
    let gid = unsafe { libc::getgid() };
    assert_eq!(c["Config"]["User"], format!("{uid}:{gid}"));
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["berth.project"], sb.project.as_str());
    assert_eq!(labels["berth.user"], uid.to_string());
    assert_eq!(labels["berth.workspace"], sb.workspace().to_str().unwrap());
    assert_eq!(labels["berth.data"], "");
    assert_eq!(labels["berth.version"], env!("CARGO_PKG_VERSION"));
    let host = &c["HostConfig"];
    assert_eq!(host["NanoCpus"], 1_500_000_000i64);
    assert_eq!(host["Memory"], 256i64 << 20);
    assert_eq!(host["ShmSize"], 64i64 << 20);
    assert_eq!(host["Init"], true);

    let mut mounts: Vec<(String, String, bool)> = c["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["Destination"].as_str().unwrap().to_string(),
                m["Source"].as_str().unwrap().to_string(),
                m["RW"].as_bool().unwrap(),
            )
        })
        .collect();
    mounts.sort();
    let home_inside = if uid == 0 {
        "/root".to_string()
    } else {
        format!("/home/{}", whoami())
    };
    let home_host = sb.container_home();
    let mut expected = vec![
        (home_inside.clone(), home_host.display().to_string(), true),
        (
            "/workspace".to_string(),
            sb.workspace().display().to_string(),
            true,
        ),
    ];
    expected.sort();
    assert_eq!(mounts, expected);
    let env: Vec<&str> = c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(env.contains(&"FOO=bar"), "{env:?}");
    assert!(
        env.contains(&format!("HOME={home_inside}").as_str()),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|e| e.starts_with("HOST_DATA_PATH=")),
        "{env:?}"
    );
}

#[test]
fn workspace_files_belong_to_the_host_user_when_root() {
    let sb = Sandbox::new();
    sb.deployed();
    assert_code(&sb.exec("echo hello > /workspace/out.txt"), 0);
    let file = sb.workspace().join("out.txt");
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello\n");
    assert_eq!(owner(&file), unsafe { libc::getuid() });
}

#[test]
fn workspace_and_home_files_belong_to_a_non_root_host_user() {
    let Some((uid, gid)) = test_user() else {
        eprintln!("skipped: creating a second host user needs root");
        return;
    };
    let sb = Sandbox::with_user(RunAs::Other { uid, gid });
    sb.deployed();
    let c = sb.inspect().unwrap();
    assert_eq!(c["Config"]["User"], format!("{uid}:{gid}"));
    assert_code(
        &sb.exec("echo work > /workspace/result.txt && echo note > $HOME/notes && id -u"),
        0,
    );
    let result = sb.workspace().join("result.txt");
    assert_eq!(owner(&result), uid);
    assert_eq!(owner(&sb.workspace()), uid);
    let home = sb.container_home();
    assert_eq!(owner(&home.join("notes")), uid);
}

#[test]
fn inside_the_container_you_are_you_and_retire_knows_it_was_berth() {
    let Some((uid, gid)) = test_user() else {
        eprintln!("skipped: creating a second host user needs root");
        return;
    };
    let sb = Sandbox::with_user(RunAs::Other { uid, gid });
    sb.deployed();
    // busybox's image knows only root; berth taught it the host user.
    let out = sb.exec("id -un; id -gn; echo $HOME; stat -c %U $HOME");
    assert_code(&out, 0);
    let home = format!("/home/{TEST_USER}");
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [TEST_USER, TEST_USER, home.as_str(), TEST_USER]
    );
    // The label holds the digests of the two files berth wrote.
    let label = sb.inspect().unwrap()["Config"]["Labels"]["berth.identity"].clone();
    let digests: Vec<&str> = label.as_str().unwrap().split(' ').collect();
    assert_eq!(digests.len(), 2, "{label}");
    assert!(digests.iter().all(|d| d.len() == 64), "{label}");

    // Written into the layer, never mounted: root in the container may change them.
    let targets = |c: &serde_json::Value| -> Vec<String> {
        c["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Destination"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!targets(&sb.inspect().unwrap()).contains(&"/etc/passwd".to_string()));

    // The two files berth wrote are not work: retire removes the container unasked.
    let retired = |sb: &Sandbox| {
        let out = sb.berth(&["retire", &sb.project, "--json"]);
        assert_code(&out, 0);
        let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(outcome["action"], "removed");
    };
    retired(&sb);

    // The second deploy of the image is the same to its user, and to root in it.
    sb.deployed();
    let c = sb.inspect().unwrap();
    assert!(!targets(&c).contains(&"/etc/passwd".to_string()), "{c}");
    assert_eq!(
        c["Config"]["Labels"]["berth.identity"], label,
        "the same files"
    );
    let out = sb.exec("id -un; id -gn; grep -c '^root:' /etc/passwd; ls -l /etc/passwd");
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..3], [TEST_USER, TEST_USER, "1"], "{lines:?}");
    assert!(lines[3].starts_with("-rw-r--r--"), "{lines:?}");
    assert_code(&sb.exec("echo x >> /etc/passwd"), 1);
    retired(&sb);

    // A change root makes to them is work, shown and kept.
    sb.deployed();
    assert_code(
        &sb.exec_as_root("echo 'alice:x:1001:1001::/home/alice:/bin/sh' >> /etc/passwd"),
        0,
    );
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["action"], "would_ask", "{report:#}");
    let paths: Vec<&str> = report["classes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|class| class["paths"].as_array().unwrap())
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/etc/passwd"], "the group file is still berth's");
    assert_code(&sb.berth(&["retire", &sb.project, "--yes"]), 0);

    // `berth run` as the host user gets the same; with `-u` it is the image's business.
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--project", sb.project.as_str()];
        args.extend_from_slice(extra);
        args.extend([sb.image.tag.as_str(), "id", "-un"]);
        sb.berth(&args)
    };
    let out = run(&[]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), TEST_USER);
    let out = run(&["-u", "0"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "root");
}

#[test]
fn a_stopped_container_whose_mount_is_gone_is_explained_and_kept() {
    let sb = Sandbox::new();
    let deploy = || sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&deploy(), 0);
    assert_code(&docker(&["stop", "-t", "0", &sb.container()]), 0);
    let home = sb.container_home();
    fs::remove_dir_all(&home).unwrap();

    let out = deploy();
    assert_code(&out, 1);
    assert_stderr_has(&out, "bind source path does not exist");
    assert_stderr_has(
        &out,
        format!(
            "hint: something {} mounts is gone: put it back, or `berth deploy {} --recreate`",
            sb.container(),
            sb.project
        ),
    );
    assert!(sb.exists(), "the container stays, with whatever it holds");

    fs::create_dir_all(&home).unwrap();
    assert_code(&deploy(), 0);
    assert_eq!(sb.state(), "running");
}

#[test]
fn home_is_writable_and_survives_retire_and_redeploy() {
    let sb = Sandbox::new();
    sb.deployed();
    assert_code(
        &sb.exec("echo 'alias ll=ls' > $HOME/.profile && echo keep > /workspace/w"),
        0,
    );
    assert_code(&sb.berth(&["retire", &sb.project]), 0);
    assert!(!sb.exists());
    sb.deployed();
    let out = sb.exec("cat $HOME/.profile /workspace/w");
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "alias ll=ls\nkeep\n");
}

#[test]
fn retire_of_an_untouched_container_needs_no_consent() {
    let sb = Sandbox::new();
    sb.deployed();
    // Disposable changes do not count as work.
    assert_code(&sb.exec("echo x > /tmp/scratch"), 0);
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "retired");
    assert!(!sb.exists());
}

#[test]
fn retire_refuses_unsaved_work_without_a_terminal_and_yes_removes_it() {
    let sb = Sandbox::new();
    sb.deployed();
    assert_code(&sb.exec("echo keep > /workspace/kept.txt"), 0);
    assert_code(
        &sb.exec_as_root("mkdir -p /opt/results && echo 42 > /opt/results/run1.csv"),
        0,
    );

    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("1 unsaved file(s)"), "{err}");
    assert!(err.contains("/opt/results"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(sb.state(), "running");

    let out = sb.run(
        env!("CARGO_BIN_EXE_container-retire"),
        &[&sb.project, "--yes"],
    );
    assert_code(&out, 0);
    assert!(!sb.exists());

    sb.deployed();
    assert_eq!(stdout(&sb.exec("cat /workspace/kept.txt")), "keep\n");
}

#[test]
fn deploy_of_a_running_container_reports_it_and_a_stopped_one_is_started() {
    let sb = Sandbox::new();
    let deploy = |sb: &Sandbox| {
        sb.run(
            env!("CARGO_BIN_EXE_container-deploy"),
            &[&sb.project, "--image", &sb.image.tag],
        )
    };
    assert_code(&deploy(&sb), 0);
    let id = sb.inspect().unwrap()["Id"].clone();
    let out = deploy(&sb);
    assert_code(&out, 0);
    assert_stderr_has(&out, "already running");
    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);
    let out = deploy(&sb);
    assert_code(&out, 0);
    assert_eq!(sb.state(), "running");
    assert_eq!(
        sb.inspect().unwrap()["Id"],
        id,
        "the same container, started again"
    );
}

#[test]
fn dry_run_prints_the_plan_and_creates_nothing() {
    let sb = Sandbox::new();
    let out = sb.berth(&[
        "deploy",
        &sb.project,
        "--image",
        &sb.image.tag,
        "--memory",
        "1g",
        "--dry-run",
    ]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("docker run -d --name"), "{text}");
    assert!(text.contains("--memory 1g"), "{text}");
    assert!(text.contains("(command line)"), "{text}");
    assert!(!sb.exists());
    assert!(
        !sb.workspace().exists(),
        "the workspace must not be created by a dry run"
    );
    assert!(!sb.home.join(".local/share/berth").exists());
}

#[test]
fn an_unreachable_engine_is_one_clear_error() {
    let sb = Sandbox::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.starts_with("error: cannot reach the Docker engine at unix:///nonexistent/docker.sock (from DOCKER_HOST)"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!sb.workspace().exists());
    assert_code(&sb.berth(&["list"]), 1);
}

#[test]
fn invalid_project_names_are_refused_before_any_path_is_built() {
    let sb = Sandbox::new();
    for name in [
        "..",
        "../escape",
        "a/b",
        "Upper",
        "has space",
        "-dash",
        "",
        &"x".repeat(70),
    ] {
        let out = sb.berth(&["deploy", name, "--image", &sb.image.tag]);
        assert_code(&out, 2);
        // clap itself refuses `-dash` as an unknown flag; both are usage errors.
        let err = stderr(&out);
        assert!(
            err.contains("invalid project name") || err.contains("unexpected argument"),
            "{name:?}: {err}"
        );
        let out = sb.berth(&["retire", name]);
        assert_code(&out, 2);
    }
    assert!(!sb.workspace_root.exists(), "nothing was created");
    assert!(!sb.path().join("escape").exists());
}

#[test]
fn broken_toml_and_unknown_keys_name_the_file_and_line_and_create_nothing() {
    let sb = Sandbox::new();
    sb.project_toml(&format!("image = \"{}\"\nmemroy = \"1g\"\n", sb.image.tag));
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    let err = stderr(&out);
    let file = sb.workspace().join("berth.toml");
    assert!(
        err.contains(&format!("{}:2:1: unknown key `memroy`", file.display())),
        "{err}"
    );
    assert!(err.contains("did you mean `memory`?"), "{err}");
    assert!(!sb.exists());

    sb.project_toml("image = \"unterminated\n");
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, format!("{}:1:", file.display()));
    assert!(!sb.exists());

    let user_config = sb.path().join("user.toml");
    fs::write(&user_config, "[data]\nhostpath = \"/x\"\n").unwrap();
    let sb = sb.env("BERTH_CONFIG", user_config.to_str().unwrap());
    sb.project_toml(&format!("image = \"{}\"\n", sb.image.tag));
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "user.toml:2:1: unknown key `hostpath`");
    assert_stderr_has(&out, "did you mean `host_path`?");
    assert!(!sb.exists());
}

#[test]
fn the_project_file_configures_the_container() {
    let sb = Sandbox::new();
    sb.project_toml(&format!(
        "image = \"{}\"\nshm_size = \"32m\"\nenv = {{ MODE = \"train\" }}\n",
        sb.image.tag
    ));
    assert_code(&sb.berth(&["deploy", &sb.project, "--shm-size", "16m"]), 0);
    let c = sb.inspect().unwrap();
    assert_eq!(
        c["HostConfig"]["ShmSize"],
        16i64 << 20,
        "the flag wins over the file"
    );
    assert_eq!(stdout(&sb.exec("echo $MODE")), "train\n");
}

#[test]
fn a_failed_pull_names_the_image_and_leaves_nothing() {
    let sb = Sandbox::new();
    let image = format!("berth-test/{}-missing:1", sb.project);
    let out = sb.berth(&["deploy", &sb.project, "--image", &image]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("error: cannot pull image {image}")),
        "{err}"
    );
    assert!(
        err.contains("hint: check the name with `docker images`"),
        "{err}"
    );
    assert!(!sb.exists());
    assert!(!sb.workspace().exists());
}

#[test]
fn a_container_that_cannot_start_is_not_left_behind() {
    let sb = Sandbox::new();
    // No GPU runtime on the test engine: the start fails after the create.
    let out = sb.berth(&[
        "deploy",
        &sb.project,
        "--image",
        &sb.image.tag,
        "--gpus",
        "all",
    ]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "GPUs were requested");
    assert!(!sb.exists());
}

#[test]
fn a_typo_of_an_existing_workspace_is_refused_unless_new() {
    let sb = Sandbox::new();
    sb.project_toml("");
    let typo = format!("{}x", sb.project);
    let out = sb.berth(&["deploy", &typo, "--image", &sb.image.tag, "--dry-run"]);
    assert_code(&out, 3);
    assert_stderr_has(&out, format!("did you mean `{}`?", sb.project));
    assert!(!sb.workspace_root.join(&typo).exists());
    let out = sb.berth(&[
        "deploy",
        &typo,
        "--image",
        &sb.image.tag,
        "--dry-run",
        "--new",
    ]);
    assert_code(&out, 0);
}

#[test]
fn list_shows_the_callers_containers_as_a_table_and_json() {
    let sb = Sandbox::new();
    sb.deployed();
    let out = sb.berth(&["list"]);
    assert_code(&out, 0);
    assert!(stdout(&out).lines().next().unwrap().starts_with("PROJECT"));
    assert!(stdout(&out).contains(&sb.project));
    let out = sb.berth(&["list", "--json"]);
    assert_code(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = json["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["project"] == sb.project.as_str())
        .expect("listed");
    assert_eq!(mine["state"], "running");
    assert_eq!(mine["name"], sb.container().as_str());
    // Sizes cost the engine a walk of every container's layer: asked only with --size.
    assert_eq!(mine["size_rw"], serde_json::Value::Null);
    assert!(!stdout(&sb.berth(&["list"])).contains("UNSAVED"));

    assert_code(&sb.exec("head -c 3000000 /dev/zero > /tmp/work"), 0);
    let out = sb.berth(&["list", "--size", "--json"]);
    assert_code(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = json["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["project"] == sb.project.as_str())
        .expect("listed");
    let size = mine["size_rw"].as_i64().unwrap();
    assert!((3_000_000..3_200_000).contains(&size), "{size}");
    let out = sb.berth(&["list", "-s"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains(" UNSAVED "), "{text}");
    let row = text
        .lines()
        .find(|line| line.starts_with(sb.project.as_str()))
        .unwrap();
    assert!(
        row.contains(" 2.9 MiB ") || row.contains(" 3.0 MiB "),
        "{text}"
    );
}

// ---- One data root (README, "One data root") ----

/// A data root directory inside the sandbox.
fn data_dir(sb: &Sandbox, name: &str) -> std::path::PathBuf {
    let dir = sb.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::canonicalize(dir).unwrap()
}

#[test]
fn every_spelling_of_the_same_root_is_accepted_and_mounted() {
    let sb = Sandbox::new();
    let root = data_dir(&sb, "ai-lab-data");
    std::os::unix::fs::symlink(&root, sb.path().join("data-link")).unwrap();
    // The project file names it relatively (to the file), .env through a symlink with a
    // trailing slash, the environment with a ./ prefix (relative to the current directory).
    sb.project_toml(&format!(
        "image = \"{}\"\n[data]\nhost_path = \"../../../ai-lab-data\"\n",
        sb.image.tag
    ));
    fs::write(
        sb.workspace().join(".env"),
        format!(
            "HOST_DATA_PATH={}/\n",
            sb.path().join("data-link").display()
        ),
    )
    .unwrap();
    let sb = sb.env("HOST_DATA_PATH", "./ai-lab-data");
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);

    let c = sb.inspect().unwrap();
    let data = c["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/data")
        .expect("data mounted");
    assert_eq!(data["Source"], root.to_str().unwrap());
    assert_eq!(
        stdout(&sb.exec("echo $HOST_DATA_PATH")),
        format!("{}\n", root.display())
    );
    let marker =
        fs::read_to_string(root.join(".berth-data-id")).expect("marker written on first use");
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["berth.data"], root.to_str().unwrap());
    assert_eq!(labels["berth.data-id"], marker.trim());
}

#[test]
fn disagreeing_sources_are_refused_with_a_table_before_any_container_exists() {
    let sb = Sandbox::new();
    let here = data_dir(&sb, "ai-lab-data");
    let there = data_dir(&sb, "opt-ai-lab-data");
    sb.project_toml(&format!(
        "image = \"{}\"\n[data]\nhost_path = \"{}\"\n",
        sb.image.tag,
        here.display()
    ));
    fs::write(
        sb.workspace().join(".env"),
        format!("# team setting\nHOST_DATA_PATH='{}'\n", there.display()),
    )
    .unwrap();
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("split-brain"), "{err}");
    assert!(
        err.contains(here.to_str().unwrap()) && err.contains(there.to_str().unwrap()),
        "{err}"
    );
    assert!(
        err.contains(".env:2"),
        "the env file's line is named: {err}"
    );
    assert!(!sb.exists());

    let out = sb.berth(&["check", &sb.project, "--json"]);
    assert_code(&out, 3);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "refused");
}

#[test]
fn a_missing_root_is_refused_and_never_created() {
    let sb = Sandbox::new().env("HOST_DATA_PATH", "/nonexistent/berth-share");
    sb.project_toml("");
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "does not exist");
    assert!(!std::path::Path::new("/nonexistent/berth-share").exists());
    assert!(!sb.exists());
}

#[test]
fn a_root_that_lost_its_marker_is_refused_as_an_unmounted_share() {
    let sb = Sandbox::new();
    let root = data_dir(&sb, "share");
    let sb = sb.env("HOST_DATA_PATH", root.to_str().unwrap());
    sb.deployed();
    assert_code(&sb.berth(&["retire", &sb.project]), 0);
    // The share is "unmounted": an empty directory at the same path.
    fs::remove_file(root.join(".berth-data-id")).unwrap();
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "not mounted");
    assert!(!sb.exists());
}

#[test]
fn a_data_group_with_another_root_is_refused() {
    let sb = Sandbox::new();
    let first = data_dir(&sb, "first");
    let second = data_dir(&sb, "second");
    let group = format!("g-{}", sb.project);
    sb.project_toml(&format!(
        "image = \"{}\"\n[data]\nhost_path = \"{}\"\ngroup = \"{group}\"\n",
        sb.image.tag,
        first.display()
    ));
    assert_code(&sb.berth(&["deploy", &sb.project]), 0);

    let mut other = Sandbox::new();
    other.project = format!("{}-b", sb.project);
    other.project_toml(&format!(
        "image = \"{}\"\n[data]\nhost_path = \"{}\"\ngroup = \"{group}\"\n",
        other.image.tag,
        second.display()
    ));
    let out = other.berth(&["deploy", &other.project]);
    assert_code(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(first.to_str().unwrap()) && err.contains(second.to_str().unwrap()),
        "{err}"
    );
    assert!(!other.exists());
}

#[test]
fn a_container_that_mounts_another_data_root_than_configured_is_refused() {
    let sb = Sandbox::new();
    let first = data_dir(&sb, "first");
    let second = data_dir(&sb, "second");
    let toml = |root: &std::path::Path| {
        format!(
            "image = \"{}\"\n[data]\nhost_path = \"{}\"\n",
            sb.image.tag,
            root.display()
        )
    };
    sb.project_toml(&toml(&first));
    assert_code(&sb.berth(&["deploy", &sb.project]), 0);
    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);

    // The configuration now names another root: starting the old container would hide
    // that it still mounts the first.
    sb.project_toml(&toml(&second));
    for command in ["deploy", "check"] {
        let out = sb.berth(&[command, &sb.project]);
        assert_code(&out, 3);
        assert_stderr_has(
            &out,
            "mounts another data root than the configuration names now",
        );
        assert_stderr_has(&out, first.to_str().unwrap());
        assert_stderr_has(&out, second.to_str().unwrap());
        assert_stderr_has(&out, "--recreate");
    }
    assert_eq!(sb.state(), "exited", "not started");
    assert!(
        !second.join(".berth-data-id").exists(),
        "nothing written to the new root"
    );

    // --recreate retires it (nothing unsaved) and makes one with the configured root.
    assert_code(&sb.berth(&["deploy", &sb.project, "--recreate"]), 0);
    assert_eq!(
        sb.inspect().unwrap()["Config"]["Labels"]["berth.data"],
        second.to_str().unwrap()
    );
}

#[test]
fn a_user_mount_over_the_workspace_or_the_data_target_is_refused() {
    let sb = Sandbox::new();
    let root = data_dir(&sb, "share");
    let elsewhere = data_dir(&sb, "elsewhere");
    let sb = sb.env("HOST_DATA_PATH", root.to_str().unwrap());
    for spec in [
        format!("{}:/data:ro", elsewhere.display()),
        format!("{}:/workspace", elsewhere.display()),
        format!("{}:/data/sub", elsewhere.display()),
    ] {
        let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "-v", &spec]);
        assert_code(&out, 3);
        assert!(
            stderr(&out).contains("would shadow"),
            "{spec}: {}",
            stderr(&out)
        );
        assert!(!sb.exists());
    }
    let ok = format!("{}:/scratch", elsewhere.display());
    assert_code(
        &sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "-v", &ok]),
        0,
    );
}
