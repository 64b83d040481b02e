//! Which of a container's changes are work: leave out what the engine and berth made
//! (mount points, docker's init) and sort the rest into unsaved work, disposable
//! changes and deletions. Pure; one pass over the engine's list.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::container::ChangeKind;
use crate::layer::{ChangeList, PathText};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Shared, not copied, between the list read, the assessment, the report and the
    /// JSON.
    pub path: PathText,
    pub kind: ChangeKind,
}

/// A container's changes, sorted into what matters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Added or modified files that exist nowhere else: removing the container loses them.
    pub unsaved: Vec<Change>,
    /// Changes under disposable paths: listed, never blocking.
    pub disposable: Vec<Change>,
    /// Files of the image that were deleted: nothing to lose, listed for completeness.
    pub deleted: Vec<Change>,
    /// Directories of the image whose mode or times changed and nothing else (what is
    /// left of a file created and deleted again): nothing to lose, not blocking.
    pub touched_dirs: Vec<Change>,
    /// Directories the container added whose contents are listed above. A rescue copies
    /// each one whole, in one archive call, instead of file by file.
    pub added_dirs: Vec<String>,
}

impl Assessment {
    pub fn is_clean(&self) -> bool {
        self.unsaved.is_empty()
    }

    /// Modified paths with nothing listed below them: files, or directories whose own
    /// metadata changed. Only the engine can tell which.
    pub fn modified_leaves(&self) -> impl Iterator<Item = &str> {
        self.unsaved
            .iter()
            .filter(|c| c.kind == ChangeKind::Modified)
            .map(|c| &*c.path)
    }

    /// Moves the modified leaves that are directories (`dirs`) out of the unsaved work.
    pub fn settle_dirs(&mut self, dirs: &HashSet<String>) {
        // In place: the unsaved list can hold a hundred thousand changes.
        let touched = |c: &Change| c.kind == ChangeKind::Modified && dirs.contains(&*c.path);
        self.touched_dirs = self
            .unsaved
            .iter()
            .filter(|c| touched(c))
            .cloned()
            .collect();
        self.unsaved.retain(|c| !touched(c));
    }
}

/// Sorts `changes` into unsaved work, disposable changes and deletions.
///
/// `own` are where berth or the engine put something (a mount point, docker's init, the
/// identity files), as they land in the layer ([`resolve`]). Left out: each of them,
/// the directories above them (made or touched only to hold them), and directory
/// entries whose contents are listed themselves. What lies beneath an own path is
/// judged like anything else.
pub fn assess(changes: ChangeList, own: &[String], disposable: &Disposable) -> Assessment {
    let own: HashSet<&str> = own.iter().map(String::as_str).collect();
    let own_parents: HashSet<&str> = own.iter().flat_map(|p| parents(p)).collect();
    let listed_parents: HashSet<&str> = changes.iter().flat_map(|(p, _)| parents(p)).collect();
    // Only directories matter here, so the set stays as small as the tree is wide.
    let added: HashSet<&str> = changes
        .iter()
        .filter(|(p, kind)| *kind == ChangeKind::Added && listed_parents.contains(p))
        .map(|(p, _)| p)
        .collect();

    // Decide first, while the sets borrow the list; then share the paths out of it.
    let buckets: Vec<Option<Bucket>> = changes
        .iter()
        .map(|(path, kind)| {
            if own.contains(path) || own_parents.contains(path) {
                None
            } else if listed_parents.contains(path) {
                added.contains(path).then_some(Bucket::AddedDir)
            } else if disposable.matches(path) {
                Some(Bucket::Disposable)
            } else if kind == ChangeKind::Deleted {
                Some(Bucket::Deleted)
            } else {
                Some(Bucket::Unsaved)
            }
        })
        .collect();
    drop((own_parents, listed_parents, added, own));

    let mut assessment = Assessment::default();
    let count = |of: Bucket| buckets.iter().filter(|b| **b == Some(of)).count();
    assessment.unsaved.reserve_exact(count(Bucket::Unsaved));
    assessment
        .disposable
        .reserve_exact(count(Bucket::Disposable));
    assessment.deleted.reserve_exact(count(Bucket::Deleted));
    for ((path, kind), bucket) in changes.shared().zip(buckets) {
        let list = match bucket {
            None => continue,
            Some(Bucket::AddedDir) => {
                assessment.added_dirs.push(path.to_string());
                continue;
            }
            Some(Bucket::Disposable) => &mut assessment.disposable,
            Some(Bucket::Deleted) => &mut assessment.deleted,
            Some(Bucket::Unsaved) => &mut assessment.unsaved,
        };
        list.push(Change { path, kind });
    }
    assessment
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    AddedDir,
    Disposable,
    Deleted,
    Unsaved,
}

/// Where `path` lands in the container's filesystem, given `links`: what each symlink
/// among `path` and its parents leads to, resolved from the root as the engine reports
/// it. The deepest link decides, since its target already went through those above.
/// With `/sbin` → `/usr/sbin`, `/sbin/docker-init` lands at `/usr/sbin/docker-init`.
pub fn resolve(path: &str, links: &HashMap<String, String>) -> String {
    let deepest = std::iter::once(path)
        .chain(parents(path))
        .find_map(|p| Some((p, links.get(p)?)));
    match deepest {
        Some((link, target)) => {
            let rest = &path[link.len()..];
            let landed = format!("{}{rest}", target.trim_end_matches('/'));
            if landed.is_empty() {
                "/".to_string()
            } else {
                landed
            }
        }
        None => path.to_string(),
    }
}

/// `/a/b/c` → `/a/b`, `/a` (not `/`).
pub fn parents(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        let (parent, _) = rest.rsplit_once('/')?;
        if parent.is_empty() {
            return None;
        }
        rest = parent;
        Some(parent)
    })
}

pub fn is_at_or_under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The disposable-path patterns of `[retire] disposable`.
pub type Disposable = crate::glob::Patterns;

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeKind::*;

    fn changes(list: &[(&str, ChangeKind)]) -> ChangeList {
        list.iter().copied().collect()
    }

    fn defaults() -> Disposable {
        let list: Vec<String> = crate::config::DEFAULT_DISPOSABLE
            .iter()
            .map(|s| s.to_string())
            .collect();
        Disposable::new(&list)
    }

    fn targets(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    fn paths(list: &[Change]) -> Vec<&str> {
        list.iter().map(|c| &*c.path).collect()
    }

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
        let mounts = targets(&["/workspace", "/home/alice", "/data", "/sbin/docker-init"]);
        let a = assess(fresh, &mounts, &defaults());
        assert_eq!(a, Assessment::default());
        assert!(a.is_clean());
    }

    fn links(list: &[(&str, &str)]) -> HashMap<String, String> {
        list.iter()
            .map(|(l, t)| (l.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_merged_usr_image_puts_docker_init_under_usr_and_that_is_not_work() {
        // A Debian 12 container, untouched, as Docker 20.10 lists it.
        let fresh = changes(&[
            ("/workspace", Added),
            ("/usr", Modified),
            ("/usr/sbin", Modified),
            ("/usr/sbin/docker-init", Added),
        ]);
        let merged = links(&[("/sbin", "/usr/sbin"), ("/bin", "/usr/bin")]);
        let own: Vec<String> = ["/workspace", "/root", "/sbin/docker-init"]
            .iter()
            .map(|t| resolve(t, &merged))
            .collect();
        assert_eq!(own, ["/workspace", "/root", "/usr/sbin/docker-init"]);
        let a = assess(fresh, &own, &defaults());
        assert_eq!(a, Assessment::default());
    }

    #[test]
    fn a_symlinked_home_puts_the_mounted_home_under_its_target() {
        let fresh = changes(&[
            ("/var", Modified),
            ("/var/home", Modified),
            ("/var/home/alice", Added),
            ("/var/home/alice/.bashrc", Added),
        ]);
        let own = [resolve("/home/alice", &links(&[("/home", "/var/home")]))];
        assert_eq!(own, ["/var/home/alice"]);
        // Only the mount point is left out: a file beneath it in the layer is real.
        let a = assess(fresh, &own, &defaults());
        assert_eq!(paths(&a.unsaved), ["/var/home/alice/.bashrc"]);
    }

    #[test]
    fn resolving_takes_the_deepest_link_and_leaves_other_paths_alone() {
        // Keyed by the paths asked about; each target is resolved from the root.
        let l = links(&[
            ("/home", "/var/home"),
            ("/home/alice", "/srv/alice"),
            ("/top", "/"),
        ]);
        assert_eq!(resolve("/home/alice/x", &l), "/srv/alice/x");
        assert_eq!(resolve("/home/bob", &l), "/var/home/bob");
        assert_eq!(resolve("/homework", &l), "/homework");
        assert_eq!(resolve("/top/a", &l), "/a");
        assert_eq!(resolve("/top", &l), "/");
        assert_eq!(resolve("/workspace", &HashMap::new()), "/workspace");
    }

    #[test]
    fn changes_beside_an_own_path_are_still_work() {
        let list = changes(&[
            ("/usr", Modified),
            ("/usr/sbin", Modified),
            ("/usr/sbin/docker-init", Added),
            ("/usr/sbin/mytool", Added),
        ]);
        let a = assess(list, &targets(&["/usr/sbin/docker-init"]), &defaults());
        assert_eq!(paths(&a.unsaved), ["/usr/sbin/mytool"]);
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
        let a = assess(
            list,
            &targets(&["/workspace", "/sbin/docker-init"]),
            &defaults(),
        );
        assert_eq!(
            paths(&a.unsaved),
            ["/opt/work/result.csv", "/etc/motd", "/opt/empty"]
        );
        assert_eq!(a.added_dirs, ["/opt", "/opt/work"]);
    }

    #[test]
    fn a_user_file_next_to_a_mount_is_work_but_the_mounts_parent_is_not() {
        let list = changes(&[
            ("/home", Added),
            ("/home/alice", Added),
            ("/home/bob", Added),
            ("/home/bob/notes", Added),
        ]);
        let a = assess(list, &targets(&["/home/alice"]), &defaults());
        assert_eq!(paths(&a.unsaved), ["/home/bob/notes"]);
        assert_eq!(a.added_dirs, ["/home/bob"]);
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
            (
                "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
                Added,
            ),
            ("/var/lib/apt/extended_states", Modified),
            ("/tmpfoo", Added),
        ]);
        let a = assess(list, &[], &defaults());
        // `apt-get update`'s indexes are fetched again; apt's own state is not.
        assert_eq!(
            paths(&a.unsaved),
            ["/var/lib/apt/extended_states", "/tmpfoo"]
        );
        assert_eq!(a.disposable.len(), 7);
    }

    #[test]
    fn a_directory_with_only_its_metadata_changed_is_not_work() {
        let list = changes(&[("/opt", Modified), ("/etc/motd", Modified), ("/new", Added)]);
        let mut a = assess(list, &[], &defaults());
        assert_eq!(
            a.modified_leaves().collect::<Vec<_>>(),
            ["/opt", "/etc/motd"]
        );
        a.settle_dirs(&HashSet::from(["/opt".to_string(), "/new".to_string()]));
        assert_eq!(paths(&a.unsaved), ["/etc/motd", "/new"]);
        assert_eq!(paths(&a.touched_dirs), ["/opt"]);
    }

    #[test]
    fn deletions_are_listed_but_lose_nothing() {
        let list = changes(&[("/etc", Modified), ("/etc/old.conf", Deleted)]);
        let a = assess(list, &[], &defaults());
        assert!(a.is_clean());
        assert_eq!(paths(&a.deleted), ["/etc/old.conf"]);
    }

    #[test]
    fn a_sibling_with_a_common_prefix_is_not_a_mount() {
        let list = changes(&[("/workspace2", Added), ("/workspace", Added)]);
        let a = assess(list, &targets(&["/workspace"]), &defaults());
        assert_eq!(paths(&a.unsaved), ["/workspace2"]);
    }

    #[test]
    fn parents_walk_up_to_the_root() {
        assert_eq!(parents("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a"]);
        assert_eq!(parents("/a").count(), 0);
    }

    #[test]
    fn patterns_anchor_or_float() {
        let d = |p: &str| Disposable::new(&[p.to_string()]);
        assert!(d("/var/cache").matches("/var/cache/apt/x"));
        assert!(!d("/var/cache").matches("/opt/var/cache"));
        assert!(d(".cache").matches("/home/a/.cache/x"));
        assert!(d("/data/**/scratch").matches("/data/a/b/scratch/x"));
        assert!(!d("/data/**/scratch").matches("/data/a/b/scratchy"));
        assert!(!Disposable::default().matches("/tmp"));
        assert!(d("*.pyc").matches("/srv/m.pyc"));
        assert!(!d("/").matches("/srv"));
    }
}
