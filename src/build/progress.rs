//! How a build shows itself: the engine's output as it comes, and on a terminal one
//! status line below it, redrawn in place: the step the engine is at, and how much of
//! the context has been sent. Elsewhere (a log, a pipe, `TERM=dumb`) the output alone,
//! a line for each of the engine's lines.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ui::Printer;

/// How often the status line is redrawn while the engine is silent.
const TICK: Duration = Duration::from_millis(100);

/// The build's output and status line.
pub struct Shown {
    printer: Printer,
    /// Counts the context's bytes as they are sent; hidden off a terminal.
    bar: ProgressBar,
    live: bool,
    image: String,
}

impl Shown {
    /// For a build of `image` whose context's tar takes about `bytes`.
    pub fn new(printer: &Printer, image: &str, bytes: u64) -> Self {
        let target = ProgressDrawTarget::stderr();
        let live = !printer.quiet() && printer.live_progress() && !target.is_hidden();
        let bar = match live {
            true => ProgressBar::with_draw_target(Some(bytes), target),
            false => ProgressBar::hidden(),
        };
        // The template is a constant: a failure here is a bug, and the default will do.
        let style = ProgressStyle::with_template(
            "{msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} of context sent",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_length(bytes);
        bar.set_message(format!("building {image}"));
        if live {
            bar.enable_steady_tick(TICK);
        }
        Self {
            printer: *printer,
            bar,
            live,
            image: image.to_string(),
        }
    }

    /// What counts the bytes sent: handed to the thread that writes the context.
    pub fn counter(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// One line of the engine's output: above the status line on a terminal, which
    /// then names the step it started.
    pub fn line(&self, line: &str) {
        if !self.live {
            self.printer.note(line);
            return;
        }
        self.bar.println(line);
        if let Some(step) = step(line) {
            self.bar
                .set_message(format!("building {}: step {step}", self.image));
        }
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        self.bar.disable_steady_tick();
        self.bar.finish_and_clear();
    }
}

/// `3/13` of the classic builder's `Step 3/13 : RUN …`.
fn step(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("Step ")?;
    let (step, _) = rest.split_once(" :")?;
    let (at, of) = step.split_once('/')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(at) && digits(of)).then_some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_read_from_the_builders_line() {
        assert_eq!(step("Step 3/13 : RUN pip install x"), Some("3/13"));
        assert_eq!(step("Step 1/4 : FROM busybox"), Some("1/4"));
        assert_eq!(step(" ---> Running in 5e119eb702cb"), None);
        assert_eq!(step("Step x/4 : FROM busybox"), None);
        assert_eq!(step("Step 3/13"), None);
    }
}
