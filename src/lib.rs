//! berth: launch containers that cannot lose your work.
//!
//! Data flows one way: arguments and files ([`cli`], [`config`]) → a plan ([`plan`]) →
//! guards ([`guard`]) → the engine ([`engine`], the only module that talks to Docker) →
//! output ([`ui`]). [`run`] is the whole program; the binaries only call it.

pub mod archive;
pub mod backup;
pub mod build;
pub mod check;
pub mod cli;
pub mod clock;
pub mod complete;
pub mod config;
pub mod container;
pub mod content;
pub mod context;
pub mod dataroot;
pub mod deploy;
pub mod dockerargs;
pub mod dockerflags;
pub mod endpoint;
pub mod engine;
pub mod envfile;
pub mod error;
pub mod events;
pub mod files;
pub mod forget;
pub mod glob;
pub mod gpu;
pub mod guard;
pub mod host;
pub mod identity;
pub mod images;
pub mod label;
pub mod launch;
pub mod layer;
pub mod list;
pub mod lock;
pub mod manpages;
pub mod names;
pub mod os;
pub mod paused;
pub mod plan;
pub mod pull;
pub mod reap;
pub mod remember;
pub mod retire;
pub mod run;
pub mod seed;
pub mod shell;
pub mod signals;
pub mod slurm;
pub mod snapshot;
pub mod spec;
pub mod suggest;
pub mod terminal;
pub mod ui;
pub mod units;
pub mod unpack;

pub use cli::Program;
use cli::{Cli, Command, DeployCli, RetireCli};
use error::Result;
use ui::Printer;

/// Parses the command line, runs the command, prints any error, and returns the exit
/// code (README, "Exit codes").
pub fn run(program: Program, args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if complete::answer(program, &args) {
        return 0;
    }
    let early = cli::Early::scan(&args);
    if program == Program::Berth {
        if let Some(code) = run_docker_command(&args, &early) {
            return code;
        }
    }
    // clap's own help and usage errors follow the same colour choice.
    let parsed = program
        .command()
        .color(early.clap_color())
        .try_get_matches_from(&args)
        .and_then(|matches| parse(program, &matches));
    let (global, command) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            // clap prints help and version to stdout (exit 0) and usage errors to
            // stderr (exit 2).
            err.print().ok();
            return err.exit_code();
        }
    };
    finish(&command, Printer::new(global.color, global.quiet))
}

fn parse(
    program: Program,
    matches: &clap::ArgMatches,
) -> Result<(cli::GlobalArgs, Command), clap::Error> {
    use clap::FromArgMatches;
    Ok(match program {
        Program::Berth => {
            let cli = Cli::from_arg_matches(matches)?;
            (cli.global, cli.command)
        }
        Program::ContainerDeploy => {
            let cli = DeployCli::from_arg_matches(matches)?;
            (cli.global, Command::Deploy(Box::new(cli.args)))
        }
        Program::ContainerRetire => {
            let cli = RetireCli::from_arg_matches(matches)?;
            (cli.global, Command::Retire(cli.args))
        }
    })
}

fn finish(command: &Command, printer: Printer) -> i32 {
    match execute(command, &printer) {
        Ok(code) => code,
        Err(err) => {
            printer.error(&err);
            err.code()
        }
    }
}

/// `berth [--color WHEN] [-q] run|create ...`: docker's syntax, read by [`dockerflags`]
/// rather than clap (which reads `-eK=V` or `--rm=false` differently). `None` when the
/// command is another one.
fn run_docker_command(args: &[String], early: &cli::Early) -> Option<i32> {
    let subcommand = match early
        .subcommand
        .and_then(|at| args.get(at))
        .map(String::as_str)
    {
        Some("run") => "run",
        Some("create") => "create",
        _ => return None,
    };
    let color = early.color?;
    let at = early.subcommand?;
    let mut printer = Printer::new(color, early.quiet);
    match dockerflags::parse_run_args(subcommand, &args[at + 1..]) {
        Ok(run_args) => {
            // docker's `run -q` quiets the pull, as berth's own `-q` does.
            if run_args.quiet {
                printer = Printer::new(color, true);
            }
            let command = match subcommand {
                "run" => Command::Run(Box::new(run_args)),
                _ => Command::Create(Box::new(run_args)),
            };
            Some(finish(&command, printer))
        }
        Err(dockerflags::ParseOutcome::Help(text)) => {
            printer.line(text.trim_end());
            Some(0)
        }
        Err(dockerflags::ParseOutcome::Invalid(err)) => {
            eprintln!("berth {subcommand}: {}", err.0);
            eprintln!("See 'berth {subcommand} --help'.");
            Some(125)
        }
    }
}

fn execute(command: &Command, printer: &Printer) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| error::Error::failed(format!("cannot start the async runtime: {err}")))?;
    let result = runtime.block_on(async {
        let done = |result: Result<()>| result.map(|()| 0);
        let work = async {
            match command {
                Command::Deploy(args) if args.slurm => done(slurm::submit(args, printer).await),
                Command::Deploy(args) => done(deploy::deploy(args, printer).await),
                Command::Retire(args) => match slurm::holding_job(&args.project)? {
                    Some(job) => slurm::retire_within(&job, args, printer),
                    None => done(retire::retire(args, printer).await),
                },
                Command::List(args) => done(list::list(args, printer).await),
                Command::Reap(args) => done(reap::reap(args, printer).await),
                Command::Check(args) => done(check::check(args, printer).await),
                Command::Build(args) => done(build::build(args, printer).await),
                Command::Images(args) => done(images::images(args, printer).await),
                Command::Forget(args) => done(forget::forget(args, printer).await),
                Command::Backup(args) => done(backup::backup(args, printer).await),
                Command::Restore(args) => done(backup::restore::restore(args, printer).await),
                Command::Move(args) => done(backup::moving::move_project(args, printer).await),
                Command::Snapshot(args) => done(snapshot::snapshot(args, printer).await),
                Command::Snapshots(args) => done(snapshot::list(args, printer).await),
                Command::Run(args) => run::run(args, run::Mode::Run, printer).await,
                Command::Create(args) => run::run(args, run::Mode::Create, printer).await,
                Command::Shell(args) => match slurm::holding_job(&args.project)? {
                    Some(job) => slurm::shell_within(&job, &args.project, &args.command),
                    None => shell::shell(args, printer).await,
                },
                Command::Completions(args) => {
                    complete::print(args, printer);
                    Ok(0)
                }
                Command::Man(args) => done(manpages::print(args, printer)),
                Command::LayerWalk(args) => done(layer::helper::serve(args)),
                Command::LayerChanges(args) => done(layer::print_changes(args, printer).await),
                Command::Fingerprint(args) => done(backup::walk::print_fingerprint(args)),
                Command::SlurmJob(args) => slurm::job(args, printer).await,
            }
        };
        tokio::select! {
            result = work => result,
            silent = engine::silenced() => Err(match command {
                // docker's code for a daemon that failed the command.
                Command::Run(_) | Command::Create(_) => error::Error {
                    kind: error::Kind::Status(125),
                    ..silent
                },
                _ => silent,
            }),
        }
    });
    // A prompt interrupted by Ctrl-C leaves a thread blocked reading the terminal;
    // waiting for it would hang.
    runtime.shutdown_background();
    result
}
