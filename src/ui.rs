//! The one printer: colour decided once, `error:`/`hint:` from one place, tables,
//! JSON, and the `[y/N]` prompt. Results go to stdout; progress and notes to stderr.

use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};

use owo_colors::OwoColorize;
use serde::Serialize;

use crate::cli::ColorChoice;
use crate::error::{Error, Result};

/// Colour on or off: `--color`, then `NO_COLOR` (non-empty), then `CLICOLOR_FORCE`
/// (non-empty, not `0`), then whether the stream is a terminal.
pub fn decide_color(
    choice: ColorChoice,
    no_color: Option<OsString>,
    clicolor_force: Option<OsString>,
    is_terminal: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if no_color.is_some_and(|v| !v.is_empty()) {
                false
            } else if clicolor_force.is_some_and(|v| !v.is_empty() && v != "0") {
                true
            } else {
                is_terminal
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    color_out: bool,
    color_err: bool,
    quiet: bool,
    progress: bool,
}

impl Printer {
    /// The printer for this run: colour decided once per stream, and `quiet`
    /// (`-q/--quiet`) silences notes and progress.
    pub fn new(choice: ColorChoice, quiet: bool) -> Self {
        let decide = |is_terminal| {
            decide_color(
                choice,
                std::env::var_os("NO_COLOR"),
                std::env::var_os("CLICOLOR_FORCE"),
                is_terminal,
            )
        };
        Self {
            color_out: decide(io::stdout().is_terminal()),
            color_err: decide(io::stderr().is_terminal()),
            quiet,
            progress: !quiet && io::stderr().is_terminal(),
        }
    }

    /// Whether live progress (a bar redrawn in place) belongs on stderr: a terminal, and
    /// not `--quiet`.
    pub fn live_progress(&self) -> bool {
        self.progress
    }

    /// Whether notes and progress are silenced (`-q/--quiet`).
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A line of the result, on stdout. A closed pipe (`berth list | head -1`) ends the
    /// program quietly, as a filter should.
    pub fn line(&self, text: &str) {
        let mut out = io::stdout().lock();
        if let Err(err) = writeln!(out, "{text}") {
            if err.kind() == io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }

    /// `value` as pretty JSON on stdout, streamed: a report of a hundred thousand paths
    /// is never held as one string.
    pub fn json(&self, value: &impl Serialize) {
        let mut out = io::BufWriter::new(io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(err) => self.error(&Error::failed(format!("cannot write JSON: {err}"))),
        }
    }

    /// A note about what berth is doing, on stderr; none with `--quiet`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    pub fn warn(&self, text: &str) {
        if self.color_err {
            eprintln!("{} {text}", "warning:".yellow().bold());
        } else {
            eprintln!("warning: {text}");
        }
    }

    pub fn error(&self, err: &Error) {
        let mut lines = Vec::new();
        let (error, hint) = if self.color_err {
            (
                "error:".red().bold().to_string(),
                "hint:".cyan().bold().to_string(),
            )
        } else {
            ("error:".to_string(), "hint:".to_string())
        };
        lines.push(format!("{error} {}", err.message));
        lines.extend(err.details.iter().map(|d| format!("  {d}")));
        if let Some(text) = &err.hint {
            lines.push(format!("{hint} {text}"));
        }
        eprintln!("{}", lines.join("\n"));
    }

    /// Rows in columns on stdout ([`table`]), the first a bold header.
    pub fn table(&self, rows: &[Vec<String>]) {
        let mut lines = table(rows).into_iter();
        if let Some(header) = lines.next() {
            self.line(&self.bold(header.trim_end()));
        }
        for line in lines {
            self.line(line.trim_end());
        }
    }

    pub fn bold(&self, text: &str) -> String {
        if self.color_out {
            text.bold().to_string()
        } else {
            text.to_string()
        }
    }

    pub fn green(&self, text: &str) -> String {
        if self.color_out {
            text.green().to_string()
        } else {
            text.to_string()
        }
    }
}

/// Asks `question [y/N]` on the terminal; anything but y/yes is no. `None` when
/// standard input is not a terminal, so the caller refuses instead of guessing.
pub fn confirm(question: &str) -> Result<Option<bool>> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Ok(None);
    }
    eprint!("{question} [y/N] ");
    io::stderr().flush().ok();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|err| Error::failed(format!("cannot read your answer: {err}")))?;
    let answer = answer.trim().to_lowercase();
    Ok(Some(answer == "y" || answer == "yes"))
}

/// Rows padded into columns, two spaces apart; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                } else {
                    line.push_str(cell);
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> Option<OsString> {
        Some(text.into())
    }

    #[test]
    fn colour_is_decided_by_flag_then_no_color_then_force_then_terminal() {
        use ColorChoice::*;
        assert!(decide_color(Always, os("1"), None, false));
        assert!(!decide_color(Never, None, os("1"), true));
        assert!(!decide_color(Auto, os("1"), os("1"), true));
        assert!(decide_color(Auto, os(""), os("1"), false));
        assert!(!decide_color(Auto, None, os("0"), false));
        assert!(decide_color(Auto, None, None, true));
        assert!(!decide_color(Auto, None, None, false));
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long".into(), "x".into(), "y".into()],
        ];
        assert_eq!(table(&rows), ["A     BB  C", "long  x   y"]);
    }
}
