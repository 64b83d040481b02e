//! A rescue against `docker cp` of the same path: 30,000 small files, and one 1 GiB
//! file, out of a container's writable layer onto this machine's disk.
//!
//! `cargo bench --bench rescue` (needs a Docker engine and busybox-static, like the
//! tests). `BERTH_BENCH_ROUNDS` sets the repetitions (default 3), `BERTH_BENCH_FILES`
//! the small files (default 30000), `BERTH_BENCH_BIG_MIB` the big file (default 1024).
//! The rescue is berth's own: the archive stream read as retire reads it, unpacked by
//! [`berth::retire::rescue::Extractor`] from open folders with `openat`, fsync'd file
//! by file, and renamed from `.partial` when complete. The baseline is `docker cp
//! CONTAINER:PATH DIR`, which unpacks the same stream without those guarantees.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::engine::BlockingReader;
use berth::retire::rescue::{self, Root};
use bollard::query_parameters::DownloadFromContainerOptions;
use bollard::Docker;
use support::median;

#[path = "support/mod.rs"]
mod support;
use futures_util::TryStreamExt;

fn main() {
    let number = support::number;
    let rounds = number("BERTH_BENCH_ROUNDS", 3);
    let files = number("BERTH_BENCH_FILES", 30_000);
    let big_mib = number("BERTH_BENCH_BIG_MIB", 1024);
    let bench = Bench::new();
    let (runtime, docker) = support::engine();

    bench.small_files("/opt/small", files);
    bench.big_file("/opt/big", big_mib);
    println!("rescue vs docker cp ({rounds} rounds, medians; the disk synced before each)");
    println!(
        "{:<24}  {:>10}  {:>10}  {:>6}  {:>16}  {:>6}",
        "what", "berth", "docker cp", "ratio", "docker cp + sync", "ratio"
    );
    for (what, path) in [
        (format!("{files} small files"), "/opt/small"),
        (format!("one {big_mib} MiB file"), "/opt/big"),
    ] {
        // Warm both once (page cache, the daemon's own caches).
        bench.docker_cp(path);
        bench.rescue(&runtime, &docker, path);
        let (mut ours, mut cp, mut cp_sync) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (copied, synced) = bench.docker_cp(path);
            cp.push(copied);
            cp_sync.push(synced);
            ours.push(bench.rescue(&runtime, &docker, path));
        }
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        let (ours, cp, cp_sync) = (median(&mut ours), median(&mut cp), median(&mut cp_sync));
        println!(
            "{:<24}  {:>10}  {:>10}  {:>6.2}  {:>16}  {:>6.2}",
            what,
            ms(ours),
            ms(cp),
            ours.as_secs_f64() / cp.as_secs_f64(),
            ms(cp_sync),
            ours.as_secs_f64() / cp_sync.as_secs_f64()
        );
    }
}

/// A running container of the tests' busybox image, and a scratch folder.
struct Bench {
    dir: tempfile::TempDir,
    image: String,
    container: String,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-rescue-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let image = format!("berth-bench/busybox:rescue-{}", std::process::id());
        support::busybox_image(&image);
        let container = format!("berth-bench-rescue-{}", std::process::id());
        run(Command::new("docker").args([
            "run", "-d", "--name", &container, &image, "sleep", "infinity",
        ]));
        Self {
            dir,
            image,
            container,
        }
    }

    /// `files` small files under `path`, spread over a hundred folders, written with
    /// one `docker cp` of a streamed tar.
    fn small_files(&self, path: &str, files: usize) {
        let mut cp = Command::new("docker")
            .args(["cp", "-", &format!("{}:/opt", self.container)])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = cp.stdin.take().unwrap();
        let mut tar = tar::Builder::new(std::io::BufWriter::new(stdin));
        let top = Path::new(path).file_name().unwrap();
        for i in 0..files {
            let body = format!("result {i}\n");
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            let name = Path::new(top).join(format!("d{:03}/f{i}.txt", i % 100));
            tar.append_data(&mut header, &name, body.as_bytes())
                .unwrap();
        }
        drop(tar.into_inner().unwrap());
        assert!(cp.wait().unwrap().success(), "docker cp failed");
    }

    /// One file of `mib` MiB under `path`, of random bytes.
    fn big_file(&self, path: &str, mib: usize) {
        run(Command::new("docker").args([
            "exec",
            &self.container,
            "sh",
            "-c",
            &format!("mkdir -p {path} && head -c {mib}m /dev/urandom > {path}/blob"),
        ]));
    }

    fn fresh(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `docker cp` of `path`: its time, and its time with a `sync` after it (the rescue
    /// is on disk when it returns; what `docker cp` wrote may not be).
    fn docker_cp(&self, path: &str) -> (Duration, Duration) {
        let into = self.fresh("cp");
        run(&mut Command::new("sync"));
        let start = Instant::now();
        run(Command::new("docker").args([
            "cp",
            &format!("{}:{path}", self.container),
            into.to_str().unwrap(),
        ]));
        let copied = start.elapsed();
        run(&mut Command::new("sync"));
        (copied, start.elapsed())
    }

    /// What retire's rescue does for one folder the container added.
    fn rescue(&self, runtime: &tokio::runtime::Runtime, docker: &Docker, path: &str) -> Duration {
        let workspace = self.fresh("workspace");
        run(&mut Command::new("sync"));
        let start = Instant::now();
        let folder = rescue::folder(&workspace, "20261206T000000Z").unwrap();
        let mut extractor = rescue::extractor(folder, None);
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let stream = docker
            .download_from_container(&self.container, Some(options))
            .map_err(std::io::Error::other);
        let root = Root::new(path, true);
        // As retire runs it: the stream read on a blocking thread of the runtime.
        let done = runtime.block_on(async move {
            let reader = BlockingReader::new(stream);
            tokio::task::spawn_blocking(move || {
                root.unpack(&mut extractor, reader).expect("the rescue");
                extractor.complete().expect("the rescue completes")
            })
            .await
            .unwrap()
        });
        let elapsed = start.elapsed();
        assert!(done.join(path.trim_start_matches('/')).is_dir());
        elapsed
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Bench {
    fn drop(&mut self) {
        Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output()
            .ok();
        Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output()
            .ok();
    }
}
