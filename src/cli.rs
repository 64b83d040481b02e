//! The command line: clap types, and the global flags read before clap ([`Early`]).
//!
//! The single source of `--help`, the shell completions and the man pages. The three
//! binaries ([`Program`]) share the argument structs: `container-deploy` is `berth
//! deploy`, `container-retire` is `berth retire`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};

const ABOUT: &str = "Launch containers that cannot lose your work.";

const LONG_ABOUT: &str = "\
Launch containers that cannot lose your work.

Every container of a project gets the project's persistent workspace (mounted at \
/workspace) and the one shared data root (HOST_DATA_PATH), mounted the same way every \
time, and nothing is removed while it still holds work that exists nowhere else.";

/// The exit codes in one line, after every program's help (the man pages tell them in
/// full instead).
pub const EXIT_CODES: &str = "\
Exit codes: 0 done, 1 error (engine, config, I/O), 2 usage, 3 refused by a guard \
(unsaved work, split-brain, policy).";

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// `container-deploy`: exactly `berth deploy`.
#[derive(Debug, Parser)]
#[command(name = "container-deploy", version, about = "Create and start a project's container (same as `berth deploy`).", after_help = EXIT_CODES)]
pub struct DeployCli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub args: DeployArgs,
}

/// `container-retire`: exactly `berth retire`.
#[derive(Debug, Parser)]
#[command(name = "container-retire", version, about = "Remove a project's container after the unsaved-work check (same as `berth retire`).", after_help = EXIT_CODES)]
pub struct RetireCli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub args: RetireArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// When to use colour: auto follows NO_COLOR, CLICOLOR_FORCE and the terminal.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN", help_heading = "Global options")]
    pub color: ColorChoice,

    /// Print only results and errors: no notes, no progress.
    #[arg(short = 'q', long, global = true, help_heading = "Global options")]
    pub quiet: bool,
}

/// `--color`: clap's own choice, so that clap's help and errors and berth's output
/// follow one value.
pub use clap::ColorChoice;

/// The global flags read before clap parses the line: clap needs the colour choice for
/// its own help and errors, and `berth run`/`create` are parsed by docker's rules, so
/// their `--color` and `-q` must be taken off first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Early {
    /// `None` when a `--color` value is not one clap accepts (clap then says so).
    pub color: Option<ColorChoice>,
    pub quiet: bool,
    /// Where the subcommand is, when only global flags come before it.
    pub subcommand: Option<usize>,
}

impl Early {
    /// Reads `args` (the program name first) up to the first word that is not a global
    /// flag.
    pub fn scan(args: &[String]) -> Self {
        let mut early = Early {
            color: Some(ColorChoice::Auto),
            quiet: false,
            subcommand: None,
        };
        let mut at = 1;
        while let Some(arg) = args.get(at) {
            let color = if arg == "--color" {
                at += 1;
                args.get(at).map(String::as_str)
            } else if let Some(value) = arg.strip_prefix("--color=") {
                Some(value)
            } else if arg == "-q" || arg == "--quiet" {
                early.quiet = true;
                at += 1;
                continue;
            } else {
                early.subcommand = (!arg.starts_with('-')).then_some(at);
                break;
            };
            early.color = color.and_then(|value| ValueEnum::from_str(value, false).ok());
            at += 1;
        }
        early
    }

    /// The same choice for clap's help and errors. A `--color` after the subcommand is
    /// honoured by berth's own output; clap's then follows `NO_COLOR` and the terminal.
    pub fn clap_color(&self) -> ColorChoice {
        self.color.unwrap_or(ColorChoice::Auto)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and start the project's container, start it if stopped, or report it if running.
    Deploy(Box<DeployArgs>),
    /// Remove the project's container, after checking it holds no unsaved work.
    Retire(RetireArgs),
    /// List your project containers.
    List(ListArgs),
    /// Stop idle containers and retire long-stopped ones, rescuing their work first;
    /// for a systemd timer or cron. As root: every user's containers; else your own.
    Reap(ReapArgs),
    /// Resolve the configuration, run every guard and print the plan; create nothing.
    Check(CheckArgs),
    /// Build the project's Dockerfile as berth/<user>/<project>:<input hash>; a build
    /// whose inputs did not change is not built again.
    Build(BuildArgs),
    /// Your images of berth's (builds and commits), with size, age and the containers
    /// that use each.
    Images(ImagesArgs),
    /// Remove what a project keeps beyond its container: its persisted volumes, with
    /// retire's consent rules.
    Forget(ForgetArgs),
    /// Write one archive of what a project keeps: its workspace, persistent home and
    /// persisted volumes, with a manifest of every file's sha256.
    Backup(BackupArgs),
    /// Restore a project from an archive of `berth backup`, onto this host and any
    /// engine; never into a workspace, home or volume that holds files.
    Restore(RestoreArgs),
    /// Move a project's persisted volumes and image to the engine of another docker
    /// context, verified there, then retire its container here.
    Move(MoveArgs),
    /// Copy the container's unsaved changes (what retire would rescue) out of it now,
    /// to a folder of yours outside the workspace; the container runs on.
    Snapshot(SnapshotArgs),
    /// List a project's snapshots: time, files, size and folder.
    Snapshots(SnapshotsArgs),
    /// Drop-in `docker run`: docker's flags, plus the project's workspace, data root,
    /// user mapping, labels and guards.
    #[command(disable_help_flag = true)]
    Run(Box<RunArgs>),
    /// Drop-in `docker create`, likewise; prints the new container's id.
    #[command(disable_help_flag = true)]
    Create(Box<RunArgs>),
    /// Open a shell (or run CMD) in the project's running container, as you, in
    /// /workspace.
    Shell(ShellArgs),
    /// Print the shell completion script for berth, container-deploy and
    /// container-retire.
    Completions(CompletionsArgs),
    /// Print a man page (roff), or write them all to a directory.
    Man(ManArgs),
    /// Walk an overlay layer and print its changes as records: what berth runs inside
    /// its layer-reader helper container. Internal.
    #[command(hide = true, name = "layer-walk")]
    LayerWalk(LayerWalkArgs),
    /// Print what a container changed, as berth reads it (JSON: `read_by` and
    /// `changes`), to compare the sources. Internal.
    #[command(hide = true, name = "layer-changes")]
    LayerChanges(LayerChangesArgs),
    /// Print the fingerprint of folders, as a scheduled backup compares them: what
    /// berth runs in a helper container that mounts a project's volumes. Internal.
    #[command(hide = true, name = "fingerprint")]
    Fingerprint(FingerprintArgs),
    /// Deploy a project inside a Slurm batch job and hold it there until the job ends:
    /// what `deploy --slurm` submits. Internal.
    #[command(hide = true, name = "slurm-job")]
    SlurmJob(SlurmJobArgs),
}

#[derive(Debug, Args)]
pub struct SlurmJobArgs {
    /// The deploy's arguments, as `deploy --slurm` wrote them (JSON).
    pub args: PathBuf,
}

#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// The folders, each walked in turn.
    pub folders: Vec<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct LayerChangesArgs {
    /// The container's name or id.
    pub container: String,
}

#[derive(Debug, Args)]
pub struct LayerWalkArgs {
    /// The layer was written by fuse-overlayfs (`.wh.` files mark whiteouts).
    #[arg(long)]
    pub fuse: bool,
    /// The upper directory.
    pub upper: std::path::PathBuf,
    /// The lower directories, top first.
    pub lowers: Vec<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
pub struct DeployArgs {
    /// The project: its workspace is <workspace root>/PROJECT.
    pub project: String,

    /// The docker context whose engine runs it (as `docker --context NAME`), over
    /// DOCKER_HOST and DOCKER_CONTEXT.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Place it with Slurm: submit a batch job that deploys the container on the node
    /// Slurm picks, with the GPUs Slurm gives the job (`--gpus N` asks for N), and
    /// wait until it runs.
    #[arg(long, conflicts_with_all = ["context", "dry_run"])]
    #[serde(default)]
    pub slurm: bool,

    /// With --slurm: the job's time limit, as sbatch takes it (`2:00:00`, `1-0`).
    #[arg(long, value_name = "TIME", requires = "slurm")]
    #[serde(default)]
    pub time: Option<String>,

    /// With --slurm: the partition to submit to.
    #[arg(long, value_name = "NAME", requires = "slurm")]
    #[serde(default)]
    pub partition: Option<String>,

    /// With --slurm: return once the job is submitted, with its id.
    #[arg(long, requires = "slurm")]
    #[serde(default)]
    pub no_wait: bool,

    /// Image to run (overrides `image` in berth.toml).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// GPUs to request: `all`, a count, or `device=0,1`.
    #[arg(long, value_name = "SPEC")]
    pub gpus: Option<String>,

    /// Number of CPUs (may be fractional).
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,

    /// Memory limit, like 512m or 32g.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// Size of /dev/shm, like 8g.
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,

    /// Set an environment variable (KEY=VALUE, or KEY to take it from here).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,

    /// Extra mount, in docker's -v syntax (SRC:DST[:OPTS]).
    #[arg(short = 'v', long = "volume", value_name = "SPEC", value_hint = ValueHint::AnyPath)]
    pub volume: Vec<String>,

    /// Keep this container path in the project's own named volume, across retires and
    /// rebuilds (as `persist` in berth.toml).
    #[arg(long, value_name = "PATH")]
    pub persist: Vec<String>,

    /// Publish a port, in docker's -p syntax ([IP:][HOST:]CONTAINER[/PROTO]).
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,

    /// Retire the existing container (with its unsaved-work check), then deploy anew.
    #[arg(long)]
    pub recreate: bool,

    /// Deploy the project's newest build as it is, even when its Dockerfile or context
    /// changed since.
    #[arg(long)]
    pub no_build: bool,

    /// Watch the started container this long (like 2s) and fail, with its exit code
    /// and last lines, if it exits meanwhile. Without it, deploy checks once, right
    /// after the start, and adds nothing to the engine's own time.
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub settle: Option<std::time::Duration>,

    /// Create the workspace even where a similarly named one exists.
    #[arg(long)]
    pub new: bool,

    /// Print the plan and the equivalent `docker run` line; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    /// Command to run instead of the configured one (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReapArgs {
    /// Only this project's containers.
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,

    /// Say what would be done to each container; change nothing (not even the stored
    /// CPU samples).
    #[arg(long)]
    pub dry_run: bool,

    /// Print every container's decision as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The project whose container to remove.
    pub project: String,

    /// Accept the loss of unsaved changes without a prompt (the summary is still printed).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Copy the unsaved files (and anonymous volumes' contents) into
    /// <workspace>/.rescued/<UTC time>/ first; remove nothing if that fails.
    #[arg(long)]
    pub rescue: bool,

    /// Like --rescue, and copy the disposable files too.
    #[arg(long)]
    pub rescue_all: bool,

    /// Commit the container as an image first: berth/<user>/<project>:<UTC time>, or
    /// :TAG, or REPO[:TAG]; never :latest. Remove nothing if that fails.
    #[arg(long, value_name = "TAG", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub commit: Option<String>,

    /// Write the packages the container installed (pip, conda, apt), pinned, into
    /// <workspace>/.berth/packages/ first, merged with the lists there. Not consent to
    /// remove: the rest of retire goes on as without it.
    #[arg(long)]
    pub save_packages: bool,

    /// Print what would be lost and what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    /// Also say how the container's changes were read: by berth from its layer, through
    /// a helper container, or by the engine's changes call, and why.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

impl RetireArgs {
    /// `retire PROJECT --rescue --yes`: what a Slurm job's end runs, with nobody to ask.
    pub fn rescuing(project: &str) -> Self {
        Self {
            project: project.to_string(),
            yes: true,
            rescue: true,
            rescue_all: false,
            commit: None,
            save_packages: false,
            dry_run: false,
            json: false,
            verbose: false,
        }
    }
}

/// `berth run` and `berth create`: docker's own flags (the ones berth supports; any
/// other is an error that names it, exit 125), read with docker's syntax: `-itd`,
/// `--flag=value` or `--flag value`, repeated flags, and options end at the image.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// The project whose workspace and data root to mount (default: the one the current
    /// directory lies in, under the workspace root).
    #[arg(long, value_name = "NAME", help_heading = "berth")]
    pub project: Option<String>,
    /// Print the equivalent `docker run` line, with berth's additions; create nothing.
    #[arg(long, help_heading = "berth")]
    pub dry_run: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// Run in the background and print the container id.
    #[arg(short = 'd', long, help_heading = "Container")]
    pub detach: bool,
    /// Keep STDIN open and forward it.
    #[arg(short = 'i', long, help_heading = "Container")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long, help_heading = "Container")]
    pub tty: bool,
    /// Remove the container when it exits.
    #[arg(long, help_heading = "Container")]
    pub rm: bool,
    /// Container name.
    #[arg(long, value_name = "NAME", help_heading = "Container")]
    pub name: Option<String>,
    /// Set an environment variable (`K=V`, or `K` to take it from yours).
    #[arg(
        short = 'e',
        long = "env",
        value_name = "K=V",
        help_heading = "Container"
    )]
    pub env: Vec<String>,
    /// Read environment variables from a file (docker's env-file format).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Container")]
    pub env_file: Vec<String>,
    /// Working directory inside the container (default /workspace).
    #[arg(short = 'w', long, value_name = "DIR", help_heading = "Container")]
    pub workdir: Option<String>,
    /// User (`name|uid[:group|gid]`; default: your uid:gid).
    #[arg(short = 'u', long, value_name = "USER", help_heading = "Container")]
    pub user: Option<String>,
    /// Override the image's ENTRYPOINT.
    #[arg(long, value_name = "CMD", help_heading = "Container")]
    pub entrypoint: Option<String>,
    /// Set a label (`K=V`).
    #[arg(short = 'l', long, value_name = "K=V", help_heading = "Container")]
    pub label: Vec<String>,
    /// Container host name.
    #[arg(short = 'h', long, value_name = "NAME", help_heading = "Container")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long, help_heading = "Container")]
    pub init: bool,
    /// Mount the container's root filesystem read-only.
    #[arg(long, help_heading = "Container")]
    pub read_only: bool,
    /// Restart policy: no, always, unless-stopped, on-failure[:N].
    #[arg(long, value_name = "POLICY", help_heading = "Container")]
    pub restart: Option<String>,
    /// Signal to stop the container.
    #[arg(long, value_name = "SIGNAL", help_heading = "Container")]
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing the container on stop.
    #[arg(
        long,
        value_name = "SECONDS",
        allow_hyphen_values = true,
        help_heading = "Container"
    )]
    pub stop_timeout: Option<String>,

    /// Bind mount or volume: `[SRC:]DST[:OPTS]`.
    #[arg(
        short = 'v',
        long,
        value_name = "SPEC",
        value_hint = ValueHint::AnyPath,
        help_heading = "Storage and devices"
    )]
    pub volume: Vec<String>,
    /// Mount: `type=bind|volume|tmpfs,source=...,target=...[,OPTION...]`.
    #[arg(long, value_name = "SPEC", help_heading = "Storage and devices")]
    pub mount: Vec<String>,
    /// Mount a tmpfs: `PATH[:OPTS]`.
    #[arg(long, value_name = "PATH", help_heading = "Storage and devices")]
    pub tmpfs: Vec<String>,
    /// Add a host device: `HOST[:CONTAINER[:PERMS]]`.
    #[arg(long, value_name = "DEVICE", help_heading = "Storage and devices")]
    pub device: Vec<String>,
    /// Add a supplementary group.
    #[arg(long, value_name = "GROUP", help_heading = "Storage and devices")]
    pub group_add: Vec<String>,

    /// Publish a port: `[IP:][HOST:]CONTAINER[/PROTO]`, ranges allowed.
    #[arg(short = 'p', long, value_name = "SPEC", help_heading = "Network")]
    pub publish: Vec<String>,
    /// Expose a port or a range without publishing it.
    #[arg(long, value_name = "PORT", help_heading = "Network")]
    pub expose: Vec<String>,
    /// Network: bridge, host, none, or a network's name.
    #[arg(long, alias = "net", value_name = "NETWORK", help_heading = "Network")]
    pub network: Option<String>,
    /// Add a line to /etc/hosts: `HOST:IP`.
    #[arg(long, value_name = "HOST:IP", help_heading = "Network")]
    pub add_host: Vec<String>,
    /// DNS server.
    #[arg(long, value_name = "IP", help_heading = "Network")]
    pub dns: Vec<String>,

    /// GPUs: `all`, a count, or `"device=0,1"`.
    #[arg(long, value_name = "SPEC", help_heading = "Resources")]
    pub gpus: Option<String>,
    /// Size of /dev/shm, like 512m or 2g.
    #[arg(long, value_name = "SIZE", help_heading = "Resources")]
    pub shm_size: Option<String>,
    /// Memory limit.
    #[arg(short = 'm', long, value_name = "SIZE", help_heading = "Resources")]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(
        long,
        value_name = "SIZE",
        allow_hyphen_values = true,
        help_heading = "Resources"
    )]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long, value_name = "SIZE", help_heading = "Resources")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (may be fractional).
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub cpus: Option<String>,
    /// CPUs the container may run on: `0-3`, `0,1`.
    #[arg(long, value_name = "LIST", help_heading = "Resources")]
    pub cpuset_cpus: Option<String>,
    /// IPC namespace: private, shareable, host, container:NAME.
    #[arg(long, value_name = "MODE", help_heading = "Resources")]
    pub ipc: Option<String>,
    /// PID namespace: host, container:NAME.
    #[arg(long, value_name = "MODE", help_heading = "Resources")]
    pub pid: Option<String>,
    /// Add a Linux capability.
    #[arg(long, value_name = "CAP", help_heading = "Resources")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability.
    #[arg(long, value_name = "CAP", help_heading = "Resources")]
    pub cap_drop: Vec<String>,
    /// Security option, like `seccomp=unconfined` or `no-new-privileges`.
    #[arg(long, value_name = "OPT", help_heading = "Resources")]
    pub security_opt: Vec<String>,
    /// Ulimit: `NAME=SOFT[:HARD]`.
    #[arg(long, value_name = "LIMIT", help_heading = "Resources")]
    pub ulimit: Vec<String>,
    /// Namespaced kernel parameter: `K=V`.
    #[arg(long, value_name = "K=V", help_heading = "Resources")]
    pub sysctl: Vec<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Resources"
    )]
    pub pids_limit: Option<String>,
    /// Tune the OOM killer's preference (-1000 to 1000).
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Resources"
    )]
    pub oom_score_adj: Option<String>,
    /// Give the container every capability and device.
    #[arg(long, help_heading = "Resources")]
    pub privileged: bool,

    /// Suppress the pull output (and berth's notes), as berth's global `-q` does.
    #[arg(short = 'q', long, help_heading = "Container")]
    pub quiet: bool,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long, value_name = "STREAM", help_heading = "Container")]
    pub attach: Vec<String>,
    /// Write the container id to this file (which must not exist).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Container")]
    pub cidfile: Option<String>,
    /// Keys that detach from an attached container.
    #[arg(long, value_name = "KEYS", help_heading = "Container")]
    pub detach_keys: Option<String>,
    /// Skip image verification (accepted; berth does no content trust).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Container")]
    pub disable_content_trust: Option<String>,
    /// Container NIS domain name.
    #[arg(long, value_name = "NAME", help_heading = "Container")]
    pub domainname: Option<String>,
    /// Read labels from a file of `K=V` lines.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Container")]
    pub label_file: Vec<String>,
    /// Platform of the image, like `linux/amd64`.
    #[arg(long, value_name = "PLATFORM", help_heading = "Container")]
    pub platform: Option<String>,
    /// Pull the image: `missing` (the default), `always` or `never`.
    #[arg(long, value_name = "WHEN", help_heading = "Container")]
    pub pull: Option<String>,
    /// Forward the signals berth receives to the container (default true).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Container")]
    pub sig_proxy: Option<String>,
    /// Mount the engine's socket at /var/run/docker.sock.
    #[arg(long, help_heading = "Container")]
    pub use_api_socket: bool,
    /// Health check: a command run in a shell.
    #[arg(long, value_name = "CMD", help_heading = "Health")]
    pub health_cmd: Option<String>,
    /// Time between checks (`30s`, `1m30s`).
    #[arg(long, value_name = "DURATION", help_heading = "Health")]
    pub health_interval: Option<String>,
    /// Consecutive failures that make the container unhealthy.
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Health"
    )]
    pub health_retries: Option<String>,
    /// Time before failures count.
    #[arg(long, value_name = "DURATION", help_heading = "Health")]
    pub health_start_period: Option<String>,
    /// Longest time one check may take.
    #[arg(long, value_name = "DURATION", help_heading = "Health")]
    pub health_timeout: Option<String>,
    /// Disable the image's HEALTHCHECK.
    #[arg(long, help_heading = "Health")]
    pub no_healthcheck: bool,
    /// Mount the volumes of another container (`NAME[:ro|rw]`).
    #[arg(long, value_name = "CONTAINER", help_heading = "Storage and devices")]
    pub volumes_from: Vec<String>,
    /// Volume driver for `-v` volumes.
    #[arg(long, value_name = "DRIVER", help_heading = "Storage and devices")]
    pub volume_driver: Option<String>,
    /// Storage driver option (`size=10G`).
    #[arg(long, value_name = "K=V", help_heading = "Storage and devices")]
    pub storage_opt: Vec<String>,
    /// A rule for the cgroup's allowed devices (`c 1:3 mr`).
    #[arg(long, value_name = "RULE", help_heading = "Storage and devices")]
    pub device_cgroup_rule: Vec<String>,
    /// Logging driver.
    #[arg(long, value_name = "DRIVER", help_heading = "Logging")]
    pub log_driver: Option<String>,
    /// Logging driver option (`K=V`).
    #[arg(long, value_name = "K=V", help_heading = "Logging")]
    pub log_opt: Vec<String>,
    /// DNS option.
    #[arg(long, alias = "dns-opt", value_name = "OPT", help_heading = "Network")]
    pub dns_option: Vec<String>,
    /// DNS search domain.
    #[arg(long, value_name = "DOMAIN", help_heading = "Network")]
    pub dns_search: Vec<String>,
    /// IPv4 address on the network.
    #[arg(long, value_name = "IP", help_heading = "Network")]
    pub ip: Option<String>,
    /// IPv6 address on the network.
    #[arg(long, value_name = "IP", help_heading = "Network")]
    pub ip6: Option<String>,
    /// Link to another container (`NAME[:ALIAS]`).
    #[arg(long, value_name = "CONTAINER", help_heading = "Network")]
    pub link: Vec<String>,
    /// Link-local address on the network.
    #[arg(long, value_name = "IP", help_heading = "Network")]
    pub link_local_ip: Vec<String>,
    /// MAC address.
    #[arg(long, value_name = "MAC", help_heading = "Network")]
    pub mac_address: Option<String>,
    /// Alias on the network.
    #[arg(
        long,
        alias = "net-alias",
        value_name = "ALIAS",
        help_heading = "Network"
    )]
    pub network_alias: Vec<String>,
    /// Publish every exposed port to a random host port.
    #[arg(short = 'P', long, help_heading = "Network")]
    pub publish_all: bool,
    /// Block IO weight (10 to 1000, 0 to disable).
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub blkio_weight: Option<String>,
    /// Block IO weight of a device (`DEVICE:WEIGHT`).
    #[arg(long, value_name = "DEVICE:N", help_heading = "Resources")]
    pub blkio_weight_device: Vec<String>,
    /// Parent cgroup.
    #[arg(long, value_name = "CGROUP", help_heading = "Resources")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace: host or private.
    #[arg(long, value_name = "MODE", help_heading = "Resources")]
    pub cgroupns: Option<String>,
    /// CPU count (Windows only; passed on).
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub cpu_count: Option<String>,
    /// CPU percent (Windows only; passed on).
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub cpu_percent: Option<String>,
    /// CFS period.
    #[arg(long, value_name = "MICROSECONDS", help_heading = "Resources")]
    pub cpu_period: Option<String>,
    /// CFS quota.
    #[arg(
        long,
        value_name = "MICROSECONDS",
        allow_hyphen_values = true,
        help_heading = "Resources"
    )]
    pub cpu_quota: Option<String>,
    /// Real-time period.
    #[arg(long, value_name = "MICROSECONDS", help_heading = "Resources")]
    pub cpu_rt_period: Option<String>,
    /// Real-time runtime.
    #[arg(long, value_name = "MICROSECONDS", help_heading = "Resources")]
    pub cpu_rt_runtime: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, value_name = "N", help_heading = "Resources")]
    pub cpu_shares: Option<String>,
    /// Memory nodes the container may use: `0-3`, `0,1`.
    #[arg(long, value_name = "LIST", help_heading = "Resources")]
    pub cpuset_mems: Option<String>,
    /// Read rate limit of a device (`DEVICE:RATE`, like `/dev/sda:1mb`).
    #[arg(long, value_name = "DEVICE:RATE", help_heading = "Resources")]
    pub device_read_bps: Vec<String>,
    /// Read IO limit of a device (`DEVICE:N`).
    #[arg(long, value_name = "DEVICE:N", help_heading = "Resources")]
    pub device_read_iops: Vec<String>,
    /// Write rate limit of a device.
    #[arg(long, value_name = "DEVICE:RATE", help_heading = "Resources")]
    pub device_write_bps: Vec<String>,
    /// Write IO limit of a device.
    #[arg(long, value_name = "DEVICE:N", help_heading = "Resources")]
    pub device_write_iops: Vec<String>,
    /// Bandwidth limit of the system drive (Windows only; passed on).
    #[arg(long, value_name = "SIZE", help_heading = "Resources")]
    pub io_maxbandwidth: Option<String>,
    /// IOps limit of the system drive (Windows only; passed on).
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub io_maxiops: Option<String>,
    /// Isolation technology (Windows only; passed on).
    #[arg(long, value_name = "KIND", help_heading = "Resources")]
    pub isolation: Option<String>,
    /// Kernel memory limit (deprecated; docker's engine ignores it, and so does berth).
    #[arg(long, value_name = "SIZE", help_heading = "Resources")]
    pub kernel_memory: Option<String>,
    /// Memory swappiness, 0 to 100.
    #[arg(
        long,
        value_name = "N",
        allow_hyphen_values = true,
        help_heading = "Resources"
    )]
    pub memory_swappiness: Option<String>,
    /// Disable the OOM killer.
    #[arg(long, help_heading = "Resources")]
    pub oom_kill_disable: bool,
    /// Runtime, like `runc`.
    #[arg(long, value_name = "RUNTIME", help_heading = "Resources")]
    pub runtime: Option<String>,
    /// User namespace: `host`.
    #[arg(long, value_name = "MODE", help_heading = "Resources")]
    pub userns: Option<String>,
    /// UTS namespace: `host`.
    #[arg(long, value_name = "MODE", help_heading = "Resources")]
    pub uts: Option<String>,

    /// The image, then the command and its arguments.
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", num_args = 1.., required = true, trailing_var_arg = true)]
    pub image_and_command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The project whose container to enter.
    pub project: String,

    /// Command to run instead of a shell (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the script for.
    #[arg(value_enum)]
    pub shell: Shell,

    /// Print only this program's script (the file a shell's completion directory
    /// holds for it), not all three.
    #[arg(long, value_enum, value_name = "PROGRAM")]
    pub program: Option<Program>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Shell {
    pub const ALL: [Shell; 5] = [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::Powershell,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Elvish => "elvish",
            Shell::Powershell => "powershell",
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show every user's berth containers, not only yours.
    #[arg(long)]
    pub all: bool,

    /// Show each container's unsaved changes: the size of its writable layer. The
    /// engine walks every container's layer to answer, as for `docker ps --size`, which
    /// can take seconds on a busy server.
    #[arg(short, long)]
    pub size: bool,

    /// List the containers of every docker context (`docker context ls`), each with
    /// its context; one that cannot be reached is said and left out.
    #[arg(long)]
    pub all_contexts: bool,

    /// Print the list as JSON (`size_rw` is null without --size).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The project to check.
    pub project: String,

    /// Print the plan and verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project whose image to build.
    pub project: String,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The project.
    pub project: String,

    /// The folder the archive goes to, or its file name; `[backup] dir` by default.
    #[arg(long, value_name = "PATH")]
    pub to: Option<PathBuf>,

    /// Also copy the container's unsaved changes (what retire would rescue), paused.
    #[arg(long)]
    pub with_container: bool,

    /// As `berth reap` does: back up only when `[backup] every` says one is due and the
    /// project changed since the newest scheduled archive; keep the newest `[backup]
    /// keep` of those.
    #[arg(long, conflicts_with_all = ["to", "with_container"])]
    pub scheduled: bool,

    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The project.
    pub project: String,

    /// Also copy what `[retire] disposable` leaves out (caches, /tmp).
    #[arg(long)]
    pub all: bool,

    /// As `berth reap` does: take one only when `[snapshot] every` says one is due,
    /// then keep the newest `[snapshot] keep`.
    #[arg(long, conflicts_with = "all")]
    pub scheduled: bool,

    /// Copy snapshot TIME (as `berth snapshots` lists it, or its folder's name) back
    /// into the container: what it lacks is restored, what differs is kept and listed.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["all", "scheduled"])]
    pub restore: Option<String>,

    /// With --restore: overwrite what differs from the snapshot's copy too.
    #[arg(long, requires = "restore")]
    pub force: bool,

    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// The project.
    pub project: String,

    /// Print them as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive, as `berth backup` wrote it.
    pub archive: PathBuf,

    /// Restore it as this project (the archive's own by default).
    #[arg(long = "as", value_name = "PROJECT")]
    pub as_project: Option<String>,

    /// The docker context whose engine gets the volumes (the current one by default).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Read the whole archive and check it against its manifest; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The project.
    pub project: String,

    /// The docker context to move it to.
    #[arg(long, value_name = "NAME")]
    pub to_context: String,

    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The project.
    pub project: String,

    /// Remove its persisted volumes (`persist`): what berth never removes otherwise.
    #[arg(long)]
    pub volumes: bool,

    /// Remove volumes that hold data without asking.
    #[arg(short, long)]
    pub yes: bool,

    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only this project's images; with --prune, also one of your images by name.
    #[arg(value_name = "PROJECT|IMAGE")]
    pub project: Option<String>,

    /// Remove the builds no container uses, past the newest --keep of each project;
    /// a commit only when named.
    #[arg(long)]
    pub prune: bool,

    /// With --prune: how many of each project's newest builds stay [default: 3, or
    /// the policy's `[images] keep`, which is also the most].
    #[arg(long, value_name = "N", requires = "prune")]
    pub keep: Option<usize>,

    /// With --prune: say what would be removed, and remove nothing.
    #[arg(long, requires = "prune")]
    pub dry_run: bool,

    /// Print them as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page: berth (the default), a command (`deploy` or `berth-deploy`),
    /// container-deploy or container-retire.
    #[arg(value_name = "PAGE")]
    pub page: Option<String>,

    /// Write every page as DIR/<name>.1 and print the paths written.
    #[arg(long, value_name = "DIR", conflicts_with = "page")]
    pub out_dir: Option<PathBuf>,
}

/// Which program the user ran: `berth`, or one of the two commands it is known by
/// (also the values of `berth completions --program`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Program {
    Berth,
    ContainerDeploy,
    ContainerRetire,
}

impl Program {
    /// The program's clap command: the one source of its help, completions and man page.
    pub fn command(self) -> clap::Command {
        use clap::CommandFactory;
        match self {
            Program::Berth => Cli::command(),
            Program::ContainerDeploy => DeployCli::command(),
            Program::ContainerRetire => RetireCli::command(),
        }
    }

    /// The name the program is installed under.
    pub fn name(self) -> &'static str {
        match self {
            Program::Berth => "berth",
            Program::ContainerDeploy => "container-deploy",
            Program::ContainerRetire => "container-retire",
        }
    }

    pub const ALL: [Program; 3] = [
        Program::Berth,
        Program::ContainerDeploy,
        Program::ContainerRetire,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
        DeployCli::command().debug_assert();
        RetireCli::command().debug_assert();
    }

    #[test]
    fn deploy_takes_a_command_after_double_dash() {
        let cli = Cli::try_parse_from(["berth", "deploy", "p", "--", "python", "-V"]).unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!("not deploy")
        };
        assert_eq!(args.command, ["python", "-V"]);
    }
}
