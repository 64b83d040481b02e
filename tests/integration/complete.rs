//! Tab completion as a shell does it: bash sources the checked-in script, and the
//! completion function it defines runs the real binary, which answers from the
//! workspaces and the engine.

use std::fs;
use std::path::Path;

use crate::support::*;

/// What bash offers for `line` (the words so far, the last one being completed), with
/// the checked-in script for `program` sourced, as a user's shell would have it.
fn bash_offers(sb: &Sandbox, program: &str, words: &[&str]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions/bash")
        .join(program);
    let function = format!("_clap_complete_{}", program.replace('-', "_"));
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.last().unwrap();
    let previous = words.len().checked_sub(2).map_or("", |i| words[i]);
    let test = format!(
        "source '{}' || exit 9\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={}\n\
         COMP_LINE='{}'\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         {function} '{program}' '{current}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_berth")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = sb
        .command("bash", &["--norc", "--noprofile", "-c", &test])
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert_code(&out, 0);
    stdout(&out)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_project_names_from_the_workspaces() {
    let sb = Sandbox::new();
    let name = |suffix: &str| format!("{}-{suffix}", sb.project);
    for suffix in ["alpha-proj", "alpine", "beta"] {
        fs::create_dir_all(sb.workspace_root.join(name(suffix))).unwrap();
    }
    // Not projects: a file, and a directory whose name berth would refuse.
    fs::write(sb.workspace_root.join(name("al-file")), "").unwrap();
    fs::create_dir_all(sb.workspace_root.join(format!("{}-Al", sb.project))).unwrap();

    let prefix = name("al");
    let expected = vec![name("alpha-proj"), name("alpine")];
    assert_eq!(
        bash_offers(&sb, "container-deploy", &["container-deploy", &prefix]),
        expected
    );
    assert_eq!(
        bash_offers(&sb, "container-retire", &["container-retire", &prefix]),
        expected
    );
    assert_eq!(
        bash_offers(&sb, "berth", &["berth", "deploy", &prefix]),
        expected
    );
    assert_eq!(
        bash_offers(&sb, "berth", &["berth", "run", "--project", &prefix]),
        expected
    );
    assert_eq!(
        bash_offers(&sb, "berth", &["berth", "shell", &name("alpha")]),
        [name("alpha-proj")]
    );
    // The rest of the command line completes from the same definitions.
    assert_eq!(bash_offers(&sb, "berth", &["berth", "ret"]), ["retire"]);
    assert_eq!(
        bash_offers(&sb, "container-retire", &["container-retire", "--res"]),
        ["--rescue", "--rescue-all"]
    );
}

#[test]
fn bash_completes_projects_that_have_only_a_container() {
    let sb = Sandbox::new();
    sb.deployed();
    // Another workspace root: the project is known from its container alone.
    let elsewhere = sb.path().join("other-root");
    fs::create_dir_all(&elsewhere).unwrap();
    let sb = sb.env("BERTH_WORKSPACE_ROOT", elsewhere.to_str().unwrap());
    assert_eq!(
        bash_offers(&sb, "container-retire", &["container-retire", &sb.project]),
        [sb.project.as_str()]
    );
}

#[test]
fn completion_without_an_engine_still_offers_the_workspaces() {
    let sb = Sandbox::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    fs::create_dir_all(sb.workspace()).unwrap();
    assert_eq!(
        bash_offers(&sb, "berth", &["berth", "check", &sb.project]),
        [sb.project.as_str()]
    );
}

#[test]
fn bash_completes_local_images_mount_sources_and_env_files() {
    let sb = Sandbox::new();
    // --image: the engine's local tags.
    let (repo, _) = sb.image.tag.split_once(':').unwrap();
    let offers = bash_offers(
        &sb,
        "container-deploy",
        &["container-deploy", &sb.project, "--image", repo],
    );
    assert_eq!(offers, [sb.image.tag.as_str()]);

    // -v and --env-file: paths.
    let dir = sb.path().join("completion");
    fs::create_dir_all(dir.join("mount-source")).unwrap();
    fs::write(dir.join("vars.env"), "A=1\n").unwrap();
    let partial = |name: &str| format!("{}/{name}", dir.display());
    let offers = bash_offers(
        &sb,
        "container-deploy",
        &["container-deploy", &sb.project, "-v", &partial("mount-s")],
    );
    assert_eq!(offers, [format!("{}/", partial("mount-source"))]);
    let offers = bash_offers(
        &sb,
        "berth",
        &["berth", "run", "--env-file", &partial("vars")],
    );
    assert_eq!(offers, [partial("vars.env")]);
}
