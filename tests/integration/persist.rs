//! `persist`: container paths kept in the project's own named volumes, seeded from the
//! image, never removed by retire, listed by `berth list`, and never a volume that
//! someone else made.

use std::fs;

use serde_json::Value;

use crate::support::*;

fn volume(sb: &Sandbox, path: &str) -> String {
    format!("berth.{}.{}.{path}", whoami(), sb.project)
}

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
    let deploy = |path: &str| {
        sb.berth(&[
            "deploy",
            &sb.project,
            "--image",
            &sb.image.tag,
            "--new",
            "--persist",
            path,
        ])
    };
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
