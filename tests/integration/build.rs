//! `berth build`: the project's Dockerfile built through the Engine API from the
//! offline test image, tagged by its inputs, never re-pointed, and deployed when
//! nothing else names an image.

use std::fs;

use serde_json::Value;

use crate::support::*;

fn write(sb: &Sandbox, path: &str, text: &str) {
    let path = sb.workspace().join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn image_of(out: &std::process::Output) -> String {
    let image = stdout(out).trim().to_string();
    assert!(image.starts_with("berth/"), "{image:?}: {}", stderr(out));
    image
}

fn labels(image: &str) -> Value {
    let out = docker(&["image", "inspect", image]);
    assert_code(&out, 0);
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    inspected[0]["Config"]["Labels"].clone()
}

#[test]
fn a_build_is_tagged_by_its_inputs_and_deployed_when_nothing_names_an_image() {
    let sb = Sandbox::new();
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nCOPY . /ctx/\n", sb.image.tag),
    );
    write(&sb, "src/a.txt", "hello\n");
    write(&sb, "data/big.bin", &"x".repeat(100_000));
    write(&sb, ".rescued/old/lost.txt", "rescued\n");
    write(&sb, ".dockerignore", "# the data stays home\ndata\n");

    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, " : COPY . /ctx/");
    let first = image_of(&out);
    let labels = labels(&first);
    assert_eq!(labels["berth.project"], sb.project.as_str());
    let input = labels["berth.input"].as_str().unwrap();
    assert!(
        first.ends_with(&format!(":{}", &input[..12])),
        "{first} {input}"
    );
    let listing = docker(&["run", "--rm", &first, "find", "/ctx"]);
    let listing = stdout(&listing);
    assert!(listing.contains("/ctx/src/a.txt"), "{listing}");
    assert!(!listing.contains("big.bin"), "ignored: {listing}");
    assert!(!listing.contains(".rescued"), "never sent: {listing}");

    // The same inputs: no build, the same tag.
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "is up to date");
    assert!(!stderr(&out).contains("Step 1/"), "{}", stderr(&out));
    assert_eq!(image_of(&out), first);
    // Ignored files change nothing either.
    write(&sb, "data/big.bin", "changed");
    assert_eq!(image_of(&sb.berth(&["build", &sb.project])), first);

    // A changed Dockerfile: a new tag, and the old image stays.
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nCOPY . /ctx/\nENV BUILT=2\n", sb.image.tag),
    );
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 0);
    let second = image_of(&out);
    assert_ne!(second, first);
    assert_code(&docker(&["image", "inspect", &first]), 0);

    // Deploy with no image named starts the newest build, up to date.
    let out = sb.berth(&["check", &sb.project]);
    assert!(
        stdout(&out).contains("build up to date"),
        "{}",
        stdout(&out)
    );
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "the project's Dockerfile, build up to date");
    assert_eq!(sb.inspect().unwrap()["Config"]["Image"], second.as_str());
    assert_code(&sb.berth(&["retire", &sb.project]), 0);

    // Changed inputs: check says the build is stale; --no-build deploys the newest
    // build as it is; a plain deploy builds first.
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nCOPY . /ctx/\nENV BUILT=3\n", sb.image.tag),
    );
    write(&sb, "src/b.txt", "new\n");
    let out = sb.berth(&["check", &sb.project]);
    assert!(
        stdout(&out).contains(
            "build stale: the Dockerfile and 1 context file changed; deploy builds it first"
        ),
        "{}",
        stdout(&out)
    );
    let out = sb.berth(&["deploy", &sb.project, "--no-build"]);
    assert_code(&out, 0);
    assert_eq!(sb.inspect().unwrap()["Config"]["Image"], second.as_str());
    assert_code(&sb.berth(&["retire", &sb.project]), 0);
    let out = sb.berth(&["deploy", &sb.project]);
    assert_code(&out, 0);
    assert_stderr_has(&out, "build built now");
    let third = sb.inspect().unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(third != first && third != second, "{third}");
    assert_code(&docker(&["image", "inspect", &second]), 0);
}

#[test]
fn a_failed_build_names_its_step_and_keeps_the_image_in_use() {
    let sb = Sandbox::new();
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nRUN true\n", sb.image.tag),
    );
    let good = image_of(&sb.berth(&["build", &sb.project]));

    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nRUN exit 7\n", sb.image.tag),
    );
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    // The engine counts berth's labels as steps too: `Step 2/5`.
    assert_stderr_has(&out, "the build failed at Step 2/");
    assert_stderr_has(&out, " : RUN exit 7: ");
    assert_stderr_has(&out, "the build's output is in");
    let memory =
        fs::read_to_string(sb.state_dir().join(format!("projects/{}.json", sb.project))).unwrap();
    assert!(memory.contains(&good), "{memory}");
}

#[test]
fn bad_build_input_is_a_clear_error_and_builds_nothing() {
    let sb = Sandbox::new();
    // No Dockerfile.
    fs::create_dir_all(sb.workspace()).unwrap();
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "nothing to build for project");

    // A context outside the workspace.
    sb.project_toml("[build]\ncontext = \"../..\"\n");
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "is outside the workspace");

    // A link out of the context.
    sb.project_toml("");
    write(&sb, "Dockerfile", &format!("FROM {}\n", sb.image.tag));
    std::os::unix::fs::symlink("/etc/passwd", sb.workspace().join("passwd")).unwrap();
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        "passwd in the build context is a symbolic link to /etc/passwd",
    );
    fs::remove_file(sb.workspace().join("passwd")).unwrap();

    // Too large: refused before anything is sent, with the largest paths named.
    sb.project_toml("[build]\nmax_context = \"64k\"\n");
    write(&sb, "data/big.bin", &"x".repeat(200_000));
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "more than the 64.0 KiB limit");
    assert_stderr_has(&out, "  data");

    fs::remove_dir_all(sb.workspace().join("data")).unwrap();
    sb.project_toml("");

    // A Dockerfile the engine cannot parse: its line is named.
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nBOGUS x\n", sb.image.tag),
    );
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "line 2");
    assert_stderr_has(&out, "BOGUS");

    // A base image that is not here and cannot be pulled (no registry answers).
    let missing = format!("berth-test/missing-{}:1", sb.project);
    write(&sb, "Dockerfile", &format!("FROM {missing}\n"));
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, &missing);
    assert!(!sb.exists());

    // A .dockerignore that is not one: its line is named.
    write(&sb, "Dockerfile", &format!("FROM {}\n", sb.image.tag));
    write(&sb, ".dockerignore", "# fine\n[unclosed\n");
    let out = sb.berth(&["build", &sb.project]);
    assert_code(&out, 1);
    assert_stderr_has(&out, ".dockerignore");
    assert_stderr_has(&out, "line 2");

    let reference = format!("reference=berth/*/{}", sb.project);
    assert_eq!(
        stdout(&docker(&["images", "-q", "--filter", &reference])),
        ""
    );
}

/// Two deploys of a project with a Dockerfile at once: one builds, the other waits for
/// it and finds the image; both succeed, with one container of one image.
#[test]
fn concurrent_deploys_build_once_and_use_the_same_image() {
    let sb = Sandbox::new();
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nRUN sleep 1 && touch /built\n", sb.image.tag),
    );
    let spawn = || {
        sb.command(env!("CARGO_BIN_EXE_berth"), &["deploy", &sb.project])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (spawn(), spawn());
    let outs = [
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    ];
    for out in &outs {
        assert_code(out, 0);
    }
    let builds = outs
        .iter()
        .filter(|out| stderr(out).contains("build built now"))
        .count();
    assert_eq!(builds, 1, "one deploy builds, the other finds its image");
    let reference = format!("reference=berth/*/{}", sb.project);
    let images = stdout(&docker(&["images", "-q", "--filter", &reference]));
    assert_eq!(images.lines().count(), 1, "{images}");
    assert_eq!(sb.container_ids().lines().count(), 1);
}

/// `berth images` lists the project's builds, newest first, with the containers that
/// use them; another project's images are not in a project's list.
#[test]
fn images_lists_the_builds_and_who_uses_them() {
    let sb = Sandbox::new();
    write(&sb, "Dockerfile", &format!("FROM {}\n", sb.image.tag));
    let old = image_of(&sb.berth(&["build", &sb.project]));
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nENV V=2\n", sb.image.tag),
    );
    // Created times are in seconds: the second build must be newer.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let new = image_of(&sb.berth(&["build", &sb.project]));
    assert_code(&sb.berth(&["deploy", &sb.project]), 0);

    let out = sb.berth(&["images", &sb.project, "--json"]);
    assert_code(&out, 0);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let images: Vec<(String, String, Vec<Value>)> = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap().to_string(),
                i["kind"].as_str().unwrap().to_string(),
                i["used_by"].as_array().unwrap().clone(),
            )
        })
        .collect();
    assert_eq!(
        images,
        [
            (
                new.clone(),
                "build".to_string(),
                vec![Value::from(sb.container())]
            ),
            (old.clone(), "build".to_string(), vec![]),
        ]
    );
    let out = sb.berth(&["images"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&old) && stdout(&out).contains(&new));
    let out = sb.berth(&["images", "other-project"]);
    assert_code(&out, 0);
    assert!(!stdout(&out).contains(&new), "{}", stdout(&out));
}

/// `berth images --prune` keeps each project's newest builds, what a container uses
/// (anyone's, berth's or not), what the next deploy starts, and every commit; a commit
/// goes only by name, and nothing that is not yours goes at all.
#[test]
fn prune_keeps_what_is_in_use_the_newest_and_the_commits() {
    let sb = Sandbox::new();
    let mut builds = Vec::new();
    for n in 1..=5 {
        write(
            &sb,
            "Dockerfile",
            &format!("FROM {}\nENV BUILT={n}\n", sb.image.tag),
        );
        builds.push(image_of(&sb.berth(&["build", &sb.project])));
    }
    // The oldest, used by a container berth did not make.
    let user = format!("berth.project={}", sb.project);
    let holder = format!("holder-{}", sb.project);
    let out = docker(&[
        "create", "--name", &holder, "--label", &user, &builds[0], "true",
    ]);
    assert_code(&out, 0);
    // A commit of yours.
    let commit = format!("{}:20261207T000000Z", builds[0].rsplit_once(':').unwrap().0);
    let uid = format!("LABEL berth.user={}", stdout(&sb.run("id", &["-u"])).trim());
    let out = docker(&["commit", "--change", &uid, &holder, &commit]);
    assert_code(&out, 0);

    let out = sb.berth(&[
        "images",
        &sb.project,
        "--prune",
        "--keep",
        "2",
        "--dry-run",
        "--json",
    ]);
    assert_code(&out, 0);
    let pruned: Value = serde_json::from_slice(&out.stdout).unwrap();
    let removed: Vec<&str> = pruned["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        removed,
        [builds[2].as_str(), builds[1].as_str()],
        "{pruned:#}"
    );
    let why = |image: &str| {
        pruned["kept"]
            .as_array()
            .unwrap()
            .iter()
            .find(|kept| kept["image"] == image)
            .map(|kept| kept["why"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(why(&builds[0]), "in use");
    assert_eq!(why(&commit), "a commit: removed only by name");
    assert_eq!(
        why(&builds[4]),
        "a project's next deploy starts it or builds on it"
    );
    assert_eq!(why(&builds[3]), "one of its project's newest builds");
    assert_code(&docker(&["image", "inspect", &builds[1]]), 0);

    let out = sb.berth(&["images", &sb.project, "--prune", "--keep", "2"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!("removed  {}", builds[1])),
        "{}",
        stdout(&out)
    );
    for (n, build) in builds.iter().enumerate() {
        let gone = docker(&["image", "inspect", build]).status.code() != Some(0);
        assert_eq!(gone, n == 1 || n == 2, "{build}");
    }

    // By name: the commit goes, an image in use stays (exit 3), and an image that is
    // not berth's is not touched.
    let out = sb.berth(&["images", &commit, "--prune"]);
    assert_code(&out, 0);
    assert_ne!(
        docker(&["image", "inspect", &commit]).status.code(),
        Some(0)
    );
    let out = sb.berth(&["images", &builds[0], "--prune"]);
    assert_code(&out, 3);
    assert_stderr_has(&out, "is in use: not removed");
    let out = sb.berth(&["images", &sb.image.tag, "--prune"]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "is not one of your berth images");
    assert_code(&docker(&["image", "inspect", &sb.image.tag]), 0);

    // The policy: one build kept per project at most, and a budget nothing fits in.
    fs::write(&sb.policy, "[images]\nkeep = 1\nbudget = \"1\"\n").unwrap();
    let args = [
        "images",
        &sb.project,
        "--prune",
        "--keep",
        "4",
        "--dry-run",
        "--json",
    ];
    let out = sb.berth(&args);
    assert_code(&out, 0);
    assert_stderr_has(&out, "the policy keeps at most 1 build(s) per project");
    assert_stderr_has(&out, "over the policy's budget");
    let pruned: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        pruned["removed"][0]["image"],
        builds[3].as_str(),
        "{pruned:#}"
    );
    assert_eq!(pruned["removed"].as_array().unwrap().len(), 1, "{pruned:#}");
    assert!(pruned["over_budget"].as_u64().unwrap() > 0, "{pruned:#}");
    docker(&["rm", "-f", &holder]);
}

/// On a terminal a build keeps one status line below the engine's output: the step it
/// is at and the context sent; the engine's own lines stay.
#[test]
fn a_build_on_a_terminal_shows_its_step_and_the_context_sent() {
    let sb = Sandbox::new().env("TERM", "xterm");
    write(
        &sb,
        "Dockerfile",
        &format!("FROM {}\nRUN sleep 1\n", sb.image.tag),
    );
    let mut pty = sb.berth_pty_sized(&["build", &sb.project], 24, 200);
    let status = pty.wait(std::time::Duration::from_secs(120));
    let output = pty.output();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(output.contains("of context sent"), "{output}");
    assert!(output.contains(": step 2/"), "{output}");
    assert!(output.contains("Step 2/"), "{output}");
}
