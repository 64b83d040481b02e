//! `berth backup` and `berth restore` of a workspace of mixed files against `tar -c |
//! zstd -1` and `zstd -d | tar -x` of the same tree, and the peak memory of each; and
//! a scheduled backup of the unchanged tree, which compares fingerprints and copies
//! nothing, against berth's full backup.
//!
//! `cargo bench --bench backup` (needs a Docker engine, which berth asks once, and the
//! `zstd` command). `BERTH_BENCH_ROUNDS` sets the repetitions (default 3),
//! `BERTH_BENCH_TREE_MIB` the tree's size (default 1024). The tree: a few large files,
//! a few hundred medium ones and thousands of small ones, half of the bytes random and
//! half text-like, as a project with data, checkpoints and code. Every run ends with
//! its output on disk (`sync`): berth fsyncs the archive before it renames it, and
//! a restore syncs the folders before they are put in place; the baselines get a
//! `sync` of what they wrote, so that both pay for the disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::median;

#[path = "support/mod.rs"]
mod support;

fn main() {
    let number = support::number;
    let rounds = number("BERTH_BENCH_ROUNDS", 3);
    let mib = number("BERTH_BENCH_TREE_MIB", 1024) as u64;
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-backup-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let home = dir.path().join("home");
    let tree = home.join("workspace").join("proj");
    let files = fill(&tree, mib << 20);
    let berth = env!("CARGO_BIN_EXE_berth");
    let out = dir.path().join("out");

    println!("backup and restore of {mib} MiB in {files} files ({rounds} rounds, medians, synced)");
    println!(
        "{:<10}  {:>10}  {:>10}  {:>8}  {:>12}  {:>12}",
        "what", "berth", "baseline", "speed", "berth peak", "base peak"
    );
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let (mut our_peak, mut base_peak) = (0, 0);
    let mut archive = PathBuf::new();
    for round in 0..=rounds {
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        archive = out.join("proj.berth.tar.zst");
        let (took, peak) = run(Command::new(berth)
            .args(["backup", "proj", "--to"])
            .arg(&archive)
            .env("HOME", &home));
        let (base_took, base_peak_now) = run(Command::new("sh").arg("-c").arg(format!(
            "tar -C {} -cf - . | zstd -1 -q -o {}/base.tar.zst && sync {}/base.tar.zst",
            tree.display(),
            out.display(),
            out.display()
        )));
        // The first round warms the page cache and is not counted.
        if round > 0 {
            ours.push(took);
            base.push(base_took);
            our_peak = our_peak.max(peak);
            base_peak = base_peak.max(base_peak_now);
        }
    }
    let full = median(&mut ours.clone());
    row("backup", &mut ours, &mut base, our_peak, base_peak);
    unchanged(berth, &home, full);

    let (mut ours, mut base) = (Vec::new(), Vec::new());
    let (mut our_peak, mut base_peak) = (0, 0);
    for round in 0..=rounds {
        let restored = home.join("workspace").join("back");
        let _ = std::fs::remove_dir_all(&restored);
        let (took, peak) = run(Command::new(berth)
            .arg("restore")
            .arg(&archive)
            .args(["--as", "back"])
            .env("HOME", &home));
        assert!(restored.join("data").is_dir(), "restored");
        let into = out.join("base-restored");
        let _ = std::fs::remove_dir_all(&into);
        std::fs::create_dir_all(&into).unwrap();
        let (base_took, base_peak_now) = run(Command::new("sh").arg("-c").arg(format!(
            "zstd -d -q -c {}/base.tar.zst | tar -C {} -xf - && sync -f {}",
            out.display(),
            into.display(),
            into.display()
        )));
        if round > 0 {
            ours.push(took);
            base.push(base_took);
            our_peak = our_peak.max(peak);
            base_peak = base_peak.max(base_peak_now);
        }
    }
    row("restore", &mut ours, &mut base, our_peak, base_peak);
}

/// `berth backup --scheduled` of the tree once it has a scheduled archive and has not
/// changed: a walk of `stat`s and a fingerprint, against `full`, a whole backup.
fn unchanged(berth: &str, home: &Path, full: Duration) {
    let config = home.join(".config/berth");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[backup]\nevery = \"1s\"\n").unwrap();
    let scheduled = |home: &Path| {
        let mut command = Command::new(berth);
        command
            .args(["backup", "proj", "--scheduled"])
            .env("HOME", home);
        run(&mut command)
    };
    // The first takes the archive that the others compare with.
    scheduled(home);
    let (mut times, mut peak) = (Vec::new(), 0);
    for _ in 0..3 {
        // Due again, every second.
        std::thread::sleep(Duration::from_millis(1100));
        let (took, peak_now) = scheduled(home);
        times.push(took);
        peak = peak.max(peak_now);
    }
    let took = median(&mut times);
    println!(
        "{:<10}  {:>10}  {:>10}  {:>7.2}x  {:>12}  {:>12}",
        "unchanged",
        format!("{:.0} ms", took.as_secs_f64() * 1000.0),
        format!("{:.0} ms", full.as_secs_f64() * 1000.0),
        full.as_secs_f64() / took.as_secs_f64(),
        format!("{:.1} MiB", peak as f64 / 1024.0),
        "",
    );
    println!("(unchanged: a scheduled backup of the same tree, against berth's full backup)");
}

fn row(what: &str, ours: &mut [Duration], base: &mut [Duration], peak: u64, base_peak: u64) {
    let (ours, base) = (median(ours), median(base));
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    println!(
        "{:<10}  {:>10}  {:>10}  {:>7.2}x  {:>12}  {:>12}",
        what,
        ms(ours),
        ms(base),
        base.as_secs_f64() / ours.as_secs_f64(),
        mib(peak),
        mib(base_peak)
    );
}

/// Runs `command` to success; its time, and its peak resident set in KiB (the
/// largest of it and the processes it waited for, as `wait4` reports it).
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's wait cannot stand in for
fn run(command: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: wait4 reaps the child it is given and fills the structs it is handed;
    // the `Child` is not waited for again.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let took = start.elapsed();
    assert_eq!(reaped, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed"
    );
    (took, usage.ru_maxrss as u64)
}

/// Fills `root` with about `bytes` of files; returns how many.
fn fill(root: &Path, bytes: u64) -> usize {
    let mut count = 0;
    let mut written = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let text: Vec<u8> = b"epoch 12 loss 0.4312 accuracy 0.8876 lr 0.0003\n"
        .iter()
        .copied()
        .cycle()
        .take(1 << 16)
        .collect();
    // (folder, count, size): a quarter each in large, medium and small files, the rest code.
    let plan = [
        ("data", 4u64, bytes / 16),
        ("checkpoints", 256, bytes / 4 / 256),
        ("src", 8000, bytes / 4 / 8000),
        ("logs", 200, bytes / 4 / 200),
    ];
    for (folder, n, size) in plan {
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let sub = dir.join(format!("{}", i % 16));
            std::fs::create_dir_all(&sub).unwrap();
            // Written a piece at a time: the figures of the commands this process
            // starts begin at its own peak (a fork copies it), so it stays small.
            let mut file = std::fs::File::create(sub.join(format!("f{i}"))).unwrap();
            let mut left = size as usize;
            let random = i % 2 == 0;
            let mut piece = Vec::with_capacity(1 << 16);
            while left > 0 {
                piece.clear();
                let take = left.min(1 << 16);
                if random {
                    while piece.len() < take {
                        piece.extend_from_slice(&next().to_le_bytes());
                    }
                    piece.truncate(take);
                } else {
                    piece.extend_from_slice(&text[..take]);
                }
                file.write_all(&piece).unwrap();
                left -= take;
            }
            written += size;
            count += 1;
        }
    }
    assert!(written > 0);
    count
}
