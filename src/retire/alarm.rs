//! The alarm on entry: `berth shell` and a deploy of a running project say, in one line
//! on stderr, when the container's writable layer holds more than `[retire] warn_over`
//! (100 MiB by default), and where to see what it is. Stdout and the exit status are
//! unchanged, and where the engine takes longer than [`BUDGET`] to size the layer (a
//! storage driver that walks the whole image to do it), nothing is said.

use std::time::Duration;

use crate::container::ContainerInfo;
use crate::context::Context;
use crate::engine::Engine;
use crate::ui::Printer;
use crate::units::human_size;

/// `[retire] warn_over` when nothing sets it.
pub const DEFAULT_WARN_OVER: u64 = 100 << 20;

/// The longest the alarm may hold up the command.
pub const BUDGET: Duration = Duration::from_millis(300);

/// Milliseconds in place of [`BUDGET`]: for a slow engine that should be waited for,
/// and for tests on a busy machine.
pub const BUDGET_VAR: &str = "BERTH_ALARM_BUDGET_MS";

fn budget() -> Duration {
    std::env::var(BUDGET_VAR)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(BUDGET, Duration::from_millis)
}

/// The line, where `container` of `ctx`'s project holds more than its `warn_over`.
pub async fn on_entry(
    engine: &Engine,
    ctx: &Context,
    container: &ContainerInfo,
    printer: &Printer,
) {
    let over = ctx
        .settings
        .warn_over
        .as_ref()
        .map_or(DEFAULT_WARN_OVER, |w| w.value);
    let project = ctx.project.as_str();
    let sized = tokio::time::timeout(
        budget(),
        engine.list(Some(ctx.user.uid), Some(project), true),
    );
    let Ok(Ok(listed)) = sized.await else {
        return;
    };
    let size = listed
        .iter()
        .find(|c| c.id == container.id)
        .and_then(|c| c.size_rw)
        .map_or(0, |bytes| bytes.max(0) as u64);
    if size > over {
        printer.warn(&alarm(&container.name, project, size, over));
    }
}

fn alarm(name: &str, project: &str, size: u64, over: u64) -> String {
    format!(
        "{name} holds {} in its writable layer, more than [retire] warn_over ({}): \
         `berth retire {project} --dry-run` shows what of it exists nowhere else",
        human_size(size),
        human_size(over)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_is_one_line_with_the_hint() {
        let line = alarm("p._.u", "p", 300 << 20, DEFAULT_WARN_OVER);
        assert!(!line.contains('\n'));
        assert!(line.contains("300"), "{line}");
        assert!(line.contains("`berth retire p --dry-run`"), "{line}");
    }
}
