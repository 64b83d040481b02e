//! The layer reader on untouched containers (issue 26): what reading a container's
//! changes costs from each source, on a small image and on an image of 100,000 files,
//! and what a whole retire costs against `docker stop` + `docker rm`, as root and as a
//! non-root user. Then the same reads of two pathological layers that a hostile
//! container can make: a million empty files in one folder, and a path 10,000 folders
//! deep.
//!
//! `cargo bench --bench layer` (needs a Docker engine, busybox-static and root, like the
//! tests). `BERTH_BENCH_IMAGE_FILES` sets the large image's size (default 100000; the
//! image is kept under its tag, `berth-bench/files:N`, for the next run),
//! `BERTH_BENCH_ROUNDS` the repetitions, `BERTH_BENCH_FLAT_FILES` and `BERTH_BENCH_DEPTH`
//! the pathological layers (`0` leaves one out). Each berth figure is a whole process, as a user
//! runs it: start-up, connecting, inspecting and reading (`berth layer-changes`, which
//! prints what a source reads). The changes call is made in-process with bollard: the
//! least the engine's answer can cost.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn main() {
    let files: usize = env_or("BERTH_BENCH_IMAGE_FILES", 100_000);
    let rounds: usize = env_or("BERTH_BENCH_ROUNDS", 5);
    let (runtime, docker) = support::engine();
    let bench = Bench::new();
    let small = bench.small_image();
    let large = large_image(files);

    println!("reading an untouched container's changes ({rounds} rounds, medians)");
    println!(
        "{:<26}  {:>12}  {:>10}  {:>10}  {:>10}  {:>10}",
        "image", "changes call", "direct", "helper", "as a user", "ratio"
    );
    for (label, image) in [
        ("busybox", small.as_str()),
        (&*format!("{files} files"), &large),
    ] {
        let container = bench.container(image);
        let changes = || {
            runtime.block_on(async {
                let start = Instant::now();
                docker.container_changes(&container).await.unwrap();
                start.elapsed()
            })
        };
        let read = |source: &str, user: bool| {
            bench.timed(
                user,
                &["layer-changes", &container],
                &[("BERTH_LAYER_READER", source)],
            )
        };
        // Once each to warm caches, and to import the helper image.
        changes();
        read("direct", false);
        read("helper", false);
        read("helper", true);
        let engine = median((0..rounds).map(|_| changes()));
        let direct = median((0..rounds).map(|_| read("direct", false)));
        let helper = median((0..rounds).map(|_| read("helper", false)));
        let as_user = median((0..rounds).map(|_| read("helper", true)));
        println!(
            "{:<26}  {:>12}  {:>10}  {:>10}  {:>10}  {:>10}",
            label,
            ms(engine),
            ms(direct),
            ms(helper),
            ms(as_user),
            format!(
                "{:.3} / {:.3}",
                secs(direct) / secs(engine),
                secs(as_user) / secs(engine)
            ),
        );
    }
    println!("  (ratio: direct / changes call, and the user's helper / changes call)");

    println!();
    println!("retire of an untouched container of {files} files vs docker stop + docker rm ({rounds} rounds, medians)");
    println!(
        "{:<10}  {:>10}  {:>16}  {:>6}",
        "who", "retire", "stop + rm", "ratio"
    );
    for user in [false, true] {
        let mut retire = Vec::new();
        let mut stop_rm = Vec::new();
        for round in 0..rounds {
            let project = format!("bl-{}-{}-{round}", std::process::id(), user as u8);
            bench.run(user, &["deploy", &project, "--image", &large, "--new"], &[]);
            retire.push(bench.timed(user, &["retire", &project], &[]));
            let container = bench.container(&large);
            let start = Instant::now();
            for verb in ["stop", "rm"] {
                let out = docker_cli(&[verb, &container]);
                assert!(out.status.success(), "docker {verb} failed");
            }
            stop_rm.push(start.elapsed());
        }
        let (retire, stop_rm) = (median(retire.into_iter()), median(stop_rm.into_iter()));
        println!(
            "{:<10}  {:>10}  {:>16}  {:>6.2}",
            if user { "a user" } else { "root" },
            ms(retire),
            ms(stop_rm),
            secs(retire) / secs(stop_rm)
        );
    }

    let flat: usize = env_or("BERTH_BENCH_FLAT_FILES", 1_000_000);
    let depth: usize = env_or("BERTH_BENCH_DEPTH", 10_000);
    println!();
    println!("reading a pathological layer (once each; the bench writes it into a created container's upper directory, as the container would)");
    println!(
        "{:<34}  {:>22}  {:>16}  {:>16}",
        "layer", "changes call", "direct", "as a user"
    );
    for (label, layer) in [
        (
            format!("{flat} empty files in one folder"),
            Pathological::Flat(flat),
        ),
        (
            format!("a path {depth} folders deep"),
            Pathological::Deep(depth),
        ),
    ] {
        if matches!(layer, Pathological::Flat(0) | Pathological::Deep(0)) {
            continue;
        }
        let container = bench.created(&small);
        layer.write(&upper_dir(&container));
        // Through the docker CLI, which waits as long as the engine takes (bollard's
        // client gives up after two minutes).
        let start = Instant::now();
        let out = docker_cli(&["diff", &container]);
        let engine = match out.status.success() {
            true => format!(
                "{} ({} listed)",
                ms(start.elapsed()),
                out.stdout.iter().filter(|b| **b == b'\n').count()
            ),
            false => format!("{} (failed)", ms(start.elapsed())),
        };
        let read = |source: &str, user: bool| {
            let start = Instant::now();
            let out = bench
                .command(
                    user,
                    &["layer-changes", &container],
                    &[("BERTH_LAYER_READER", source)],
                )
                .output()
                .unwrap();
            let elapsed = start.elapsed();
            assert!(
                out.status.success(),
                "berth layer-changes: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let listed = listed["changes"].as_array().map_or(0, Vec::len);
            format!("{} ({listed})", ms(elapsed))
        };
        println!(
            "{:<34}  {:>22}  {:>16}  {:>16}",
            label,
            engine,
            read("direct", false),
            read("helper", true)
        );
    }
}

/// A layer a hostile container can make, to read.
enum Pathological {
    /// This many empty files in one folder, `/flat`.
    Flat(usize),
    /// A folder in a folder, this many deep, `/d/d/.../d`, with a file at the bottom.
    Deep(usize),
}

impl Pathological {
    /// Writes it into `upper`, from directory descriptors (a deep path is longer than
    /// the kernel takes in one call).
    fn write(&self, upper: &str) {
        use rustix::fs::{mkdirat, openat, Mode, OFlags};
        let dir = |at: &std::os::fd::OwnedFd, name: &str| {
            openat(at, name, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap()
        };
        let file = |at: &std::os::fd::OwnedFd, name: &str| {
            let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC;
            drop(openat(at, name, flags, Mode::from_raw_mode(0o644)).unwrap());
        };
        let root = openat(
            rustix::fs::CWD,
            upper,
            OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let folder = Mode::from_raw_mode(0o755);
        match *self {
            Pathological::Flat(files) => {
                mkdirat(&root, "flat", folder).unwrap();
                let flat = dir(&root, "flat");
                for i in 0..files {
                    file(&flat, &format!("f{i}"));
                }
            }
            Pathological::Deep(depth) => {
                let mut at = root;
                for _ in 0..depth {
                    mkdirat(&at, "d", folder).unwrap();
                    at = dir(&at, "d");
                }
                file(&at, "leaf");
            }
        }
    }
}

/// Where the engine keeps container `id`'s writable layer.
fn upper_dir(id: &str) -> String {
    let out = docker_cli(&["inspect", "--format", "{{.GraphDriver.Data.UpperDir}}", id]);
    assert!(out.status.success(), "docker inspect failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(times: impl Iterator<Item = Duration>) -> Duration {
    support::median(&mut times.collect::<Vec<_>>())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn docker_cli(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

/// An image of busybox and `files` small files in a hundred folders, imported once
/// and kept under its tag.
fn large_image(files: usize) -> String {
    let tag = format!("berth-bench/files:{files}");
    if docker_cli(&["image", "inspect", &tag]).status.success() {
        return tag;
    }
    let mut import = Command::new("docker")
        .args([
            "import",
            "--change",
            r#"CMD ["sleep", "infinity"]"#,
            "-",
            &tag,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = import.stdin.take().unwrap();
    let mut tar = tar::Builder::new(std::io::BufWriter::new(stdin));
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let add = |tar: &mut tar::Builder<_>, path: &str, mode: u32, body: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, path, body).unwrap();
    };
    add(&mut tar, "bin/busybox", 0o755, &busybox);
    for applet in ["sh", "sleep", "cat", "ls"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        tar.append_link(&mut header, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    for dir in ["etc", "tmp", "root"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(if dir == "tmp" { 0o1777 } else { 0o755 });
        tar.append_data(&mut header, dir, std::io::empty()).unwrap();
    }
    add(
        &mut tar,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n",
    );
    add(&mut tar, "etc/group", 0o644, b"root:x:0:\n");
    for i in 0..files {
        let body = format!("image file {i}\n");
        add(
            &mut tar,
            &format!("usr/share/bench/d{:03}/f{i}.txt", i % 100),
            0o644,
            body.as_bytes(),
        );
    }
    tar.into_inner().unwrap().flush().unwrap();
    assert!(import.wait().unwrap().success(), "docker import failed");
    tag
}

/// A hermetic berth environment for root and for the tests' non-root user.
struct Bench {
    dir: tempfile::TempDir,
    user: (u32, u32),
    prefix: String,
}

impl Bench {
    fn new() -> Self {
        let dir = support::hermetic_dir();
        let user = support::test_user();
        for who in ["root", "user"] {
            let home = dir.path().join(who);
            std::fs::create_dir_all(home.join("workspace")).unwrap();
            if who == "user" {
                for path in [home.clone(), home.join("workspace")] {
                    std::os::unix::fs::chown(&path, Some(user.0), Some(user.1)).unwrap();
                }
            }
        }
        Bench {
            dir,
            user,
            prefix: format!("bl-{}", std::process::id()),
        }
    }

    fn small_image(&self) -> String {
        let tag = format!("berth-bench/busybox:{}", self.prefix);
        support::busybox_image(&tag);
        tag
    }

    /// A running container of `image` as a project's would be (`--init`, idle).
    fn container(&self, image: &str) -> String {
        self.docker_container(&["run", "-d"], image)
    }

    /// A container of `image` that was created and never started: nothing but the
    /// bench writes its layer.
    fn created(&self, image: &str) -> String {
        self.docker_container(&["create"], image)
    }

    /// `docker VERB... --init --label ... IMAGE sleep infinity`: the new container's id.
    fn docker_container(&self, verb: &[&str], image: &str) -> String {
        let label = format!("berth-bench={}", self.prefix);
        let mut args = verb.to_vec();
        args.extend(["--init", "--label", &label, image, "sleep", "infinity"]);
        let out = docker_cli(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// berth ARGS as root or as the user, in the hermetic environment.
    fn command(&self, user: bool, args: &[&str], env: &[(&str, &str)]) -> Command {
        let home = self.dir.path().join(if user { "user" } else { "root" });
        let mut command = if user {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={}", self.user.0),
                &format!("--regid={}", self.user.1),
                "--init-groups",
                BERTH,
            ]);
            c
        } else {
            let mut c = Command::new(BERTH);
            c.env("BERTH_POLICY", self.dir.path().join("policy.toml"));
            c
        };
        command
            .args(args)
            .env("HOME", &home)
            .env("BERTH_WORKSPACE_ROOT", home.join("workspace"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("NO_COLOR", "1")
            .env_remove("HOST_DATA_PATH")
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    fn run(&self, user: bool, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = self.command(user, args, env).output().unwrap();
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn timed(&self, user: bool, args: &[&str], env: &[(&str, &str)]) -> Duration {
        let start = Instant::now();
        self.run(user, args, env);
        start.elapsed()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let label = format!("label=berth-bench={}", self.prefix);
        let name = format!("name={}", self.prefix);
        for filter in [label, name] {
            let out = docker_cli(&["ps", "-aq", "--filter", &filter]);
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                docker_cli(&["rm", "-f", "-v", id]);
            }
        }
        docker_cli(&["rmi", "-f", &format!("berth-bench/busybox:{}", self.prefix)]);
    }
}
