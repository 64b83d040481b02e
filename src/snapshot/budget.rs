//! The policy's `[snapshot] budget`: what all of a user's snapshots may take on disk,
//! each file counted once however many snapshots link it. Past it, the oldest go first,
//! of whichever project; the one just taken never does. The owner is told on stderr and
//! in the event log (`snapshot-budget`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{metas_in, Meta};
use crate::error::{Error, Result};
use crate::events;
use crate::ui::Printer;
use crate::units::human_size;

/// One snapshot of the user's, of any project.
struct Held {
    project: String,
    meta: Meta,
    path: PathBuf,
    /// Its files: device, inode, size.
    files: Vec<(u64, u64, u64)>,
}

/// The files below `dir` (device, inode, size), never following a link.
fn files_in(dir: &Path) -> std::io::Result<Vec<(u64, u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                found.push((meta.dev(), meta.ino(), meta.len()));
            }
        }
    }
    Ok(found)
}

/// Which of `held` (oldest first) go so that the rest take at most `budget`, never
/// `keep`; and what the rest take then. A file linked from several snapshots is counted
/// once, and freed only with the last of them.
fn past_budget<'a>(held: &'a [Held], budget: u64, keep: &Path) -> (Vec<&'a Held>, u64) {
    let mut links: HashMap<(u64, u64), (usize, u64)> = HashMap::new();
    for h in held {
        for &(dev, ino, size) in &h.files {
            links.entry((dev, ino)).or_insert((0, size)).0 += 1;
        }
    }
    let mut total: u64 = links.values().map(|(_, size)| size).sum();
    let mut going = Vec::new();
    for h in held {
        if total <= budget {
            break;
        }
        if h.path == keep {
            continue;
        }
        for &(dev, ino, _) in &h.files {
            if let Some((count, size)) = links.get_mut(&(dev, ino)) {
                *count -= 1;
                if *count == 0 {
                    total -= *size;
                }
            }
        }
        going.push(h);
    }
    (going, total)
}

/// Removes the oldest of the user's snapshots in `root` while they take more than
/// `budget`, never `taken`; says what went, and where the budget still is not met.
pub fn enforce(root: &Path, budget: u64, taken: &Path, printer: &Printer) -> Result<Vec<PathBuf>> {
    let mut held = Vec::new();
    let projects = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io("read", root, err)),
    };
    for entry in projects.flatten() {
        let folder = entry.path();
        if !folder.is_dir() {
            continue;
        }
        let project = entry.file_name().to_string_lossy().into_owned();
        for meta in metas_in(&folder)? {
            let path = folder.join(&meta.name);
            let files = files_in(&path).map_err(|err| Error::io("read", &path, err))?;
            held.push(Held {
                project: project.clone(),
                path,
                meta,
                files,
            });
        }
    }
    held.sort_by(|a, b| (&a.meta.taken, &a.meta.name).cmp(&(&b.meta.taken, &b.meta.name)));
    let (going, left) = past_budget(&held, budget, taken);
    let mut removed = Vec::new();
    for h in going {
        super::remove(&h.path)?;
        let why = format!(
            "removed snapshot {} of {} ({}): your snapshots took more than the policy's \
             [snapshot] budget of {}",
            h.meta.name,
            h.project,
            human_size(h.meta.bytes),
            human_size(budget)
        );
        printer.warn(&why);
        events::log(printer, "snapshot-budget", &h.project, &Ok(()), |()| {
            ("removed", Some(h.path.display().to_string()))
        });
        removed.push(h.path.clone());
    }
    if left > budget {
        printer.warn(&format!(
            "your snapshots take {}, more than the policy's [snapshot] budget of {}: the \
             newest alone does",
            human_size(left),
            human_size(budget)
        ));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of one file of `bytes`, inode `ino`.
    fn held(name: &str, bytes: u64) -> Held {
        held_linking(name, bytes, bytes)
    }

    fn held_linking(name: &str, bytes: u64, ino: u64) -> Held {
        Held {
            files: vec![(1, ino, bytes)],
            project: "p".into(),
            meta: Meta {
                taken: name.into(),
                name: name.into(),
                container: String::new(),
                container_id: String::new(),
                image: String::new(),
                files: 1,
                bytes,
                paused_ms: None,
                all: false,
                not_copied: Vec::new(),
                stamp: None,
                roots: Vec::new(),
                linked: 0,
                linked_bytes: 0,
            },
            path: PathBuf::from(name),
        }
    }

    fn names(going: Vec<&Held>) -> Vec<String> {
        going.iter().map(|h| h.meta.name.clone()).collect()
    }

    #[test]
    fn the_oldest_go_first_and_never_the_one_just_taken() {
        let all = [held("a", 50), held("b", 30), held("c", 40)];
        let (going, left) = past_budget(&all, 100, Path::new("c"));
        assert_eq!((names(going), left), (vec!["a".to_string()], 70));
        let (going, left) = past_budget(&all, 120, Path::new("c"));
        assert_eq!((names(going), left), (vec![], 120));
        // The newest alone is over: all the others go, and it stays.
        let (going, left) = past_budget(&all, 10, Path::new("c"));
        assert_eq!(
            (names(going), left),
            (vec!["a".to_string(), "b".to_string()], 40)
        );
    }

    #[test]
    fn a_file_linked_from_several_snapshots_counts_once_and_goes_with_the_last() {
        // b links a's file; c has one of its own.
        let all = [
            held_linking("a", 50, 7),
            held_linking("b", 50, 7),
            held("c", 40),
        ];
        let (going, left) = past_budget(&all, 90, Path::new("c"));
        assert_eq!((names(going), left), (vec![], 90), "50 + 40");
        let (going, left) = past_budget(&all, 60, Path::new("c"));
        assert_eq!(
            (names(going), left),
            (vec!["a".to_string(), "b".to_string()], 40)
        );
    }
}
