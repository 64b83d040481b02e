//! Docker's command-line syntax for `berth run`/`create`, read as the docker CLI reads
//! it (Go's pflag with interspersed arguments off): `-itd`, `-eK=V`, `-p8080:80`,
//! `--flag=value`, `--flag value`, `--rm=false`, repeated flags, `--`, and options end
//! at the first argument that is not one (the image). The flags themselves are defined
//! once, in [`crate::cli::RunArgs`]; [`normalize`] rewrites the arguments into a form
//! clap reads the same way, and catches what clap would misread. Pure.

use std::collections::HashMap;

use clap::{Args, FromArgMatches};

use crate::cli::RunArgs;

/// A mistake in the command line: docker exits 125 for these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError(pub String);

/// The flags of [`RunArgs`]: long name → whether it takes a value; short → long.
#[derive(Debug, Clone)]
pub struct FlagTable {
    longs: HashMap<String, bool>,
    shorts: HashMap<char, String>,
}

/// Booleans whose default is true, so that clap must see their value: pflag reads them
/// as booleans (`--sig-proxy`, `--sig-proxy=false`), never taking the next argument.
const TRUE_BY_DEFAULT: &[&str] = &["sig-proxy", "disable-content-trust"];

impl FlagTable {
    pub fn for_run() -> Self {
        let command = RunArgs::augment_args(clap::Command::new("run"));
        let mut table = Self {
            longs: HashMap::new(),
            shorts: HashMap::new(),
        };
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else {
                continue;
            };
            let takes_value = arg.get_action().takes_values();
            for name in std::iter::once(long).chain(arg.get_all_aliases().into_iter().flatten()) {
                table.longs.insert(name.to_string(), takes_value);
            }
            if let Some(short) = arg.get_short() {
                table.shorts.insert(short, long.to_string());
            }
        }
        table
    }
}

/// Rewrites docker-syntax `args` (after `run`/`create`) as `--long=value` and `--long`
/// tokens, then `--`, the image and its arguments untouched.
pub fn normalize(args: &[String], table: &FlagTable) -> Result<Vec<String>, FlagError> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            out.push("--".to_string());
            out.push(arg.clone());
            out.extend(rest.cloned());
            return Ok(out);
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let takes_value = *table
                .longs
                .get(name)
                .ok_or_else(|| FlagError(format!("unknown flag: --{name}")))?;
            if TRUE_BY_DEFAULT.contains(&name) {
                let on = match &inline {
                    None => true,
                    Some(value) => parse_bool(value).ok_or_else(|| {
                        FlagError(format!(
                            "invalid argument \"{value}\" for \"--{name}\" flag: not a boolean"
                        ))
                    })?,
                };
                out.push(format!("--{name}={on}"));
                continue;
            }
            push_flag(
                &mut out,
                name,
                takes_value,
                inline,
                &mut rest,
                &format!("--{name}"),
            )?;
        } else {
            let cluster = &arg[1..];
            for (at, short) in cluster.char_indices() {
                let long = table.shorts.get(&short).ok_or_else(|| {
                    FlagError(format!("unknown shorthand flag: '{short}' in {arg}"))
                })?;
                let takes_value = table.longs[long.as_str()];
                let after = &cluster[at + short.len_utf8()..];
                // `-i=false`, `-eK=V`, `-p8080:80`: the rest of the cluster is the value.
                let inline = if let Some(value) = after.strip_prefix('=') {
                    Some(value.to_string())
                } else if takes_value && !after.is_empty() {
                    Some(after.to_string())
                } else {
                    None
                };
                let ends_cluster = inline.is_some() || takes_value;
                push_flag(
                    &mut out,
                    long,
                    takes_value,
                    inline,
                    &mut rest,
                    &format!("-{short}"),
                )?;
                if ends_cluster {
                    break;
                }
            }
        }
    }
    out.push("--".to_string());
    out.extend(rest.cloned());
    Ok(out)
}

fn push_flag<'a>(
    out: &mut Vec<String>,
    long: &str,
    takes_value: bool,
    inline: Option<String>,
    rest: &mut impl Iterator<Item = &'a String>,
    spelled: &str,
) -> Result<(), FlagError> {
    if takes_value {
        let value = match inline {
            Some(value) => value,
            None => rest
                .next()
                .cloned()
                .ok_or_else(|| FlagError(format!("flag needs an argument: {spelled}")))?,
        };
        out.push(format!("--{long}={value}"));
    } else {
        let on = match inline {
            None => true,
            Some(value) => parse_bool(&value).ok_or_else(|| {
                FlagError(format!(
                    "invalid argument \"{value}\" for \"{spelled}\" flag: not a boolean"
                ))
            })?,
        };
        if on {
            out.push(format!("--{long}"));
        }
    }
    Ok(())
}

/// Go's `strconv.ParseBool`, which pflag uses.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Reads `berth run`/`create` arguments (those after the subcommand) into [`RunArgs`].
pub fn parse_run_args(subcommand: &'static str, args: &[String]) -> Result<RunArgs, ParseOutcome> {
    let table = FlagTable::for_run();
    if args
        .iter()
        .take_while(|a| *a != "--" && a.starts_with('-'))
        .any(|a| a == "--help")
    {
        return Err(ParseOutcome::Help(help(subcommand)));
    }
    let normalized = normalize(args, &table).map_err(ParseOutcome::Invalid)?;
    let command = run_command(subcommand);
    let matches = command
        .try_get_matches_from(std::iter::once(format!("berth {subcommand}")).chain(normalized))
        .map_err(|err| ParseOutcome::Invalid(FlagError(clap_message(&err))))?;
    RunArgs::from_arg_matches(&matches)
        .map_err(|err| ParseOutcome::Invalid(FlagError(clap_message(&err))))
}

/// Why [`parse_run_args`] gave no arguments.
#[derive(Debug)]
pub enum ParseOutcome {
    /// `--help`: the text to print.
    Help(String),
    Invalid(FlagError),
}

fn run_command(subcommand: &'static str) -> clap::Command {
    RunArgs::augment_args(
        clap::Command::new(subcommand)
            .bin_name(format!("berth {subcommand}"))
            .disable_help_flag(true),
    )
}

fn help(subcommand: &'static str) -> String {
    run_command(subcommand).render_help().to_string()
}

/// clap's message without its `error: ` prefix and usage block.
fn clap_message(err: &clap::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(line: &str) -> Result<Vec<String>, FlagError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        normalize(&args, &FlagTable::for_run())
    }

    fn ok(line: &str) -> String {
        norm(line).unwrap().join(" ")
    }

    #[test]
    fn docker_syntax_becomes_long_flags_then_the_image() {
        assert_eq!(ok("-itd img"), "--interactive --tty --detach -- img");
        assert_eq!(ok("-ite A=1 img"), "--interactive --tty --env=A=1 -- img");
        assert_eq!(
            ok("-eA=1 -p8080:80 img"),
            "--env=A=1 --publish=8080:80 -- img"
        );
        assert_eq!(ok("--rm=false -i=true img"), "--interactive -- img");
        assert_eq!(ok("--net host img"), "--net=host -- img");
        assert_eq!(
            ok("-v a:/b --volume=c:/d img"),
            "--volume=a:/b --volume=c:/d -- img"
        );
        assert_eq!(ok("img -it --rm"), "-- img -it --rm");
        assert_eq!(ok("-it -- img -x"), "--interactive --tty -- img -x");
        assert_eq!(ok("-h box img"), "--hostname=box -- img");
        assert_eq!(ok("--stop-timeout -1 img"), "--stop-timeout=-1 -- img");
        assert_eq!(ok("-e -x img"), "--env=-x -- img");
    }

    #[test]
    fn unknown_and_incomplete_flags_name_themselves() {
        assert_eq!(norm("--foo img").unwrap_err().0, "unknown flag: --foo");
        assert_eq!(
            norm("-ix img").unwrap_err().0,
            "unknown shorthand flag: 'x' in -ix"
        );
        assert_eq!(norm("-e").unwrap_err().0, "flag needs an argument: -e");
        assert_eq!(
            norm("--rm=maybe img").unwrap_err().0,
            "invalid argument \"maybe\" for \"--rm\" flag: not a boolean"
        );
    }

    #[test]
    fn parsed_arguments_land_in_their_fields() {
        let args: Vec<String> = "-it --rm -e A=1 -e B --gpus all img python -V"
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let run = parse_run_args("run", &args).unwrap();
        assert!(run.interactive && run.tty && run.rm);
        assert_eq!(run.env, ["A=1", "B"]);
        assert_eq!(run.gpus.as_deref(), Some("all"));
        assert_eq!(run.image_and_command, ["img", "python", "-V"]);
        let missing = parse_run_args("run", &["-it".to_string()]).unwrap_err();
        assert!(matches!(missing, ParseOutcome::Invalid(_)), "{missing:?}");
        let help = parse_run_args("run", &["--help".to_string()]).unwrap_err();
        assert!(matches!(help, ParseOutcome::Help(text) if text.contains("--gpus")));
    }
}
