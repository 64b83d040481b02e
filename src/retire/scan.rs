//! What retire reads from the engine while the container is frozen, beyond the changes
//! call: where its mount points land, which modified paths are directories, sizes from
//! a sample, and what anonymous volumes hold.

use std::collections::{HashMap, HashSet};

use futures_util::{stream, StreamExt};

use super::assess::{self, Assessment, Change, Disposable};
use super::classify::{self, Class, Size, VolumeReport};
use crate::container::{ChangeKind, Inspected, PathStat, Volume};
use crate::engine::Engine;
use crate::error::Result;
use crate::label::{self, Written};
use crate::layer::ChangeList;

/// Files measured per class for its size; beyond this the size is estimated.
const SIZE_SAMPLE: usize = 32;
/// Modified paths checked for being directories (see [`find_dirs`]).
const DIR_CHECKS: usize = 256;
/// Archive calls in flight at once while measuring.
const STAT_CONCURRENCY: usize = 8;

/// Archive stats already asked for (`None`: the path is gone), so that the directory
/// check and the size sample never ask the engine about one path twice.
pub(super) type Stats = HashMap<String, Option<PathStat>>;

/// Stats the `paths` not in `stats` yet, [`STAT_CONCURRENCY`] at a time.
async fn stat_missing<'a>(
    engine: &Engine,
    id: &str,
    paths: impl Iterator<Item = &'a str>,
    stats: &mut Stats,
) {
    let wanted: Vec<&str> = paths.filter(|p| !stats.contains_key(*p)).collect();
    let found: Vec<(String, Option<PathStat>)> = stream::iter(wanted)
        .map(|path| async move { (path.to_string(), engine.stat(id, path).await.ok().flatten()) })
        .buffer_unordered(STAT_CONCURRENCY)
        .collect()
        .await;
    stats.extend(found);
}

/// Where each of `paths` lands in the container's layer, through the container's own
/// symlinks: `/sbin/docker-init` is `/usr/sbin/docker-init` in a merged-/usr image, and
/// a home mounted at `/home/ana` is `/var/home/ana` where `/home` links there. A path
/// that `changes` lists as it is has no link on the way (the engine lists real paths),
/// and costs nothing; for the others, one archive stat for each distinct path and
/// parent, asked at once. The engine resolves each link from the container's root, so
/// a link never leads out of it. A path the engine cannot stat is kept as given.
pub(super) async fn resolve_in_container(
    engine: &Engine,
    id: &str,
    paths: &[String],
    changes: &ChangeList,
    stats: &mut Stats,
) -> Vec<String> {
    let listed: HashSet<&str> = changes
        .iter()
        .map(|(path, _)| path)
        .filter(|path| paths.iter().any(|p| p == path))
        .collect();
    let asked: HashSet<&str> = paths
        .iter()
        .filter(|p| !listed.contains(p.as_str()))
        .flat_map(|p| std::iter::once(p.as_str()).chain(assess::parents(p)))
        .collect();
    stat_missing(engine, id, asked.iter().copied(), stats).await;
    let links: HashMap<String, String> = asked
        .into_iter()
        .filter_map(|p| {
            let target = stats.get(p)?.as_ref()?.link_target.clone()?;
            Some((p.to_string(), target))
        })
        .collect();
    paths.iter().map(|p| assess::resolve(p, &links)).collect()
}

/// Those of the identity files ([`label::FILES`]) that the layer lists and that hold
/// just what berth wrote there (`written`): they are berth's, not work. One changed
/// since (a `useradd` in the container, a package that adds a system user) is work,
/// and so is one that cannot be read.
pub(super) fn berths_identity_files(
    texts: &IdentityTexts,
    written: Option<&Written>,
    changes: &ChangeList,
) -> Vec<String> {
    let Some(written) = written else {
        return Vec::new();
    };
    texts
        .iter()
        .filter(|(file, _)| {
            changes
                .iter()
                .any(|(path, kind)| path == *file && kind != ChangeKind::Deleted)
        })
        .filter(|(file, text)| text.as_deref().is_some_and(|t| written.is_berths(file, t)))
        .map(|(file, _)| file.to_string())
        .collect()
}

/// The identity files as they are in the container ([`label::FILES`], `None` for
/// one that cannot be read), where berth wrote them (`written`); nothing otherwise.
pub(super) type IdentityTexts = Vec<(&'static str, Option<String>)>;

/// Reads them, both at once: on fuse-overlayfs each read mounts the container's
/// filesystem, and the pair costs about 0.1 s, which the caller overlaps with the
/// layer reader's start.
pub(super) async fn identity_texts(
    engine: &Engine,
    id: &str,
    written: Option<&Written>,
) -> IdentityTexts {
    if written.is_none() {
        return Vec::new();
    }
    let read = label::FILES
        .into_iter()
        .map(|file| async move { (file, engine.read_file(id, file).await.ok().flatten()) });
    futures_util::future::join_all(read).await
}

/// The size of each class of unsaved changes and of the disposable ones (key `None`),
/// from at most [`SIZE_SAMPLE`] archive stats each: the engine's changes call names
/// paths but not sizes, and statting tens of thousands of files would cost more than
/// the check itself.
pub(super) async fn measure(
    engine: &Engine,
    id: &str,
    assessment: &Assessment,
    stats: &mut Stats,
) -> HashMap<Option<Class>, Size> {
    // The engine lists changes in no fixed order: the sample is taken in path order,
    // so that an unchanged container gets the same estimate every time.
    let mut groups: Vec<(Option<Class>, Vec<&Change>)> = classify::classify(assessment)
        .into_iter()
        .map(|(class, changes)| (Some(class), changes))
        .collect();
    groups.push((None, assessment.disposable.iter().collect()));
    for (_, changes) in &mut groups {
        changes.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    }
    let sampled: Vec<(Option<Class>, Vec<&str>)> = groups
        .iter()
        .map(|(class, changes)| {
            let picked = classify::sample(changes.len(), SIZE_SAMPLE)
                .into_iter()
                .map(|i| &*changes[i].path)
                .collect();
            (*class, picked)
        })
        .collect();
    stat_missing(
        engine,
        id,
        sampled.iter().flat_map(|(_, paths)| paths.iter().copied()),
        stats,
    )
    .await;
    groups
        .iter()
        .zip(&sampled)
        .filter(|((_, changes), _)| !changes.is_empty())
        .map(|((class, changes), (_, picked))| {
            let sizes: Vec<u64> = picked
                .iter()
                .filter_map(|p| stats.get(*p).and_then(Option::as_ref))
                .map(|stat| if stat.is_dir { 0 } else { stat.size })
                .collect();
            (*class, Size::from_sample(changes.len(), &sizes))
        })
        .collect()
}

/// Which of the modified `paths` are directories, for the first [`DIR_CHECKS`]: a
/// directory listed alone only had its mode or times changed. Those not checked stay
/// counted as work, which errs on the safe side.
pub(super) async fn find_dirs<'a>(
    engine: &Engine,
    id: &str,
    paths: impl Iterator<Item = &'a str>,
    stats: &mut Stats,
) -> HashSet<String> {
    let checked: Vec<&str> = paths.take(DIR_CHECKS).collect();
    stat_missing(engine, id, checked.iter().copied(), stats).await;
    checked
        .into_iter()
        .filter(|p| {
            stats
                .get(*p)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.is_dir)
        })
        .map(str::to_string)
        .collect()
}

/// The anonymous volumes that hold data (any file at all), each read up to
/// [`crate::content::PROBE_BYTES`]. A volume mounted at a disposable path does not count.
pub(super) async fn probe_volumes(
    engine: &Engine,
    id: &str,
    inspected: &Inspected,
    disposable: &Disposable,
) -> Result<Probed> {
    let mut probed = Probed::default();
    for Volume { name, target } in &inspected.anonymous_volumes {
        let what = format!("anonymous volume {name} at {target}");
        let tally = crate::content::count_in(engine, id, target, &what).await?;
        if tally.files > 0 {
            let report = VolumeReport {
                name: name.clone(),
                target: target.clone(),
                files: tally.files,
                bytes: tally.bytes,
                complete: tally.complete,
            };
            match disposable.matches(target) {
                true => probed.disposable.push(report),
                false => probed.holding.push(report),
            }
        }
    }
    Ok(probed)
}

/// Anonymous volumes with data in them.
#[derive(Debug, Default)]
pub(super) struct Probed {
    /// Unsaved work.
    pub holding: Vec<VolumeReport>,
    /// At disposable paths: listed, kept, never asked about.
    pub disposable: Vec<VolumeReport>,
}
