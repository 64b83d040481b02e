//! The unsaved-work check against the engine's own changes call, on containers with
//! tens of thousands of changed files: time (medians) and berth's peak memory.
//!
//! `cargo bench --bench retire_check` (needs a Docker engine and busybox-static, like
//! the tests). `BERTH_BENCH_FILES=2000,30000` picks the layer sizes, `BERTH_BENCH_ROUNDS`
//! the repetitions. The check is `berth retire --dry-run --json` as a user runs it,
//! process start-up included; the baseline is one `GET /containers/{id}/changes` made
//! in-process with bollard, which is the least any check can cost.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::median;

#[path = "support/mod.rs"]
mod support;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// Set when this bench runs as the small process that starts one berth and reports its
/// peak memory ([`Bench::check`]).
const MEASURE_VAR: &str = "BERTH_BENCH_MEASURE";

fn main() {
    if std::env::var_os(MEASURE_VAR).is_some() {
        measure();
    }
    let sizes: Vec<usize> = std::env::var("BERTH_BENCH_FILES")
        .unwrap_or_else(|_| "30000,100000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BERTH_BENCH_FILES: numbers"))
        .collect();
    let rounds: usize = std::env::var("BERTH_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let bench = Bench::new();
    let (runtime, docker) = support::engine();

    println!("retire check vs the engine's changes call ({rounds} rounds, medians)");
    println!(
        "{:>8}  {:>10}  {:>10}  {:>6}  {:>10}  {:>12}",
        "files", "changes", "check", "ratio", "peak RSS", "answer size"
    );
    let empty = bench.project("empty", 0);
    let (_, _, base_rss) = bench.check(&empty);
    println!(
        "{:>8}  {:>10}  {:>10}  {:>6}  {:>10}  {:>12}",
        0,
        "-",
        "-",
        "-",
        format!("{:.1} MiB", base_rss as f64 / 1024.0),
        "-"
    );
    for files in sizes {
        let project = bench.project(&format!("f{files}"), files);
        let id = project.container.clone();
        let raw = || {
            runtime.block_on(async {
                let start = Instant::now();
                let changes = docker.container_changes(&id).await.unwrap();
                let elapsed = start.elapsed();
                let answer = serde_json::to_vec(&changes).unwrap().len();
                (elapsed, answer, changes.map_or(0, |c| c.len()))
            })
        };
        // Warm both paths once (page cache, the daemon's own caches).
        let (_, answer, listed) = raw();
        assert!(
            listed >= files,
            "the engine lists {listed} changes for {files} files"
        );
        bench.check(&project);
        let mut raw_times = Vec::new();
        let mut check_times = Vec::new();
        let mut peak = 0;
        for _ in 0..rounds {
            raw_times.push(raw().0);
            let (time, ok, rss) = bench.check(&project);
            assert!(ok, "the check failed");
            check_times.push(time);
            peak = peak.max(rss);
        }
        let (raw_median, check_median) = (median(&mut raw_times), median(&mut check_times));
        println!(
            "{:>8}  {:>10}  {:>10}  {:>6.2}  {:>10}  {:>12}",
            files,
            format!("{:.0} ms", raw_median.as_secs_f64() * 1000.0),
            format!("{:.0} ms", check_median.as_secs_f64() * 1000.0),
            check_median.as_secs_f64() / raw_median.as_secs_f64(),
            format!("{:.1} MiB", peak as f64 / 1024.0),
            format!("{:.1} MiB", answer as f64 / (1024.0 * 1024.0)),
        );
    }
}

/// A hermetic berth environment (as the tests make one) and an image to run.
struct Bench {
    dir: tempfile::TempDir,
    image: String,
}

struct Project {
    name: String,
    container: String,
}

impl Bench {
    fn new() -> Self {
        let dir = support::hermetic_dir();
        let image = format!("berth-bench/busybox:{}", std::process::id());
        support::busybox_image(&image);
        Self { dir, image }
    }

    fn berth(&self, args: &[&str]) -> Command {
        self.command(BERTH.as_ref(), args)
    }

    /// `program ARGS` in the hermetic environment.
    fn command(&self, program: &std::ffi::OsStr, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("BERTH_POLICY", self.dir.path().join("policy.toml"))
            .stdin(Stdio::null());
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            command.env("DOCKER_HOST", host);
        }
        command
    }

    /// Deploys a project and writes `files` small files into its writable layer,
    /// spread over a hundred directories, with one `docker cp` of a streamed tar.
    fn project(&self, name: &str, files: usize) -> Project {
        let name = format!("bench-{}-{name}", std::process::id());
        let out = self
            .berth(&["deploy", &name, "--image", &self.image, "--new"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        let container = format!("{name}._.{}", user.trim());
        if files > 0 {
            let mut cp = Command::new("docker")
                .args(["cp", "-", &format!("{container}:/opt")])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let stdin = cp.stdin.take().unwrap();
            let mut tar = tar::Builder::new(std::io::BufWriter::new(stdin));
            for i in 0..files {
                let body = format!("result {i}\n");
                let mut header = tar::Header::new_gnu();
                header.set_size(body.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(1_700_000_000);
                let path = PathBuf::from(format!("bench/d{:03}/f{i}.txt", i % 100));
                tar.append_data(&mut header, &path, body.as_bytes())
                    .unwrap();
            }
            tar.into_inner().unwrap().flush().unwrap();
            assert!(cp.wait().unwrap().success(), "docker cp failed");
        }
        Project { name, container }
    }

    /// One `berth retire --dry-run --json`: wall time, success, peak RSS in KiB.
    ///
    /// berth is started from a small process, this bench run again ([`measure`]), not
    /// from the bench itself: a process's peak RSS counts the high-water mark of the
    /// address space it was started from (Linux records the old one's at exec, and std
    /// starts children with vfork), and the bench holds the engine's large answer. Run
    /// from the bench, berth showed 22 MiB where it used 16. The wall time includes the
    /// small process's start, about a millisecond.
    fn check(&self, project: &Project) -> (Duration, bool, i64) {
        let bench = std::env::current_exe().unwrap();
        let mut command = self.command(
            bench.as_os_str(),
            &["retire", &project.name, "--dry-run", "--json"],
        );
        let start = Instant::now();
        let out = command
            .env(MEASURE_VAR, BERTH)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let elapsed = start.elapsed();
        let text = String::from_utf8(out.stdout).unwrap();
        let (status, rss) = text
            .trim()
            .split_once(' ')
            .expect("the measuring process prints the status and the peak");
        (elapsed, status == "0", rss.parse().unwrap())
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let name = format!("name=bench-{}-", std::process::id());
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &name])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                Command::new("docker")
                    .args(["rm", "-f", "-v", id])
                    .output()
                    .ok();
            }
        }
        Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output()
            .ok();
    }
}

/// As the measuring process: starts berth with the same arguments and environment
/// (the bench's, through [`Bench::berth`]), its output discarded, and prints its exit
/// code and peak RSS in KiB.
// The child is reaped by wait4, which std cannot see.
#[allow(clippy::zombie_processes)]
fn measure() -> ! {
    let berth = std::env::var_os(MEASURE_VAR).unwrap();
    let child = Command::new(berth)
        .args(std::env::args_os().skip(1))
        .env_remove(MEASURE_VAR)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Reaped here, so that its resource use can be read; dropping a Child does not
    // wait for it.
    let (status, rss) = wait_with_rusage(child.id());
    println!("{status} {rss}");
    std::process::exit(0);
}

/// Waits for `pid` and returns its exit code and peak resident memory (KiB).
fn wait_with_rusage(pid: u32) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: rusage is plain data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped.
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(
        rc,
        pid as libc::pid_t,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}
