//! Retire loses nothing silently (README, "What retire does"): the check, the prompt
//! under a real terminal, rescue, commit, anonymous volumes, stopped containers, and the
//! refusals that leave a container exactly as it was.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const PROMPT: Duration = Duration::from_secs(30);

fn deploy(sb: &Sandbox, extra: &[&str]) {
    let mut args = vec!["deploy", &sb.project, "--image", &sb.image.tag];
    args.extend_from_slice(extra);
    assert_code(&sb.berth(&args), 0);
}

/// Work outside the mounts: a result file and a note in a home that is not mounted.
fn make_work(sb: &Sandbox) {
    assert_code(
        &sb.exec_as_root(
            "mkdir -p /opt/results/run1 /home/guest && echo 42 > /opt/results/run1/a.csv \
             && echo remember > /home/guest/notes.txt",
        ),
        0,
    );
}

#[test]
fn only_disposable_changes_need_no_consent() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    assert_code(
        &sb.exec_as_root(
            "echo x > /tmp/scratch && mkdir -p /var/cache/apt /root/.cache/pip /app/__pycache__ \
             && echo y > /var/cache/apt/pkg && echo z > /root/.cache/pip/w \
             && echo c > /app/__pycache__/m.pyc \
             && touch /opt/gone && rm /opt/gone && chmod 700 /opt",
        ),
        0,
    );
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "holds no unsaved work");
    assert_stderr_has(&out, "disposable change");
    // What is left of a file made and deleted again: a directory with new times.
    assert_stderr_has(&out, "1 directory with only mode or times changed");
    assert!(!sb.exists());
}

#[test]
fn work_is_refused_without_a_terminal_and_the_container_keeps_running_unpaused() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "2 unsaved file(s)");
    assert_stderr_has(&out, "/opt/results");
    assert_stderr_has(&out, "/home/guest/notes.txt");
    assert_stderr_has(&out, "--rescue");
    assert_eq!(sb.state(), "running", "not paused, not stopped");
    assert_code(&sb.exec("true"), 0);
}

#[test]
fn a_stopped_container_gets_the_same_check() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "/opt/results");
    assert_eq!(sb.state(), "exited");
    let out = sb.berth(&["retire", &sb.project, "--yes"]);
    assert_code(&out, 0);
    assert!(!sb.exists());
}

#[test]
fn recreate_refuses_work_without_a_terminal_and_replaces_a_clean_container() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let id = sb.inspect().unwrap()["Id"].clone();
    let out = sb.berth(&[
        "deploy",
        &sb.project,
        "--image",
        &sb.image.tag,
        "--recreate",
    ]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "not recreating");
    assert_stderr_has(&out, "/opt/results");
    assert_eq!(sb.inspect().unwrap()["Id"], id);
    assert_eq!(sb.state(), "running");

    // Once the work is gone, recreate replaces the container.
    assert_code(&sb.exec_as_root("rm -r /opt/results /home/guest"), 0);
    deploy(&sb, &["--recreate"]);
    assert_ne!(sb.inspect().unwrap()["Id"], id);
}

#[test]
fn dry_run_shows_the_summary_as_json_and_changes_nothing() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    install_six(&sb);
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["action"], "would_ask");
    assert_eq!(report["state"], "running");
    let count = |class: &str| {
        report["classes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["class"] == class)
            .map(|c| c["count"].as_u64().unwrap())
    };
    assert_eq!(count("packages"), Some(1));
    assert_eq!(count("home"), Some(1));
    assert_eq!(count("other"), Some(1));
    assert_eq!(report["packages"][0]["name"], "six");
    assert_eq!(report["packages"][0]["version"], "1.16.0");
    assert_stderr_has(&out, "pip install six==1.16.0");
    assert_eq!(sb.state(), "running");
}

#[test]
fn the_prompt_on_a_terminal_freezes_the_container_and_no_keeps_it() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let mut pty = sb.berth_pty(&["retire", &sb.project]);
    pty.expect("[y/N]", PROMPT);
    assert_eq!(sb.state(), "paused", "frozen while the user decides");
    pty.send("n\n");
    let status = pty.wait(PROMPT);
    assert_eq!(status.code(), Some(3), "{}", pty.output());
    assert!(pty.output().contains("you answered no"), "{}", pty.output());
    assert_eq!(sb.state(), "running");
    assert_eq!(stdout(&sb.exec("cat /opt/results/run1/a.csv")), "42\n");
}

#[test]
fn yes_at_the_prompt_removes_the_container() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let mut pty = sb.berth_pty(&["retire", &sb.project]);
    pty.expect("[y/N]", PROMPT);
    pty.send("y\n");
    let status = pty.wait(PROMPT);
    assert_eq!(status.code(), Some(0), "{}", pty.output());
    assert!(!sb.exists());
}

#[test]
fn the_prompt_offers_to_save_the_packages_first() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    install_six(&sb);
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!(
            "packages     pip: six==1.16.0; `berth retire {} --save-packages`",
            sb.project
        )),
        "{}",
        stdout(&out)
    );
    let mut pty = sb.berth_pty(&["retire", &sb.project]);
    pty.expect("Save its packages (six==1.16.0)", PROMPT);
    pty.send("y\n");
    pty.expect("lose its", PROMPT);
    pty.send("n\n");
    let status = pty.wait(PROMPT);
    assert_eq!(status.code(), Some(3), "{}", pty.output());
    let list = sb.workspace().join(".berth/packages/requirements.txt");
    assert_eq!(fs::read_to_string(list).unwrap(), "six==1.16.0\n");
    assert_eq!(sb.state(), "running", "saving the packages is not consent");
}

#[test]
fn ctrl_c_at_the_prompt_unpauses_and_removes_nothing() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let mut pty = sb.berth_pty(&["retire", &sb.project]);
    pty.expect("[y/N]", PROMPT);
    assert_eq!(sb.state(), "paused");
    pty.send("\x03");
    let status = pty.wait(PROMPT);
    assert_eq!(status.code(), Some(130), "{}", pty.output());
    assert!(pty.output().contains("was not removed"), "{}", pty.output());
    assert_eq!(sb.state(), "running");
}

#[test]
fn rescue_copies_the_files_byte_for_byte_with_their_modes_owned_by_the_user() {
    let run_as = match test_user() {
        Some((uid, gid)) => RunAs::Other { uid, gid },
        None => RunAs::Me,
    };
    let sb = Sandbox::with_user(run_as);
    sb.project_toml("");
    deploy(&sb, &[]);
    assert_code(
        &sb.exec_as_root(
            "mkdir -p /opt/work/deep/er /home/guest && head -c 300000 /dev/urandom > /opt/work/blob \
             && printf 'a\\nb\\n' > /opt/work/deep/er/t.txt && chmod 750 /opt/work/deep/er/t.txt \
             && ln -s blob /opt/work/link && echo n > /home/guest/notes.txt && echo p > /etc/motd \
             && echo cache > /tmp/c",
        ),
        0,
    );
    let blob = docker(&["exec", &sb.container(), "cat", "/opt/work/blob"]).stdout;
    assert_eq!(blob.len(), 300_000);

    let out = sb.berth(&["retire", &sb.project, "--rescue", "--json"]);
    assert_code(&out, 0);
    assert!(!sb.exists());
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["action"], "removed");
    let folder = std::path::PathBuf::from(outcome["rescued"]["path"].as_str().unwrap());
    assert!(
        folder.starts_with(sb.workspace().join(".rescued")),
        "{folder:?}"
    );
    let name = folder.file_name().unwrap().to_str().unwrap();
    assert!(
        name.len() == 16 && name.ends_with('Z') && name.as_bytes()[8] == b'T',
        "a UTC time stamp: {name}"
    );

    assert_eq!(fs::read(folder.join("opt/work/blob")).unwrap(), blob);
    let text = folder.join("opt/work/deep/er/t.txt");
    assert_eq!(fs::read(&text).unwrap(), b"a\nb\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&text).unwrap().permissions().mode() & 0o777,
        0o750
    );
    assert_eq!(
        fs::read_link(folder.join("opt/work/link")).unwrap(),
        std::path::Path::new("blob")
    );
    assert_eq!(
        fs::read(folder.join("home/guest/notes.txt")).unwrap(),
        b"n\n"
    );
    assert_eq!(fs::read(folder.join("etc/motd")).unwrap(), b"p\n");
    assert!(
        !folder.join("tmp/c").exists(),
        "disposable files stay behind"
    );
    if let RunAs::Other { uid, .. } = run_as {
        assert_eq!(owner(&folder.join("opt/work/blob")), uid);
        assert_eq!(owner(&folder), uid);
    }
}

#[test]
fn a_rescue_that_cannot_write_removes_nothing() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    // A file where the rescue folder should go.
    fs::write(sb.workspace().join(".rescued"), "in the way").unwrap();
    let out = sb.berth(&["retire", &sb.project, "--rescue"]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "cannot rescue into");
    assert_stderr_has(&out, "nothing was copied");
    // The rescue comes after the stop, so that it holds what the stop wrote.
    assert_stderr_has(&out, "nothing was removed");
    assert_stderr_has(&out, "is stopped, and `berth deploy");
    assert_eq!(sb.state(), "exited");
    assert_code(&docker(&["start", &sb.container()]), 0);
    assert_eq!(stdout(&sb.exec("cat /opt/results/run1/a.csv")), "42\n");
}

/// The workspace root on a 1 MiB tmpfs: the rescue runs out of space half-way.
#[test]
fn a_rescue_into_a_full_disk_says_what_was_copied_and_removes_nothing() {
    let sb = Sandbox::new();
    fs::create_dir_all(&sb.workspace_root).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&sb.workspace_root)
        .output()
        .unwrap();
    assert!(
        mounted.status.success(),
        "this test mounts a tmpfs (root with CAP_SYS_ADMIN): {}",
        stderr(&mounted)
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .output()
                .ok();
        }
    }
    let _unmount = Unmount(sb.workspace_root.clone());
    deploy(&sb, &["--new"]);
    assert_code(
        &sb.exec_as_root(
            "mkdir -p /opt/a /opt/z && echo small > /opt/a/first \
             && head -c 3000000 /dev/urandom > /opt/z/big",
        ),
        0,
    );
    let out = sb.berth(&["retire", &sb.project, "--rescue"]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "rescue failed at /opt/z/big: no space left on device");
    assert_stderr_has(&out, "copied 1 file(s)");
    assert_stderr_has(&out, ".partial before that; it is yours to delete");
    assert_stderr_has(&out, "nothing was removed");
    assert_eq!(sb.state(), "exited");
    let partial: Vec<String> = fs::read_dir(sb.workspace().join(".rescued"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        partial.len() == 1 && partial[0].ends_with(".partial"),
        "{partial:?}"
    );
}

#[test]
fn commit_makes_a_timestamped_image_that_holds_the_work() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let out = sb.berth(&["retire", &sb.project, "--commit", "--json"]);
    assert_code(&out, 0);
    assert!(!sb.exists());
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = outcome["image"].as_str().unwrap().to_string();
    let (repo, tag) = image.rsplit_once(':').unwrap();
    assert_eq!(repo, format!("berth/{}/{}", whoami(), sb.project));
    assert!(tag.len() == 16 && tag.ends_with('Z'), "{tag}");
    let out = docker(&["run", "--rm", &image, "cat", "/opt/results/run1/a.csv"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "42\n");

    let out = sb.berth(&["retire", &sb.project, "--commit=latest"]);
    assert_code(&out, 2);
    assert_stderr_has(&out, "never commits to :latest");
}

/// The project's berth.toml is in the workspace, which the container can write: what
/// it alone makes disposable is listed by name, and it cannot make everything so.
#[test]
fn a_project_file_written_by_the_container_cannot_hide_work() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let write_toml = |patterns: &str| {
        let script =
            format!("printf '[retire]\\ndisposable = {patterns}\\n' > /workspace/berth.toml");
        assert_code(&sb.exec(&script), 0);
    };

    for everything in [r#"["**"]"#, r#"["/"]"#, r#"["/tmp", "/*"]"#] {
        write_toml(everything);
        let out = sb.berth(&["retire", &sb.project, "--yes"]);
        assert_code(&out, 1);
        assert_stderr_has(&out, "would make every change disposable");
        assert_eq!(sb.state(), "running", "{everything}: not removed");
    }

    write_toml(r#"["/opt", "/home", "/tmp"]"#);
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "disposable only by");
    assert_stderr_has(&out, "/home/guest/notes.txt");
    assert_stderr_has(&out, "/opt/results/run1/a.csv");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_project = &report["disposable_by_project"];
    assert_eq!(by_project["count"], 2, "{report:#}");
    assert_eq!(
        by_project["paths"],
        serde_json::json!(["/home/guest/notes.txt", "/opt/results/run1/a.csv"])
    );
    // /tmp is disposable by default too: not the project file's doing.
    assert_code(&sb.exec("echo x > /tmp/scratch"), 0);
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["disposable_by_project"]["count"], 2, "{report:#}");
}

/// Two retires of one project: the second waits for the first, then finds the
/// container as the first left it, and says so plainly.
#[test]
fn a_second_retire_waits_for_the_first_and_says_what_happened() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let second = || {
        let command = sb.command(
            env!("CARGO_BIN_EXE_berth"),
            &["retire", &sb.project, "--yes"],
        );
        std::thread::spawn(move || {
            let mut command = command;
            command.stdin(std::process::Stdio::null()).output().unwrap()
        })
    };

    // The first keeps the container: the second then removes it, as it was asked.
    let mut first = sb.berth_pty(&["retire", &sb.project]);
    first.expect("[y/N]", PROMPT);
    let waiting = second();
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(
        sb.state(),
        "paused",
        "the second did not touch it meanwhile"
    );
    first.send("n\n");
    assert_eq!(first.wait(PROMPT).code(), Some(3), "{}", first.output());
    let out = waiting.join().unwrap();
    assert_code(&out, 0);
    assert_stderr_has(
        &out,
        "waiting for another berth to finish its deploy or retire",
    );
    assert!(!sb.exists());

    // The first removes it: the second finds it gone, and says that it removed nothing.
    deploy(&sb, &[]);
    make_work(&sb);
    let mut first = sb.berth_pty(&["retire", &sb.project]);
    first.expect("[y/N]", PROMPT);
    let waiting = second();
    // Long enough for the second to be waiting on the lock.
    std::thread::sleep(Duration::from_millis(1500));
    first.send("y\n");
    assert_eq!(first.wait(PROMPT).code(), Some(0), "{}", first.output());
    let out = waiting.join().unwrap();
    assert_code(&out, 1);
    assert_stderr_has(&out, "retired");
    assert_stderr_has(&out, "while this one waited; this one removed nothing");
    assert!(!stderr(&out).contains("cannot"), "{}", stderr(&out));
}

/// A retire killed while it holds the container paused leaves no frozen job: the next
/// berth command resumes it. Someone else's `docker pause` is left alone.
#[test]
fn a_pause_left_by_a_killed_retire_is_resumed_by_the_next_command() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    let mut pty = sb.berth_pty(&["retire", &sb.project]);
    pty.expect("[y/N]", PROMPT);
    assert_eq!(sb.state(), "paused");
    // SAFETY: kill on a pid this test spawned.
    unsafe { libc::kill(pty.pid() as i32, libc::SIGKILL) };
    pty.wait(PROMPT);
    assert_eq!(sb.state(), "paused", "nobody was left to unpause it");
    // `list` marks it; it changes nothing.
    let listed = |sb: &Sandbox| -> Value {
        let out = sb.berth(&["list", "--json"]);
        assert_code(&out, 0);
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        all["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["project"] == sb.project.as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(listed(&sb)["abandoned_pause"], true);
    let out = sb.berth(&["list"]);
    assert!(
        stdout(&out).contains("left by a killed retire"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sb.state(), "paused");

    let out = sb.berth(&["shell", &sb.project, "--", "cat", "/opt/results/run1/a.csv"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "42\n");
    assert_stderr_has(&out, "resumed");
    assert_eq!(sb.state(), "running");

    // A pause that is not berth's stays.
    assert_code(&docker(&["pause", &sb.container()]), 0);
    assert_eq!(listed(&sb)["abandoned_pause"], false);
    let out = sb.berth(&["shell", &sb.project, "--", "true"]);
    assert_code(&out, 1);
    assert!(!stderr(&out).contains("resumed"), "{}", stderr(&out));
    assert_eq!(sb.state(), "paused");
    assert_code(&docker(&["unpause", &sb.container()]), 0);
}

#[test]
fn commit_never_repoints_someone_elses_tag() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    make_work(&sb);
    // A tag others build on, outside berth/<user>/: the sandbox's own image, tagged.
    let shared = format!("berth-test/shared-{}:v1", sb.project);
    assert_code(&docker(&["tag", &sb.image.tag, &shared]), 0);
    let _untag = ImageGuard(shared.clone());
    let id_of = |image: &str| stdout(&docker(&["image", "inspect", "-f", "{{.Id}}", image]));
    let before = id_of(&shared);

    let out = sb.berth(&["retire", &sb.project, &format!("--commit={shared}")]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "is not yours to replace");
    assert_stderr_has(&out, "nothing was removed");
    assert_eq!(id_of(&shared), before, "the tag still names the same image");
    assert_eq!(sb.state(), "running", "not paused, not removed");

    // A tag outside that nothing holds yet is the caller's to make.
    let fresh = format!("berth-test/shared-{}:v2", sb.project);
    let _untag_fresh = ImageGuard(fresh.clone());
    let out = sb.berth(&["retire", &sb.project, &format!("--commit={fresh}")]);
    assert_code(&out, 0);
    assert!(!sb.exists());
}

/// Deploys with an anonymous volume at `target` and returns the volume's name.
fn deploy_with_volume(sb: &Sandbox, target: &str) -> String {
    deploy(sb, &["-v", target]);
    sb.inspect().unwrap()["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == target)
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("an anonymous volume at {target}"))
}

#[test]
fn an_anonymous_volume_with_data_blocks_and_survives_yes() {
    let sb = Sandbox::new();
    let volume = deploy_with_volume(&sb, "/scratch");
    let _cleanup = VolumeGuard(volume.clone());
    assert_code(&sb.exec_as_root("echo results > /scratch/out.txt"), 0);

    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "anonymous volume");
    assert_stderr_has(&out, "/scratch");
    assert_eq!(sb.state(), "running");

    let out = sb.berth(&["retire", &sb.project, "--yes"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, format!("kept anonymous volume {volume}"));
    assert!(!sb.exists());
    assert_code(&docker(&["volume", "inspect", &volume]), 0);
}

/// At a disposable path, a volume with data asks for nothing, but it is named, and
/// kept like every volume.
#[test]
fn an_anonymous_volume_at_a_disposable_path_is_listed_not_asked_about() {
    let sb = Sandbox::new();
    let volume = deploy_with_volume(&sb, "/var/cache/scratch");
    let _cleanup = VolumeGuard(volume.clone());
    assert_code(&sb.exec_as_root("echo tmp > /var/cache/scratch/x"), 0);

    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["action"], "would_remove");
    assert_eq!(
        report["disposable_volumes"][0]["target"],
        "/var/cache/scratch"
    );
    assert_stderr_has(&out, "at disposable /var/cache/scratch (1 file");

    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, format!("kept anonymous volume {volume}"));
    assert_code(&docker(&["volume", "inspect", &volume]), 0);
}

/// Deploys a container that runs `on_term` when it gets SIGTERM, then exits.
fn deploy_trapping(sb: &Sandbox, on_term: &str) {
    let script = format!("trap '{on_term}' TERM; while :; do sleep 1; done");
    let args = [
        "deploy",
        &sb.project,
        "--image",
        &sb.image.tag,
        "--",
        "sh",
        "-c",
        &script,
    ];
    assert_code(&sb.berth(&args), 0);
}

#[test]
fn files_written_while_stopping_are_shown_before_anything_is_removed() {
    let sb = Sandbox::new();
    // The container writes a file when it gets SIGTERM: after the check, before removal.
    // (/opt/drop is made writable for whichever user the container runs as.)
    deploy_trapping(&sb, "echo late > /opt/drop/late; exit 0");
    assert_code(
        &sb.exec_as_root("mkdir -m 777 /opt/drop && echo shown > /opt/drop/shown"),
        0,
    );
    let out = sb.berth(&["retire", &sb.project, "--yes"]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "you were not shown");
    assert_stderr_has(&out, "/opt/drop/late");
    assert_eq!(sb.state(), "exited", "stopped, not removed");

    let out = sb.berth(&["retire", &sb.project, "--yes"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "/opt");
    assert!(!sb.exists());
}

#[test]
fn a_file_shown_then_rewritten_as_it_stops_is_new_work_too() {
    let sb = Sandbox::new();
    // A checkpoint written again on SIGTERM, same name, same size: what the user agreed
    // to lose is not what it holds now.
    deploy_trapping(&sb, "echo final > /opt/drop/ckpt; exit 0");
    assert_code(
        &sb.exec_as_root("mkdir -m 777 /opt/drop && echo early > /opt/drop/ckpt"),
        0,
    );
    let out = sb.berth(&["retire", &sb.project, "--yes"]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "you were not shown");
    assert_stderr_has(&out, "/opt/drop/ckpt");
    assert_eq!(sb.state(), "exited", "stopped, not removed");
    assert_code(&docker(&["start", &sb.container()]), 0);
    assert_eq!(stdout(&sb.exec("cat /opt/drop/ckpt")), "final\n");

    // With --rescue, the final version is what is kept.
    let out = sb.berth(&["retire", &sb.project, "--rescue"]);
    assert_code(&out, 0);
    let rescued = sb.rescued();
    assert_eq!(
        fs::read_to_string(rescued.join("opt/drop/ckpt")).unwrap(),
        "final\n"
    );
}

/// `retire --rescue` killed outright at several moments (while it checks with the
/// container paused, while it stops it, while it rescues): the next command never
/// finds a frozen job, and the work is still somewhere.
#[test]
fn a_rescue_killed_at_any_moment_never_leaves_a_frozen_job() {
    for delay_ms in [50, 200, 400, 700] {
        let sb = Sandbox::new();
        deploy(&sb, &["--new"]);
        assert_code(
            &sb.exec_as_root(
                "mkdir -p /opt/k && for i in $(seq 1 400); do echo $i > /opt/k/$i; done",
            ),
            0,
        );
        let mut child = sb
            .command(
                env!("CARGO_BIN_EXE_berth"),
                &["retire", &sb.project, "--rescue"],
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().ok();
        child.wait().unwrap();
        // Killed while the engine removed the container, which the engine finishes.
        for _ in 0..100 {
            if !sb.exists() || sb.state() != "removing" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if !sb.exists() {
            // It finished first: the work is in the rescue.
            assert!(
                sb.workspace().join(".rescued").is_dir(),
                "after {delay_ms} ms"
            );
            continue;
        }
        let out = sb.berth(&["deploy", &sb.project]);
        assert_code(&out, 0);
        assert_eq!(
            sb.state(),
            "running",
            "after {delay_ms} ms: {}",
            stderr(&out)
        );
        assert_eq!(
            stdout(&sb.exec("cat /opt/k/400")),
            "400\n",
            "after {delay_ms} ms"
        );
    }
}

/// A pause a root reaper made and could not undo (killed) is recorded where every user
/// looks, and only root can write: the owner's next command resumes it.
#[test]
fn a_pause_left_by_a_killed_root_reaper_is_resumed_by_the_owners_next_command() {
    let (uid, gid) = test_user().expect("the tests run as root, to make a test user");
    let sb = Sandbox::with_user(RunAs::Other { uid, gid });
    deploy(&sb, &["--new"]);
    let id = stdout(&docker(&["inspect", "-f", "{{.Id}}", &sb.container()]))
        .trim()
        .to_string();
    assert_code(&docker(&["pause", &sb.container()]), 0);
    // What a reaper killed while it held the pause leaves: its record, of a dead pid.
    let record = std::path::Path::new("/run/berth/paused").join(&id);
    fs::create_dir_all(record.parent().unwrap()).unwrap();
    fs::write(&record, "4000000 1\n").unwrap();
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            fs::remove_file(&self.0).ok();
        }
    }
    let _record = Remove(record.clone());

    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "resumed");
    assert_eq!(sb.state(), "running");
    // A user cannot remove root's record (root's next look at the container does).
    assert!(record.exists());
}

/// deploy and retire of one project at once: they take turns (the project's lock), so
/// each says what it did, neither prints an engine error, and what is left is what the
/// later one made.
#[test]
fn deploy_and_retire_racing_take_turns_and_say_what_happened() {
    let sb = Sandbox::new();
    deploy(&sb, &["--new"]);
    for _ in 0..3 {
        let spawn = |args: &[&str]| {
            sb.command(env!("CARGO_BIN_EXE_berth"), args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let retiring = spawn(&["retire", &sb.project, "--yes"]);
        let deploying = spawn(&["deploy", &sb.project, "--image", &sb.image.tag]);
        let (retired, deployed) = (
            retiring.wait_with_output().unwrap(),
            deploying.wait_with_output().unwrap(),
        );
        for out in [&retired, &deployed] {
            let text = stderr(out);
            for engine_error in ["not paused", "No such container", "is not running", "409"] {
                assert!(!text.contains(engine_error), "{text}");
            }
        }
        assert_code(&deployed, 0);
        // The retire either went first (and the deploy made a new container) or found
        // the one the deploy left, and removed it; or it found none and said so.
        match retired.status.code() {
            Some(0) => {}
            Some(1) => assert_stderr_has(&retired, "removed nothing"),
            code => panic!("retire exited {code:?}: {}", stderr(&retired)),
        }
        if !sb.exists() {
            deploy(&sb, &[]);
        }
        assert_eq!(sb.state(), "running");
    }
}

/// The container can write the workspace: a package list it swapped for a symbolic
/// link is not written through, and nothing is removed.
#[test]
fn save_packages_never_writes_through_a_planted_symlink() {
    let sb = Sandbox::new();
    deploy(&sb, &[]);
    install_six(&sb);
    let canary = sb.path().join("canary.txt");
    std::fs::write(&canary, "untouched\n").unwrap();
    let lists = sb.workspace().join(".berth/packages");
    std::fs::create_dir_all(&lists).unwrap();
    std::os::unix::fs::symlink(&canary, lists.join("requirements.txt")).unwrap();
    let out = sb.berth(&["retire", &sb.project, "--save-packages", "--yes"]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "not a regular file");
    assert_stderr_has(&out, "nothing was removed");
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched\n");
    assert_eq!(sb.state(), "running");
}

/// A pip install of six 1.16.0 as its records show it in the layer.
fn install_six(sb: &Sandbox) {
    assert_code(
        &sb.exec_as_root(
            "mkdir -p /usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info \
             && echo x > /usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info/RECORD",
        ),
        0,
    );
}
