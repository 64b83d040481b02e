//! `persist`: container paths kept in the project's own named volumes, seeded from the
//! image, never removed by retire, listed by `berth list`, and never a volume that
//! someone else made.

use std::fs;

use serde_json::Value;

use crate::support::*;

fn volume(sb: &Sandbox, path: &str) -> String {
    format!("berth.{}.{}.{path}", whoami(), sb.project)
}

/// `deploy --image <the test image> --new --persist P` for each of `paths`.
#[test]
fn a_persisted_path_is_seeded_from_the_image_and_outlives_retire() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.workspace()).unwrap();
    fs::write(
        sb.workspace().join("Dockerfile"),
        format!(
            "FROM {}\nRUN mkdir -p /srv && echo starter > /srv/notes.txt\n",
            sb.image.tag
        ),
    )
    .unwrap();
    sb.project_toml("persist = [\"/srv\"]\n");
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_eq!(stdout(&sb.exec("cat /srv/notes.txt")), "starter\n");
    assert_code(&sb.exec_as_root("echo run1 > /srv/run.txt"), 0);

    let name = volume(&sb, "srv");
    let out = docker(&["volume", "inspect", &name]);
    assert_code(&out, 0);
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels = &inspected[0]["Labels"];
    assert_eq!(labels["berth.project"], sb.project.as_str());
    assert_eq!(labels["berth.persist"], "/srv");

    // What the volume holds is saved: retire asks nothing, and keeps the volume.
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 0);
    assert!(!sb.exists());
    assert_code(&docker(&["volume", "inspect", &name]), 0);
    let out = sb.berth(&["list"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("PERSISTED"), "{}", stdout(&out));
    let out = sb.berth(&["list", "--json"]);
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&Value> = listing["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["project"] == sb.project.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{listing:#}");
    assert_eq!(listed[0]["path"], "/srv");
    assert_eq!(listed[0]["volume"], name.as_str());

    // The next container finds it as the last one left it.
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_eq!(stdout(&sb.exec("cat /srv/run.txt")), "run1\n");
    let out = sb.berth(&["check", &sb.project]);
    assert!(
        stdout(&out).contains(&format!("/srv <- volume {name} (persisted)")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_persist_path_that_is_not_plain_or_a_volume_that_is_not_yours_is_refused() {
    let sb = Sandbox::new();
    let deploy = |path: &str| sb.deploy_persisting(&[path]);
    let out = deploy("srv");
    assert_code(&out, 1);
    assert_stderr_has(&out, "is not an absolute container path");
    let out = deploy("/workspace/cache");
    assert_code(&out, 3);
    assert_stderr_has(&out, "would shadow the workspace");

    // A neighbour made a volume under the project's name first.
    let name = volume(&sb, "srv");
    assert_code(&docker(&["volume", "create", &name]), 0);
    let out = deploy("/srv");
    assert_code(&out, 3);
    assert_stderr_has(&out, "it is not this project's");
    assert!(!sb.exists());
}

/// `berth forget PROJECT --volumes` removes the persisted volumes with retire's
/// consent rules: not while a container mounts them, an empty one without a question,
/// one that holds files only with consent.
#[test]
fn forget_removes_the_volumes_with_retires_consent() {
    let sb = Sandbox::new();
    assert_code(&sb.deploy_persisting(&["/srv", "/opt/empty"]), 0);
    assert_code(&sb.exec_as_root("echo x > /srv/a.txt"), 0);
    let (srv, empty) = (volume(&sb, "srv"), volume(&sb, "opt-empty"));

    let forget = |args: &[&str]| {
        let mut full = vec!["forget", sb.project.as_str(), "--volumes"];
        full.extend_from_slice(args);
        sb.berth(&full)
    };
    let out = forget(&[]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "`berth retire");
    assert_code(&sb.berth(&["retire", &sb.project]), 0);

    let out = forget(&["--dry-run", "--json"]);
    assert_code(&out, 0);
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["action"], "would_remove");
    let files = |path: &str| {
        outcome["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["path"] == path)
            .map(|v| v["files"].as_u64().unwrap())
    };
    assert_eq!(files("/srv"), Some(1), "{outcome:#}");
    assert_eq!(files("/opt/empty"), Some(0), "{outcome:#}");

    // No terminal, no --yes: refused, and both stay.
    let out = forget(&[]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "not removing them without your consent");
    assert_code(&docker(&["volume", "inspect", &srv]), 0);
    assert_code(&docker(&["volume", "inspect", &empty]), 0);

    let out = forget(&["--yes"]);
    assert_code(&out, 0);
    assert_ne!(docker(&["volume", "inspect", &srv]).status.code(), Some(0));
    assert_ne!(
        docker(&["volume", "inspect", &empty]).status.code(),
        Some(0)
    );
    let out = forget(&[]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "has no persisted volumes");
    // No probe container is left behind.
    let probes = docker(&["ps", "-aq", "--filter", "label=berth.helper=volume-probe"]);
    assert_eq!(stdout(&probes), "");
}

/// On a terminal, forget asks before it removes a volume that holds files.
#[test]
fn forget_asks_on_a_terminal() {
    let sb = Sandbox::new();
    assert_code(&sb.deploy_persisting(&["/srv"]), 0);
    assert_code(&sb.exec_as_root("echo x > /srv/a.txt"), 0);
    assert_code(&sb.berth(&["retire", &sb.project]), 0);
    let timeout = std::time::Duration::from_secs(30);
    let mut pty = sb.berth_pty(&["forget", &sb.project, "--volumes"]);
    pty.expect("lose the 1 file(s) in them? [y/N]", timeout);
    pty.send("n\n");
    assert_eq!(pty.wait(timeout).code(), Some(3), "{}", pty.output());
    assert_code(&docker(&["volume", "inspect", &volume(&sb, "srv")]), 0);
    let mut pty = sb.berth_pty(&["forget", &sb.project, "--volumes"]);
    pty.expect("[y/N]", timeout);
    pty.send("y\n");
    assert_eq!(pty.wait(timeout).code(), Some(0), "{}", pty.output());
    assert_ne!(
        docker(&["volume", "inspect", &volume(&sb, "srv")])
            .status
            .code(),
        Some(0)
    );
}

/// A mount over a host folder that holds files hides what the image has at its
/// target: check and deploy say so, with a count, and the count is kept per image id.
#[test]
fn a_mount_that_hides_what_the_image_has_is_warned_about() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.workspace()).unwrap();
    fs::write(
        sb.workspace().join("Dockerfile"),
        format!(
            "FROM {}\nRUN mkdir -p /workspace && echo shipped > /workspace/shipped.txt\n",
            sb.image.tag
        ),
    )
    .unwrap();
    assert_code(&sb.berth(&["build", &sb.project]), 0);
    let said = format!(
        "the mount of {} at /workspace hides 1 file(s)",
        sb.workspace().display()
    );
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!("hidden       {said}")),
        "{}",
        stdout(&out)
    );
    let out = sb.berth(&["check", &sb.project, "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["hidden"][0]["target"], "/workspace", "{report:#}");
    assert_eq!(report["hidden"][0]["files"], 1);
    let kept = fs::read_dir(sb.state_dir().join("images")).unwrap().count();
    assert_eq!(kept, 1, "the count is kept per image id");

    let out = sb.berth(&["deploy", &sb.project, "--json"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, &said);
    let deployed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(deployed["hidden"][0]["files"], 1, "{deployed:#}");
}
