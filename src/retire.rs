//! Retire: read a container's writable-layer changes, leave out what berth itself made
//! and what is disposable, show what would be lost, and remove the container only when
//! nothing is lost or the user said so (DESIGN.md section 5).
//!
//! [`assess`] is pure; [`retire_container`] is the sequence around it.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::cli::RetireArgs;
use crate::context::Context;
use crate::engine::{ChangeKind, ContainerInfo, Engine, Inspected, State};
use crate::error::{Error, Result};
use crate::ui::{self, Printer};

/// How long a container gets to stop on SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Where docker's `--init` binary appears in the writable layer.
const DOCKER_INIT: &str = "/sbin/docker-init";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// A container's changes, sorted into what matters.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// Added or modified files that exist nowhere else: removing the container loses them.
    pub unsaved: Vec<Change>,
    /// Changes under disposable paths: listed, never blocking.
    pub disposable: Vec<Change>,
    /// Files of the image that were deleted: nothing to lose, listed for completeness.
    pub deleted: Vec<Change>,
}

impl Assessment {
    pub fn is_clean(&self) -> bool {
        self.unsaved.is_empty()
    }
}

/// Sorts `changes` into unsaved work, disposable changes and deletions.
///
/// Left out entirely: mount targets and their parent directories (the engine creates
/// them), anything under a mount (it is not in the layer), docker's init binary, and
/// directory entries whose contents are listed themselves.
pub fn assess(
    changes: Vec<(String, ChangeKind)>,
    container: &Inspected,
    disposable: &[String],
) -> Assessment {
    let mut own: Vec<&str> = container.mount_targets.iter().map(String::as_str).collect();
    if container.init {
        own.push(DOCKER_INIT);
    }
    let mut ancestors: HashSet<&str> = HashSet::new();
    for path in own
        .iter()
        .copied()
        .chain(changes.iter().map(|(p, _)| p.as_str()))
    {
        let mut rest = path;
        while let Some((parent, _)) = rest.rsplit_once('/') {
            if parent.is_empty() || !ancestors.insert(parent) {
                break;
            }
            rest = parent;
        }
    }
    let patterns: Vec<Pattern> = disposable.iter().map(|p| Pattern::new(p)).collect();

    let mut assessment = Assessment::default();
    for (path, kind) in &changes {
        let is_own = own.iter().any(|target| is_at_or_under(path, target));
        if is_own || ancestors.contains(path.as_str()) {
            continue;
        }
        let change = Change {
            path: path.clone(),
            kind: *kind,
        };
        if patterns.iter().any(|p| p.matches_at_or_above(path)) {
            assessment.disposable.push(change);
        } else if *kind == ChangeKind::Deleted {
            assessment.deleted.push(change);
        } else {
            assessment.unsaved.push(change);
        }
    }
    assessment
}

fn is_at_or_under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A disposable-path pattern. `/tmp` is anchored at the root; a pattern without a
/// leading `/` (`.cache`, `*.pyc`) matches at any depth, like `**/.cache`. `*` matches
/// within one path component, `**` any number of components. A pattern that matches a
/// directory covers everything below it.
#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<String>,
}

impl Pattern {
    fn new(raw: &str) -> Self {
        let mut parts: Vec<String> = raw
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if !raw.starts_with('/') && parts.first().is_none_or(|p| p != "**") {
            parts.insert(0, "**".into());
        }
        Self { parts }
    }

    fn matches_at_or_above(&self, path: &str) -> bool {
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        (1..=components.len()).any(|n| glob(&self.parts, &components[..n]))
    }
}

fn glob(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| glob(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((component, path_rest)) => {
                component_matches(first, component) && glob(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` matches any run of characters within one component.
fn component_matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// What a person reads in a few seconds: counts, then the places with the most changes.
pub fn summary(assessment: &Assessment, top: usize) -> Vec<String> {
    let mut lines = vec![format!(
        "{} unsaved file(s) outside the workspace and data mounts",
        assessment.unsaved.len()
    )];
    for (place, count) in top_places(&assessment.unsaved, top) {
        lines.push(format!("  {place}  ({count})"));
    }
    if !assessment.disposable.is_empty() {
        lines.push(format!(
            "{} disposable change(s) (temporary files, caches, logs): not kept",
            assessment.disposable.len()
        ));
    }
    if !assessment.deleted.is_empty() {
        lines.push(format!(
            "{} file(s) of the image deleted",
            assessment.deleted.len()
        ));
    }
    lines
}

/// Unsaved paths grouped by their first two components (`/opt/work`, `/root/notes.txt`),
/// most changes first.
fn top_places(changes: &[Change], top: usize) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for change in changes {
        let place: String = change
            .path
            .split('/')
            .filter(|c| !c.is_empty())
            .take(2)
            .fold(String::new(), |acc, c| acc + "/" + c);
        match counts.iter_mut().find(|(p, _)| *p == place) {
            Some((_, n)) => *n += 1,
            None => counts.push((place, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(top);
    counts
}

/// How the caller decided about unsaved work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    /// `--yes`: accept the loss without asking.
    pub yes: bool,
    /// Only report; change nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub project: String,
    pub container: String,
    /// `removed`, `kept` (said no), or `would_remove` / `would_ask` for a dry run.
    pub action: &'static str,
    #[serde(flatten)]
    pub assessment: Assessment,
}

/// `berth retire PROJECT`.
pub async fn retire(args: &RetireArgs, printer: &Printer) -> Result<()> {
    let ctx = Context::load(&args.project, &Default::default())?;
    let engine = Engine::connect().await?;
    let container = engine
        .find(ctx.project.as_str(), ctx.user.uid)
        .await?
        .ok_or_else(|| {
            Error::failed(format!("project {} has no container of yours", ctx.project))
                .hint("`berth list` shows your containers")
        })?;
    let consent = Consent {
        yes: args.yes,
        dry_run: args.dry_run,
    };
    let outcome = retire_container(
        &engine,
        &container,
        &ctx.settings.disposable.value,
        consent,
        printer,
    )
    .await?;
    if args.json {
        printer.json(&outcome);
    }
    Ok(())
}

/// Checks `container` and removes it when that loses nothing or the caller consented.
/// Used by `retire` and `deploy --recreate`.
pub async fn retire_container(
    engine: &Engine,
    container: &ContainerInfo,
    disposable: &[String],
    consent: Consent,
    printer: &Printer,
) -> Result<Outcome> {
    let inspected = engine.inspect(&container.id).await?;
    if inspected.state == State::Busy {
        return Err(Error::failed(format!(
            "{} is restarting or being removed; try again in a moment",
            container.name
        )));
    }
    let changes = engine.changes(&container.id).await?;
    let assessment = assess(changes, &inspected, disposable);
    let outcome = |action| Outcome {
        project: container.project.clone(),
        container: container.name.clone(),
        action,
        assessment: assessment.clone(),
    };

    if !assessment.is_clean() || consent.dry_run {
        for line in summary(&assessment, 8) {
            printer.note(&line);
        }
    }
    if consent.dry_run {
        let action = if assessment.is_clean() || consent.yes {
            "would_remove"
        } else {
            "would_ask"
        };
        printer.note(&format!(
            "dry run: {} {}",
            container.name,
            if action == "would_remove" {
                "would be removed"
            } else {
                "would not be removed without your consent (a prompt, or --yes)"
            }
        ));
        return Ok(outcome(action));
    }
    if !assessment.is_clean() && !consent.yes {
        let question = format!(
            "Remove {} and lose {} unsaved file(s)?",
            container.name,
            assessment.unsaved.len()
        );
        match ui::confirm(&question)? {
            Some(true) => {}
            Some(false) => {
                printer.note(&format!("kept {}", container.name));
                return Ok(outcome("kept"));
            }
            None => {
                return Err(Error::refused(format!(
                    "{} holds {} unsaved file(s); not removing it",
                    container.name,
                    assessment.unsaved.len()
                ))
                .hint("copy what you need into /workspace, or pass --yes to discard it"))
            }
        }
    }

    if inspected.state == State::Paused {
        engine.unpause(&container.id).await?;
    }
    engine.stop(&container.id, STOP_TIMEOUT).await?;
    engine.remove(&container.id).await?;
    printer.note(&format!("retired {}", container.name));
    Ok(outcome("removed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspected(targets: &[&str]) -> Inspected {
        Inspected {
            state: State::Running,
            image: "img".into(),
            mount_targets: targets.iter().map(|t| t.to_string()).collect(),
            init: true,
            exit_code: 0,
        }
    }

    fn changes(list: &[(&str, ChangeKind)]) -> Vec<(String, ChangeKind)> {
        list.iter().map(|(p, k)| (p.to_string(), *k)).collect()
    }

    fn defaults() -> Vec<String> {
        crate::config::DEFAULT_DISPOSABLE
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn paths(list: &[Change]) -> Vec<&str> {
        list.iter().map(|c| c.path.as_str()).collect()
    }

    use ChangeKind::*;

    #[test]
    fn berths_own_mount_points_and_init_are_not_work() {
        // What the engine reports for a fresh berth container (seen on Docker 20.10).
        let fresh = changes(&[
            ("/data", Added),
            ("/home", Added),
            ("/home/alice", Added),
            ("/sbin", Added),
            ("/sbin/docker-init", Added),
            ("/workspace", Added),
        ]);
        let a = assess(
            fresh,
            &inspected(&["/workspace", "/home/alice", "/data"]),
            &defaults(),
        );
        assert_eq!(a, Assessment::default());
        assert!(a.is_clean());
    }

    #[test]
    fn files_outside_the_mounts_are_unsaved_and_their_directories_are_not_listed() {
        let list = changes(&[
            ("/opt", Added),
            ("/opt/work", Added),
            ("/opt/work/result.csv", Added),
            ("/etc", Modified),
            ("/etc/motd", Modified),
            ("/opt/empty", Added),
        ]);
        let a = assess(list, &inspected(&["/workspace"]), &defaults());
        assert_eq!(
            paths(&a.unsaved),
            ["/opt/work/result.csv", "/etc/motd", "/opt/empty"]
        );
    }

    #[test]
    fn disposable_paths_never_block() {
        let list = changes(&[
            ("/tmp", Modified),
            ("/tmp/q/f", Added),
            ("/var/tmp/x", Added),
            ("/root/.cache/pip/http/a", Added),
            ("/usr/lib/python3/x/__pycache__/m.cpython-311.pyc", Added),
            ("/app/mod.pyc", Added),
            ("/var/log/apt/history.log", Modified),
            ("/tmpfoo", Added),
        ]);
        let a = assess(list, &inspected(&[]), &defaults());
        assert_eq!(paths(&a.unsaved), ["/tmpfoo"]);
        assert_eq!(a.disposable.len(), 6);
    }

    #[test]
    fn deletions_are_listed_but_lose_nothing() {
        let list = changes(&[("/etc", Modified), ("/etc/old.conf", Deleted)]);
        let a = assess(list, &inspected(&[]), &defaults());
        assert!(a.is_clean());
        assert_eq!(paths(&a.deleted), ["/etc/old.conf"]);
    }

    #[test]
    fn a_sibling_with_a_common_prefix_is_not_under_a_mount() {
        let list = changes(&[("/workspace2/x", Added), ("/workspace/x", Added)]);
        let a = assess(list, &inspected(&["/workspace"]), &defaults());
        assert_eq!(paths(&a.unsaved), ["/workspace2/x"]);
    }

    #[test]
    fn patterns_anchor_or_float() {
        let p = Pattern::new("/var/cache");
        assert!(p.matches_at_or_above("/var/cache/apt/x"));
        assert!(!p.matches_at_or_above("/opt/var/cache"));
        let p = Pattern::new(".cache");
        assert!(p.matches_at_or_above("/home/a/.cache/x"));
        let p = Pattern::new("/data/**/scratch");
        assert!(p.matches_at_or_above("/data/a/b/scratch/x"));
        assert!(!p.matches_at_or_above("/data/a/b/scratchy"));
        assert!(component_matches("*.pyc", "m.pyc"));
        assert!(component_matches("a*b*c", "axxbyyc"));
        assert!(!component_matches("a*b*c", "axxbyy"));
        assert!(component_matches("*", ""));
    }

    #[test]
    fn summary_counts_and_groups() {
        let a = Assessment {
            unsaved: ["/opt/w/a", "/opt/w/b", "/root/notes.txt"]
                .iter()
                .map(|p| Change {
                    path: p.to_string(),
                    kind: Added,
                })
                .collect(),
            ..Default::default()
        };
        assert_eq!(
            summary(&a, 8),
            [
                "3 unsaved file(s) outside the workspace and data mounts",
                "  /opt/w  (2)",
                "  /root/notes.txt  (1)"
            ]
        );
    }
}
