//! Fixtures for the integration tests: a small image built offline from Debian's
//! busybox-static, and a hermetic sandbox (temporary HOME, workspace root, config and
//! state paths, unique project names) that removes every container and image it made,
//! even when a test fails.

#![allow(dead_code)]

pub mod freeze;
pub mod pty;
pub mod registry;
pub mod slurm;
pub mod ssh;
pub mod words;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(prefix: &str) -> String {
    SWEEP.call_once(sweep_dead_runs);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}-{n}", std::process::id())
}

static SWEEP: std::sync::Once = std::sync::Once::new();

/// Removes what test processes that were killed outright (a timeout's SIGKILL skips
/// every clean-up) left on the engine: the containers and images named with their pid,
/// by [`unique`]. Each test process does it once, before it makes anything.
fn sweep_dead_runs() {
    let dead = |name: &str, prefix: &str| -> bool {
        let Some(rest) = name.strip_prefix(prefix) else {
            return false;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !pid.is_empty()
            && rest[pid.len()..].starts_with('-')
            && !Path::new("/proc").join(&pid).exists()
    };
    // A sandbox's project is `t<pid>-<n>` with its workspace in the temporary folder:
    // a person's project is never taken for one.
    let temp = std::env::temp_dir();
    let containers = stdout(&docker(&[
        "ps",
        "-a",
        "--format",
        "{{.ID}}\t{{.Names}}\t{{.Label \"berth.project\"}}\t{{.Label \"berth.workspace\"}}",
    ]));
    for line in containers.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [id, name, project, workspace] = fields[..] else {
            continue;
        };
        let sandboxed = dead(project, "t") && Path::new(workspace).starts_with(&temp);
        if sandboxed || dead(name, "berth-layer-") {
            docker(&["rm", "-f", "-v", id]);
        }
    }
    let images = stdout(&docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    for image in images.lines() {
        if dead(image, "berth-test/img") {
            docker(&["rmi", "-f", image]);
        }
    }
    let users = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for user in users.lines().filter_map(|line| line.split(':').next()) {
        if dead(user, OwnUser::PREFIX) {
            Command::new("userdel").arg(user).output().ok();
        }
    }
}

/// A host user made for one test and removed after it (root only), whose password
/// database entry the test sets: for what root does as a project's owner, which finds
/// the owner's home there.
pub struct OwnUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl OwnUser {
    const PREFIX: &'static str = "berth-u";

    /// A user who may use the engine, with no home yet; none unless the tests run as
    /// root.
    pub fn new() -> Option<Self> {
        test_user()?;
        let name = unique(Self::PREFIX);
        let out = Command::new("useradd")
            .args(["--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/bin/sh", "--groups", "docker", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "useradd: {}", stderr(&out));
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            stdout(&out).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Some(Self { name, uid, gid })
    }

    pub fn run_as(&self) -> RunAs {
        RunAs::Other {
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// Makes `home` the user's home in the password database.
    pub fn set_home(&self, home: &Path) {
        let out = Command::new("usermod")
            .arg("--home")
            .arg(home)
            .arg(&self.name)
            .output()
            .unwrap();
        assert!(out.status.success(), "usermod: {}", stderr(&out));
    }
}

impl Drop for OwnUser {
    fn drop(&mut self) {
        Command::new("userdel").arg(&self.name).output().ok();
    }
}

/// The real engine's socket.
pub fn engine_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

/// Runs `docker ARGS` (the reference CLI, used only to set up and to observe).
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The image layouts the tests run on (the README names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// busybox with /bin, /sbin and /usr apart.
    Classic,
    /// busybox with /bin, /sbin and /lib linked into /usr, as Debian 12 and Ubuntu 22.04.
    MergedUsr,
    /// busybox with /home a link to var/home, as image-based distributions.
    HomeLink,
    /// busybox whose image already has a /workspace with a file in it.
    Workspace,
    /// A real Debian 12 rootfs from debootstrap: merged /usr, python3, pip, venv.
    Debian,
}

impl Layout {
    /// Every layout, for tests that must hold on each.
    pub const ALL: [Layout; 5] = [
        Layout::Classic,
        Layout::MergedUsr,
        Layout::HomeLink,
        Layout::Workspace,
        Layout::Debian,
    ];

    fn script_arg(self) -> &'static str {
        match self {
            Layout::Classic | Layout::Debian => "classic",
            Layout::MergedUsr => "merged-usr",
            Layout::HomeLink => "home-link",
            Layout::Workspace => "workspace",
        }
    }
}

/// The tag of the Debian image, built once per machine and kept between runs.
pub const DEBIAN_TAG: &str = "berth-test/debian:bookworm-minbase";

/// An image imported under a unique tag and removed on drop, or the Debian image,
/// which is cached under [`DEBIAN_TAG`] and kept.
pub struct TestImage {
    pub tag: String,
    cached: bool,
}

impl TestImage {
    pub fn new() -> Self {
        Self::of(Layout::Classic)
    }

    pub fn of(layout: Layout) -> Self {
        if layout == Layout::Debian {
            return Self::debian();
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "the tests need Debian's busybox-static (apt-get install busybox-static)"
        );
        let tag = format!("berth-test/{}:1", unique("img"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/busybox-image.sh");
        let out = Command::new("sh")
            .args([script, &tag, layout.script_arg()])
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "import failed: {}", stderr(&out));
        Self { tag, cached: false }
    }

    /// The Debian image, built with debootstrap the first time (about a minute; the
    /// script makes parallel tests wait for one build).
    pub fn debian() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/debian-image.sh");
        let out = Command::new("sh")
            .args([script, DEBIAN_TAG])
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "the Debian image could not be built (the tests need root, debootstrap and \
             Debian's packages; .ci/run installs debootstrap): {}",
            stderr(&out)
        );
        Self {
            tag: DEBIAN_TAG.to_string(),
            cached: true,
        }
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        if !self.cached {
            docker(&["rmi", "-f", &self.tag]);
        }
    }
}

/// Who berth runs as in a sandbox.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// The test process's own user.
    Me,
    /// A non-root host user made for the tests (needs root to create).
    Other { uid: u32, gid: u32 },
}

pub struct Sandbox {
    dir: tempfile::TempDir,
    pub home: PathBuf,
    pub workspace_root: PathBuf,
    pub policy: PathBuf,
    pub image: TestImage,
    pub project: String,
    pub run_as: RunAs,
    extra_env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Self {
        Self::with_user(RunAs::Me)
    }

    pub fn with_user(run_as: RunAs) -> Self {
        Self::with_image(run_as, Layout::Classic)
    }

    /// A sandbox whose image has `layout`.
    pub fn with_image(run_as: RunAs, layout: Layout) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("temp dir");
        set_mode(dir.path(), 0o755);
        let home = dir.path().join("home");
        let workspace_root = home.join("workspace");
        std::fs::create_dir_all(&home).unwrap();
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, "").unwrap();
        if let RunAs::Other { uid, gid } = run_as {
            chown(&home, uid, gid);
        }
        Self {
            dir,
            home,
            workspace_root,
            policy,
            image: TestImage::of(layout),
            project: unique("t"),
            run_as,
            extra_env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn workspace(&self) -> PathBuf {
        self.workspace_root.join(&self.project)
    }

    /// The project's persistent home on the host (mounted as the container's `$HOME`).
    /// berth's state dir for the sandbox's user (`$XDG_STATE_HOME/berth`).
    pub fn state_dir(&self) -> PathBuf {
        self.home.join(".local/state/berth")
    }

    /// The first rescue in the workspace's `.rescued`: the only one, where a test made one.
    pub fn rescued(&self) -> PathBuf {
        std::fs::read_dir(self.workspace().join(".rescued"))
            .expect("a rescue")
            .next()
            .expect("a rescue")
            .unwrap()
            .path()
    }

    pub fn container_home(&self) -> PathBuf {
        self.home
            .join(".local/share/berth/home")
            .join(&self.project)
    }

    /// The name berth gives the project's container for the sandbox's user.
    pub fn container(&self) -> String {
        let user = match self.run_as {
            RunAs::Me => whoami(),
            RunAs::Other { .. } => TEST_USER.to_string(),
        };
        format!("{}._.{user}", self.project)
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.into(), value.into()));
        self
    }

    /// Writes `<workspace>/berth.toml` (creating the workspace).
    pub fn project_toml(&self, text: &str) {
        std::fs::create_dir_all(self.workspace()).unwrap();
        std::fs::write(self.workspace().join("berth.toml"), text).unwrap();
        if let RunAs::Other { uid, gid } = self.run_as {
            chown(&self.workspace_root, uid, gid);
            chown(&self.workspace(), uid, gid);
        }
    }

    /// `berth deploy PROJECT --image IMAGE` for the sandbox's project and image, which
    /// must succeed: the setup of most tests.
    #[track_caller]
    pub fn deployed(&self) -> Output {
        let out = self.berth(&["deploy", &self.project, "--image", &self.image.tag]);
        assert_code(&out, 0);
        out
    }

    /// `deploy PROJECT --image IMAGE EXTRA…` for this sandbox, as arguments.
    pub fn deploy_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["deploy", &self.project, "--image", &self.image.tag];
        args.extend_from_slice(extra);
        args
    }

    /// Runs the `berth` binary with a clean, hermetic environment and no terminal.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.run(env!("CARGO_BIN_EXE_berth"), args)
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program, args)
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    /// `berth deploy PROJECT --image IMAGE --new --persist PATH…`.
    pub fn deploy_persisting(&self, paths: &[&str]) -> Output {
        let mut args = vec!["deploy", &self.project, "--image", &self.image.tag, "--new"];
        for path in paths {
            args.extend(["--persist", path]);
        }
        self.berth(&args)
    }

    /// [`Sandbox::berth`] against the engine of docker context `name`.
    pub fn berth_in_context(&self, name: &str, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_berth"), args)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONTEXT", name)
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    /// Runs the `berth` binary, hermetic as [`Sandbox::berth`], under a pseudo-terminal.
    pub fn berth_pty(&self, args: &[&str]) -> pty::Pty {
        pty::Pty::spawn(self.command(env!("CARGO_BIN_EXE_berth"), args))
    }

    /// [`Sandbox::berth_pty`] with a window of `rows` by `cols`.
    pub fn berth_pty_sized(&self, args: &[&str], rows: u16, cols: u16) -> pty::Pty {
        pty::Pty::spawn_sized(self.command(env!("CARGO_BIN_EXE_berth"), args), rows, cols)
    }

    /// Runs `berth` with `input` on its standard input.
    pub fn berth_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(env!("CARGO_BIN_EXE_berth"), args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs `berth` in `dir` (for the project inferred from the current directory).
    pub fn berth_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_berth"), args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    /// Runs `berth` as root in this sandbox, as a timer's `berth reap` runs.
    pub fn berth_as_root(&self, args: &[&str]) -> Output {
        self.command_as(RunAs::Me, env!("CARGO_BIN_EXE_berth"), args)
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    /// Runs `berth` as the sandbox's (non-root) user under an admin policy at the real
    /// `/etc/berth/policy.toml`, as a user meets it, where a user's `BERTH_POLICY` is
    /// ignored. The file is bind-mounted there in a mount namespace of this command's
    /// own, so the host's `/etc/berth` (made, empty, when missing) and every other test
    /// see nothing of it.
    pub fn berth_under_admin_policy(&self, policy: &str, args: &[&str]) -> Output {
        let RunAs::Other { uid, gid } = self.run_as else {
            panic!("an admin policy binds only non-root users; root's BERTH_POLICY is the policy")
        };
        let admin = self.dir.path().join("admin-policy");
        std::fs::create_dir_all(&admin).unwrap();
        std::fs::write(admin.join("policy.toml"), policy).unwrap();
        std::fs::create_dir_all("/etc/berth").unwrap();
        let (reuid, regid) = (format!("--reuid={uid}"), format!("--regid={gid}"));
        let mut full = vec![
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/berth && exec \"$@\"",
            admin.to_str().unwrap(),
            "setpriv",
            &reuid,
            &regid,
            "--init-groups",
            env!("CARGO_BIN_EXE_berth"),
        ];
        full.extend_from_slice(args);
        self.command_as(RunAs::Me, "unshare", &full)
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    /// The hermetic command line for `program`, for tests that run it their own way.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        self.command_as(self.run_as, program, args)
    }

    fn command_as(&self, run_as: RunAs, program: &str, args: &[&str]) -> Command {
        let mut command = match run_as {
            RunAs::Me => Command::new(program),
            RunAs::Other { uid, gid } => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--init-groups")
                    .arg(program);
                c
            }
        };
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("BERTH_POLICY", &self.policy)
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            command.env("DOCKER_HOST", host);
        }
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        command
    }

    pub fn inspect(&self) -> Option<Value> {
        let out = docker(&["inspect", &self.container()]);
        if !out.status.success() {
            return None;
        }
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        list.get(0).cloned()
    }

    /// Ids of every container of the sandbox's project (deployed, run or created).
    pub fn container_ids(&self) -> String {
        let filter = format!("label=berth.project={}", self.project);
        stdout(&docker(&["ps", "-aq", "--filter", &filter]))
    }

    /// Ids of the project's running containers.
    pub fn running_ids(&self) -> String {
        let filter = format!("label=berth.project={}", self.project);
        stdout(&docker(&["ps", "-q", "--filter", &filter]))
    }

    pub fn exists(&self) -> bool {
        self.inspect().is_some()
    }

    pub fn state(&self) -> String {
        self.inspect()
            .and_then(|c| c["State"]["Status"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Runs a shell command inside the container as its own user.
    pub fn exec(&self, script: &str) -> Output {
        docker(&["exec", &self.container(), "sh", "-c", script])
    }

    pub fn exec_as_root(&self, script: &str) -> Output {
        docker(&["exec", "-u", "0", &self.container(), "sh", "-c", script])
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let filter = format!("label=berth.project={}", self.project);
        let ids = stdout(&docker(&["ps", "-aq", "--filter", &filter]));
        for id in ids.split_whitespace() {
            docker(&["rm", "-f", "-v", id]);
        }
        // Images that `retire --commit` and `berth build` made, tagged or not.
        let reference = format!("reference=berth/*/{}", self.project);
        let mut images = stdout(&docker(&["images", "-q", "--filter", &reference]));
        images += &stdout(&docker(&["images", "-aq", "--filter", &filter]));
        for id in images.split_whitespace() {
            docker(&["rmi", "-f", id]);
        }
        // `persist` volumes, and any a test made under the project's names.
        let volumes = stdout(&docker(&["volume", "ls", "-q", "--filter", &filter]));
        let prefix = format!("berth.{}.{}.", whoami(), self.project);
        let named = stdout(&docker(&["volume", "ls", "-q"]));
        let named = named.split_whitespace().filter(|v| v.starts_with(&prefix));
        for volume in volumes.split_whitespace().chain(named) {
            docker(&["volume", "rm", "-f", volume]);
        }
        // Files the containers wrote as another user must not stop the clean-up.
        Command::new("chmod")
            .args(["-R", "u+rwX"])
            .arg(self.dir.path())
            .output()
            .ok();
    }
}

/// Removes an image tag on drop.
pub struct ImageGuard(pub String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        docker(&["rmi", &self.0]);
    }
}

/// Removes a volume on drop: an anonymous volume outlives the container it was made
/// for, by design.
pub struct VolumeGuard(pub String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        docker(&["volume", "rm", "-f", &self.0]);
    }
}

pub const TEST_USER: &str = "berth-test-user";

/// A non-root host user that may use the engine, created once per machine.
pub fn test_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, TEST_USER]).output().ok()?;
        stdout(&out).trim().parse().ok()
    };
    if id("-u").is_none() {
        Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", TEST_USER])
            .output()
            .ok()?;
    }
    // Membership of the socket's group lets the user reach the engine.
    Command::new("sh")
        .args(["-c", &format!("getent group docker >/dev/null || groupadd docker; usermod -aG docker {TEST_USER}; chgrp docker /var/run/docker.sock 2>/dev/null; chmod g+rw /var/run/docker.sock 2>/dev/null; true")])
        .output()
        .ok()?;
    Some((id("-u")?, id("-g")?))
}

pub fn whoami() -> String {
    stdout(&Command::new("id").arg("-un").output().unwrap())
        .trim()
        .to_string()
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

pub fn owner(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().uid()
}

/// Asserts a command's exit code, showing its output when it differs.
#[track_caller]
pub fn assert_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Asserts that a command's standard error contains `needle`, showing it when not.
#[track_caller]
pub fn assert_stderr_has(output: &Output, needle: impl AsRef<str>) {
    let err = stderr(output);
    assert!(
        err.contains(needle.as_ref()),
        "{:?} not in stderr:\n{err}",
        needle.as_ref()
    );
}
