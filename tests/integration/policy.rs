//! The admin policy against a real engine: each rule refuses (exit 3, naming the rule
//! and the policy file) for deploy and for `berth run`/`create`, and nothing a user
//! controls (flags, berth.toml, the user config, the environment) gets around it; a
//! non-root user's BERTH_POLICY is ignored; the event log records what happened.

use std::fs;

use serde_json::Value;

use crate::support::*;

/// The sandbox with `policy` written to its (root-honoured) BERTH_POLICY.
fn with_policy(policy: &str) -> Sandbox {
    let sb = Sandbox::new();
    fs::write(&sb.policy, policy).unwrap();
    sb
}

/// A user config file in the sandbox, and the sandbox set to read it.
fn with_user_config(sb: Sandbox, text: &str) -> Sandbox {
    let path = sb.path().join("user.toml");
    fs::write(&path, text).unwrap();
    sb.env("BERTH_CONFIG", path.to_str().unwrap())
}

#[track_caller]
fn assert_refused(out: &std::process::Output, sb: &Sandbox, rule: &str) {
    assert_code(out, 3);
    assert_stderr_has(out, format!("policy {}", sb.policy.display()));
    assert_stderr_has(out, rule);
}

fn host_config(id: &str) -> Value {
    let out = docker(&["inspect", id.trim()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list[0]["HostConfig"].clone()
}

#[test]
fn images_outside_allowed_images_are_refused_however_they_are_named() {
    let sb = with_policy("allowed_images = [\"allowed/*\", \"library/**\"]\n");
    let image = sb.image.tag.clone();
    let project = sb.project.clone();
    let rule = "allowed_images";

    let out = sb.berth(&["deploy", &project, "--image", &image]);
    assert_refused(&out, &sb, rule);
    let out = sb.berth(&["deploy", &project, "--image", &image, "--dry-run"]);
    assert_refused(&out, &sb, rule);
    sb.project_toml(&format!("image = \"{image}\"\n"));
    assert_refused(&sb.berth(&["deploy", &project]), &sb, rule);
    assert_refused(&sb.berth(&["check", &project]), &sb, rule);
    for mode in ["run", "create"] {
        let out = sb.berth(&[mode, "--rm", "--project", &project, &image, "true"]);
        assert_refused(&out, &sb, rule);
    }
    fs::remove_file(sb.workspace().join("berth.toml")).unwrap();
    let sb = with_user_config(sb, &format!("image = \"{image}\"\n"));
    assert_refused(&sb.berth(&["deploy", &project]), &sb, rule);
    assert!(!sb.exists());

    // A pattern that matches lets it through.
    fs::write(&sb.policy, "allowed_images = [\"berth-test/*\"]\n").unwrap();
    assert_code(&sb.berth(&["deploy", &project]), 0);
    assert!(sb.exists());
}

#[test]
fn forbidden_options_are_refused_for_run_and_create_in_every_spelling() {
    let sb = with_policy(
        "forbid = [\"privileged\", \"host-network\", \"host-pid\", \"host-ipc\", \
         \"cap-add\", \"devices\"]\n",
    );
    let image = sb.image.tag.clone();
    let cases: &[(&[&str], &str)] = &[
        (&["--privileged"], "forbids privileged"),
        (&["--privileged=true"], "forbids privileged"),
        (&["--network", "host"], "forbids host-network"),
        (&["--net=host"], "forbids host-network"),
        (&["--pid", "host"], "forbids host-pid"),
        (&["--ipc=host"], "forbids host-ipc"),
        (&["--cap-add", "SYS_ADMIN"], "forbids cap-add"),
        (&["--cap-add=NET_ADMIN"], "forbids cap-add"),
        (&["--device", "/dev/null"], "forbids devices"),
    ];
    for mode in ["run", "create"] {
        for (flags, rule) in cases {
            let mut args = vec![mode, "--rm", "--project", &sb.project];
            args.extend_from_slice(flags);
            args.extend([image.as_str(), "true"]);
            assert_refused(&sb.berth(&args), &sb, rule);
        }
    }
    // The refusal comes before anything is created.
    assert_eq!(sb.container_ids().trim(), "");
    // Options the policy does not name are fine.
    let out = sb.berth(&[
        "run",
        "--rm",
        "--project",
        &sb.project,
        "--network",
        "bridge",
        &image,
        "true",
    ]);
    assert_code(&out, 0);
}

#[test]
fn without_a_policy_the_same_commands_work() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let bind = format!("{}:/outside", outside.path().display());
    // Created, not started: this engine may itself lack the capabilities to start it.
    let out = sb.berth(&[
        "create",
        "--project",
        &sb.project,
        "--privileged",
        "--cap-add",
        "SYS_ADMIN",
        "--device",
        "/dev/null",
        "--pid",
        "host",
        "-v",
        &bind,
        &sb.image.tag,
        "true",
    ]);
    assert_code(&out, 0);
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "-v", &bind]);
    assert_code(&out, 0);
    let hc = host_config(&sb.container());
    // No limits but docker's own.
    assert_eq!(hc["Memory"], 0);
    assert_eq!(hc["NanoCpus"], 0);
}

#[test]
fn mounts_outside_the_allowed_roots_are_refused_and_berths_own_are_not() {
    let sb = Sandbox::new();
    let allowed = sb.path().join("scratch");
    let outside = sb.path().join("outside");
    fs::create_dir_all(allowed.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(
        &sb.policy,
        format!("allowed_mount_roots = [\"{}\"]\n", allowed.display()),
    )
    .unwrap();
    let (image, project) = (sb.image.tag.clone(), sb.project.clone());
    let rule = "limits mounts";
    let out_bind = format!("{}:/x", outside.display());

    // The workspace may hold a link out, and `..` may try to climb out.
    fs::create_dir_all(sb.workspace()).unwrap();
    std::os::unix::fs::symlink(&outside, sb.workspace().join("link")).unwrap();
    let via_link = format!("{}/link:/x", sb.workspace().display());
    let via_dots = format!("{}/sub/../../outside:/x", allowed.display());
    let mount = format!("type=bind,source={},target=/x", outside.display());
    for args in [
        vec!["run", "--rm", "-v", &out_bind],
        vec!["create", "-v", &via_link],
        vec!["run", "--rm", "-v", &via_dots],
        vec!["run", "--rm", "--mount", &mount],
    ] {
        let mut args = args;
        args.extend(["--project", &project, &image, "true"]);
        assert_refused(&sb.berth(&args), &sb, rule);
    }
    let out = sb.berth(&["deploy", &project, "--image", &image, "-v", &out_bind]);
    assert_refused(&out, &sb, rule);
    sb.project_toml(&format!(
        "image = \"{image}\"\nvolumes = [\"{out_bind}\"]\n"
    ));
    assert_refused(&sb.berth(&["deploy", &project]), &sb, rule);
    sb.project_toml(&format!("image = \"{image}\"\n"));
    let sb = with_user_config(sb, &format!("volumes = [\"{via_link}\"]\n"));
    assert_refused(&sb.berth(&["deploy", &project]), &sb, rule);
    assert!(!sb.exists());

    // Inside a root, a named volume, a tmpfs: fine; and berth's own mounts (the
    // workspace, the persistent home outside the workspace root) always are.
    let in_root = format!("{}/sub:/x", allowed.display());
    let out = sb.berth(&[
        "run",
        "--rm",
        "--project",
        &project,
        "-v",
        &in_root,
        "--tmpfs",
        "/t",
        &image,
        "true",
    ]);
    assert_code(&out, 0);
    let sb = with_user_config(sb, "");
    fs::write(&sb.policy, "allowed_mount_roots = []\n").unwrap();
    assert_code(&sb.berth(&["deploy", &project]), 0);
    assert!(sb.exists());
}

#[test]
fn memory_and_cpu_limits_refuse_more_and_are_the_default() {
    let sb = with_policy("[limits]\nmax_memory = \"256m\"\nmax_cpus = 1\n");
    let (image, project) = (sb.image.tag.clone(), sb.project.clone());

    let out = sb.berth(&["deploy", &project, "--image", &image, "--memory", "512m"]);
    assert_refused(&out, &sb, "max_memory");
    let out = sb.berth(&["deploy", &project, "--image", &image, "--cpus", "2"]);
    assert_refused(&out, &sb, "max_cpus");
    sb.project_toml(&format!("image = \"{image}\"\nmemory = \"1g\"\n"));
    assert_refused(&sb.berth(&["deploy", &project]), &sb, "max_memory");
    sb.project_toml(&format!("image = \"{image}\"\n"));
    let sb = with_user_config(sb, "cpus = 4\n");
    assert_refused(&sb.berth(&["deploy", &project]), &sb, "max_cpus");
    let sb = with_user_config(sb, "");
    for flags in [&["--memory", "1g"][..], &["--cpus=2"]] {
        let mut args = vec!["create", "--project", &project];
        args.extend_from_slice(flags);
        args.extend([image.as_str(), "true"]);
        let out = sb.berth(&args);
        assert_code(&out, 3);
        assert_stderr_has(&out, "limits");
    }

    // Asking for nothing gets the cap.
    assert_code(&sb.berth(&["deploy", &project]), 0);
    let hc = host_config(&sb.container());
    assert_eq!(hc["Memory"], 256 << 20);
    assert_eq!(hc["NanoCpus"], 1_000_000_000i64);
    let out = sb.berth(&["create", "--project", &project, &image, "true"]);
    assert_code(&out, 0);
    let hc = host_config(&stdout(&out));
    assert_eq!(hc["Memory"], 256 << 20);
    assert_eq!(hc["NanoCpus"], 1_000_000_000i64);
}

#[test]
fn run_and_create_take_the_policy_defaults_unless_a_flag_says_otherwise() {
    let sb = with_policy(
        "env = { TEAM = \"vision\" }\n[defaults]\nshm_size = \"128m\"\nmemory = \"64m\"\n",
    );
    let (image, project) = (sb.image.tag.clone(), sb.project.clone());
    let out = sb.berth(&[
        "create",
        "--project",
        &project,
        "-e",
        "TEAM=mine",
        &image,
        "true",
    ]);
    assert_code(&out, 0);
    let id = stdout(&out);
    let hc = host_config(&id);
    assert_eq!(hc["ShmSize"], 128 << 20);
    assert_eq!(hc["Memory"], 64 << 20);
    assert_eq!(hc["NanoCpus"], 0);
    let inspected: Value = serde_json::from_slice(&docker(&["inspect", id.trim()]).stdout).unwrap();
    let env = inspected[0]["Config"]["Env"].to_string();
    assert!(
        env.contains("TEAM=vision") && !env.contains("TEAM=mine"),
        "{env}"
    );

    let out = sb.berth(&[
        "create",
        "--project",
        &project,
        "--shm-size",
        "32m",
        "--memory",
        "96m",
        &image,
        "true",
    ]);
    assert_code(&out, 0);
    let hc = host_config(&stdout(&out));
    assert_eq!(hc["ShmSize"], 32 << 20);
    assert_eq!(hc["Memory"], 96 << 20);
}

#[test]
fn max_containers_per_user_refuses_a_new_container_but_not_a_restart() {
    let sb = Sandbox::new();
    let (image, project) = (sb.image.tag.clone(), sb.project.clone());
    assert_code(&sb.berth(&["deploy", &project, "--image", &image]), 0);
    docker(&["stop", "-t", "0", &sb.container()]);

    fs::write(&sb.policy, "[limits]\nmax_containers_per_user = 0\n").unwrap();
    // Starting the one that exists creates nothing.
    assert_code(&sb.berth(&["deploy", &project, "--image", &image]), 0);
    assert_eq!(sb.state(), "running");
    let out = sb.berth(&["create", "--project", &project, &image, "true"]);
    assert_refused(&out, &sb, "max_containers_per_user");
    assert_stderr_has(&out, "you have");
    let out = sb.berth(&["run", "--rm", "--project", &project, &image, "true"]);
    assert_refused(&out, &sb, "max_containers_per_user");
    let other = Sandbox::new();
    fs::write(&other.policy, "[limits]\nmax_containers_per_user = 0\n").unwrap();
    let out = other.berth(&["deploy", &other.project, "--image", &other.image.tag]);
    assert_refused(&out, &other, "max_containers_per_user");
    other.project_toml(&format!("image = \"{}\"\n", other.image.tag));
    let out = other.berth(&["check", &other.project, "--json"]);
    assert_code(&out, 3);
    assert!(!other.exists());
}

#[test]
fn a_fixed_data_root_is_used_and_disagreeing_sources_are_split_brain() {
    let sb = Sandbox::new();
    let fixed = sb.path().join("data");
    let other = sb.path().join("other-data");
    fs::create_dir_all(&fixed).unwrap();
    fs::create_dir_all(&other).unwrap();
    fs::write(
        &sb.policy,
        format!("[data]\nhost_path = \"{}\"\n", fixed.display()),
    )
    .unwrap();
    let (image, project) = (sb.image.tag.clone(), sb.project.clone());

    let sb = sb.env("HOST_DATA_PATH", other.to_str().unwrap());
    for args in [
        vec!["deploy", &project, "--image", &image],
        vec!["run", "--rm", "--project", &project, &image, "true"],
        vec!["create", "--project", &project, &image, "true"],
    ] {
        let out = sb.berth(&args);
        assert_code(&out, 3);
        assert_stderr_has(&out, other.display().to_string());
        assert_stderr_has(&out, format!("policy {}", sb.policy.display()));
    }
    let sb = sb.env("HOST_DATA_PATH", "");
    sb.project_toml(&format!(
        "image = \"{image}\"\n[data]\nhost_path = \"{}\"\n",
        other.display()
    ));
    assert_code(&sb.berth(&["deploy", &project]), 3);
    sb.project_toml(&format!("image = \"{image}\"\n"));
    assert_code(&sb.berth(&["deploy", &project]), 0);
    let out = sb.exec("echo $HOST_DATA_PATH; ls -a /data");
    let text = stdout(&out);
    assert!(text.contains(fixed.to_str().unwrap()), "{text}");
    assert!(text.contains(".berth-data-id"), "{text}");
}

#[test]
fn a_non_root_users_berth_policy_is_ignored_with_a_warning() {
    let Some((uid, gid)) = test_user() else {
        eprintln!("skipped: needs root to make a non-root test user");
        return;
    };
    if std::path::Path::new("/etc/berth/policy.toml").exists() {
        eprintln!("skipped: this host has a policy of its own");
        return;
    }
    let policy = "allowed_images = [\"nothing/*\"]\nforbid = [\"privileged\"]\n";
    // Root's BERTH_POLICY is the policy.
    let sb = with_policy(policy);
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "--dry-run"]);
    assert_refused(&out, &sb, "allowed_images");

    // A user's is not: it could as well switch the policy off.
    let sb = Sandbox::with_user(RunAs::Other { uid, gid });
    fs::write(&sb.policy, policy).unwrap();
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "--dry-run"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "honoured for root only");
    assert_stderr_has(&out, sb.policy.display().to_string());
}

fn events(path: &std::path::Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn the_event_log_records_deploy_retire_run_and_refusals() {
    let sb = Sandbox::new();
    let (image, project) = (sb.image.tag.clone(), sb.project.clone());
    let default_log = sb.state_dir().join("events.jsonl");

    assert_code(&sb.berth(&["deploy", &project, "--image", &image]), 0);
    assert_code(&sb.berth(&["deploy", &project, "--image", &image]), 0);
    assert_code(&sb.berth(&["retire", &project]), 0);
    let run = ["run", "--rm", "--project", &project, &image, "true"];
    assert_code(&sb.berth(&run), 0);
    assert_code(&sb.berth(&["retire", &project]), 1);
    // Dry runs change nothing and record nothing.
    let dry = ["deploy", &project, "--image", &image, "--dry-run"];
    assert_code(&sb.berth(&dry), 0);
    let log = events(&default_log);
    let seen: Vec<(&str, &str)> = log
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("deploy", "created"),
            ("deploy", "running"),
            ("retire", "removed"),
            ("run", "created"),
            ("retire", "failed"),
        ]
    );
    // The retire of the running container says how long it held it paused; nothing
    // else paused anything.
    let paused: Vec<bool> = log.iter().map(|e| e.get("paused_ms").is_some()).collect();
    assert_eq!(paused, [false, false, true, false, false], "{log:#?}");
    assert!(
        log[2]["paused_ms"].as_u64().unwrap() < 60_000,
        "{:#}",
        log[2]
    );
    let me = whoami();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    for event in &log {
        assert_eq!(event["user"], me.as_str());
        assert_eq!(event["uid"], uid);
        assert_eq!(event["project"], project.as_str());
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
        assert!(event.get("reason").is_some());
    }
    assert!(log[0]["reason"].is_null());
    assert!(log[4]["reason"].as_str().unwrap().contains(&project));

    // The policy may name the log; a refusal is recorded with its message.
    let named = sb.path().join("log/events.jsonl");
    fs::write(
        &sb.policy,
        format!(
            "forbid = [\"privileged\"]\n[events]\npath = \"{}\"\n",
            named.display()
        ),
    )
    .unwrap();
    let out = sb.berth(&[
        "create",
        "--privileged",
        "--project",
        &project,
        &image,
        "true",
    ]);
    assert_code(&out, 3);
    let log = events(&named);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["action"], "create");
    assert_eq!(log[0]["outcome"], "refused");
    assert!(log[0]["reason"]
        .as_str()
        .unwrap()
        .contains("forbids privileged"));

    // A log that cannot be written is a warning, never a failure.
    fs::write(
        &sb.policy,
        "[events]\npath = \"/proc/berth/events.jsonl\"\n",
    )
    .unwrap();
    let out = sb.berth(&run);
    assert_code(&out, 0);
    assert_stderr_has(&out, "the event was not logged");
}

/// A sandbox for the test user, whose policy is the real `/etc/berth/policy.toml`.
fn as_user() -> Sandbox {
    let (uid, gid) = test_user().expect("the tests run as root, to make a test user");
    let sb = Sandbox::with_user(RunAs::Other { uid, gid });
    fs::create_dir_all(&sb.workspace_root).unwrap();
    chown(&sb.workspace_root, uid, gid);
    sb
}

#[track_caller]
fn assert_admin_refused(out: &std::process::Output, says: &str) {
    assert_code(out, 3);
    assert_stderr_has(out, "policy /etc/berth/policy.toml");
    assert_stderr_has(out, says);
}

/// `BERTH_WORKSPACE_ROOT=/` with a project named `etc` would mount the host's /etc; a
/// workspace that is a link out of the home would mount wherever it points; a pinned
/// workspace root cannot be moved by the user's variable.
#[test]
fn berths_own_mounts_answer_to_the_admin_policy_as_a_user() {
    let sb = as_user();
    let RunAs::Other { uid, gid } = sb.run_as else {
        unreachable!()
    };
    let image = sb.image.tag.clone();
    let policy = format!("allowed_mount_roots = [\"{}\"]\n", sb.home.display());

    // A workspace that links out of the allowed roots, to a folder of the user's own.
    let canary = sb.path().join("canary");
    fs::create_dir_all(&canary).unwrap();
    chown(&canary, uid, gid);
    std::os::unix::fs::symlink(&canary, sb.workspace()).unwrap();
    let out = sb.berth_under_admin_policy(&policy, &["deploy", &sb.project, "--image", &image]);
    assert_admin_refused(&out, "outside your home");
    assert!(!sb.exists());
    assert_eq!(fs::read_dir(&canary).unwrap().count(), 0);
    fs::remove_file(sb.workspace()).unwrap();

    // A pinned root: the workspace goes there, whatever the default would be.
    let pinned = sb.path().join("pinned");
    fs::create_dir_all(pinned.join(TEST_USER)).unwrap();
    chown(&pinned.join(TEST_USER), uid, gid);
    let pinning = format!(
        "{policy}workspace_root = \"{}/{{user}}\"\n",
        pinned.display()
    );
    let out = sb.berth_under_admin_policy(
        &pinning,
        &["deploy", &sb.project, "--image", &image, "--new"],
    );
    assert_code(&out, 0);
    let workspace = pinned.join(TEST_USER).join(&sb.project);
    assert!(workspace.is_dir());
    assert_eq!(owner(&workspace), uid);
    let mounts = docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Source}} {{end}}",
        &sb.container(),
    ]);
    assert!(
        stdout(&mounts).contains(workspace.to_str().unwrap()),
        "{}",
        stdout(&mounts)
    );
    assert!(!sb.workspace().exists(), "not under the default root");

    // The user's variable moves neither the pinned root nor, unpinned, onto /etc.
    let sb = sb.env("BERTH_WORKSPACE_ROOT", "/");
    let out = sb.berth_under_admin_policy(&pinning, &["deploy", &sb.project, "--image", &image]);
    assert_admin_refused(&out, "pins the workspace root");
    let out = sb.berth_under_admin_policy(&policy, &["deploy", "etc", "--image", &image]);
    assert_admin_refused(&out, "the workspace root /, which is not yours");
    let out = sb.berth_under_admin_policy(
        &policy,
        &["run", "--rm", "--project", "etc", &image, "true"],
    );
    assert_admin_refused(&out, "the workspace root /, which is not yours");
    let etc_container = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("name=^etc._.{TEST_USER}$"),
    ]);
    assert_eq!(stdout(&etc_container), "");
}

/// A volume whose driver options make it a bind mount is one, made on the spot or
/// earlier; another user's container cannot be joined, and `join` forbids joining.
#[test]
fn binding_volumes_and_joining_others_containers_answer_to_the_admin_policy_as_a_user() {
    let sb = as_user();
    let image = sb.image.tag.clone();
    let project = sb.project.clone();
    let policy = format!("allowed_mount_roots = [\"{}\"]\n", sb.home.display());
    let canary = sb.path().join("canary");
    fs::create_dir_all(&canary).unwrap();
    let run = |policy: &str, extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--project", &project];
        args.extend_from_slice(extra);
        args.extend([image.as_str(), "true"]);
        sb.berth_under_admin_policy(policy, &args)
    };

    let on_the_spot = format!(
        "type=volume,target=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device={}",
        canary.display()
    );
    let out = run(&policy, &["--mount", &on_the_spot]);
    assert_admin_refused(&out, "volume-opt=device=");

    struct Cleanup(Vec<Vec<String>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for args in &self.0 {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                docker(&args);
            }
        }
    }
    let volume = format!("{project}-bound");
    let other = format!("{project}-someone-else");
    let _cleanup = Cleanup(vec![
        vec!["rm".into(), "-f".into(), other.clone()],
        vec!["volume".into(), "rm".into(), "-f".into(), volume.clone()],
    ]);
    let device = format!("device={}", canary.display());
    let made = docker(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        &volume,
    ]);
    assert_code(&made, 0);
    let out = run(&policy, &["-v", &format!("{volume}:/x")]);
    assert_admin_refused(&out, &volume);

    // Someone else's container (root's, made with plain docker), and one's own.
    assert_code(
        &docker(&["run", "-d", "--name", &other, &image, "sleep", "300"]),
        0,
    );
    let out = run(&policy, &["--network", &format!("container:{other}")]);
    assert_admin_refused(&out, "not one of yours");
    let out =
        sb.berth_under_admin_policy(&policy, &["deploy", &project, "--image", &image, "--new"]);
    assert_code(&out, 0);
    let own = format!("container:{}", sb.container());
    assert_code(&run(&policy, &["--pid", &own]), 0);
    let forbidding = format!("{policy}forbid = [\"join\"]\n");
    let out = run(&forbidding, &["--pid", &own]);
    assert_admin_refused(&out, "forbids join");
}
