//! Test helpers shared by the dockerargs tests: a test line read through the real flag
//! parser and [`spec_from_args`], with a fixed environment.

use super::spec_from_args;
use crate::dockerflags::{parse_run_args, FlagError, ParseOutcome};
use crate::spec::ContainerSpec;

/// Splits a test line into words: whitespace separates, '...' groups literally.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

pub(super) fn lookup(name: &str) -> Option<String> {
    match name {
        "HOME_DIR" => Some("/home/me".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

pub(super) fn parse_argv(argv: &[String]) -> Result<ContainerSpec, FlagError> {
    let run = match parse_run_args("run", argv) {
        Ok(run) => run,
        Err(ParseOutcome::Invalid(err)) => return Err(err),
        Err(ParseOutcome::Help(_)) => panic!("help for {argv:?}"),
    };
    spec_from_args(&run, &lookup)
}

pub(super) fn parse(line: &str) -> Result<ContainerSpec, FlagError> {
    parse_argv(&words(line))
}

pub(super) fn spec(line: &str) -> ContainerSpec {
    parse(line).unwrap_or_else(|err| panic!("{line}: {}", err.0))
}

pub(super) fn error(line: &str) -> String {
    match parse(line) {
        Ok(spec) => panic!("{line}: accepted as {spec:?}"),
        Err(err) => err.0,
    }
}

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
