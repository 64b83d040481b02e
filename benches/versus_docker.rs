//! berth against the engine it wraps, side by side in one run: deploy, retire, list and
//! start-up, each next to the raw Engine API (in-process, with bollard) and the docker
//! CLI doing the same thing on the same engine, image and mounts. Medians of
//! `BERTH_BENCH_ROUNDS` rounds (default 31: the engine's own create+start varies by
//! ±10 ms between runs, and 15 rounds left the deploy ratio moving by 8%), with ratios.
//!
//! `cargo bench --bench versus_docker` (needs a Docker engine and busybox-static, like
//! the tests); `cargo bench` runs it after the completion and retire-check benches.
//! `BERTH_BENCH_CONTAINERS` sets how many containers `list` sees (default 200);
//! `BERTH_BENCH_PROFILE=0` skips the profiles, which run each command once more through
//! a logging proxy on the engine's socket and show every round trip it makes.
//!
//! Run as root, berth runs as the tests' non-root user (`berth-test-user`, made as the
//! tests make it), so that a deploy includes the identity step a real user's does;
//! `BERTH_BENCH_USER=self` keeps the bench's own user. Everything the bench makes
//! (containers, the image, the temporary HOME) is removed when it ends, panics or is
//! interrupted. Timings are printed, never asserted.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::Value;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const CONTAINER_DEPLOY: &str = env!("CARGO_BIN_EXE_container-deploy");
/// The user the tests run berth as when they are root (tests/support/mod.rs).
use support::TEST_USER;

fn main() {
    let rounds = env_number("BERTH_BENCH_ROUNDS", 31).max(1);
    let containers = env_number("BERTH_BENCH_CONTAINERS", 200);
    let profile = std::env::var("BERTH_BENCH_PROFILE").map_or(true, |v| v != "0");
    interrupt::install();
    let (runtime, docker) = support::engine();
    let bench = Bench::new(&runtime, docker);
    let version = runtime
        .block_on(bench.docker.version())
        .expect("the engine's version");
    let cli = String::from_utf8_lossy(
        &Command::new("docker")
            .args(["version", "--format", "{{.Client.Version}}"])
            .output()
            .expect("the docker CLI runs")
            .stdout,
    )
    .trim()
    .to_string();
    println!(
        "berth vs the engine: {} rounds, medians; engine {} (API {}), docker CLI {cli}, {} cores; \
         berth runs as {} (uid {})",
        rounds,
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bench.who.name,
        bench.who.uid,
    );
    println!();

    startup(&bench, rounds);
    let deployed = deploy(&bench, rounds, profile);
    retire(&bench, &deployed, rounds, profile);
    list(&bench, &deployed, containers, rounds, profile);
}

// ---------------------------------------------------------------------------------------
// The four comparisons

/// Start-up: what any answer costs before it does anything.
fn startup(bench: &Bench, rounds: usize) {
    let rounds = rounds.max(30);
    let cases: [(&str, &str, &[&str]); 5] = [
        ("`true` (spawning a process)", "true", &[]),
        ("`docker --version`", "docker", &["--version"]),
        ("`berth --version`", BERTH, &["--version"]),
        ("`berth --help`", BERTH, &["--help"]),
        ("`container-deploy --help`", CONTAINER_DEPLOY, &["--help"]),
    ];
    let mut table = Table::new(
        &format!("start-up, a new process each time ({rounds} rounds)"),
        &["median", "min", "vs docker"],
    );
    let mut results = Vec::new();
    for (name, program, args) in cases {
        let times = repeat(rounds, || bench.run(program, args, None).0);
        results.push((name, times));
    }
    let docker = results[1].1.median;
    for (name, times) in &results {
        table.row(
            name,
            vec![ms(times.median), ms(times.min), ratio(times.median, docker)],
        );
    }
    table.print();
    let worst = results[2].1.median.max(results[3].1.median);
    target(
        "berth's start-up under 20 ms",
        worst < Duration::from_millis(20),
        ms(worst),
    );
}

/// What the deploy section learned, for the sections after it.
struct Deployed {
    project: String,
    name: String,
    body: ContainerCreateBody,
}

fn deploy(bench: &Bench, rounds: usize, profile: bool) -> Deployed {
    let project = format!("{}-d", bench.prefix);
    let deploy_args = ["deploy", &project, "--image", &bench.image];
    // The first deploy makes the workspace, the home and the data root's marker.
    bench.berth(&[&deploy_args[..], &["--new"]].concat());
    let name = bench.project_container(&project);
    bench.remove(&name);
    let dry = bench.berth(&[&deploy_args[..], &["--dry-run", "--json"]].concat());
    let plan: Value = serde_json::from_slice(&dry.stdout).expect("deploy --dry-run --json");
    let docker_run = shell_words(plan["docker_run"].as_str().expect("a docker_run line"));
    let docker_args: Vec<&str> = docker_run[1..].iter().map(String::as_str).collect();
    assert_eq!(plan["plan"]["container_name"].as_str(), Some(name.as_str()));

    // The create request berth sends, exactly: seen on the socket.
    let proxy = Proxy::start(bench.dir.path().join("proxy.sock"), bench.upstream());
    let berth_profile = proxy.profile(|host| bench.run(BERTH, &deploy_args, Some(host)));
    let create = berth_profile
        .exchanges
        .iter()
        .find(|e| e.method == "POST" && e.path.contains("/containers/create"))
        .expect("berth's deploy sent a create request");
    let body: ContainerCreateBody =
        serde_json::from_slice(&create.body).expect("the create request is the API's");
    // The digests of berth's identity files are not on the docker run line: they are
    // decided against the image, not in the plan.
    let mut berth_config = bench.inspect_config(&name);
    let identity = without_identity_digests(&mut berth_config);
    bench.remove(&name);
    let docker_profile = proxy.profile(|host| bench.run("docker", &docker_args, Some(host)));
    let docker_config = bench.inspect_config(&name);
    bench.remove(&name);

    // The same deploy where berth.toml names the user (`user = "uid:gid"`, the same
    // ids): the image's own users apply, so berth writes no identity into it.
    let plain = format!("{}-n", bench.prefix);
    let plain_name = bench.project_container(&plain);
    let plain_args = ["deploy", &plain, "--image", &bench.image];
    bench.project_toml(
        &plain,
        &format!("user = \"{}:{}\"\n", bench.who.uid, bench.who.gid),
    );
    bench.berth(&plain_args);
    bench.remove(&plain_name);

    let variants = [
        "raw API: create + start",
        "`docker run -d`",
        "`berth deploy`",
        "`berth deploy`, no identity step",
        "`berth deploy`, first use of the image",
    ];
    // What berth keeps of each image's passwd and group: without the image's copies, a
    // deploy reads and writes them through the archive endpoint, as the first deploy of
    // an image does.
    let kept = bench.home.join(".local/state/berth/identity");
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for step in 0..variants.len() {
            // A different order each round, so that no variant always goes first.
            let variant = (step + round) % variants.len();
            interrupt::check();
            if variant == 4 {
                forget_images(&kept);
            }
            times[variant].push(match variant {
                0 => bench.raw_create_start(&name, &body).0,
                1 => bench.run("docker", &docker_args, None).0,
                2 | 4 => bench.run(BERTH, &deploy_args, None).0,
                _ => bench.run(BERTH, &plain_args, None).0,
            });
            bench.remove(if variant == 3 { &plain_name } else { &name });
        }
    }
    // The engine's create+start drifts by tens of milliseconds over a run, more than
    // the few berth adds: each variant is also set against the raw API and docker in
    // the same round, and the median of those paired ratios is the measure.
    let paired = |variant: usize, base: usize| {
        let mut ratios: Vec<f64> = times[variant]
            .iter()
            .zip(&times[base])
            .map(|(t, b)| t.as_secs_f64() / b.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[ratios.len() / 2]
    };
    let vs_raw: Vec<f64> = (0..variants.len()).map(|v| paired(v, 0)).collect();
    let vs_cli: Vec<f64> = (0..variants.len()).map(|v| paired(v, 1)).collect();
    let stats: Vec<Stats> = times.into_iter().map(Stats::of).collect();
    let mut table = Table::new(
        "deploy: create and start a project's container (workspace, home and data root mounted)",
        &[
            "median",
            "min",
            "medians' ratio",
            "paired, vs raw API",
            "paired, vs docker run",
        ],
    );
    for (variant, (name, s)) in variants.iter().zip(&stats).enumerate() {
        table.row(
            name,
            vec![
                ms(s.median),
                ms(s.min),
                ratio(s.median, stats[0].median),
                format!("{:.2}x", vs_raw[variant]),
                format!("{:.2}x", vs_cli[variant]),
            ],
        );
    }
    table.print();
    target(
        "deploy within 5% of the raw API (paired)",
        vs_raw[2] <= 1.05,
        format!("{:.2}x", vs_raw[2]),
    );
    target(
        "deploy no slower than `docker run -d` (paired)",
        vs_cli[2] <= 1.0,
        format!("{:.2}x", vs_cli[2]),
    );
    println!(
        "no identity step: `user = \"{}:{}\"` in the project's berth.toml (the same ids), so \
         berth does not write the user into the image's passwd and group",
        bench.who.uid, bench.who.gid
    );
    println!(
        "same request: the raw API replays the body berth sent; `docker run -d` {}",
        match compare_configs(&berth_config, &docker_config) {
            diffs if diffs.is_empty() => format!(
                "made a container with the same labels, env, user, workdir, command, mounts \
                 and init{}",
                if identity {
                    ", but for the passwd and group berth writes into the layer (one \
                     archive call the raw API's replay does not make)"
                } else {
                    ""
                }
            ),
            diffs => format!("differs in {}", diffs.join(", ")),
        }
    );
    println!();
    if profile {
        berth_profile.print("`berth deploy`");
        docker_profile.print("`docker run -d`");
    }
    Deployed {
        project,
        name,
        body,
    }
}

fn retire(bench: &Bench, deployed: &Deployed, rounds: usize, profile: bool) {
    let (project, name) = (&deployed.project, &deployed.name);
    let deploy_args = ["deploy", project, "--image", &bench.image];
    let variants = [
        "raw API: remove (force)",
        "raw API: stop + remove",
        "`docker rm -f`",
        "`docker stop` + `docker rm`",
        "`berth retire`",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for step in 0..variants.len() {
            let variant = (step + round) % variants.len();
            interrupt::check();
            // Untimed: an untouched, running container; berth's own for berth.
            if variant == 4 {
                bench.berth(&deploy_args);
            } else {
                bench.raw_create_start(name, &deployed.body);
            }
            times[variant].push(match variant {
                0 => bench.raw_remove(name, false),
                1 => bench.raw_remove(name, true),
                2 => bench.run("docker", &["rm", "-f", name], None).0,
                3 => {
                    bench.run("docker", &["stop", name], None).0
                        + bench.run("docker", &["rm", name], None).0
                }
                _ => bench.run(BERTH, &["retire", project], None).0,
            });
            assert!(
                !bench.exists(name),
                "{} left {name} behind",
                variants[variant]
            );
        }
    }
    let stats: Vec<Stats> = times.into_iter().map(Stats::of).collect();
    let mut table = Table::new(
        "retire: remove an untouched running container (berth checks it for unsaved work first)",
        &["median", "min", "vs docker rm -f"],
    );
    for (name, s) in variants.iter().zip(&stats) {
        table.row(
            name,
            vec![ms(s.median), ms(s.min), ratio(s.median, stats[2].median)],
        );
    }
    table.print();
    println!();
    if profile {
        let proxy = Proxy::start(bench.dir.path().join("proxy.sock"), bench.upstream());
        bench.berth(&deploy_args);
        proxy
            .profile(|host| bench.run(BERTH, &["retire", project], Some(host)))
            .print("`berth retire`");
        bench.raw_create_start(name, &deployed.body);
        proxy
            .profile(|host| bench.run("docker", &["rm", "-f", name], Some(host)))
            .print("`docker rm -f`");
    }
}

fn list(bench: &Bench, deployed: &Deployed, count: usize, rounds: usize, profile: bool) {
    let made = Instant::now();
    bench.make_many(&deployed.body, count);
    println!(
        "(made {count} created berth containers of {} in {:.1} s)",
        bench.who.name,
        made.elapsed().as_secs_f64()
    );
    let uid = bench.who.uid.to_string();
    type Run<'a> = Box<dyn Fn() -> (Duration, usize) + 'a>;
    let lines = |out: &Output| String::from_utf8_lossy(&out.stdout).lines().count();
    let filter_user = format!("label=berth.user={uid}");
    let variants: Vec<(&str, Run)> = vec![
        (
            "raw API: list, berth's filters",
            Box::new(|| bench.raw_list(&uid, false)),
        ),
        (
            "raw API: list, berth's filters, sizes",
            Box::new(|| bench.raw_list(&uid, true)),
        ),
        (
            "`docker ps -a`",
            Box::new(|| {
                let (t, out) = bench.run("docker", &["ps", "-a"], None);
                (t, lines(&out) - 1)
            }),
        ),
        (
            "`docker ps -a --filter label=berth.user=UID`",
            Box::new(|| {
                let (t, out) = bench.run("docker", &["ps", "-a", "--filter", &filter_user], None);
                (t, lines(&out) - 1)
            }),
        ),
        (
            "`docker ps -a --size`",
            Box::new(|| {
                let (t, out) = bench.run("docker", &["ps", "-a", "--size"], None);
                (t, lines(&out) - 1)
            }),
        ),
        (
            "`berth list`",
            Box::new(|| {
                let (t, out) = bench.run(BERTH, &["list"], None);
                (t, lines(&out) - 1)
            }),
        ),
        (
            "`berth list -q`",
            Box::new(|| {
                let (t, out) = bench.run(BERTH, &["list", "-q"], None);
                (t, lines(&out))
            }),
        ),
        (
            "`berth list --all`",
            Box::new(|| {
                let (t, out) = bench.run(BERTH, &["list", "--all"], None);
                (t, lines(&out) - 1)
            }),
        ),
        (
            "`berth list --size`",
            Box::new(|| {
                let (t, out) = bench.run(BERTH, &["list", "--size"], None);
                (t, lines(&out) - 1)
            }),
        ),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let mut listed = vec![0; variants.len()];
    let mut wanted = vec![rounds; variants.len()];
    for (variant, (_, run)) in variants.iter().enumerate() {
        // Warm each once: the engine's and the page cache. A call that takes seconds
        // (the engine sizing every container) gets three rounds, not the full count.
        let (took, count) = run();
        listed[variant] = count;
        if took > Duration::from_secs(1) {
            wanted[variant] = rounds.min(3);
        }
    }
    for round in 0..rounds {
        for step in 0..variants.len() {
            let variant = (step + round) % variants.len();
            if times[variant].len() < wanted[variant] {
                interrupt::check();
                times[variant].push(variants[variant].1().0);
            }
        }
    }
    let stats: Vec<Stats> = times.into_iter().map(Stats::of).collect();
    let mut table = Table::new(
        &format!("list: {count} berth containers on the engine"),
        &["median", "min", "vs docker ps -a", "listed", "rounds"],
    );
    for (variant, ((name, _), s)) in variants.iter().zip(&stats).enumerate() {
        table.row(
            name,
            vec![
                ms(s.median),
                ms(s.min),
                ratio(s.median, stats[2].median),
                listed[variant].to_string(),
                wanted[variant].to_string(),
            ],
        );
    }
    table.print();
    target(
        "list no slower than `docker ps -a`",
        stats[5].median <= stats[2].median,
        ratio(stats[5].median, stats[2].median),
    );
    println!(
        "with sizes: `berth list --size` {} `docker ps -a --size` (the engine's walk of every \
         container's writable layer is the whole of both)",
        ratio(stats[8].median, stats[4].median)
    );
    println!();
    if profile {
        let proxy = Proxy::start(bench.dir.path().join("proxy.sock"), bench.upstream());
        proxy
            .profile(|host| bench.run(BERTH, &["list"], Some(host)))
            .print("`berth list`");
        proxy
            .profile(|host| bench.run(BERTH, &["list", "-q"], Some(host)))
            .print("`berth list -q`");
        proxy
            .profile(|host| bench.run("docker", &["ps", "-a"], Some(host)))
            .print("`docker ps -a`");
    }
}

/// Removes the copies of images' passwd and group that berth keeps under `kept`.
fn forget_images(kept: &Path) {
    let mut forgotten = 0;
    for image in std::fs::read_dir(kept).expect("berth keeps its images' files") {
        let copy = image.unwrap().path().join("image-passwd");
        if std::fs::remove_file(copy).is_ok() {
            forgotten += 1;
        }
    }
    assert!(forgotten > 0, "no image's files in {}", kept.display());
}

/// Takes the value of berth's identity label (the digests of the passwd and group it
/// wrote, which the plan cannot know) out of an inspected container's config; whether
/// there was one.
fn without_identity_digests(config: &mut Value) -> bool {
    let Some(label) = config["Config"]["Labels"].get_mut("berth.identity") else {
        return false;
    };
    *label = Value::from("1");
    true
}

/// The fields that make two containers the same container, where they differ.
fn compare_configs(a: &Value, b: &Value) -> Vec<String> {
    const FIELDS: [(&str, &str); 11] = [
        ("Config", "Labels"),
        ("Config", "Env"),
        ("Config", "User"),
        ("Config", "WorkingDir"),
        ("Config", "Cmd"),
        ("Config", "Entrypoint"),
        ("Config", "Image"),
        ("HostConfig", "Mounts"),
        ("HostConfig", "Binds"),
        ("HostConfig", "Init"),
        ("HostConfig", "ShmSize"),
    ];
    FIELDS
        .iter()
        .filter(|(section, field)| sorted(&a[section][field]) != sorted(&b[section][field]))
        .map(|(section, field)| {
            format!(
                "{section}.{field} (berth's {}, docker's {})",
                a[section][field], b[section][field]
            )
        })
        .collect()
}

/// A list in a canonical order (the engine may reorder Env or Mounts); other values
/// as they are.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items = items.clone();
            items.sort_by_key(|item| item.to_string());
            Value::Array(items)
        }
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// The hermetic environment

/// Who berth (and the docker CLI, for fairness) runs as.
struct Who {
    uid: u32,
    gid: u32,
    name: String,
    /// Set when the bench switches to this user in each child.
    switch: Option<Vec<libc::gid_t>>,
}

impl Who {
    fn choose() -> Self {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let me = || Who {
            uid: id(&["-u"]).parse().expect("id prints a number"),
            gid: id(&["-g"]).parse().expect("id prints a number"),
            name: id(&["-un"]),
            switch: None,
        };
        if !root || std::env::var("BERTH_BENCH_USER").is_ok_and(|u| u == "self") {
            return me();
        }
        // As the tests do: a non-root user who may use the engine.
        support::test_user();
        let groups = id(&["-G", TEST_USER])
            .split_whitespace()
            .map(|g| g.parse().expect("id -G prints numbers"))
            .collect();
        Who {
            uid: id(&["-u", TEST_USER]).parse().expect("a uid"),
            gid: id(&["-g", TEST_USER]).parse().expect("a gid"),
            name: TEST_USER.to_string(),
            switch: Some(groups),
        }
    }
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A temporary HOME, workspace root and data root, the bench's image and an engine
/// client; removes every container named with its prefix, and the image, when dropped.
struct Bench<'a> {
    runtime: &'a tokio::runtime::Runtime,
    docker: Docker,
    dir: tempfile::TempDir,
    home: PathBuf,
    data: PathBuf,
    who: Who,
    image: String,
    /// Every container and project the bench makes is named with it.
    prefix: String,
}

impl<'a> Bench<'a> {
    fn new(runtime: &'a tokio::runtime::Runtime, docker: Docker) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-")
            .tempdir()
            .expect("a temp dir");
        set_mode(dir.path(), 0o755);
        let who = Who::choose();
        let home = dir.path().join("home");
        let data = dir.path().join("data");
        for path in [&home, &data] {
            std::fs::create_dir_all(path).unwrap();
            std::os::unix::fs::chown(path, Some(who.uid), Some(who.gid)).unwrap();
        }
        std::fs::write(dir.path().join("policy.toml"), "").unwrap();
        let prefix = format!("bvd-{}", std::process::id());
        // Named before it exists, so that a failed import is cleaned up too.
        let bench = Self {
            runtime,
            docker,
            image: format!("berth-bench/busybox:{prefix}"),
            dir,
            home,
            data,
            who,
            prefix,
        };
        support::busybox_image(&bench.image);
        bench
    }

    /// The engine's socket, for the proxy.
    fn upstream(&self) -> Option<PathBuf> {
        match std::env::var("DOCKER_HOST") {
            Ok(host) => host.strip_prefix("unix://").map(PathBuf::from),
            Err(_) => Some(PathBuf::from("/var/run/docker.sock")),
        }
    }

    /// `program ARGS` as the bench's user in the hermetic environment (as the tests'
    /// Sandbox makes it), against `docker_host` if given: wall time, and its output.
    fn run(&self, program: &str, args: &[&str], docker_host: Option<&str>) -> (Duration, Output) {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("BERTH_WORKSPACE_ROOT", self.home.join("workspace"))
            .env("HOST_DATA_PATH", &self.data)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if self.who.uid == 0 {
            // Only root's BERTH_POLICY is followed; this one is empty.
            command.env("BERTH_POLICY", self.dir.path().join("policy.toml"));
        }
        if let Some(host) = docker_host
            .map(str::to_string)
            .or(std::env::var("DOCKER_HOST").ok())
        {
            command.env("DOCKER_HOST", host);
        }
        if let Some(groups) = self.who.switch.clone() {
            let (uid, gid) = (self.who.uid, self.who.gid);
            // SAFETY: only async-signal-safe system calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let start = Instant::now();
        let out = command.output().expect("the program runs");
        let elapsed = start.elapsed();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (elapsed, out)
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.run(BERTH, args, None).1
    }

    /// Writes `<workspace>/berth.toml` for `project`, as the bench's user's.
    fn project_toml(&self, project: &str, text: &str) {
        let workspace = self.home.join("workspace").join(project);
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::write(workspace.join("berth.toml"), text).unwrap();
        for path in [workspace.parent().unwrap(), &workspace] {
            std::os::unix::fs::chown(path, Some(self.who.uid), Some(self.who.gid)).unwrap();
        }
    }

    /// The name berth gives `project`'s container for the bench's user.
    fn project_container(&self, project: &str) -> String {
        format!("{project}._.{}", self.who.name)
    }

    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// Creates and starts `name` in-process from `body`: the least a deploy can cost.
    fn raw_create_start(&self, name: &str, body: &ContainerCreateBody) -> (Duration, String) {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let body = body.clone();
        self.block_on(async {
            let start = Instant::now();
            let id = self
                .docker
                .create_container(Some(options), body)
                .await
                .expect("create")
                .id;
            self.docker.start_container(&id, None).await.expect("start");
            (start.elapsed(), id)
        })
    }

    /// Removes `name` in-process: forced, or stopped (SIGTERM, as retire does) first.
    fn raw_remove(&self, name: &str, stop: bool) -> Duration {
        self.block_on(async {
            let start = Instant::now();
            if stop {
                let options = StopContainerOptions {
                    t: Some(10),
                    signal: None,
                };
                self.docker
                    .stop_container(name, Some(options))
                    .await
                    .expect("stop");
            }
            let options = RemoveContainerOptions {
                force: !stop,
                ..Default::default()
            };
            self.docker
                .remove_container(name, Some(options))
                .await
                .expect("remove");
            start.elapsed()
        })
    }

    /// berth's list call: the caller's berth containers, with or without their sizes.
    fn raw_list(&self, uid: &str, sizes: bool) -> (Duration, usize) {
        let options = ListContainersOptions {
            all: true,
            size: sizes,
            filters: Some(std::collections::HashMap::from([(
                "label".to_string(),
                vec![format!("berth.user={uid}"), "berth.project".to_string()],
            )])),
            ..Default::default()
        };
        self.block_on(async {
            let start = Instant::now();
            let listed = self
                .docker
                .list_containers(Some(options))
                .await
                .expect("list");
            (start.elapsed(), listed.len())
        })
    }

    /// Makes `count` created (not started) containers of the bench's user, each of its
    /// own project, from berth's own create request.
    fn make_many(&self, body: &ContainerCreateBody, count: usize) {
        let made: Vec<()> = self.block_on(
            futures_util::stream::iter(0..count)
                .map(|i| {
                    let project = format!("{}-l{i:04}", self.prefix);
                    let mut body = body.clone();
                    let labels = body.labels.get_or_insert_with(Default::default);
                    labels.insert("berth.project".into(), project.clone());
                    labels.insert("berth.data-group".into(), project.clone());
                    let options = CreateContainerOptions {
                        name: Some(self.project_container(&project)),
                        ..Default::default()
                    };
                    async move {
                        interrupt::check();
                        self.docker
                            .create_container(Some(options), body)
                            .await
                            .expect("create");
                    }
                })
                .buffer_unordered(4)
                .collect(),
        );
        assert_eq!(made.len(), count);
    }

    fn exists(&self, name: &str) -> bool {
        self.block_on(
            self.docker
                .inspect_container(name, None::<InspectContainerOptions>),
        )
        .is_ok()
    }

    /// The container's Config and HostConfig, as the engine reports them.
    fn inspect_config(&self, name: &str) -> Value {
        let details = self
            .block_on(
                self.docker
                    .inspect_container(name, None::<InspectContainerOptions>),
            )
            .expect("inspect");
        serde_json::json!({ "Config": details.config, "HostConfig": details.host_config })
    }

    /// Removes `name` with force (untimed clean-up between rounds).
    fn remove(&self, name: &str) {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        self.block_on(self.docker.remove_container(name, Some(options)))
            .expect("remove");
    }
}

impl Drop for Bench<'_> {
    fn drop(&mut self) {
        let filter = format!("name=^{}-", self.prefix);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output()
                    .ok();
            }
        }
        Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output()
            .ok();
        // Files the containers wrote as another user must not stop the clean-up.
        Command::new("chmod")
            .args(["-R", "u+rwX"])
            .arg(self.dir.path())
            .output()
            .ok();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[path = "../tests/support/words.rs"]
mod words;
use words::shell_words;

/// Ctrl-C or SIGTERM ends the bench at the next step, through the clean-up.
mod interrupt {
    use super::*;

    static INTERRUPTED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }

    pub fn install() {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic.
            unsafe {
                libc::signal(
                    signal,
                    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
                )
            };
        }
    }

    /// Panics (so that the Drop guards clean up) once interrupted.
    pub fn check() {
        assert!(!INTERRUPTED.load(Ordering::SeqCst), "interrupted");
    }
}

// ---------------------------------------------------------------------------------------
// The profile: every request a command sends the engine, seen on the socket

/// A proxy on a unix socket in front of the engine's, which forwards every byte and
/// notes each HTTP request with when it went and when its answer came.
struct Proxy {
    path: PathBuf,
    log: Arc<Mutex<Vec<Exchange>>>,
    stop: Arc<AtomicBool>,
}

#[derive(Clone)]
struct Exchange {
    method: String,
    path: String,
    body: Vec<u8>,
    /// The request's first byte from the client.
    start: Instant,
    /// The request was whole (and forwarded).
    sent: Instant,
    /// The answer's first and last bytes from the engine.
    first: Option<Instant>,
    last: Option<Instant>,
}

/// One command run through the proxy.
struct Profile {
    wall: Duration,
    spawned: Instant,
    exchanges: Vec<Exchange>,
}

impl Proxy {
    fn start(path: PathBuf, upstream: Option<PathBuf>) -> Self {
        let upstream = upstream.expect("the profiles need the engine on a unix socket");
        std::fs::remove_file(&path).ok();
        let listener = UnixListener::bind(&path).expect("the proxy's socket");
        set_mode(&path, 0o777);
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(engine) = UnixStream::connect(&upstream) else {
                    continue;
                };
                let current = Arc::new(Mutex::new(None::<usize>));
                let (c_read, e_write) = (client.try_clone().unwrap(), engine.try_clone().unwrap());
                let (log3, current3) = (log2.clone(), current.clone());
                std::thread::spawn(move || requests(c_read, e_write, &log3, &current3));
                let log4 = log2.clone();
                std::thread::spawn(move || answers(engine, client, &log4, &current));
            }
        });
        Self { path, log, stop }
    }

    /// Runs `run` (given the proxy's DOCKER_HOST) and returns what it sent.
    fn profile(&self, run: impl FnOnce(&str) -> (Duration, Output)) -> Profile {
        self.log.lock().unwrap().clear();
        let host = format!("unix://{}", self.path.display());
        let spawned = Instant::now();
        let (wall, _) = run(&host);
        Profile {
            wall,
            spawned,
            exchanges: self.log.lock().unwrap().clone(),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        UnixStream::connect(&self.path).ok();
        std::fs::remove_file(&self.path).ok();
    }
}

/// Client to engine: forwards, and logs each request once it is whole.
fn requests(
    mut from: UnixStream,
    mut to: UnixStream,
    log: &Mutex<Vec<Exchange>>,
    current: &Mutex<Option<usize>>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut started = None;
    let mut chunk = [0u8; 65536];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        // Past a megabyte with no request in it, it is no longer HTTP (an attach).
        if pending.len() < 1 << 20 {
            started.get_or_insert(now);
            pending.extend_from_slice(&chunk[..n]);
            while let Some((used, method, path, body)) = parse_request(&pending) {
                let mut log = log.lock().unwrap();
                log.push(Exchange {
                    method,
                    path,
                    body,
                    start: started.unwrap_or(now),
                    sent: now,
                    first: None,
                    last: None,
                });
                *current.lock().unwrap() = Some(log.len() - 1);
                pending.drain(..used);
                started = (!pending.is_empty()).then_some(now);
            }
        }
        if to.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    to.shutdown(std::net::Shutdown::Write).ok();
}

/// Engine to client: forwards, noting the first and last byte of each answer.
fn answers(
    mut from: UnixStream,
    mut to: UnixStream,
    log: &Mutex<Vec<Exchange>>,
    current: &Mutex<Option<usize>>,
) {
    let mut chunk = [0u8; 65536];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        if let Some(at) = *current.lock().unwrap() {
            let mut log = log.lock().unwrap();
            if let Some(exchange) = log.get_mut(at) {
                exchange.first.get_or_insert(now);
                exchange.last = Some(now);
            }
        }
        if to.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    to.shutdown(std::net::Shutdown::Write).ok();
}

/// One whole HTTP/1.1 request at the start of `buf`: its length, method, target and
/// body; `None` while it is incomplete.
fn parse_request(buf: &[u8]) -> Option<(usize, String, String, Vec<u8>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut words = lines.next()?.split(' ');
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let mut length = 0;
    let mut chunked = false;
    for line in lines {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    if !chunked {
        let body = buf.get(end..end + length)?.to_vec();
        return Some((end + length, method, path, body));
    }
    let (mut at, mut body) = (end, Vec::new());
    loop {
        let line_end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let size_text = String::from_utf8_lossy(&buf[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // No trailers from the clients profiled here.
            buf.get(at..at + 2)?;
            return Some((at + 2, method, path, body));
        }
        body.extend_from_slice(buf.get(at..at + size)?);
        at += size + 2;
        buf.get(..at)?;
    }
}

impl Profile {
    fn print(&self, name: &str) {
        let at = |t: Instant| t.saturating_duration_since(self.spawned);
        let mut busy: Vec<(Duration, Duration)> = self
            .exchanges
            .iter()
            .map(|e| (at(e.start), at(e.last.unwrap_or(e.sent))))
            .collect();
        busy.sort();
        let mut engine = Duration::ZERO;
        let mut reach = Duration::ZERO;
        for (from, to) in &busy {
            let from = (*from).max(reach);
            if *to > from {
                engine += *to - from;
            }
            reach = reach.max(*to);
        }
        let first = busy.first().map_or(self.wall, |b| b.0);
        println!(
            "{name} through a logging proxy: {} wall, {} round trip(s), {} of it waiting on \
             the engine",
            ms(self.wall),
            self.exchanges.len(),
            ms(engine)
        );
        println!("| at | took | request |");
        println!("|---:|---:|---|");
        let mut previous_end = first;
        let mut between = Duration::ZERO;
        for e in &self.exchanges {
            let (start, end) = (at(e.start), at(e.last.unwrap_or(e.sent)));
            between += start.saturating_sub(previous_end);
            previous_end = previous_end.max(end);
            println!(
                "| {} | {} | `{} {}` |",
                ms(start),
                ms(end - start),
                e.method,
                readable(&e.path)
            );
        }
        println!(
            "before the first request {} (start-up, configuration, guards); between \
             requests {}; after the last answer {} (to exit)",
            ms(first),
            ms(between),
            ms(self.wall.saturating_sub(previous_end))
        );
        println!();
    }
}

/// A request target with its escapes undone and long queries cut short.
fn readable(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => match u8::from_str_radix(&String::from_utf8_lossy(hex), 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            (b, _) => out.push(b),
        }
        i += 1;
    }
    let text = String::from_utf8_lossy(&out).replace('|', "\\|");
    if text.chars().count() > 110 {
        format!("{}...", text.chars().take(107).collect::<String>())
    } else {
        text
    }
}

// ---------------------------------------------------------------------------------------
// Figures

struct Stats {
    median: Duration,
    min: Duration,
}

impl Stats {
    fn of(mut times: Vec<Duration>) -> Self {
        times.sort();
        Self {
            median: times[times.len() / 2],
            min: times[0],
        }
    }
}

fn repeat(rounds: usize, mut run: impl FnMut() -> Duration) -> Stats {
    run();
    Stats::of(
        (0..rounds)
            .map(|_| {
                interrupt::check();
                run()
            })
            .collect(),
    )
}

/// A markdown table, so that the output pastes into the README as it is.
struct Table {
    title: String,
    columns: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

impl Table {
    fn new(title: &str, columns: &[&str]) -> Self {
        Self {
            title: title.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, name: &str, cells: Vec<String>) {
        self.rows.push((name.to_string(), cells));
    }

    fn print(&self) {
        let mut widths: Vec<usize> = std::iter::once(0)
            .chain(self.columns.iter().map(|c| c.len()))
            .collect();
        for (name, cells) in &self.rows {
            widths[0] = widths[0].max(name.len());
            for (i, cell) in cells.iter().enumerate() {
                widths[i + 1] = widths[i + 1].max(cell.len());
            }
        }
        println!("{}", self.title);
        let mut header = format!("| {:<w$} |", "", w = widths[0]);
        let mut rule = format!("|{}|", "-".repeat(widths[0] + 2));
        for (i, column) in self.columns.iter().enumerate() {
            header.push_str(&format!(" {:>w$} |", column, w = widths[i + 1]));
            rule.push_str(&format!("{}:|", "-".repeat(widths[i + 1] + 1)));
        }
        println!("{header}\n{rule}");
        for (name, cells) in &self.rows {
            let mut line = format!("| {:<w$} |", name, w = widths[0]);
            for (i, cell) in cells.iter().enumerate() {
                line.push_str(&format!(" {:>w$} |", cell, w = widths[i + 1]));
            }
            println!("{line}");
        }
    }
}

fn target(what: &str, met: bool, figure: String) {
    println!(
        "target: {what}: {} ({figure})",
        if met { "met" } else { "MISSED" }
    );
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
