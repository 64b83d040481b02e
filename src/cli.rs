//! The command line: clap types only, no logic.
//!
//! This is the single source for `--help` (and, later, completions and man pages). The
//! three binaries share the argument structs: `container-deploy` is `berth deploy`,
//! `container-retire` is `berth retire`.

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Launch containers that cannot lose your work.";

const LONG_ABOUT: &str = "\
Launch containers that cannot lose your work.

Every container of a project gets the project's persistent workspace (mounted at \
/workspace) and the one shared data root (HOST_DATA_PATH), mounted the same way every \
time, and nothing is removed while it still holds work that exists nowhere else.";

const EXIT_CODES: &str = "\
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
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and start the project's container, start it if stopped, or report it if running.
    Deploy(Box<DeployArgs>),
    /// Remove the project's container, after checking it holds no unsaved work.
    Retire(RetireArgs),
    /// List your project containers.
    List(ListArgs),
    /// Resolve the configuration, run every guard and print the plan; create nothing.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The project: its workspace is <workspace root>/PROJECT.
    pub project: String,

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
    #[arg(short = 'v', long = "volume", value_name = "SPEC")]
    pub volume: Vec<String>,

    /// Publish a port, in docker's -p syntax ([IP:][HOST:]CONTAINER[/PROTO]).
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,

    /// Retire the existing container (with its unsaved-work check), then deploy anew.
    #[arg(long)]
    pub recreate: bool,

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

    /// Print what would be lost and what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show every user's berth containers, not only yours.
    #[arg(long)]
    pub all: bool,

    /// Print the list as JSON.
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
