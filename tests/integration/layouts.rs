//! berth on the layouts real images have (merged /usr, a linked /home, an image that
//! ships /workspace, a real Debian 12 rootfs), as root and as a non-root user: an
//! untouched container holds no unsaved work, so retire removes it at once, rescues
//! nothing, and the reaper retires it without a rescue.

use std::fs;
use std::thread::sleep;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Longer than the policy's `hold_stopped` of 1s.
const PAST_WINDOW: Duration = Duration::from_millis(2500);

fn sandbox(layout: Layout, root: bool) -> Sandbox {
    let run_as = if root {
        RunAs::Me
    } else {
        let (uid, gid) = test_user().expect("the tests run as root, to make a test user");
        RunAs::Other { uid, gid }
    };
    let sb = Sandbox::with_image(run_as, layout);
    fs::write(&sb.policy, "[reap]\nhold_stopped = \"1s\"\n").unwrap();
    sb
}

fn deploy(sb: &Sandbox) -> std::process::Output {
    let out = sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag, "--new"]);
    assert_code(&out, 0);
    out
}

/// The uid berth runs as in `sb`.
fn uid_of(sb: &Sandbox) -> u32 {
    match sb.run_as {
        RunAs::Me => owner(&sb.home),
        RunAs::Other { uid, .. } => uid,
    }
}

/// A new workspace, or a new home, starts with what the image has there, owned by the
/// user, and the deploy says so.
fn seeded_from_the_image(sb: &Sandbox, layout: Layout, root: bool, out: &std::process::Output) {
    let said = |target: &str| format!("that {} has at {target}; they are yours", sb.image.tag);
    if layout == Layout::Workspace {
        let readme = sb.workspace().join("README");
        assert_eq!(
            fs::read_to_string(&readme).unwrap(),
            "shipped with the image\n"
        );
        assert_eq!(owner(&readme), uid_of(sb));
        assert_eq!(owner(&sb.workspace()), uid_of(sb));
        assert_stderr_has(out, said("/workspace"));
    } else {
        let entries = fs::read_dir(sb.workspace()).unwrap().count();
        assert_eq!(
            entries, 0,
            "nothing at /workspace in the image: an empty workspace"
        );
        assert_stderr_has(out, "created workspace");
    }
    if layout == Layout::Debian && root {
        // Debian's /root/.bashrc and .profile, the shell's start-up files.
        let bashrc = sb.container_home().join(".bashrc");
        assert!(
            fs::read(&bashrc).unwrap().len() > 100,
            "{}",
            bashrc.display()
        );
        assert_stderr_has(out, said("/root"));
    }
}

/// The unsaved files `retire --dry-run --json` reports, sorted (the engine lists
/// changes in no fixed order).
fn unsaved(sb: &Sandbox) -> Vec<String> {
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Root walks the layer itself; a user through berth's helper container.
    let source = match sb.run_as {
        RunAs::Me => "direct",
        RunAs::Other { .. } => "helper",
    };
    assert_eq!(report["read_by"]["source"], source, "{report:#}");
    let mut paths: Vec<String> = report["classes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|class| class["paths"].as_array().unwrap().clone())
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

fn untouched_container_retires_and_is_reaped(layout: Layout, root: bool) {
    let sb = sandbox(layout, root);
    let out = deploy(&sb);
    seeded_from_the_image(&sb, layout, root, &out);
    assert_eq!(unsaved(&sb), Vec::<String>::new());
    let out = sb.berth(&["check", &sb.project, "--json"]);
    assert_code(&out, 0);
    let check: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check["container"]["unsaved_files"], 0, "{check:#}");
    assert_eq!(check["container"]["unsaved_volumes"], 0, "{check:#}");
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("unsaved      none"),
        "{}",
        stdout(&out)
    );

    let out = sb.berth(&["retire", &sb.project, "--rescue"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "holds no unsaved work");
    assert_stderr_has(&out, "nothing to rescue");
    assert!(!sb.exists(), "removed");
    assert!(!sb.workspace().join(".rescued").exists());

    // A stopped one, long enough ago, is retired by the reaper, with nothing rescued.
    // The seeded workspace and home hold what the image has there: nothing is hidden.
    let again = deploy(&sb);
    assert!(!stderr(&again).contains("hides"), "{}", stderr(&again));
    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);
    sleep(PAST_WINDOW);
    // As a timer runs it: as root, over every user's containers.
    let out = sb.berth_as_root(&["reap", "--project", &sb.project]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).starts_with(&format!("retired {}", sb.container())),
        "{}",
        stdout(&out)
    );
    assert!(!sb.exists(), "removed");
    assert!(!sb.workspace().join(".rescued").exists());
}

macro_rules! on_every_layout {
    ($($name:ident: $layout:expr, $root:expr;)*) => {$(
        #[test]
        fn $name() {
            untouched_container_retires_and_is_reaped($layout, $root);
        }
    )*};
}

on_every_layout! {
    classic_as_root: Layout::Classic, true;
    classic_as_a_user: Layout::Classic, false;
    merged_usr_as_root: Layout::MergedUsr, true;
    merged_usr_as_a_user: Layout::MergedUsr, false;
    home_link_as_root: Layout::HomeLink, true;
    home_link_as_a_user: Layout::HomeLink, false;
    workspace_in_image_as_root: Layout::Workspace, true;
    workspace_in_image_as_a_user: Layout::Workspace, false;
    debian_as_root: Layout::Debian, true;
    debian_as_a_user: Layout::Debian, false;
}

/// Real work on a real layout is still found, through the links: a file under /opt,
/// a tool added next to docker's init in /usr/sbin, a note under the linked /home.
#[test]
fn work_beside_the_mount_points_is_still_found_on_merged_usr() {
    let sb = sandbox(Layout::MergedUsr, true);
    deploy(&sb);
    assert_code(
        &sb.exec_as_root("echo tool > /sbin/mytool && mkdir -p /opt/r && echo 1 > /opt/r/a"),
        0,
    );
    assert_eq!(unsaved(&sb), ["/opt/r/a", "/usr/sbin/mytool"]);
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("unsaved      2 file(s); `berth retire"),
        "{}",
        stdout(&out)
    );
    assert_code(&sb.berth(&["retire", &sb.project]), 3);
}

#[test]
fn a_note_beside_the_home_under_a_linked_home_is_work() {
    let sb = sandbox(Layout::HomeLink, false);
    deploy(&sb);
    assert_code(
        &sb.exec_as_root("mkdir -p /home/guest && echo remember > /home/guest/notes.txt"),
        0,
    );
    assert_eq!(unsaved(&sb), ["/var/home/guest/notes.txt"]);
    assert_code(&sb.berth(&["retire", &sb.project]), 3);
}

/// `container-deploy P` with no image named starts the container `--image` made, as
/// the reaper's notice and `berth shell` tell the user to; `check P` reads it. After a
/// retire, it creates a container of the image the last deploy used.
fn a_plain_deploy_starts_what_image_made(root: bool) {
    let sb = sandbox(Layout::Debian, root);
    deploy(&sb);
    let id = sb.inspect().unwrap()["Id"].clone();
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&sb.image.tag), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("container {}", sb.container())),
        "the image's source: {}",
        stdout(&out)
    );

    assert_code(&docker(&["stop", "-t", "1", &sb.container()]), 0);
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "started");
    assert_eq!(sb.state(), "running");
    assert_eq!(sb.inspect().unwrap()["Id"], id, "the same container");

    // Without a container, the image the last deploy used, and the deploy says so.
    assert_code(&sb.berth(&["retire", &sb.project]), 0);
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("(remembered: the last deploy, "),
        "the image's source: {}",
        stdout(&out)
    );
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "the one this project's last deploy used");
    assert_eq!(sb.state(), "running");
    assert_eq!(
        sb.inspect().unwrap()["Config"]["Image"],
        sb.image.tag.as_str()
    );

    // With no container and no memory, nothing names an image: the usual error.
    assert_code(&sb.berth(&["retire", &sb.project]), 0);
    let memory = sb.state_dir().join(format!("projects/{}.json", sb.project));
    std::fs::remove_file(&memory).unwrap();
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "no image for project");
    assert!(!sb.exists());
}

/// `$check` as two tests: `$as_root` and `$as_a_user`.
macro_rules! as_root_and_as_a_user {
    ($check:ident: $as_root:ident, $as_a_user:ident) => {
        #[test]
        fn $as_root() {
            $check(true);
        }

        #[test]
        fn $as_a_user() {
            $check(false);
        }
    };
}

as_root_and_as_a_user!(a_plain_deploy_starts_what_image_made:
    a_plain_deploy_starts_what_image_made_as_root,
    a_plain_deploy_starts_what_image_made_as_a_user);

/// On Debian, from the second deploy of the image on as on the first: root in the
/// container adds a user, the host user's shell is the image's bash, and the edit to
/// passwd and group is work that a rescue keeps.
fn root_adds_users_on_every_deploy(root: bool) {
    let sb = sandbox(Layout::Debian, root);
    deploy(&sb);
    assert_code(&sb.berth(&["retire", &sb.project]), 0);
    deploy(&sb);
    let user = if root { "root" } else { TEST_USER };
    let out = sb.exec(&format!("getent passwd {user}"));
    assert_code(&out, 0);
    assert!(
        stdout(&out).trim_end().ends_with(":/bin/bash"),
        "{}",
        stdout(&out)
    );
    let out = sb.exec_as_root("useradd --create-home alice && id -un alice");
    assert_code(&out, 0);

    let found = unsaved(&sb);
    for file in ["/etc/passwd", "/etc/group", "/etc/shadow"] {
        assert!(found.iter().any(|p| p == file), "{file} not in {found:?}");
    }
    let out = sb.berth(&["retire", &sb.project, "--rescue"]);
    assert_code(&out, 0);
    let rescued: Vec<_> = fs::read_dir(sb.workspace().join(".rescued"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rescued.len(), 1);
    let passwd = fs::read_to_string(rescued[0].join("etc/passwd")).unwrap();
    assert!(passwd.contains("\nalice:x:"), "{passwd}");
}

as_root_and_as_a_user!(root_adds_users_on_every_deploy:
    on_debian_root_adds_users_on_every_deploy_as_root,
    on_debian_root_adds_users_on_every_deploy_as_a_user);

/// A result in `/opt` of a Debian container is reported, and rescued byte for byte;
/// a world-writable folder comes back writable by its owner alone.
fn a_file_in_opt_is_rescued_byte_for_byte_and_private(root: bool) {
    let sb = sandbox(Layout::Debian, root);
    deploy(&sb);
    let out = sb.exec_as_root(
        "mkdir -p /opt/results/shared && chmod 1777 /opt/results/shared \
         && head -c 300000 /dev/urandom > /opt/results/model.bin \
         && echo note > /opt/results/shared/n.txt",
    );
    assert_code(&out, 0);
    let original = docker(&["exec", &sb.container(), "cat", "/opt/results/model.bin"]).stdout;
    assert_eq!(original.len(), 300_000);
    assert_eq!(
        unsaved(&sb),
        ["/opt/results/model.bin", "/opt/results/shared/n.txt"]
    );

    let out = sb.berth(&["retire", &sb.project, "--rescue"]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "rescued 2 file(s)");
    let stamps: Vec<_> = fs::read_dir(sb.workspace().join(".rescued"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let results = stamps[0].join("opt/results");
    assert!(
        fs::read(results.join("model.bin")).unwrap() == original,
        "byte for byte"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(results.join("shared"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o7022,
        0,
        "no sticky bit, not group or world writable: {mode:o}"
    );
    assert_eq!(mode & 0o700, 0o700, "{mode:o}");
}

as_root_and_as_a_user!(a_file_in_opt_is_rescued_byte_for_byte_and_private:
    on_debian_a_file_in_opt_is_rescued_as_root,
    on_debian_a_file_in_opt_is_rescued_as_a_user);

/// A real wheel from PyPI (`pip download` on the host, kept between runs), put in the
/// workspace.
fn six_wheel(into: &std::path::Path) -> String {
    const WHEEL: &str = "six-1.16.0-py2.py3-none-any.whl";
    let cache = std::path::Path::new("/tmp/berth-test-wheels");
    if !cache.join(WHEEL).exists() {
        let out = std::process::Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "-q", "-d"])
            .arg(cache)
            .arg("six==1.16.0")
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "pip download: {}", stderr(&out));
    }
    fs::copy(cache.join(WHEEL), into.join(WHEEL)).unwrap();
    format!("/workspace/{WHEEL}")
}

/// pip installs in a Debian container are named per environment, with versions: the
/// system's, and a venv's without the pip and setuptools every venv comes with.
fn pip_installs_are_named_per_environment(root: bool) {
    let sb = sandbox(Layout::Debian, root);
    deploy(&sb);
    let wheel = six_wheel(&sb.workspace());
    let out = sb.exec_as_root(&format!(
        "pip install -q --break-system-packages {wheel} \
         && python3 -m venv /opt/venv && /opt/venv/bin/pip install -q {wheel}"
    ));
    assert_code(&out, 0);
    let out = sb.berth(&["retire", &sb.project, "--dry-run", "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: Vec<String> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["manager"], p["env"], p["name"], p["version"]
            )
        })
        .collect();
    assert_eq!(
        packages,
        [
            r#""pip" null "six" "1.16.0""#,
            r#""pip" "/opt/venv" "six" "1.16.0""#
        ]
    );
    let out = sb.berth(&["retire", &sb.project, "--dry-run"]);
    assert_stderr_has(&out, "pip: six 1.16.0; pip in /opt/venv: six 1.16.0");
    assert_stderr_has(&out, "pip install six==1.16.0");
}

as_root_and_as_a_user!(pip_installs_are_named_per_environment:
    on_debian_pip_installs_are_named_per_environment_as_root,
    on_debian_pip_installs_are_named_per_environment_as_a_user);

/// `retire --save-packages` writes what pip and conda installed, pinned, into the
/// workspace's lists, keeping the lines the user wrote; it is not consent to remove.
fn packages_are_saved_into_the_workspace(root: bool) {
    let sb = sandbox(Layout::Debian, root);
    deploy(&sb);
    let wheel = six_wheel(&sb.workspace());
    let out = sb.exec_as_root(&format!(
        "pip install -q --break-system-packages {wheel} \
         && mkdir -p /opt/conda/conda-meta \
         && echo '{{}}' > /opt/conda/conda-meta/numpy-1.26.4-py311h64a7726_0.json"
    ));
    assert_code(&out, 0);
    let lists = sb.workspace().join(".berth/packages");
    fs::create_dir_all(&lists).unwrap();
    fs::write(lists.join("requirements.txt"), "# mine\n\nrequests>=2\n").unwrap();
    if let RunAs::Other { uid, gid } = sb.run_as {
        let chown = format!("{uid}:{gid}");
        let out = std::process::Command::new("chown")
            .args(["-R", &chown])
            .arg(sb.workspace().join(".berth"))
            .output()
            .unwrap();
        assert!(out.status.success());
    }

    // No terminal and no --yes: the lists are written, the container stays.
    let out = sb.berth(&["retire", &sb.project, "--save-packages"]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "gained 1: six==1.16.0");
    assert!(sb.exists(), "--save-packages alone removes nothing");
    let requirements = fs::read_to_string(lists.join("requirements.txt")).unwrap();
    assert_eq!(requirements, "# mine\n\nrequests>=2\nsix==1.16.0\n");
    let conda = fs::read_to_string(lists.join("conda.txt")).unwrap();
    assert_eq!(conda, "numpy=1.26.4\n");

    // Again, with consent: nothing new to add, and the container goes.
    let out = sb.berth(&["retire", &sb.project, "--save-packages", "--yes", "--json"]);
    assert_code(&out, 0);
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let added: Vec<usize> = outcome["saved_packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|list| list["added"].as_array().unwrap().len())
        .collect();
    assert_eq!(added, [0, 0], "{outcome:#}");
    assert!(!sb.exists());
    assert_eq!(
        fs::read_to_string(lists.join("requirements.txt")).unwrap(),
        requirements
    );
    if let RunAs::Other { uid, .. } = sb.run_as {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(lists.join("conda.txt")).unwrap().uid(), uid);
    }
}

as_root_and_as_a_user!(packages_are_saved_into_the_workspace:
    on_debian_packages_are_saved_into_the_workspace_as_root,
    on_debian_packages_are_saved_into_the_workspace_as_a_user);

/// Done as a user would: `pip install` in the container, `retire --save-packages`,
/// and the next plain deploy has the package, from a generated build of the image the
/// project used plus the saved lists. The build reads pip's settings from `[build]
/// args` (here: no index, the wheel saved beside the lists), and a second deploy of
/// unchanged lists builds nothing.
#[test]
fn on_debian_saved_packages_are_installed_by_the_next_deploy() {
    let sb = sandbox(Layout::Debian, false);
    sb.project_toml("[build]\nargs = { PIP_NO_INDEX = \"1\" }\n");
    deploy(&sb);
    let wheels = sb.workspace().join(".berth/packages/wheels");
    fs::create_dir_all(&wheels).unwrap();
    let wheel = six_wheel(&wheels);
    if let RunAs::Other { uid, gid } = sb.run_as {
        let out = std::process::Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(sb.workspace().join(".berth"))
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let wheel = wheel.replace("/workspace/", "/workspace/.berth/packages/wheels/");
    let out = sb.exec_as_root(&format!("pip install -q --break-system-packages {wheel}"));
    assert_code(&out, 0);

    let out = sb.berth(&["retire", &sb.project, "--save-packages", "--yes"]);
    assert_code(&out, 0);
    assert!(!sb.exists());

    // Nothing names an image: the project's last one, with the packages on top.
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    let said = stdout(&out) + &stderr(&out);
    assert!(
        said.contains("with the packages saved in .berth/packages, build stale"),
        "{said}"
    );
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "pip install");
    assert_stderr_has(&out, format!("{} with the packages saved", sb.image.tag));
    let out = sb.exec("python3 -c 'import six; print(six.__version__)'");
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), "1.16.0");
    let image = sb.inspect().unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(image.starts_with("berth/"), "{image}");

    // The generated image adds nothing to the layer: retire removes it at once, and
    // the next deploy finds the same build, built on the same base.
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 0);
    let out = sb.berth(&["check", &sb.project]);
    assert_code(&out, 0);
    let said = stdout(&out) + &stderr(&out);
    assert!(said.contains("build up to date"), "{said}");
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("pip install"), "{}", stderr(&out));
    assert_eq!(sb.inspect().unwrap()["Config"]["Image"], image.as_str());

    // A list that changes is a new build on the same base, never on the last build.
    fs::write(
        sb.workspace().join(".berth/packages/requirements.txt"),
        "# pinned by hand\nsix==1.16.0\n",
    )
    .unwrap();
    let out = sb.berth(&["retire", &sb.project]);
    assert_code(&out, 0);
    let out = sb.berth(&["check", &sb.project]);
    let said = stdout(&out) + &stderr(&out);
    assert!(said.contains("1 saved package file changed"), "{said}");
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 0);
    let rebuilt = stdout(&out).trim().to_string();
    assert!(
        rebuilt.starts_with("berth/") && rebuilt != image,
        "{rebuilt}"
    );
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "build up to date");
    assert_eq!(sb.inspect().unwrap()["Config"]["Image"], rebuilt.as_str());
    let layers = |image: &str| {
        let out = docker(&[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            image,
        ]);
        stdout(&out).trim().parse::<usize>().unwrap()
    };
    assert_eq!(
        layers(&rebuilt),
        layers(&image),
        "built on the base, not on {image}"
    );
}

/// A generated build on an image the engine does not have, and cannot pull, is a clear
/// error that creates nothing.
#[test]
fn a_generated_build_on_a_missing_image_creates_nothing() {
    let sb = Sandbox::new();
    let lists = sb.workspace().join(".berth/packages");
    fs::create_dir_all(&lists).unwrap();
    fs::write(lists.join("requirements.txt"), "six==1.16.0\n").unwrap();
    let missing = format!("berth-test/missing-{}:1", sb.project);
    let out = sb.berth(&["deploy", &sb.project, "--image", &missing]);
    assert_code(&out, 1);
    assert_stderr_has(&out, format!("{missing} is not on this engine"));
    assert!(!sb.exists());
    let reference = format!("reference=berth/*/{}", sb.project);
    assert_eq!(
        stdout(&docker(&["images", "-q", "--filter", &reference])),
        ""
    );
}
