//! Project-name completion with a thousand workspaces: what one TAB costs.
//!
//! `cargo bench --bench complete` (needs a Docker engine, like the tests).
//! `BERTH_BENCH_WORKSPACES` sets the count (default 1000), `BERTH_BENCH_ROUNDS` the
//! repetitions (default 50). Each round is what the shell runs on TAB: a new `berth`
//! process answering `_BERTH_COMPLETE=bash berth -- berth deploy al`, which reads the
//! workspace root and asks the engine for the caller's containers. The same request
//! against an engine that is not there shows the directory read alone, and a process
//! that does nothing (`berth --version`) shows what any answer costs to start.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn main() {
    let count: usize = env_number("BERTH_BENCH_WORKSPACES", 1000);
    let rounds: usize = env_number("BERTH_BENCH_ROUNDS", 50);
    let home = tempfile::tempdir().expect("a temp dir");
    let root = home.path().join("workspace");
    for i in 0..count {
        let prefix = if i % 10 == 0 { "alpha" } else { "proj" };
        std::fs::create_dir_all(root.join(format!("{prefix}-{i:04}"))).unwrap();
    }

    println!("project completion, {count} workspaces ({rounds} rounds)");
    println!(
        "{:<34}  {:>9}  {:>9}  {:>8}",
        "", "median", "p90", "offered"
    );
    let engine = std::env::var("DOCKER_HOST").ok();
    let cases: [(&str, Option<&str>, &[&str]); 3] = [
        (
            "complete `deploy al`",
            engine.as_deref(),
            &["--", "berth", "deploy", "al"],
        ),
        (
            "complete `deploy al`, no engine",
            Some("unix:///nonexistent/docker.sock"),
            &["--", "berth", "deploy", "al"],
        ),
        ("start-up only (`berth --version`)", engine.as_deref(), &[]),
    ];
    for (name, docker_host, args) in cases {
        let run = || {
            let mut command = Command::new(BERTH);
            command
                .env_clear()
                .env("HOME", home.path())
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stderr(Stdio::null());
            if let Some(host) = docker_host {
                command.env("DOCKER_HOST", host);
            }
            if args.is_empty() {
                command.arg("--version");
            } else {
                command
                    .env("_BERTH_COMPLETE", "bash")
                    .env("_CLAP_IFS", "\n")
                    .env("_CLAP_COMPLETE_INDEX", (args.len() - 2).to_string())
                    .args(args);
            }
            let start = Instant::now();
            let out = command.output().expect("berth runs");
            let elapsed = start.elapsed();
            assert!(out.status.success(), "{name}: {:?}", out.status);
            (
                elapsed,
                String::from_utf8_lossy(&out.stdout).lines().count(),
            )
        };
        run();
        let mut times = Vec::new();
        let mut offered = 0;
        for _ in 0..rounds {
            let (elapsed, lines) = run();
            times.push(elapsed);
            offered = lines;
        }
        times.sort();
        println!(
            "{name:<34}  {:>9}  {:>9}  {:>8}",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10]),
            if args.is_empty() {
                "-".into()
            } else {
                offered.to_string()
            }
        );
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
