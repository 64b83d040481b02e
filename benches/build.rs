//! What a deploy of a project with a Dockerfile pays to know its build is up to date:
//! a walk of the context (stats only, where the files' digests are known), the hash,
//! and one question to the engine. A 1,000-file context with an ignored 100,000-file
//! `data/`, against a deploy of the same image named with `--image`, paired round by
//! round. Nothing is asserted; the figures are printed.
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
    println!(
        "the check's cost: {} of a deploy (paired ratio {paired:.3}); target: at most 5%: {}",
        ms(ours.saturating_sub(named)),
        if paired <= 1.05 { "met" } else { "MISSED" }
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
