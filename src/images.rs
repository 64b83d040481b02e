//! `berth images [PROJECT]`: your images of berth's, `berth/<user>/<project>:<tag>`:
//! the builds (`berth build`, labelled with their input hash) and the commits
//! (`retire --commit`), with size, age and the containers that use each. `--prune`
//! removes the builds nothing needs: past the newest `keep` of each project, used by
//! no container, not what a project's next deploy starts or builds on; further, oldest
//! first, while the policy's size budget is exceeded. A commit goes only by name.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::build::INPUT;
use crate::cli::ImagesArgs;
use crate::clock;
use crate::config::policy::Policy;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::host::{image_component, image_repo, HostUser, Paths, ProjectName};
use crate::label;
use crate::remember;
use crate::ui::Printer;
use crate::units::human_size;

#[derive(Debug, Clone, Serialize)]
struct Listed {
    image: String,
    id: String,
    project: String,
    /// `build` or `commit`.
    kind: &'static str,
    size: u64,
    /// RFC 3339, UTC.
    created: String,
    /// Your containers made from it.
    used_by: Vec<String>,
    /// Whether any container, anyone's, is made from it.
    #[serde(skip)]
    in_use: bool,
}

/// The builds each project keeps unless `--keep` or the policy says otherwise.
const KEEP: usize = 3;

pub async fn images(args: &ImagesArgs, printer: &Printer) -> Result<()> {
    let user = HostUser::current();
    let named = args
        .project
        .as_deref()
        .filter(|raw| args.prune && raw.contains(['/', ':']));
    let reference = match (&args.project, named) {
        (Some(_), Some(_)) | (None, _) => format!("berth/{}/*", image_component(&user.name)),
        (Some(project), None) => {
            let project = ProjectName::parse(project)?;
            image_repo(&user.name, project.as_str())
        }
    };
    let engine = Engine::connect().await?;
    let (images, containers, in_use) = tokio::join!(
        engine.images_named(&reference),
        engine.list(Some(user.uid), None, false),
        engine.images_in_use(),
    );
    let (containers, in_use) = (containers?, in_use?);
    let uid = user.uid.to_string();
    let mut listed: Vec<Listed> = images?
        .into_iter()
        // Yours: a name of another user's component is not.
        .filter(|image| image.labels.get(label::USER) == Some(&uid))
        .map(|image| Listed {
            kind: kind(&image.tag, image.labels.get(INPUT)),
            used_by: containers
                .iter()
                .filter(|c| c.image == image.tag || c.image == image.id)
                .map(|c| c.name.clone())
                .collect(),
            in_use: in_use.contains(&image.id),
            created: clock::rfc3339(
                SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(image.created).unwrap_or(0)),
            ),
            project: image
                .labels
                .get(label::PROJECT)
                .cloned()
                .unwrap_or_else(|| {
                    let repo = image.tag.rsplit_once(':').map_or(&*image.tag, |(r, _)| r);
                    repo.rsplit('/').next().unwrap_or_default().to_string()
                }),
            image: image.tag,
            id: image.id,
            size: image.size,
        })
        .collect();
    // Newest first, then by name.
    listed.sort_by(|a, b| b.created.cmp(&a.created).then(a.image.cmp(&b.image)));
    if args.prune {
        return prune(&engine, args, named, &listed, printer).await;
    }
    if args.json {
        printer.json(&serde_json::json!({ "images": listed }));
        return Ok(());
    }
    let mut rows = vec![vec![
        "IMAGE".to_string(),
        "KIND".to_string(),
        "SIZE".to_string(),
        "CREATED".to_string(),
        "USED BY".to_string(),
    ]];
    for image in &listed {
        rows.push(vec![
            image.image.clone(),
            image.kind.to_string(),
            human_size(image.size),
            image.created.clone(),
            image.used_by.join(","),
        ]);
    }
    printer.table(&rows);
    Ok(())
}

/// `build` where the tag is the image's input hash, else `commit`: a commit of a
/// build's container carries the build's labels too, under a tag of its own.
fn kind(image: &str, input: Option<&String>) -> &'static str {
    let tag = image.rsplit_once(':').map_or("", |(_, tag)| tag);
    match input {
        Some(input) if !tag.is_empty() && input.starts_with(tag) => "build",
        _ => "commit",
    }
}

/// Why `--prune` leaves an image.
const IN_USE: &str = "in use";
const NEXT_DEPLOY: &str = "a project's next deploy starts it or builds on it";
const NEWEST: &str = "one of its project's newest builds";
const COMMIT: &str = "a commit: removed only by name";

/// What `--prune` decided for each image (`None`: remove it), and what the kept ones
/// take where that is over `budget`.
#[derive(Debug, PartialEq)]
struct Choice {
    kept: Vec<Option<&'static str>>,
    over_budget: Option<u64>,
}

/// `images` newest first. Commits, images in use and the ones a project's next deploy
/// needs always stay; of the rest, each project's newest `keep` builds, and then,
/// while the images kept take more than `budget` (each image counted once, at its
/// size), the newest build of each project only.
fn choose(
    images: &[Listed],
    keep: usize,
    needed: &BTreeSet<String>,
    budget: Option<u64>,
) -> Choice {
    let mut kept: Vec<Option<&'static str>> = images
        .iter()
        .map(|image| match image.kind {
            "commit" => Some(COMMIT),
            _ if image.in_use => Some(IN_USE),
            _ if needed.contains(&image.image) => Some(NEXT_DEPLOY),
            _ => None,
        })
        .collect();
    let mut builds: HashMap<&str, usize> = HashMap::new();
    let mut newest_of_project = HashSet::new();
    for (at, image) in images.iter().enumerate() {
        if image.kind != "build" {
            continue;
        }
        let seen = builds.entry(&image.project).or_default();
        if *seen == 0 {
            newest_of_project.insert(at);
        }
        if *seen < keep && kept[at].is_none() {
            kept[at] = Some(NEWEST);
        }
        *seen += 1;
    }
    let taken = |kept: &[Option<&str>]| -> u64 {
        let mut ids = HashSet::new();
        images
            .iter()
            .zip(kept)
            .filter(|(image, why)| why.is_some() && ids.insert(&image.id))
            .map(|(image, _)| image.size)
            .sum()
    };
    let Some(budget) = budget else {
        return Choice {
            kept,
            over_budget: None,
        };
    };
    for at in (0..images.len()).rev() {
        if taken(&kept) <= budget {
            break;
        }
        if kept[at] == Some(NEWEST) && !newest_of_project.contains(&at) {
            kept[at] = None;
        }
    }
    let total = taken(&kept);
    Choice {
        kept,
        over_budget: (total > budget).then_some(total),
    }
}

/// `listed` in the order the images were made, newest first, to the engine's
/// nanosecond: its listing says whole seconds, and builds come seconds apart.
async fn newest_first(engine: &Engine, listed: &[Listed]) -> Result<Vec<Listed>> {
    let mut made = HashMap::new();
    for image in listed {
        if !made.contains_key(&image.id) {
            let facts = engine.image_facts(&image.id).await?;
            made.insert(image.id.clone(), facts.and_then(|f| f.created));
        }
    }
    let mut sorted = listed.to_vec();
    sorted.sort_by(|a, b| {
        made[&b.id]
            .cmp(&made[&a.id])
            .then_with(|| a.image.cmp(&b.image))
    });
    Ok(sorted)
}

#[derive(Serialize)]
struct Pruned<'a> {
    dry_run: bool,
    removed: Vec<&'a Listed>,
    kept: Vec<KeptImage<'a>>,
    /// What your images still take, where it is over the policy's budget.
    over_budget: Option<u64>,
}

#[derive(Serialize)]
struct KeptImage<'a> {
    image: &'a str,
    why: &'static str,
}

/// `berth images [PROJECT|IMAGE] --prune`.
async fn prune(
    engine: &Engine,
    args: &ImagesArgs,
    named: Option<&str>,
    listed: &[Listed],
    printer: &Printer,
) -> Result<()> {
    let paths = Paths::from_env()?;
    let policy = Policy::read(&paths.policy)?.unwrap_or_default();
    let most = policy.images.keep.unwrap_or(KEEP);
    let keep = args.keep.unwrap_or(most);
    if keep > most {
        printer.warn(&format!(
            "the policy keeps at most {most} build(s) per project; keeping {most}"
        ));
    }
    let keep = keep.min(most);
    // What a project's next deploy starts, or builds its packages on.
    let needed: BTreeSet<String> = remember::all(&paths.state_dir)
        .into_iter()
        .flat_map(|(_, memory)| std::iter::once(memory.image).chain(memory.base))
        .collect();
    let sorted;
    let (listed, choice) = match named {
        Some(name) => {
            let Some(image) = listed.iter().find(|image| image.image == name) else {
                return Err(
                    Error::failed(format!("{name} is not one of your berth images"))
                        .hint("`berth images` lists them; other images are docker's to remove"),
                );
            };
            let choice = Choice {
                kept: vec![image.in_use.then_some(IN_USE)],
                over_budget: None,
            };
            (std::slice::from_ref(image), choice)
        }
        None => {
            sorted = newest_first(engine, listed).await?;
            let budget = policy.images.budget.as_ref().map(|b| b.0);
            (sorted.as_slice(), choose(&sorted, keep, &needed, budget))
        }
    };
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for (image, why) in listed.iter().zip(&choice.kept) {
        match why {
            Some(why) => kept.push(KeptImage {
                image: &image.image,
                why,
            }),
            None if args.dry_run => removed.push(image),
            // A container made since the listing keeps it.
            None => match engine.remove_unused_image(&image.image).await? {
                true => removed.push(image),
                false => kept.push(KeptImage {
                    image: &image.image,
                    why: IN_USE,
                }),
            },
        }
    }
    if let (Some(name), Some(refusal)) = (named, kept.first()) {
        return Err(
            Error::refused(format!("{name} is {}: not removed", refusal.why))
                .hint("retire the containers made from it first"),
        );
    }
    if let Some(total) = choice.over_budget {
        printer.warn(&format!(
            "your berth images take {}, over the policy's budget of {}: what is left is \
             in use, needed by a project's next deploy, the newest build of a project, \
             or a commit (remove one by name with `berth images --prune IMAGE`)",
            human_size(total),
            human_size(policy.images.budget.as_ref().map_or(0, |b| b.0))
        ));
    }
    if args.json {
        printer.json(&Pruned {
            dry_run: args.dry_run,
            removed,
            kept,
            over_budget: choice.over_budget,
        });
        return Ok(());
    }
    let verb = match args.dry_run {
        true => "would remove",
        false => "removed",
    };
    for image in &removed {
        printer.line(&format!(
            "{verb}  {}  ({}, {})",
            image.image,
            image.kind,
            human_size(image.size)
        ));
    }
    for image in &kept {
        printer.line(&format!("kept  {}  ({})", image.image, image.why));
    }
    let mut ids = HashSet::new();
    let freed: u64 = removed
        .iter()
        .filter(|image| ids.insert(&image.id))
        .map(|image| image.size)
        .sum();
    printer.note(&format!(
        "{verb} {} image(s), up to {} (layers other images share stay); kept {}",
        removed.len(),
        human_size(freed),
        kept.len()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(project: &str, tag: &str, kind: &'static str, size: u64, in_use: bool) -> Listed {
        Listed {
            image: format!("berth/u/{project}:{tag}"),
            id: format!("sha256:{project}{tag}"),
            project: project.to_string(),
            kind,
            size,
            created: String::new(),
            used_by: Vec::new(),
            in_use,
        }
    }

    #[test]
    fn a_build_is_tagged_with_its_input_and_a_commit_is_not() {
        let input = "3f9c0a1b2c3d4e5f".to_string();
        assert_eq!(kind("berth/u/p:3f9c0a1b2c3d", Some(&input)), "build");
        assert_eq!(kind("berth/u/p:20261207T000000Z", Some(&input)), "commit");
        assert_eq!(kind("berth/u/p:20261207T000000Z", None), "commit");
        assert_eq!(kind("berth/u/p", Some(&input)), "commit");
    }

    #[test]
    fn prune_keeps_the_newest_what_is_used_and_what_comes_next() {
        // Newest first.
        let images = [
            image("a", "5", "build", 10, false),
            image("a", "4", "build", 10, false),
            image("a", "c", "commit", 10, false),
            image("a", "3", "build", 10, false),
            image("b", "9", "build", 10, false),
            image("a", "2", "build", 10, true),
            image("a", "1", "build", 10, false),
            image("a", "0", "build", 10, false),
        ];
        let needed = BTreeSet::from(["berth/u/a:0".to_string()]);
        let choice = choose(&images, 2, &needed, None);
        assert_eq!(
            choice.kept,
            [
                Some(NEWEST),
                Some(NEWEST),
                Some(COMMIT),
                None,
                Some(NEWEST),
                Some(IN_USE),
                None,
                Some(NEXT_DEPLOY)
            ]
        );
        assert_eq!(choice.over_budget, None);
    }

    #[test]
    fn a_budget_removes_older_builds_but_never_the_newest_or_a_needed_one() {
        let images = [
            image("a", "3", "build", 10, false),
            image("a", "2", "build", 10, false),
            image("b", "1", "build", 10, false),
            image("a", "1", "build", 10, false),
            image("a", "c", "commit", 10, false),
        ];
        let needed = BTreeSet::new();
        // 50 taken, 35 allowed: the oldest build past the newest of a goes first.
        let choice = choose(&images, 3, &needed, Some(35));
        assert_eq!(
            choice.kept,
            [Some(NEWEST), None, Some(NEWEST), None, Some(COMMIT)]
        );
        assert_eq!(choice.over_budget, None);
        // Nothing more can go: still over.
        let choice = choose(&images, 3, &needed, Some(5));
        assert_eq!(choice.over_budget, Some(30));
    }
}
