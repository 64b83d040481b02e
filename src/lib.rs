//! berth: launch containers that cannot lose your work.
//!
//! Data flows one way: arguments and files ([`cli`], [`config`]) → a plan ([`plan`]) →
//! guards ([`guard`]) → the engine ([`engine`], the only module that talks to Docker) →
//! output ([`ui`]). [`run`] is the whole program; the binaries only call it.

pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod deploy;
pub mod dockerargs;
pub mod dockerflags;
pub mod engine;
pub mod envfile;
pub mod error;
pub mod guard;
pub mod host;
pub mod list;
pub mod plan;
pub mod retire;
pub mod run;
pub mod shell;
pub mod signals;
pub mod spec;
pub mod suggest;
pub mod terminal;
pub mod ui;

use clap::Parser;

use cli::{Cli, Command, DeployCli, RetireCli};
use error::Result;
use ui::Printer;

/// Which program the user ran: `berth`, or one of the two commands it is known by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Berth,
    ContainerDeploy,
    ContainerRetire,
}

/// Parses the command line, runs the command, prints any error, and returns the exit
/// code (DESIGN.md section 6).
pub fn run(program: Program, args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if program == Program::Berth {
        if let Some(code) = run_docker_command(&args) {
            return code;
        }
    }
    let parsed = match program {
        Program::Berth => Cli::try_parse_from(args).map(|cli| (cli.global.color, cli.command)),
        Program::ContainerDeploy => DeployCli::try_parse_from(args)
            .map(|cli| (cli.global.color, Command::Deploy(Box::new(cli.args)))),
        Program::ContainerRetire => {
            RetireCli::try_parse_from(args).map(|cli| (cli.global.color, Command::Retire(cli.args)))
        }
    };
    let (color, command) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            // clap prints help and version to stdout (exit 0) and usage errors to
            // stderr (exit 2).
            err.print().ok();
            return err.exit_code();
        }
    };
    finish(&command, Printer::new(color))
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

/// `berth [--color WHEN] run|create ...`: docker's syntax, read by
/// [`dockerflags`] rather than clap (which reads `-eK=V` or `--rm=false` differently).
/// `None` when the command is another one.
fn run_docker_command(args: &[std::ffi::OsString]) -> Option<i32> {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut color = cli::ColorChoice::Auto;
    let mut at = 1;
    while let Some(arg) = args.get(at) {
        let value = if arg == "--color" {
            at += 1;
            args.get(at).map(String::as_str)
        } else if let Some(value) = arg.strip_prefix("--color=") {
            Some(value)
        } else {
            break;
        };
        color = clap::ValueEnum::from_str(value?, true).ok()?;
        at += 1;
    }
    let subcommand = match args.get(at).map(String::as_str) {
        Some("run") => "run",
        Some("create") => "create",
        _ => return None,
    };
    let printer = Printer::new(color);
    match dockerflags::parse_run_args(subcommand, &args[at + 1..]) {
        Ok(run_args) => {
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
        match command {
            Command::Deploy(args) => done(deploy::deploy(args, printer).await),
            Command::Retire(args) => done(retire::retire(args, printer).await),
            Command::List(args) => done(list::list(args, printer).await),
            Command::Check(args) => done(deploy::check(args, printer).await),
            Command::Run(args) => run::run(args, run::Mode::Run, printer).await,
            Command::Create(args) => run::run(args, run::Mode::Create, printer).await,
            Command::Shell(args) => shell::shell(args).await,
        }
    });
    // A prompt interrupted by Ctrl-C leaves a thread blocked reading the terminal;
    // waiting for it would hang.
    runtime.shutdown_background();
    result
}
