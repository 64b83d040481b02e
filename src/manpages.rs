//! Man pages: clap_mangen renders what cli.rs defines (name, synopsis, options,
//! commands, version); this module adds what a list of flags cannot say (what berth is
//! for, its files, variables and exit codes), one function per section, shared by every
//! page. `berth man` prints them and tests/generated.rs keeps man/ up to date.

use std::io;
use std::path::Path;

use clap_mangen::Man;
use roff::{bold, italic, roman, Inline, Roff};

use crate::cli::Program;
use crate::cli::{self, ManArgs};
use crate::error::{Error, Result};
use crate::ui::Printer;

/// Every page is in section 1, user commands.
const SECTION: &str = "1";

/// One man page: `name` is the page's name (`berth-deploy`), `text` its roff source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub name: String,
    pub text: String,
}

impl Page {
    /// The page's file name: `berth-deploy.1`.
    pub fn file_name(&self) -> String {
        format!("{}.{SECTION}", self.name)
    }
}

/// Every page: berth(1), one per visible berth command, container-deploy(1) and
/// container-retire(1).
pub fn pages() -> Vec<Page> {
    let subjects = subjects();
    let names: Vec<String> = subjects.iter().map(|s| s.name.clone()).collect();
    subjects.into_iter().map(|s| render(s, &names)).collect()
}

/// The page called `name`: its full name (`berth-deploy`, `container-retire`) or a berth
/// command's name (`deploy`).
pub fn page(name: &str) -> Option<Page> {
    let subjects = subjects();
    let names: Vec<String> = subjects.iter().map(|s| s.name.clone()).collect();
    let full = format!("berth-{name}");
    subjects
        .into_iter()
        .find(|s| s.name == name || s.name == full)
        .map(|s| render(s, &names))
}

/// `berth man [PAGE]`, `berth man --out-dir DIR`.
pub fn print(args: &ManArgs, printer: &Printer) -> Result<()> {
    if let Some(dir) = &args.out_dir {
        return write_all(dir, printer);
    }
    let name = args.page.as_deref().unwrap_or("berth");
    let page = page(name).ok_or_else(|| {
        let names: Vec<String> = subjects().into_iter().map(|s| s.name).collect();
        Error::usage(format!("no man page named `{name}`"))
            .hint(format!("the pages: {}", names.join(", ")))
    })?;
    printer.line(page.text.trim_end_matches('\n'));
    Ok(())
}

fn write_all(dir: &Path, printer: &Printer) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|err| Error::io("create", dir, err))?;
    for page in pages() {
        let path = dir.join(page.file_name());
        std::fs::write(&path, &page.text).map_err(|err| Error::io("write", &path, err))?;
        printer.line(&path.display().to_string());
    }
    Ok(())
}

/// What a page is about: it decides berth's own sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Berth,
    Deploy,
    Retire,
    List,
    Check,
    Run,
    Create,
    Shell,
    Man,
    /// A command this module has no prose for: its page has what cli.rs says.
    Other,
}

impl Topic {
    fn of_command(name: &str) -> Self {
        match name {
            "deploy" => Topic::Deploy,
            "retire" => Topic::Retire,
            "list" => Topic::List,
            "check" => Topic::Check,
            "run" => Topic::Run,
            "create" => Topic::Create,
            "shell" => Topic::Shell,
            "man" => Topic::Man,
            _ => Topic::Other,
        }
    }

    /// What the command reads and does, which decides the variables, files and exit
    /// codes its page lists.
    fn uses(self, what: Uses) -> bool {
        use Uses::*;
        let all: &[Uses] = &[Workspace, Config, Data, Rescue, Engine, Color, Guards];
        let uses: &[Uses] = match self {
            Topic::Berth => all,
            Topic::Deploy | Topic::Check | Topic::Run | Topic::Create => {
                &[Workspace, Config, Data, Engine, Color, Guards]
            }
            Topic::Retire => &[Config, Rescue, Engine, Color],
            Topic::Shell => &[Config, Engine, Color],
            Topic::List => &[Engine, Color],
            Topic::Man | Topic::Other => &[],
        };
        uses.contains(&what)
    }
}

/// A part of berth a command relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uses {
    /// The workspace root, the project's workspace and its persistent home.
    Workspace,
    /// The layered configuration files.
    Config,
    /// The data root, its sources and its identity.
    Data,
    /// retire's `.rescued/`.
    Rescue,
    /// The Docker engine.
    Engine,
    /// Coloured output.
    Color,
    /// The launch guards (exit 3).
    Guards,
}

/// A page to render: its name, the clap command it documents, and its topic.
struct Subject {
    name: String,
    command: clap::Command,
    topic: Topic,
}

/// Every page's subject, berth's first, in the order of `berth --help`.
fn subjects() -> Vec<Subject> {
    let mut berth = Program::Berth
        .command()
        .disable_help_subcommand(true)
        .subcommand_help_heading("COMMANDS");
    // Building sets each command's bin name (`berth deploy`) and display name
    // (`berth-deploy`), and gives it the global flags.
    berth.build();
    let commands: Vec<Subject> = berth
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|command| Subject {
            name: display_name(command),
            command: command.clone(),
            topic: Topic::of_command(command.get_name()),
        })
        .collect();
    let mut subjects = vec![Subject {
        name: Program::Berth.name().to_string(),
        command: berth,
        topic: Topic::Berth,
    }];
    subjects.extend(commands);
    for (program, topic) in [
        (Program::ContainerDeploy, Topic::Deploy),
        (Program::ContainerRetire, Topic::Retire),
    ] {
        let mut command = program.command();
        command.build();
        subjects.push(Subject {
            name: program.name().to_string(),
            command,
            topic,
        });
    }
    subjects
}

fn display_name(command: &clap::Command) -> String {
    command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_string()
}

/// The page of `subject`; `names` are every page's, for berth(1)'s SEE ALSO.
fn render(subject: Subject, names: &[String]) -> Page {
    let Subject {
        name,
        mut command,
        topic,
    } = subject;
    let usage = synopsis(&mut command, topic);
    let after_help = command.get_after_help().map(|text| text.to_string());
    let has_options = command.get_arguments().any(|a| !a.is_hide_set());
    let has_commands = command.get_subcommands().any(|c| !c.is_hide_set());
    let has_version = command.get_version().is_some();
    let man = Man::new(command.override_usage(usage))
        .title(name.to_uppercase())
        .section(SECTION)
        // No date, so that the page does not change with the day it was made; quoted,
        // because roff would drop an empty argument and shift the rest into its place.
        .date("\"\"")
        .source(format!("berth {}", env!("CARGO_PKG_VERSION")))
        .manual("berth manual");

    let mut page = Roff::new().render();
    page += &from_clap(|w| man.render_title(w));
    // Plain text in NAME: it is what whatis(1) and apropos(1) show.
    page += &without_preamble(rendered(|w| man.render_name_section(w))).replace('`', "");
    page += &from_clap(|w| man.render_synopsis_section(w));
    page += &from_clap(|w| man.render_description_section(w));
    page += &ours(|roff| description(roff, topic));
    if has_options {
        page += &from_clap(|w| man.render_options_section(w));
    }
    if has_commands {
        page += &from_clap(|w| man.render_subcommands_section(w));
    }
    // The after-help of berth's programs is the one-line summary of EXIT STATUS.
    if after_help.is_some_and(|text| text != cli::EXIT_CODES) {
        page += &from_clap(|w| man.render_extra_section(w));
    }
    page += &ours(|roff| exit_status(roff, topic));
    page += &ours(|roff| environment(roff, topic));
    page += &ours(|roff| files(roff, topic));
    page += &ours(|roff| examples(roff, topic));
    if has_version {
        page += &from_clap(|w| man.render_version_section(w));
    }
    page += &ours(|roff| see_also(roff, topic, &name, names));
    Page { name, text: page }
}

/// The synopsis: clap's usage line (it shows `[-- <CMD>...]`, which clap_mangen's own
/// synopsis does not), and docker's form for the drop-in commands, whose options are too
/// many to list.
fn synopsis(command: &mut clap::Command, topic: Topic) -> String {
    let bin = command
        .get_bin_name()
        .unwrap_or_else(|| command.get_name())
        .to_string();
    if matches!(topic, Topic::Run | Topic::Create) {
        return format!("{bin} [OPTIONS] IMAGE [COMMAND] [ARG...]");
    }
    let usage = command.render_usage().to_string();
    usage
        .strip_prefix("Usage: ")
        .unwrap_or(&usage)
        .trim()
        .to_string()
}

/// A part clap_mangen renders, without the preamble every one of its parts repeats.
/// Help text marks code with backticks, as the prose here does: in a page, bold.
fn from_clap(render: impl FnOnce(&mut dyn io::Write) -> io::Result<()>) -> String {
    without_preamble(rendered(render))
        .split_inclusive('\n')
        .map(code_in_bold)
        .collect()
}

fn rendered(render: impl FnOnce(&mut dyn io::Write) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    render(&mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("clap_mangen writes UTF-8 from UTF-8")
}

/// A text line's backtick pairs as bold; control lines and an unpaired backtick as they
/// are.
fn code_in_bold(line: &str) -> String {
    if line.starts_with('.') {
        return line.to_string();
    }
    let mut marks = line.matches('`').count() / 2 * 2;
    let mut out = String::with_capacity(line.len());
    let mut open = false;
    for c in line.chars() {
        if c == '`' && marks > 0 {
            out.push_str(if open { "\\fR" } else { "\\fB" });
            open = !open;
            marks -= 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// A part berth writes.
fn ours(write: impl FnOnce(&mut Roff)) -> String {
    let mut roff = Roff::new();
    write(&mut roff);
    without_preamble(roff.render())
}

/// `roff` starts every rendering with the definition of its apostrophe string; a page
/// needs it once.
fn without_preamble(text: String) -> String {
    let preamble = Roff::new().render();
    match text.strip_prefix(&preamble) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

// ---------------------------------------------------------------------------------------
// The sections berth writes. Each takes the topic and writes nothing where it has
// nothing to say.

fn description(roff: &mut Roff, topic: Topic) {
    let text = match topic {
        Topic::Berth => BERTH,
        Topic::Deploy => DEPLOY,
        Topic::Retire => RETIRE,
        Topic::List => LIST,
        Topic::Check => CHECK,
        Topic::Run => RUN,
        Topic::Create => CREATE,
        Topic::Shell => SHELL,
        Topic::Man => MAN,
        Topic::Other => return,
    };
    prose(roff, text, false);
    if matches!(topic, Topic::Run | Topic::Create) {
        prose(roff, DROP_IN, false);
    }
    if topic == Topic::Run {
        prose(roff, ATTACHED, false);
    }
}

fn exit_status(roff: &mut Roff, topic: Topic) {
    let takes_project = !matches!(topic, Topic::List | Topic::Man | Topic::Other);
    let mut rows: Vec<(&str, &str)> = vec![
        ("0", "Done."),
        (
            "1",
            if topic.uses(Uses::Engine) {
                "An error: the engine (unreachable, or refusing a request), a configuration \
                 file, or I/O."
            } else {
                "An error, such as a file that cannot be written."
            },
        ),
        (
            "2",
            if takes_project {
                "A usage error: an unknown flag, a missing or invalid argument, an invalid \
                 project name."
            } else {
                "A usage error: an unknown flag, a missing or invalid argument."
            },
        ),
    ];
    match topic {
        Topic::Berth => rows.extend([("3", REFUSED_LAUNCH), ("", REFUSED_RETIRE)]),
        Topic::Deploy => rows.extend([("3", REFUSED_LAUNCH), ("", REFUSED_RECREATE)]),
        Topic::Retire => rows.push(("3", REFUSED_RETIRE)),
        _ if topic.uses(Uses::Guards) => rows.push(("3", REFUSED_LAUNCH)),
        _ => {}
    }
    if matches!(topic, Topic::Berth | Topic::Retire | Topic::Deploy) {
        rows.push(("130", INTERRUPTED));
    }
    if matches!(topic, Topic::Berth | Topic::Run | Topic::Create) {
        rows.push(("125", DOCKER_125));
    }
    if matches!(topic, Topic::Berth | Topic::Run) {
        rows.extend([("126", DOCKER_126), ("127", DOCKER_127)]);
    }
    let others: &[&str] = match topic {
        Topic::Berth => &[CONTAINER_STATUS, SHELL_STATUS],
        Topic::Run => &[CONTAINER_STATUS],
        Topic::Shell => &[SHELL_STATUS],
        _ => &[],
    };
    for (i, meaning) in others.iter().enumerate() {
        rows.push((if i == 0 { "*other*" } else { "" }, meaning));
    }

    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in rows {
        // A code with two meanings (an empty code is the second) has one entry.
        if code.is_empty() {
            roff.control("IP", []);
        } else {
            roff.control("TP", []);
            roff.text(inline(code));
        }
        roff.text(inline(meaning));
    }
    prose(roff, ERRORS, false);
}

/// An environment variable or a file a page lists, and what it belongs to.
struct Entry {
    term: &'static str,
    uses: Uses,
    text: &'static str,
}

const VARIABLES: &[Entry] = &[
    Entry {
        term: "`BERTH_WORKSPACE_ROOT`",
        uses: Uses::Workspace,
        text: "The workspace root: a project's workspace is *root*/*PROJECT*. \
               Default: ~/workspace.",
    },
    Entry {
        term: "`BERTH_CONFIG`",
        uses: Uses::Config,
        text: "The user config. Default: $XDG_CONFIG_HOME/berth/config.toml. A file named \
               here must exist; the default may be absent.",
    },
    Entry {
        term: "`BERTH_POLICY`",
        uses: Uses::Config,
        text: "The admin policy. Default: /etc/berth/policy.toml. A file named here must \
               exist; the default may be absent.",
    },
    Entry {
        term: "`BERTH_STATE_DIR`",
        uses: Uses::Data,
        text: "berth's state: the ids of the data roots it has seen. \
               Default: $XDG_STATE_HOME/berth.",
    },
    Entry {
        term: "`HOST_DATA_PATH`",
        uses: Uses::Data,
        text: "Names the data root (relative to the current directory), one source among \
               those of the configuration: all must agree. The container gets it too, set \
               to the agreed root.",
    },
    Entry {
        term: "`XDG_CONFIG_HOME`, `XDG_STATE_HOME`, `XDG_DATA_HOME`",
        uses: Uses::Config,
        text: "Where the user config, the state and the containers' persistent homes go, \
               when these are absolute paths. Defaults: ~/.config, ~/.local/state, \
               ~/.local/share.",
    },
    Entry {
        term: "`DOCKER_HOST`",
        uses: Uses::Engine,
        text: "The engine's address, as docker reads it: unix:///var/run/docker.sock \
               (the default) or tcp://host:2376.",
    },
    Entry {
        term: "`DOCKER_CONTEXT`",
        uses: Uses::Engine,
        text: "The docker context whose engine to use, as docker reads it. Without it or \
               `DOCKER_HOST`, docker's current context (`docker context use`) is used.",
    },
    Entry {
        term: "`DOCKER_CONFIG`",
        uses: Uses::Engine,
        text: "docker's configuration directory, where the current context and the contexts \
               are read. Default: ~/.docker.",
    },
    Entry {
        term: "`NO_COLOR`",
        uses: Uses::Color,
        text: "When set and not empty, no colour, unless `--color always`.",
    },
    Entry {
        term: "`CLICOLOR_FORCE`",
        uses: Uses::Color,
        text: "When set, not empty and not 0, colour even where the output is not a \
               terminal, unless `NO_COLOR` is set or `--color never`.",
    },
];

const FILES: &[Entry] = &[
    Entry {
        term: "~/workspace/*PROJECT*/",
        uses: Uses::Workspace,
        text: "The project's workspace (under `BERTH_WORKSPACE_ROOT` when it is set), \
               mounted at /workspace.",
    },
    Entry {
        term: "~/workspace/*PROJECT*/berth.toml",
        uses: Uses::Config,
        text: "The project's config; optional.",
    },
    Entry {
        term: "~/workspace/*PROJECT*/.env",
        uses: Uses::Data,
        text: "Read for its `HOST_DATA_PATH=` line, a data-root source (docker compose's \
               env-file syntax). The files listed in `env_files` are read likewise, and \
               their other variables join the container's environment.",
    },
    Entry {
        term: "~/workspace/*PROJECT*/.rescued/*UTC time*/",
        uses: Uses::Rescue,
        text: "Where `retire --rescue` copies unsaved files, keeping their paths.",
    },
    Entry {
        term: "~/.config/berth/config.toml",
        uses: Uses::Config,
        text: "The user config (`BERTH_CONFIG`, or under `XDG_CONFIG_HOME`); optional.",
    },
    Entry {
        term: "/etc/berth/policy.toml",
        uses: Uses::Config,
        text: "The admin policy (`BERTH_POLICY`); optional. Values it sets cannot be \
               overridden.",
    },
    Entry {
        term: "~/.local/share/berth/home/*PROJECT*/",
        uses: Uses::Workspace,
        text: "The container's persistent $HOME (under `XDG_DATA_HOME` when it is set): \
               dotfiles, shell history and `pip install --user` survive the container.",
    },
    Entry {
        term: "~/.local/state/berth/data-roots.json",
        uses: Uses::Data,
        text: "The id of every data root berth has seen (under `BERTH_STATE_DIR` or \
               `XDG_STATE_HOME` when set).",
    },
    Entry {
        term: "*data root*/.berth-data-id",
        uses: Uses::Data,
        text: "The data root's identity marker, written on first use. When it is missing or \
               different, a launch is refused: an unmounted network filesystem looks like \
               that.",
    },
];

fn environment(roff: &mut Roff, topic: Topic) {
    entries(roff, "ENVIRONMENT", VARIABLES, topic);
}

fn files(roff: &mut Roff, topic: Topic) {
    entries(roff, "FILES", FILES, topic);
}

fn entries(roff: &mut Roff, heading: &str, entries: &[Entry], topic: Topic) {
    let mut wanted = entries.iter().filter(|e| topic.uses(e.uses)).peekable();
    if wanted.peek().is_none() {
        return;
    }
    roff.control("SH", [heading]);
    for entry in wanted {
        roff.control("TP", []);
        roff.text(inline(entry.term));
        roff.text(inline(entry.text));
    }
}

fn examples(roff: &mut Roff, topic: Topic) {
    let text = match topic {
        Topic::Berth => EXAMPLES_BERTH,
        Topic::Deploy => EXAMPLES_DEPLOY,
        Topic::Retire => EXAMPLES_RETIRE,
        Topic::Run => EXAMPLES_RUN,
        _ => return,
    };
    roff.control("SH", ["EXAMPLES"]);
    prose(roff, text, true);
}

fn see_also(roff: &mut Roff, topic: Topic, name: &str, names: &[String]) {
    let related: Vec<String> = match topic {
        Topic::Berth => names
            .iter()
            .map(|n| format!("{n}(1)"))
            .chain(["docker-run(1)".to_string()])
            .collect(),
        _ => {
            let others: &[&str] = match topic {
                Topic::Deploy => &[
                    "berth-deploy(1)",
                    "container-deploy(1)",
                    "berth-check(1)",
                    "berth-retire(1)",
                    "berth-shell(1)",
                ],
                Topic::Retire => &["berth-retire(1)", "container-retire(1)", "berth-deploy(1)"],
                Topic::Check => &["berth-deploy(1)"],
                Topic::Run => &["berth-create(1)", "docker-run(1)"],
                Topic::Create => &["berth-run(1)", "docker-create(1)"],
                Topic::Shell => &["berth-deploy(1)", "docker-exec(1)"],
                Topic::Man => &["man(1)"],
                _ => &[],
            };
            std::iter::once("berth(1)")
                .chain(others.iter().copied())
                .map(str::to_string)
                .collect()
        }
    };
    let own = format!("{name}(1)");
    let related: Vec<&String> = related.iter().filter(|r| **r != own).collect();
    roff.control("SH", ["SEE ALSO"]);
    let mut line = vec![];
    for (i, page) in related.iter().enumerate() {
        let (page_name, section) = page.split_once('(').unwrap_or((page, ""));
        line.push(bold(page_name));
        let end = if i + 1 < related.len() { ", " } else { "" };
        line.push(roman(format!("({section}{end}")));
    }
    roff.text(line);
}

// ---------------------------------------------------------------------------------------
// Prose, in a small markup that stays readable here: blank lines part paragraphs;
// `## Title` starts a subsection; lines starting `- ` or `1. ` are list items (their
// continuation lines are indented); lines indented by four spaces are a literal block.
// Inline, `code` is bold and *word* italic, as man pages set commands and placeholders.

/// Writes `text`; `fresh` when it starts a section, which needs no paragraph break.
fn prose(roff: &mut Roff, text: &str, fresh: bool) {
    let mut fresh = fresh;
    for block in text.split("\n\n").map(|b| b.trim_matches('\n')) {
        if block.is_empty() {
            continue;
        }
        if let Some(title) = block.strip_prefix("## ") {
            roff.control("SS", [title]);
            fresh = true;
        } else if block.lines().all(|l| l.starts_with("    ")) {
            roff.control("PP", []);
            roff.control("RS", ["4"]);
            roff.control("nf", []);
            for line in block.lines() {
                roff.text([roman(&line[4..])]);
            }
            roff.control("fi", []);
            roff.control("RE", []);
            fresh = false;
        } else if let Some(items) = list_items(block) {
            for (mark, item) in items {
                match mark {
                    None => roff.control("IP", ["\\(bu", "2"]),
                    Some(number) => roff.control("IP", [number, "4"]),
                };
                roff.text(inline(&item));
            }
            fresh = false;
        } else {
            if !fresh {
                roff.control("PP", []);
            }
            roff.text(inline(&joined(block.lines())));
            fresh = false;
        }
    }
}

/// A block's list items with their marks (`None` for a bullet, `Some("1.")`), or `None`
/// when the block is not a list.
fn list_items(block: &str) -> Option<Vec<(Option<&str>, String)>> {
    let mut items: Vec<(Option<&str>, Vec<&str>)> = vec![];
    for line in block.lines() {
        if let Some(rest) = line.strip_prefix("- ") {
            items.push((None, vec![rest]));
        } else if let Some((number, rest)) = numbered(line) {
            items.push((Some(number), vec![rest]));
        } else if let (Some(item), Some(rest)) = (items.last_mut(), line.strip_prefix("  ")) {
            item.1.push(rest.trim_start());
        } else {
            return None;
        }
    }
    Some(
        items
            .into_iter()
            .map(|(mark, lines)| (mark, joined(lines.into_iter())))
            .collect(),
    )
}

/// `1. rest` as `("1.", "rest")`.
fn numbered(line: &str) -> Option<(&str, &str)> {
    let (number, rest) = line.split_once(". ")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (&line[..number.len() + 1], rest))
}

/// A paragraph's lines, kept as lines: the roff source diffs like the prose.
fn joined<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    lines.map(str::trim).collect::<Vec<_>>().join("\n")
}

/// Inline markup: `code` in bold, *word* in italic, the rest roman. A mark without its
/// closing one is literal.
fn inline(text: &str) -> Vec<Inline> {
    let mut out = vec![];
    let mut plain = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['`', '*']) {
        let mark = &rest[at..at + 1];
        // An italic span hugs its words: `a * b` is no span.
        let span = rest[at + 1..].find(mark).filter(|&len| {
            let inner = &rest[at + 1..at + 1 + len];
            len > 0 && (mark == "`" || inner.trim() == inner)
        });
        plain.push_str(&rest[..at]);
        let Some(len) = span else {
            plain.push_str(mark);
            rest = &rest[at + 1..];
            continue;
        };
        let inner = &rest[at + 1..at + 1 + len];
        if !plain.is_empty() {
            out.push(roman(std::mem::take(&mut plain)));
        }
        out.push(if mark == "`" {
            bold(inner)
        } else {
            italic(inner)
        });
        rest = &rest[at + 2 + len..];
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        out.push(roman(plain));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The words. Facts come from the README; change them with the code.

const BERTH: &str = "\
berth is a wrapper around `docker run` for shared GPU servers. A container's writable
layer dies with the container: a `pip install`, a file edited in /root, a result written
to /opt are gone after `docker rm`. berth mounts the places that survive the same way
every time, and reads the writable layer before it removes anything.

`container-deploy` is exactly `berth deploy`, and `container-retire` is exactly
`berth retire`.

## The workspace

A project is a name: `[a-z0-9][a-z0-9_.-]*`, at most 64 characters. Anything else
(`..`, `/`, spaces, uppercase) is refused before any path is built. The project's
workspace is *root*/*PROJECT*, where *root* is the workspace root (`BERTH_WORKSPACE_ROOT`,
by default ~/workspace). It is mounted at /workspace, the container's working
directory, so what is written there is on the host and outlives the container. Deploy
creates a new workspace and says so, but refuses a name a typo away from an existing one
unless given `--new`.

The container's $HOME is persistent too: ~/.local/share/berth/home/*PROJECT* is mounted
there, so dotfiles, shell history and `pip install --user` survive.

## The data root

A project may name one shared data root. berth reads every place that can name it:
`data.host_path` in the admin policy, the user config and the project's berth.toml;
`HOST_DATA_PATH` in an `env` table; the `HOST_DATA_PATH` environment variable; and
`HOST_DATA_PATH=` lines in the project's .env and in the files listed in `env_files`.
Each value is resolved, relative to the file that holds it, with symlinks followed. All
must name the same directory, or the launch is refused (exit 3) with a table of every
source, its value and what it resolved to, and the fix.

The root must exist: berth never creates it. On first use berth writes an identity
marker, .berth-data-id, into the root and remembers it in its state directory. A marker
that later is missing or different is refused: that is what an unmounted network
filesystem (an empty local directory at the same path) or another disk looks like. A
launch is also refused when another container of the same data group (`data.group`, by
default the project) uses a different root, or when a mount would shadow /workspace or
the data target.

The container gets the root at `data.target` (default /data) and `HOST_DATA_PATH` set to
it. A project that names no data root gets neither; that is not an error.

## Unsaved work

`berth retire` removes nothing that holds work you were not shown. It pauses the
container so that nothing changes while it is checked, reads its writable layer and its
anonymous volumes, and sets aside what berth wrote and what is disposable (/tmp, caches,
logs: counted, never blocking). It sorts the rest into installed packages, home-directory
files, other files and anonymous volumes holding data, and prints a summary. With
nothing unsaved it removes the container. With unsaved work it asks [y/N] on a terminal;
without one it refuses (exit 3) unless given `--yes`, `--rescue` (copy the files into
the workspace first) or `--commit` (keep the container as an image first). A refusal
leaves the container exactly as it was. See berth-retire(1).

## The container

A project's container is named *project*._.*user* and labelled `berth.project`,
`berth.user` (the uid), `berth.workspace`, `berth.data`, `berth.data-id`,
`berth.data-group` and `berth.version`; those made by `berth run` and `berth create`
also carry `berth.run=1`, and deploy, retire and shell leave them alone. It runs as
your uid:gid, so that files written to /workspace are yours, unless the config's `user`
says `root` or another *uid*:*gid*. GPUs, CPUs, memory and shm size are set in the one
call that creates it. With no command configured it runs `sleep infinity` under
docker's init, so that `berth shell` can enter it.

## Configuration

Settings come in layers, highest first: the admin policy (what it sets cannot be
overridden), the command line, the project's berth.toml, the user config. The three
files take the same keys: `image`, `command`, `user`, `gpus`, `cpus`, `memory`,
`shm_size`, `env`, `env_files`, `ports`, `volumes`, `[data]` (`host_path`, `target`,
`group`) and `[retire]` (`disposable`). An unknown key is an error that names the file,
line and key. Configuration and env files larger than 1 MiB are refused. `berth check`
and `berth deploy --dry-run` show where every value came from.";

const DEPLOY: &str = "\
Deploy brings up the project's container: it creates and starts it when there is none,
starts it when it is stopped, and says so when it is running. When the existing
container's image differs from the configured one, deploy warns; `--recreate` switches.

## What the container gets

- the workspace, *root*/*PROJECT*, at /workspace, also its working directory; a new
  workspace is created, and deploy says so;
- a persistent $HOME (/home/*user*, or /root as root), from
  ~/.local/share/berth/home/*PROJECT*;
- the data root at `data.target` (default /data) and `HOST_DATA_PATH` set to it, when
  a data root is named anywhere;
- your uid:gid, unless the config's `user` says otherwise;
- the image, command, mounts, ports, environment, GPUs, CPUs, memory and shm size of
  the command line and the configuration, all in the one call that creates it;
- the name *PROJECT*._.*user* and berth's labels.

The image is pulled when the engine does not have it. If the start fails (no GPU
runtime, for example), the new container is removed; if the container exits right after
it starts, deploy shows its exit code and the last lines of its log.

## Refusals

Deploy refuses, with exit 3 and before anything is created, when:

- the workspace does not exist but one a typo away does (`alpha-prj` when `alpha-proj`
  exists): `--new` creates it anyway;
- the places that name the data root disagree: a table shows each source, its value and
  what it resolved to;
- the data root does not exist, or its identity marker (.berth-data-id) is missing or
  different, as when a network filesystem is not mounted;
- another container of the same data group uses a different data root;
- a `-v` mount would shadow /workspace or the data target (at, above or below it).

`berth check` runs the same guards and prints the plan; `--dry-run` prints the plan and
the equivalent `docker run` line without asking the engine.

## Recreate

`--recreate` retires the existing container first, with the full unsaved-work check of
berth-retire(1), then deploys anew. On a terminal it asks before anything is lost;
without one it refuses (exit 3) and keeps the container. To decide without a prompt, run
`berth retire` *PROJECT* with `--rescue`, `--commit` or `--yes` first.";

const RETIRE: &str = "\
Retire removes the project's container, but never work you were not shown first:

1. `Freeze.` A running container is paused while it is checked, so nothing changes
   between the check and the removal. A stopped container gets the same check.
2. `Read.` berth reads the writable layer's changes and the container's anonymous
   volumes. It leaves out what the engine and berth made (mount points, docker's init)
   and the disposable paths: by default /tmp, /var/tmp, /var/cache, /var/log, /run,
   .cache, __pycache__ and `*.pyc` (`disposable` under `[retire]` in the config
   replaces the list). Disposable changes are counted, never blocking.
3. `Classify.` What is left is sorted into installed packages (pip, conda, apt, named
   from their records), home-directory files, other files, and anonymous volumes
   holding data.
4. `Summarize.` Per class: a count, a size and the top paths; then what to do:
   `--rescue`, `--commit`, or add the packages to the Dockerfile.
5. `Decide.` With nothing unsaved, the container is removed without a question. With
   unsaved work, retire asks [y/N] on a terminal, and an answer other than yes keeps
   the container (exit 3). Without a terminal it refuses (exit 3) unless given `--yes`,
   `--rescue` or `--commit`. `--dry-run` stops after the summary: it changes nothing
   and does not pause.
6. `Rescue.` `--rescue` copies every unsaved file, and the contents of anonymous
   volumes holding data, into *workspace*/.rescued/*UTC time*/, keeping their paths:
   /opt/results/a.csv lands in .rescued/20261121T103000Z/opt/results/a.csv. Contents,
   modes, times and symlinks are kept; nothing is written outside that folder or over
   a file. `--rescue-all` copies the disposable files too.
7. `Commit.` `--commit` commits the container as the image
   berth/*user*/*project*:*UTC time*, or with the tag given, never :latest. With both
   flags, the rescue runs first. If either fails, nothing is removed.
8. `Remove.` The container is stopped (SIGTERM, then SIGKILL after 10 seconds) and its
   layer read again. If the stop wrote files, they are listed, the container is left
   stopped, not removed, and retire exits 3. Otherwise it is removed.

A refusal, a no, an error, Ctrl-C, SIGTERM or a hang-up unpauses the container and
leaves it exactly as it was; an interrupted retire exits 130. A container someone else
paused stays paused. Named volumes, anonymous volumes, bind mounts and the workspace are
never removed.";

const LIST: &str = "\
List prints your berth containers, one line each: the project, its state, the image,
the size of its unsaved changes (the writable layer: what a retire would check), the
workspace and the data root. `--all` lists every user's, with their uid.";

const CHECK: &str = "\
Check resolves the configuration as deploy would, runs every guard (the engine's
data-group check included) and prints the plan: the workspace and its state, every
place that names the data root with its value and what it resolved to, where each
setting came from, and the equivalent `docker run` line. It creates nothing, and exits 3
where deploy would refuse.";

const RUN: &str = "\
`berth run` is `docker run` for a project: replace one with the other in a script and
nothing changes but the safety. berth reads docker's flags and keeps its exit codes,
and adds the project's workspace, data root, user and guards.";

const CREATE: &str = "\
`berth create` is `docker create` for a project, as berth-run(1) is `docker run`: the
same flags and additions. It prints the new container's id.";

/// What `berth run` and `berth create` share.
const DROP_IN: &str = "\
## Docker's flags

berth reads docker's own syntax: combined short flags (`-itd`), `--flag=value` and
`--flag value`, `-eK=V`, `--rm=false`, repeated flags and `--`. Options end at the
image; everything after the image is the command. The flags are those listed below, the
ones people pass every day; each builds the request the docker CLI would. Any other flag
exits 125 and is named: nothing is silently dropped.

## The project

`--project` *NAME*, or else the project whose workspace holds the current directory
(`cd ~/workspace/alpha/src && berth run ...`). With neither, berth exits 125 and says
so.

## berth's additions

- the workspace at /workspace, the persistent $HOME, and the data root with
  `HOST_DATA_PATH`;
- your uid:gid, unless `-u` says otherwise;
- the working directory /workspace, unless `-w` says otherwise;
- berth's labels, and `berth.run=1`, so that deploy, retire and shell leave the
  container alone.

Every guard of berth-deploy(1) applies: a `-v`, `--mount` or `--tmpfs` over the
workspace or the data target is refused with exit 3.

`--dry-run` prints the equivalent `docker run` line, berth's additions included, and
creates nothing.";

/// What only `berth run` does.
const ATTACHED: &str = "\
## As docker does

`run -d` prints the container's id. An attached run streams stdout and stderr apart;
`-i` forwards standard input; `-t` puts your terminal in raw mode and follows its size;
without `-t`, Ctrl-C and SIGTERM are passed to the container, as docker's sig-proxy
does; `--rm` removes the container after it exits. An attached run exits with the
container's status.";

const SHELL: &str = "\
Shell runs a login shell (bash where the image has it, else sh) in the project's
running container, as you (or the configured `user`), in /workspace, with a terminal
when yours is one. After `--`, it runs the given command instead. The exit status is the
command's. A container that is not running is an error: `berth deploy` starts it.";

const MAN: &str = "\
Man prints a page of this manual as roff, for man(1) to format:
`berth man deploy | man -l -`. *PAGE* is berth (the default), a command (`deploy`
or `berth-deploy`), `container-deploy` or `container-retire`. With `--out-dir` *DIR*,
it writes every page as *DIR*/*name*.1 and prints the paths written.";

const REFUSED_LAUNCH: &str = "\
Refused by a guard, before anything is created: the data root's sources disagree
(split-brain), the data root is missing or not the one it was (its .berth-data-id), a
mount would shadow /workspace or the data target, or the workspace name is a typo away
from an existing one.";

const REFUSED_RECREATE: &str = "\
With `--recreate`: the existing container holds unsaved work and there is no terminal,
or the answer was no.";

const REFUSED_RETIRE: &str = "\
Retire kept the container: it holds unsaved work and the answer was no, or there was no
terminal and none of `--yes`, `--rescue` or `--commit` was given; or files appeared while
it stopped (it is left stopped).";

const INTERRUPTED: &str = "\
Interrupted (Ctrl-C, SIGTERM or a hang-up) while a container was being retired, by
`retire` or `deploy --recreate`; the container is as it was.";

const DOCKER_125: &str = "\
`berth run` and `berth create`, as docker: an unsupported or invalid flag, no project,
a create the engine refuses, an image that cannot be pulled.";

const DOCKER_126: &str = "`berth run`: the command cannot be run, as with docker.";

const DOCKER_127: &str = "`berth run`: the command was not found, as with docker.";

const CONTAINER_STATUS: &str = "\
An attached `berth run` exits with the container's own status.";

const SHELL_STATUS: &str = "`berth shell` exits with the command's own status.";

const ERRORS: &str = "\
Errors are printed as `error:` and a message, then `hint:` and what to do, where there is
something to do.";

const EXAMPLES_BERTH: &str = "\
Start a project's container, work in it, and remove it once its work is saved:

    container-deploy alpha --image pytorch/pytorch:latest --gpus device=0
    berth shell alpha
    container-retire alpha --rescue

Run a one-off job with the project's mounts, as with docker:

    berth run --project alpha --rm --gpus all pytorch/pytorch:latest python train.py";

const EXAMPLES_DEPLOY: &str = "\
See the plan and the `docker run` line without creating anything:

    container-deploy alpha --image pytorch/pytorch:latest --dry-run

Switch an existing container to another image, checking it for unsaved work first:

    container-deploy alpha --image pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime --recreate";

const EXAMPLES_RETIRE: &str = "\
See what would be lost, changing nothing:

    container-retire alpha --dry-run

Keep the unsaved files and a snapshot of the container, then remove it:

    container-retire alpha --rescue --commit";

const EXAMPLES_RUN: &str = "\
    berth run --project alpha -it --rm --gpus '\"device=0,1\"' --shm-size 8g \\
        -v /scratch:/scratch:ro -e WANDB_MODE=offline \\
        pytorch/pytorch:latest python train.py";

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(".SH "))
            .map(|s| s.trim_matches('"').to_string())
            .collect()
    }

    #[test]
    fn every_page_has_the_standard_sections() {
        for page in pages() {
            let found = sections(&page.text);
            let mut wanted = vec!["NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "SEE ALSO"];
            if page.name == "berth" {
                wanted.extend(["COMMANDS", "ENVIRONMENT", "FILES"]);
            }
            for section in wanted {
                assert!(
                    found.iter().any(|s| s == section),
                    "{} has no {section}: {found:?}",
                    page.name
                );
            }
        }
    }

    #[test]
    fn pages_cover_every_program_and_visible_command() {
        let names: Vec<String> = pages().into_iter().map(|p| p.name).collect();
        for name in [
            "berth",
            "berth-deploy",
            "berth-retire",
            "berth-list",
            "berth-check",
            "berth-run",
            "berth-create",
            "berth-shell",
            "berth-man",
            "container-deploy",
            "container-retire",
        ] {
            assert!(names.iter().any(|n| n == name), "no {name} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "berth-help"));
    }

    #[test]
    fn a_command_page_is_found_by_either_name() {
        assert_eq!(page("deploy"), page("berth-deploy"));
        assert!(page("container-retire").is_some());
        assert!(page("nope").is_none());
    }

    #[test]
    fn a_command_page_shows_its_full_synopsis() {
        let text = page("deploy").unwrap().text;
        assert!(text.contains("\\fBberth deploy\\fR [OPTIONS] <PROJECT> [\\-\\- <CMD>...]"));
        let text = page("container-retire").unwrap().text;
        assert!(text.contains(".TH CONTAINER-RETIRE 1"));
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(pages(), pages());
    }

    #[test]
    fn markup_sets_code_in_bold_and_placeholders_in_italic() {
        assert_eq!(
            inline("run `berth deploy` *PROJECT* now"),
            [
                roman("run "),
                bold("berth deploy"),
                roman(" "),
                italic("PROJECT"),
                roman(" now")
            ]
        );
        assert_eq!(inline("a * b"), [roman("a * b")]);
        assert_eq!(inline("`*.pyc`"), [bold("*.pyc")]);
    }

    #[test]
    fn markup_lists_and_literal_blocks() {
        let mut roff = Roff::new();
        prose(
            &mut roff,
            "Intro\nline.\n\n- one\n  more\n- two\n\n    code  kept",
            true,
        );
        let text = roff.to_roff();
        assert_eq!(
            text,
            "Intro\nline.\n.IP \\(bu 2\none\nmore\n.IP \\(bu 2\ntwo\n.PP\n.RS 4\n.nf\ncode  kept\n.fi\n.RE\n"
        );
    }
}
