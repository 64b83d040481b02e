//! How a pull shows its progress: bars redrawn in place on a terminal, a few plain lines
//! per layer in a log, nothing with `--quiet`. The engine reports [`PullEvent`]s; this
//! module only renders them.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::PullEvent;
use crate::ui::Printer;
use crate::units::human_size;

/// How often the bars are redrawn when nothing else draws them.
const TICK: Duration = Duration::from_millis(100);

/// The renderer the printer calls for.
pub enum Progress {
    Quiet,
    Plain { log: PlainLog, printer: Printer },
    Live { bars: Box<Bars>, tally: Tally },
}

impl Progress {
    pub fn new(printer: &Printer) -> Self {
        // indicatif draws nothing where TERM is unset or `dumb` (an editor's shell
        // buffer, say): that terminal gets the plain lines instead of silence.
        let target = ProgressDrawTarget::stderr();
        if printer.quiet() {
            Progress::Quiet
        } else if printer.live_progress() && !target.is_hidden() {
            Progress::Live {
                bars: Box::new(Bars::new(target)),
                tally: Tally::default(),
            }
        } else {
            Progress::Plain {
                log: PlainLog::default(),
                printer: *printer,
            }
        }
    }

    pub fn event(&mut self, event: &PullEvent) {
        match self {
            Progress::Quiet => {}
            Progress::Plain { log, printer } => {
                if let Some(line) = log.line(event) {
                    printer.note(&line);
                }
            }
            Progress::Live { bars, tally } => {
                tally.event(event);
                bars.event(event);
            }
        }
    }

    /// Takes the bars off the terminal, and after a pull that succeeded says what came.
    pub fn finish(self, image: &str, succeeded: bool, printer: &Printer) {
        if let Progress::Live { bars, tally } = self {
            drop(bars);
            if succeeded {
                printer.note(&tally.summary(image));
            }
        }
    }
}

/// Plain lines for a log: one when a layer's status changes (never one per progress
/// tick), and the engine's lines about the whole image (`Digest: ...`, `Status: ...`).
#[derive(Debug, Default)]
pub struct PlainLog {
    status: HashMap<String, String>,
}

impl PlainLog {
    /// The line `event` adds to the log, if any.
    pub fn line(&mut self, event: &PullEvent) -> Option<String> {
        if event.status.is_empty() {
            return None;
        }
        let Some(id) = &event.id else {
            return Some(event.status.clone());
        };
        if self.status.get(id) == Some(&event.status) {
            return None;
        }
        self.status.insert(id.clone(), event.status.clone());
        Some(match event.total {
            Some(total) if total > 0 => format!("{id}: {} ({})", event.status, human_size(total)),
            _ => format!("{id}: {}", event.status),
        })
    }
}

/// What a pull brought, for the line that replaces the bars.
#[derive(Debug, Default)]
pub struct Tally {
    /// Bytes each layer downloaded, by layer id.
    downloaded: HashMap<String, u64>,
}

impl Tally {
    pub fn event(&mut self, event: &PullEvent) {
        if let (Some(id), "Downloading", Some(total)) =
            (&event.id, event.status.as_str(), event.total)
        {
            self.downloaded.insert(id.clone(), total);
        }
    }

    pub fn summary(&self, image: &str) -> String {
        let layers = self.downloaded.len();
        if layers == 0 {
            return format!("pulled {image}");
        }
        let bytes = self.downloaded.values().sum();
        let plural = if layers == 1 { "" } else { "s" };
        format!(
            "pulled {image} ({layers} layer{plural}, {})",
            human_size(bytes)
        )
    }
}

/// One bar per layer on stderr: its id, status and, while bytes move, how many of how
/// many. Dropping it takes every bar off the terminal, after an error too.
pub struct Bars {
    multi: MultiProgress,
    /// Each layer's bar, and whether it is showing bytes.
    bars: HashMap<String, (ProgressBar, bool)>,
    words: ProgressStyle,
    bytes: ProgressStyle,
}

impl Bars {
    fn new(target: ProgressDrawTarget) -> Self {
        // Templates are constants: a failure here is a bug, and the default style will do.
        let words = ProgressStyle::with_template("{prefix}: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bytes = ProgressStyle::with_template(
            "{prefix}: {msg:<18} [{wide_bar}] {binary_bytes}/{binary_total_bytes}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            words,
            bytes,
        }
    }

    fn event(&mut self, event: &PullEvent) {
        // Lines about the whole image are summed up by the note after the bars.
        let Some(id) = &event.id else { return };
        let first = self.bars.is_empty();
        let (bar, showing_bytes) = self.bars.entry(id.clone()).or_insert_with(|| {
            let bar = ProgressBar::no_length()
                .with_style(self.words.clone())
                .with_prefix(id.clone())
                .with_message(event.status.clone());
            let bar = self.multi.add(bar);
            if first {
                // A draw skipped by indicatif's rate limit is made up by the next tick,
                // so a layer never shows a stale status while the engine is silent.
                bar.enable_steady_tick(TICK);
            }
            (bar, false)
        });
        match (event.current, event.total) {
            (Some(current), Some(total)) if total > 0 => {
                if !*showing_bytes {
                    bar.set_style(self.bytes.clone());
                    *showing_bytes = true;
                }
                bar.set_length(total);
                bar.set_position(current.min(total));
            }
            _ if *showing_bytes => {
                bar.set_style(self.words.clone());
                *showing_bytes = false;
            }
            _ => {}
        }
        // Last, so that the draw it makes shows the new style and bytes too.
        bar.set_message(event.status.clone());
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        // The ticker stops first, or it could draw the bars again after the clear.
        for (bar, _) in self.bars.values() {
            bar.disable_steady_tick();
        }
        // Cleared all at once, then finished out of sight: finishing them one by one
        // would redraw the rest each time.
        self.multi.clear().ok();
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
        for (bar, _) in self.bars.values() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Option<&str>, status: &str, progress: Option<(u64, u64)>) -> PullEvent {
        PullEvent {
            id: id.map(str::to_string),
            status: status.to_string(),
            current: progress.map(|p| p.0),
            total: progress.map(|p| p.1),
        }
    }

    /// What the engine (20.10) reported for a real pull of two layers.
    fn real_pull() -> Vec<PullEvent> {
        let (a, b) = (Some("1aa3e34c5c91"), Some("e0b8eba1eb13"));
        vec![
            event(Some("1"), "Pulling from berth-pull-1", None),
            event(a, "Pulling fs layer", None),
            event(b, "Pulling fs layer", None),
            event(a, "Downloading", Some((36637, 1984512))),
            event(b, "Downloading", Some((3870, 142848))),
            event(b, "Downloading", Some((142848, 142848))),
            event(b, "Verifying Checksum", None),
            event(b, "Download complete", None),
            event(a, "Downloading", Some((491520, 1984512))),
            event(a, "Downloading", Some((1867776, 1984512))),
            event(a, "Verifying Checksum", None),
            event(a, "Download complete", None),
            event(a, "Extracting", Some((32768, 1984512))),
            event(a, "Extracting", Some((1984512, 1984512))),
            event(a, "Pull complete", None),
            event(b, "Extracting", Some((32768, 142848))),
            event(b, "Extracting", Some((142848, 142848))),
            event(b, "Pull complete", None),
            event(None, "Digest: sha256:7720", None),
            event(None, "Status: Downloaded newer image for x:1", None),
        ]
    }

    #[test]
    fn a_log_gets_a_line_per_status_change_not_per_tick() {
        let mut log = PlainLog::default();
        let lines: Vec<String> = real_pull().iter().filter_map(|e| log.line(e)).collect();
        assert_eq!(
            lines,
            [
                "1: Pulling from berth-pull-1",
                "1aa3e34c5c91: Pulling fs layer",
                "e0b8eba1eb13: Pulling fs layer",
                "1aa3e34c5c91: Downloading (1.9 MiB)",
                "e0b8eba1eb13: Downloading (139.5 KiB)",
                "e0b8eba1eb13: Verifying Checksum",
                "e0b8eba1eb13: Download complete",
                "1aa3e34c5c91: Verifying Checksum",
                "1aa3e34c5c91: Download complete",
                "1aa3e34c5c91: Extracting (1.9 MiB)",
                "1aa3e34c5c91: Pull complete",
                "e0b8eba1eb13: Extracting (139.5 KiB)",
                "e0b8eba1eb13: Pull complete",
                "Digest: sha256:7720",
                "Status: Downloaded newer image for x:1",
            ]
        );
    }

    #[test]
    fn a_log_skips_events_with_nothing_to_say() {
        let mut log = PlainLog::default();
        assert_eq!(log.line(&event(Some("a"), "", Some((1, 2)))), None);
        assert_eq!(log.line(&event(None, "", None)), None);
        assert_eq!(
            log.line(&event(Some("a"), "Downloading", Some((0, 0))))
                .as_deref(),
            Some("a: Downloading")
        );
    }

    #[test]
    fn the_summary_counts_downloaded_layers_and_bytes() {
        let mut tally = Tally::default();
        for e in real_pull() {
            tally.event(&e);
        }
        assert_eq!(tally.summary("x:1"), "pulled x:1 (2 layers, 2.0 MiB)");
        let mut nothing = Tally::default();
        nothing.event(&event(Some("a"), "Already exists", None));
        assert_eq!(nothing.summary("x:1"), "pulled x:1");
    }
}
