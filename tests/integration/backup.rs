//! `berth backup`: one archive of the workspace, the persistent home and the persisted
//! volumes, read with the system's `tar --zstd` and `sha256sum`, not berth's reader.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

fn backup(sb: &Sandbox, to: &Path) -> Output {
    sb.berth(&[
        "backup",
        &sb.project,
        "--to",
        to.to_str().unwrap(),
        "--json",
    ])
}

/// Unpacks `archive` with the system's tar into a new folder beside it.
fn unpack(archive: &Path) -> PathBuf {
    let into = archive.with_extension("unpacked");
    fs::create_dir_all(&into).unwrap();
    let out = Command::new("tar")
        .args(["--zstd", "-xf"])
        .arg(archive)
        .arg("-C")
        .arg(&into)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", stderr(&out));
    into
}

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_backup_holds_the_workspace_home_and_volumes_of_a_running_project() {
    let sb = Sandbox::new();
    sb.project_toml("[backup]\nexclude = [\"*.ckpt\"]\n");
    assert_code(&sb.deploy_persisting(&["/srv"]), 0);
    assert_code(&sb.exec_as_root("echo served > /srv/run.log"), 0);
    fs::create_dir_all(sb.workspace().join("src")).unwrap();
    fs::write(sb.workspace().join("src/train.py"), "print('train')\n").unwrap();
    fs::write(sb.workspace().join("model.ckpt"), vec![7u8; 4096]).unwrap();
    fs::write(sb.container_home().join(".history"), "ls\n").unwrap();
    let to = sb.path().join("backups");
    fs::create_dir_all(&to).unwrap();

    let out = backup(&sb, &to);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = PathBuf::from(report["path"].as_str().unwrap());
    assert!(archive.starts_with(&to), "{report:#}");
    assert_eq!(report["volumes"][0]["path"], "/srv", "{report:#}");
    assert!(
        report["paused_ms"].as_u64().is_some(),
        "paused while its volume was read"
    );
    assert_stderr_has(&out, "backed up");
    // Complete, private, and alone: no partial file beside it.
    let mode = fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(names(&to), [archive.file_name().unwrap().to_string_lossy()]);
    // The container runs on, unpaused; the helper is gone.
    assert_eq!(sb.state(), "running");
    let volume = report["volumes"][0]["volume"].as_str().unwrap();
    let mounting = docker(&["ps", "-aq", "--filter", &format!("volume={volume}")]);
    assert_eq!(
        stdout(&mounting).split_whitespace().count(),
        1,
        "only the project's"
    );

    let unpacked = unpack(&archive);
    assert_eq!(
        fs::read_to_string(unpacked.join("workspace/src/train.py")).unwrap(),
        "print('train')\n"
    );
    assert!(!unpacked.join("workspace/model.ckpt").exists(), "excluded");
    assert!(unpacked.join("workspace/berth.toml").exists());
    assert_eq!(
        fs::read_to_string(unpacked.join("home/.history")).unwrap(),
        "ls\n"
    );
    assert_eq!(
        fs::read_to_string(unpacked.join("volumes/0/run.log")).unwrap(),
        "served\n"
    );
    let header: Value =
        serde_json::from_slice(&fs::read(unpacked.join("berth-backup.json")).unwrap()).unwrap();
    assert_eq!(header["project"], sb.project.as_str());
    assert_eq!(header["volumes"][0]["entry"], "volumes/0");
    let manifest: Value =
        serde_json::from_slice(&fs::read(unpacked.join("berth-manifest.json")).unwrap()).unwrap();
    let entry = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "workspace/src/train.py")
        .expect("listed in the manifest")
        .clone();
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        sha256sum(&unpacked.join("workspace/src/train.py"))
    );
    assert_eq!(entry["size"], 15);
    let log = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "volumes/0/run.log")
        .expect("the volume's file is listed");
    assert_eq!(
        log["sha256"].as_str().unwrap(),
        sha256sum(&unpacked.join("volumes/0/run.log"))
    );
}

/// A folder in the workspace swapped for a link to elsewhere is archived as the link
/// it is: nothing it points at comes into the archive.
#[test]
fn a_link_in_the_workspace_is_kept_as_a_link_and_never_followed() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.workspace()).unwrap();
    let canary = sb.path().join("canary");
    fs::create_dir_all(&canary).unwrap();
    fs::write(canary.join("secret"), "not yours").unwrap();
    std::os::unix::fs::symlink(&canary, sb.workspace().join("data")).unwrap();
    let out = backup(&sb, sb.path());
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unpacked = unpack(Path::new(report["path"].as_str().unwrap()));
    let link = unpacked.join("workspace/data");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_link(&link).unwrap(), canary);
    let listing = Command::new("tar")
        .args(["--zstd", "-tf", report["path"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(!stdout(&listing).contains("secret"), "{}", stdout(&listing));
}

/// A tmpfs of 1 MiB, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: PathBuf) -> Self {
        fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the test mounts a tmpfs as root: {}",
            stderr(&out)
        );
        Self(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        Command::new("umount").arg(&self.0).output().ok();
    }
}

#[test]
fn a_full_disk_leaves_no_archive_and_the_container_running() {
    let sb = Sandbox::new();
    assert_code(&sb.deploy_persisting(&["/srv"]), 0);
    // Random, so that it does not compress into the space there is.
    let out = sb.exec_as_root("head -c 3000000 /dev/urandom > /srv/big.bin");
    assert_code(&out, 0);
    let full = Tmpfs::new(sb.path().join("full"));
    let out = backup(&sb, &full.0);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_stderr_has(&out, "no space left on device");
    assert_stderr_has(&out, "no archive was written");
    assert_eq!(
        names(&full.0),
        Vec::<String>::new(),
        "the partial archive is removed"
    );
    assert_eq!(sb.state(), "running");
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let sb = Sandbox::new();
    // No workspace: nothing to back up.
    let out = backup(&sb, sb.path());
    assert_ne!(out.status.code(), Some(0));
    assert_stderr_has(&out, "has no workspace");
    // An archive that exists is never written over.
    fs::create_dir_all(sb.workspace()).unwrap();
    let taken = sb.path().join("taken.tar.zst");
    fs::write(&taken, "mine").unwrap();
    let out = backup(&sb, &taken);
    assert_code(&out, 3);
    assert_stderr_has(&out, "exists: not writing over it");
    assert_eq!(fs::read_to_string(&taken).unwrap(), "mine");
    // The default place: the XDG data folder.
    let out = sb.berth(&["backup", &sb.project]);
    assert_code(&out, 0);
    let dir = sb.home.join(".local/share/berth/backups");
    let made = names(&dir);
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].starts_with(&format!("{}-", sb.project)), "{made:?}");
    assert!(made[0].ends_with(".berth.tar.zst"), "{made:?}");
}

/// `--with-container` takes the container's unsaved changes along, paused; a restore
/// puts them where a rescue at the backup's time would have.
#[test]
fn with_container_the_unsaved_changes_come_back_under_rescued() {
    let sb = Sandbox::new();
    // No container yet: nothing to take.
    fs::create_dir_all(sb.workspace()).unwrap();
    let out = sb.berth(&["backup", &sb.project, "--with-container"]);
    assert_ne!(out.status.code(), Some(0));
    assert_stderr_has(&out, "has no container");
    sb.deployed();
    let out = sb.exec_as_root(
        "mkdir -p /opt/work && echo result > /opt/work/notes.txt && echo x > /tmp/scratch",
    );
    assert_code(&out, 0);
    let out = sb.berth(&[
        "backup",
        &sb.project,
        "--with-container",
        "--to",
        sb.path().to_str().unwrap(),
        "--json",
    ]);
    assert_code(&out, 0);
    assert_eq!(sb.state(), "running", "unpaused");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = PathBuf::from(report["path"].as_str().unwrap());
    let unpacked = unpack(&archive);
    assert_eq!(
        fs::read_to_string(unpacked.join("container/opt/work/notes.txt")).unwrap(),
        "result\n"
    );
    let header: Value =
        serde_json::from_slice(&fs::read(unpacked.join("berth-backup.json")).unwrap()).unwrap();
    assert_eq!(header["container"], sb.container().as_str());
    let other = unique("r");
    let out = sb.berth(&["restore", archive.to_str().unwrap(), "--as", &other]);
    assert_code(&out, 0);
    let rescued = sb
        .workspace_root
        .join(&other)
        .join(".rescued")
        .join(header["created"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(rescued.join("opt/work/notes.txt")).unwrap(),
        "result\n"
    );
}

/// The scheduled archives in `dir`, sorted.
fn scheduled(dir: &Path) -> Vec<String> {
    let mut names = names(dir);
    names.retain(|n| n.ends_with(".auto.berth.tar.zst"));
    names
}

/// `berth reap` as root, as the timer runs it (for the sandbox's project alone); its
/// one backup report.
fn reap_backup(sb: &Sandbox) -> Value {
    let out = sb.berth_as_root(&["reap", "--project", &sb.project, "--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let backups = report["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{report:#}");
    backups[0].clone()
}

#[test]
fn reap_takes_scheduled_backups_as_the_owner_skips_unchanged_ones_and_keeps_the_newest() {
    let Some(user) = OwnUser::new() else {
        eprintln!("skipped: making a user needs root");
        return;
    };
    let sb = Sandbox::with_user(user.run_as());
    user.set_home(&sb.home);
    let config = sb.home.join(".config/berth");
    fs::create_dir_all(&config).unwrap();
    fs::write(
        config.join("config.toml"),
        "[backup]\nevery = \"1s\"\nkeep = 2\n",
    )
    .unwrap();
    // The project's own file cannot make backups more frequent: the container writes it.
    sb.project_toml("[backup]\nevery = \"1d\"\nkeep = 1\nexclude = [\"*.tmp\"]\n");
    sb.deployed();
    fs::write(sb.workspace().join("notes.md"), "one\n").unwrap();
    let by_hand = sb.berth(&["backup", &sb.project, "--json"]);
    assert_code(&by_hand, 0);
    let by_hand: Value = serde_json::from_slice(&by_hand.stdout).unwrap();
    let by_hand = PathBuf::from(by_hand["path"].as_str().unwrap());
    let dir = sb.home.join(".local/share/berth/backups");
    assert_eq!(by_hand.parent(), Some(dir.as_path()));

    let first = reap_backup(&sb);
    assert_eq!(first["outcome"], "taken", "{first:#}");
    let archive = PathBuf::from(first["path"].as_str().unwrap());
    assert_eq!(archive.parent(), Some(dir.as_path()));
    // The owner's, private, in the owner's folder, and a whole archive.
    let meta = fs::metadata(&archive).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o600));
    assert_eq!(owner(&dir), user.uid);
    let verified = sb.berth(&["restore", archive.to_str().unwrap(), "--dry-run"]);
    assert_code(&verified, 0);

    // Due again, but nothing changed: no archive, and the walk said so.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = reap_backup(&sb);
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    assert_eq!(scheduled(&dir).len(), 1);
    // A file left out by `[backup] exclude` is no change either.
    fs::write(sb.workspace().join("scratch.tmp"), "x").unwrap();
    assert_eq!(reap_backup(&sb)["outcome"], "unchanged");
    // A change is taken by the next reap that finds a backup due.
    fs::write(sb.workspace().join("notes.md"), "two\n").unwrap();
    let taken = reap_backup(&sb);
    assert_eq!(taken["outcome"], "taken", "{taken:#}");
    assert_eq!(scheduled(&dir).len(), 2);

    // A third one removes the oldest scheduled one, never the one taken by hand.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(sb.workspace().join("notes.md"), "three\n").unwrap();
    let third = reap_backup(&sb);
    assert_eq!(third["outcome"], "taken", "{third:#}");
    assert_eq!(third["pruned"][0], first["path"], "{third:#}");
    assert_eq!(scheduled(&dir).len(), 2);
    assert!(
        by_hand.exists(),
        "an archive taken by hand is the owner's to remove"
    );

    // Root's reap (its state dir is the sandbox's) logged each one it took.
    let log = fs::read_to_string(sb.state_dir().join("events.jsonl")).unwrap();
    let taken = log
        .lines()
        .filter(|l| l.contains("\"reap-backup\""))
        .count();
    assert_eq!(taken, 3, "{log}");
}

#[test]
fn the_volumes_of_a_running_project_are_compared_in_a_helper_not_copied() {
    let sb = Sandbox::new();
    let config = sb.home.join(".config/berth");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("config.toml"), "[backup]\nevery = \"1s\"\n").unwrap();
    assert_code(&sb.deploy_persisting(&["/srv"]), 0);
    assert_code(&sb.exec_as_root("echo served > /srv/run.log"), 0);
    let scheduled = || -> Value {
        let out = sb.berth(&["backup", &sb.project, "--scheduled", "--json"]);
        assert_code(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(scheduled()["outcome"], "taken");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = scheduled();
    assert_eq!(again["outcome"], "unchanged", "{again:#}");
    assert_eq!(sb.state(), "running", "compared without a pause or a stop");

    // A write in the volume alone, by the running container: taken.
    assert_code(&sb.exec_as_root("echo more >> /srv/run.log"), 0);
    let taken = scheduled();
    assert_eq!(taken["outcome"], "taken", "{taken:#}");
    let unpacked = unpack(Path::new(taken["path"].as_str().unwrap()));
    let log = fs::read_to_string(unpacked.join("volumes/0/run.log")).unwrap();
    assert_eq!(log, "served\nmore\n");
}
