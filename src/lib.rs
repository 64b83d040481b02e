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
pub mod engine;
pub mod envfile;
pub mod error;
pub mod guard;
pub mod host;
pub mod list;
pub mod plan;
pub mod retire;
pub mod suggest;
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
    let printer = Printer::new(color);
    match execute(&command, &printer) {
        Ok(()) => 0,
        Err(err) => {
            printer.error(&err);
            err.code()
        }
    }
}

fn execute(command: &Command, printer: &Printer) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| error::Error::failed(format!("cannot start the async runtime: {err}")))?;
    let result = runtime.block_on(async {
        match command {
            Command::Deploy(args) => deploy::deploy(args, printer).await,
            Command::Retire(args) => retire::retire(args, printer).await,
            Command::List(args) => list::list(args, printer).await,
            Command::Check(args) => deploy::check(args, printer).await,
        }
    });
    // A prompt interrupted by Ctrl-C leaves a thread blocked reading the terminal;
    // waiting for it would hang.
    runtime.shutdown_background();
    result
}
