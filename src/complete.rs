//! Shell completion: the scripts each shell sources, and the answers berth gives them.
//!
//! The scripts are clap_complete's dynamic registrations: on TAB the shell runs the
//! program again with `_BERTH_COMPLETE=<shell>`, and clap_complete answers from the same
//! clap definitions that parse the command line ([`crate::cli`]), so the completions can
//! never drift from the flags. PROJECT arguments are completed with the caller's
//! workspaces and the projects that have containers ([`projects`]).

use std::collections::BTreeMap;
use std::time::Duration;

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use crate::cli::Program;
use crate::cli::{CompletionsArgs, Shell};
use crate::container::State;
use crate::engine::Engine;
use crate::host::{HostUser, Paths, ProjectName};
use crate::ui::Printer;

/// The variable that turns a run into a completion request. Namespaced, so that a
/// `COMPLETE` set for another tool never makes berth print completions instead of
/// running.
pub const VAR: &str = "_BERTH_COMPLETE";

/// How long completion waits for the engine before offering the workspaces alone: a
/// TAB must never hang on a stopped daemon.
const ENGINE_BUDGET: Duration = Duration::from_millis(500);

/// Answers a completion request and returns `true`, or returns `false` when this run is
/// not one (the variable is unset).
pub fn answer(program: Program, args: &[String]) -> bool {
    let current_dir = std::env::current_dir().ok();
    clap_complete::CompleteEnv::with_factory(move || command(program))
        .var(VAR)
        .completer(program.name())
        .try_complete(args, current_dir.as_deref())
        .unwrap_or_else(|err| err.exit())
}

/// `program`'s command with the candidates that ask the disk and the engine: every
/// PROJECT argument (`project`, positional or `--project`) completes to the caller's
/// projects, every `--image` to the engine's tags. Attached here, by argument id, so
/// that `cli` holds clap types alone.
fn command(program: Program) -> clap::Command {
    with_candidates(program.command())
}

fn with_candidates(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| match arg.get_id().as_str() {
            "project" => arg.add(ArgValueCandidates::new(projects)),
            "image" => arg.add(ArgValueCandidates::new(images)),
            _ => arg,
        })
        .mut_subcommands(with_candidates)
}

/// The script that makes `shell` complete `program`. It calls `program` by name, so it
/// is the same on every machine and can be checked in.
pub fn registration(program: Program, shell: Shell) -> String {
    let mut script = Vec::new();
    let name = program.name();
    completer(shell)
        .write_registration(VAR, name, name, name, &mut script)
        .expect("writing to memory cannot fail");
    let script = String::from_utf8(script).expect("the scripts are UTF-8");
    format!("{}\n", script.trim())
}

/// `berth completions SHELL [--program NAME]`: the scripts, all three programs' unless
/// one is named.
pub fn print(args: &CompletionsArgs, printer: &Printer) {
    let programs = match args.program {
        Some(program) => vec![program],
        None => Program::ALL.to_vec(),
    };
    for program in programs {
        printer.line(registration(program, args.shell).trim_end());
    }
}

/// Every script, as checked in under `completions/`: `<shell>/<file name>` and its text.
pub fn files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for shell in Shell::ALL {
        for program in Program::ALL {
            let path = format!("{}/{}", shell.name(), file_name(program, shell));
            files.push((path, registration(program, shell)));
        }
    }
    files
}

/// Where `shell` looks for a completion file for `program`, relative to its completion
/// directory: the names each shell's lazy loader expects.
pub fn file_name(program: Program, shell: Shell) -> String {
    let name = program.name();
    match shell {
        Shell::Bash => name.to_string(),
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        Shell::Elvish => format!("{name}.elv"),
        Shell::Powershell => format!("{name}.ps1"),
    }
}

fn completer(shell: Shell) -> &'static dyn EnvCompleter {
    match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::Powershell => &Powershell,
    }
}

/// Candidates for a PROJECT argument: the workspaces under the workspace root, and the
/// projects that have a container of the caller's. clap_complete keeps those that
/// start with what was typed.
fn projects() -> Vec<CompletionCandidate> {
    let workspaces = Paths::from_env()
        .map(|paths| workspace_names(&paths.workspace_root))
        .unwrap_or_default();
    let containers = container_states(HostUser::current().uid);
    candidates(workspaces, containers)
}

/// What is known of one project, for its candidate's description.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    workspace: bool,
    container: Option<State>,
}

/// Merges the two sources, sorted by name, each described by what it has ("workspace,
/// running").
fn candidates(
    workspaces: Vec<String>,
    containers: Vec<(String, State)>,
) -> Vec<CompletionCandidate> {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for name in workspaces {
        seen.entry(name).or_default().workspace = true;
    }
    for (name, state) in containers {
        seen.entry(name).or_default().container = Some(state);
    }
    seen.into_iter()
        .map(|(name, seen)| {
            let mut help = Vec::new();
            if seen.workspace {
                help.push("workspace");
            }
            match seen.container {
                Some(State::Running) => help.push("running"),
                Some(State::Paused) => help.push("paused"),
                Some(State::Stopped) => help.push("stopped"),
                Some(State::Busy) => help.push("busy"),
                None => {}
            }
            CompletionCandidate::new(name).help(Some(help.join(", ").into()))
        })
        .collect()
}

/// The directories in `root` whose names are project names. One directory read: the
/// entry types come with the names, so a thousand workspaces cost no extra calls.
fn workspace_names(root: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| ProjectName::parse(name).is_ok())
        .collect()
}

/// The caller's berth containers' projects and states; none when the engine does not
/// answer within [`ENGINE_BUDGET`].
fn container_states(uid: u32) -> Vec<(String, State)> {
    ask_engine(|engine| async move { engine.list(Some(uid), None, false).await.ok() })
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.run)
        .map(|c| (c.project, c.state))
        .collect()
}

/// `--image` completes to the engine's local image tags.
fn images() -> Vec<CompletionCandidate> {
    ask_engine(|engine| async move { engine.image_tags().await.ok() })
        .unwrap_or_default()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// `ask`, given a connected engine, within [`ENGINE_BUDGET`]; `None` when the engine
/// does not answer in time, or at all.
fn ask_engine<T, F>(ask: impl FnOnce(Engine) -> F) -> Option<T>
where
    F: std::future::Future<Output = Option<T>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let answer = runtime.block_on(async {
        tokio::time::timeout(ENGINE_BUDGET, async {
            let engine = Engine::connect().await.ok()?;
            ask(engine).await
        })
        .await
        .ok()
        .flatten()
    });
    runtime.shutdown_background();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(candidates: &[CompletionCandidate]) -> Vec<(String, String)> {
        candidates
            .iter()
            .map(|c| {
                (
                    c.get_value().to_string_lossy().into_owned(),
                    c.get_help().map(|h| h.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn workspaces_and_containers_merge_into_one_sorted_list() {
        let found = candidates(
            vec!["beta".into(), "alpha-proj".into()],
            vec![
                ("alpha-proj".into(), State::Running),
                ("gone".into(), State::Stopped),
            ],
        );
        assert_eq!(
            shown(&found),
            [
                ("alpha-proj".into(), "workspace, running".into()),
                ("beta".into(), "workspace".into()),
                ("gone".into(), "stopped".into()),
            ]
        );
    }

    #[test]
    fn only_directories_with_project_names_are_workspaces() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["alpha-proj", "Upper", ".hidden", "ok_1.2"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        std::fs::write(root.path().join("file-proj"), "").unwrap();
        let mut names = workspace_names(root.path());
        names.sort();
        assert_eq!(names, ["alpha-proj", "ok_1.2"]);
        assert!(workspace_names(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn every_shell_gets_a_script_that_calls_the_program_by_name() {
        for program in Program::ALL {
            for shell in Shell::ALL {
                let script = registration(program, shell);
                assert!(script.contains(VAR), "{shell:?} {}", program.name());
                assert!(script.contains(program.name()));
            }
        }
    }
}
