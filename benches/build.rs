//! What a deploy of a project with a Dockerfile pays to know its build is up to date:
//! a walk of the context (stats only, where the files' digests are known), the hash,
//! and one question to the engine. A 1,000-file context with an ignored 100,000-file
//! `data/`, against a deploy of the same image named with `--image`, paired round by
//! round, and the same two as dry runs, which leave out the engine's create and start.
//! Then a build of a changed context beside `docker build` of the same, with the
//! classic builder. Nothing is asserted; the figures are printed.
//!
//! `cargo bench --bench build` (as root, with a Docker engine and busybox-static, like
//! the tests). `BERTH_BENCH_ROUNDS` sets the rounds (default 15), `BERTH_BENCH_FILES`
//! the context's files (default 1000), `BERTH_BENCH_IGNORED` the ignored ones (default
//! 100000).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;
use support::median;

const IMAGE: &str = "berth-bench/busybox:build";

fn main() {
    let number = support::number;
    let rounds = number("BERTH_BENCH_ROUNDS", 15);
    let files = number("BERTH_BENCH_FILES", 1000);
    let ignored = number("BERTH_BENCH_IGNORED", 100_000);
    support::busybox_image(IMAGE);
    let dir = support::hermetic_dir();
    let project = format!("bb-{}", std::process::id());
    let workspace = dir.path().join("workspace").join(&project);
    make_context(&workspace, files, ignored);
    let berth = |args: &[&str]| -> (Duration, Output) {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("BERTH_WORKSPACE_ROOT", dir.path().join("workspace"))
            .env("BERTH_POLICY", dir.path().join("policy.toml"))
            .output()
            .expect("berth runs");
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (took, out)
    };
    let clean = || {
        let filter = format!("label=berth.project={project}");
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
            .unwrap();
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            Command::new("docker").args(["rm", "-f", id]).output().ok();
        }
    };

    // The first build, and the image it made: the baseline deploys that by name.
    let (first, out) = berth(&["build", &project]);
    let built = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let digests = dir
        .path()
        .join(format!(".local/state/berth/builds/{project}/digests.json"));
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let (mut ours, mut named, mut paired) = (Vec::new(), Vec::new(), Vec::new());
    let (mut dry_ours, mut dry_named) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        std::fs::remove_file(&digests).ok();
        cold.push(berth(&["build", &project]).0);
        warm.push(berth(&["build", &project]).0);
        let (with_check, _) = berth(&["deploy", &project]);
        clean();
        let (by_name, _) = berth(&["deploy", &project, "--image", &built]);
        clean();
        ours.push(with_check);
        named.push(by_name);
        paired.push(with_check.as_secs_f64() / by_name.as_secs_f64());
        // The same two without the engine's create and start, whose noise (tens of
        // milliseconds) hides a check of a few.
        dry_ours.push(berth(&["deploy", &project, "--dry-run"]).0);
        dry_named.push(berth(&["deploy", &project, "--image", &built, "--dry-run"]).0);
    }
    // A changed context built by berth, and by `docker build` with the classic builder
    // as berth uses it (and the same three labels berth adds), alternately.
    let mut changed = Vec::new();
    let mut docker_built = Vec::new();
    let touched = workspace.join("src/0/f0.py");
    let labels = ["berth.project=x", "berth.user=0", "berth.input=x"];
    for round in 0..rounds {
        std::fs::write(&touched, format!("x = 'berth {round}'\n")).unwrap();
        changed.push(berth(&["build", &project]).0);
        std::fs::write(&touched, format!("x = 'docker {round}'\n")).unwrap();
        let tag = format!("berth-bench/docker-build:{project}-{round}");
        let mut docker = Command::new("docker");
        docker
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &tag]);
        for label in labels {
            docker.args(["--label", label]);
        }
        let started = Instant::now();
        let out = docker.arg(&workspace).output().expect("docker runs");
        docker_built.push(started.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Command::new("docker").args(["rmi", &tag]).output().ok();
    }
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let (cold, warm) = (median(&mut cold), median(&mut warm));
    let (ours, named) = (median(&mut ours), median(&mut named));
    paired.sort_by(f64::total_cmp);
    let paired = paired[paired.len() / 2];
    println!(
        "the build's staleness check: {files} context files, {ignored} ignored in data/ \
         ({rounds} rounds, medians)"
    );
    println!("| what | median |");
    println!("|---|---:|");
    println!(
        "| first build (`berth build`, busybox base) | {} |",
        ms(first)
    );
    println!(
        "| `berth build`, up to date, digests known | {} |",
        ms(warm)
    );
    println!(
        "| `berth build`, up to date, digests dropped (every file read) | {} |",
        ms(cold)
    );
    println!(
        "| `berth deploy` (the check, then create and start) | {} |",
        ms(ours)
    );
    println!(
        "| `berth deploy --image` of the same image | {} |",
        ms(named)
    );
    let (dry_ours, dry_named) = (median(&mut dry_ours), median(&mut dry_named));
    println!(
        "| `berth deploy --dry-run` (the check, no create) | {} |",
        ms(dry_ours)
    );
    println!(
        "| `berth deploy --dry-run --image` of the same image | {} |",
        ms(dry_named)
    );
    let (changed, docker_built) = (median(&mut changed), median(&mut docker_built));
    println!(
        "| `berth build`, one context file changed | {} |",
        ms(changed)
    );
    println!(
        "| `DOCKER_BUILDKIT=0 docker build` of the same, same labels | {} |",
        ms(docker_built)
    );
    let check = dry_ours.saturating_sub(dry_named);
    let share = check.as_secs_f64() / named.as_secs_f64();
    println!(
        "the check's cost: {} ({:.1}% of a deploy by name; whole deploys paired: {paired:.3}); \
         target: at most 5%: {}",
        ms(check),
        share * 100.0,
        if share <= 0.05 { "met" } else { "MISSED" }
    );
    let ratio = changed.as_secs_f64() / docker_built.as_secs_f64();
    println!(
        "a changed build: {ratio:.2}x docker build; target: at most 1.05x: {}",
        if ratio <= 1.05 { "met" } else { "MISSED" }
    );
    clean();
    let reference = format!("reference=berth/*/{project}");
    let images = Command::new("docker")
        .args(["images", "-q", "--filter", &reference])
        .output()
        .unwrap();
    for id in String::from_utf8_lossy(&images.stdout).split_whitespace() {
        Command::new("docker").args(["rmi", "-f", id]).output().ok();
    }
}

/// A Dockerfile, `files` small files in `src/`, and `ignored` files in `data/`, which
/// `.dockerignore` leaves out.
fn make_context(workspace: &Path, files: usize, ignored: usize) {
    std::fs::create_dir_all(workspace.join("src")).unwrap();
    std::fs::write(
        workspace.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY src /src\n"),
    )
    .unwrap();
    std::fs::write(workspace.join(".dockerignore"), "data\n").unwrap();
    for n in 0..files {
        let dir = workspace.join(format!("src/{}", n % 20));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{n}.py")), format!("x = {n}\n")).unwrap();
    }
    for n in 0..ignored {
        let dir = workspace.join(format!("data/{}", n % 100));
        if n < 100 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("{n}.bin")), b"d").unwrap();
    }
}
