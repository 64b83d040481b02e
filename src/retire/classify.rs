//! What the unsaved changes are, for a person: installed packages, home-directory
//! files, other files, and anonymous volumes holding data; and the summary that says
//! what each costs and what to do about it. Pure.

use std::collections::HashMap;

use serde::Serialize;

use super::assess::{Assessment, Change};
use crate::layer::{raw_paths, PathText, RawPath, ReadBy};
use crate::names::shown;
use crate::units::human_size;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// pip (site-packages), conda, apt/dpkg, and software under /usr, /bin, /lib…
    Packages,
    /// Under /root or /home: notes, dotfiles, shell history.
    Home,
    Other,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Packages, Class::Home, Class::Other];

    pub fn name(self) -> &'static str {
        match self {
            Class::Packages => "packages",
            Class::Home => "home",
            Class::Other => "other",
        }
    }
}

/// Where software lands when something is installed: changes here are packages even when
/// no package manager's records name them (`make install`, a copied binary).
const SOFTWARE_DIRS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/opt/conda",
];

/// `path`'s class, where `venvs` are the virtual environments among the changes
/// ([`venvs`]): everything in one is packages, its scripts and `pyvenv.cfg` too.
pub fn class_of(path: &str, venvs: &[&str]) -> Class {
    let in_dir = |dir: &str| super::assess::is_at_or_under(path, dir);
    if venvs.iter().any(|venv| in_dir(venv)) {
        return Class::Packages;
    }
    let components = || path.split('/');
    if components().any(|c| {
        matches!(c, "site-packages" | "dist-packages" | "conda-meta")
            || c.ends_with(".dist-info")
            || c.ends_with(".egg-info")
    }) || SOFTWARE_DIRS.iter().any(|d| in_dir(d))
    {
        Class::Packages
    } else if in_dir("/root") || in_dir("/home") {
        Class::Home
    } else {
        Class::Other
    }
}

/// The virtual environments among `changes`: the folders of their `pyvenv.cfg`.
pub fn venvs<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<&'a str> {
    changes
        .into_iter()
        .filter_map(|c| c.path.strip_suffix("/pyvenv.cfg"))
        .filter(|venv| !venv.is_empty())
        .collect()
}

/// What `python -m venv` puts into every new environment: not something anyone chose.
const VENV_BOOTSTRAP: &[&str] = &["pip", "setuptools"];

/// A package whose installation the container holds, named by its manager's records.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Package {
    /// `pip`, `conda` or `apt`.
    pub manager: &'static str,
    /// Where pip installed it: `null` for the system's Python (`/usr`, `/usr/local`),
    /// else the environment's folder (`/opt/venv`, `/root/.local`).
    pub env: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

impl Package {
    /// How to ask for this package in a requirements file or an install line.
    /// As a list names it, pinned: `six==1.16.0` (pip), `numpy=1.26.4` (conda, apt).
    pub fn requirement(&self) -> String {
        let separator = if self.manager == "pip" { "==" } else { "=" };
        match &self.version {
            Some(version) => format!("{}{separator}{version}", self.name),
            None => self.name.clone(),
        }
    }

    fn shown(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The packages named by their managers' records among `changes`: pip's
/// `NAME-VERSION.dist-info`, conda's `conda-meta/NAME-VERSION-BUILD.json`, dpkg's
/// `/var/lib/dpkg/info/NAME.list`. A virtual environment's own pip and setuptools are
/// left out. Sorted, without duplicates.
pub fn packages<'a>(changes: impl IntoIterator<Item = &'a Change>, venvs: &[&str]) -> Vec<Package> {
    let mut found: Vec<Package> = changes
        .into_iter()
        .filter_map(|c| package_of(&c.path))
        .filter(|p| {
            let in_venv = p.env.as_deref().is_some_and(|env| venvs.contains(&env));
            !(in_venv && VENV_BOOTSTRAP.contains(&p.name.as_str()))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

fn package_of(path: &str) -> Option<Package> {
    let components: Vec<&str> = path.split('/').collect();
    for (at, pair) in components.windows(2).enumerate() {
        let (parent, name) = (pair[0], pair[1]);
        if matches!(parent, "site-packages" | "dist-packages") {
            let stem = name
                .strip_suffix(".dist-info")
                .or_else(|| name.strip_suffix(".egg-info"))?;
            let (name, version) = match stem.split_once('-') {
                Some((name, rest)) => (name, rest.split('-').next()),
                None => (stem, None),
            };
            return Some(Package {
                manager: "pip",
                env: python_prefix(&components[..at]),
                name: name.to_string(),
                version: version.map(str::to_string),
            });
        }
        if parent == "conda-meta" {
            let stem = name.strip_suffix(".json")?;
            let mut parts = stem.rsplitn(3, '-');
            let (_build, version, name) = (parts.next()?, parts.next()?, parts.next()?);
            return Some(Package {
                manager: "conda",
                env: None,
                name: name.to_string(),
                version: Some(version.to_string()),
            });
        }
    }
    let list = path.strip_prefix("/var/lib/dpkg/info/")?;
    let name = list.strip_suffix(".list")?;
    let name = name.split_once(':').map_or(name, |(name, _arch)| name);
    Some(Package {
        manager: "apt",
        env: None,
        name: name.to_string(),
        version: None,
    })
}

/// The Python prefix of a `site-packages` folder given as the components above it
/// (`["", "opt", "venv", "lib", "python3.11"]` → `/opt/venv`); `None` for the
/// system's own (`/usr`, `/usr/local`).
fn python_prefix(above: &[&str]) -> Option<String> {
    let prefix = match above {
        [rest @ .., lib, python]
            if matches!(*lib, "lib" | "lib64") && python.starts_with("python") =>
        {
            rest
        }
        [rest @ .., lib] if matches!(*lib, "lib" | "lib64") => rest,
        _ => above,
    };
    let prefix = prefix.join("/");
    (!matches!(prefix.as_str(), "" | "/usr" | "/usr/local")).then_some(prefix)
}

/// Fills in the versions of `packages` that apt installed, from dpkg's status file.
pub fn apt_versions(packages: &mut [Package], status: &str) {
    let mut versions = std::collections::HashMap::new();
    for stanza in status.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
        };
        if let (Some(name), Some(version)) = (field("Package"), field("Version")) {
            versions.insert(name, version);
        }
    }
    for package in packages.iter_mut().filter(|p| p.manager == "apt") {
        if let Some(version) = versions.get(package.name.as_str()) {
            package.version = Some(version.to_string());
        }
    }
}

/// What the project's file alone made disposable: shown by name, since the container
/// could have written that file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ByProject {
    pub file: std::path::PathBuf,
    pub count: usize,
    /// The first paths, sorted.
    pub paths: Vec<PathText>,
    /// Those of `paths` that are not UTF-8, with their own bytes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths_raw: Vec<RawPath>,
}

impl ByProject {
    /// Paths named in the summary and the JSON.
    const SHOWN: usize = 8;

    /// Those of `disposable` that `vouched` (every other layer's patterns) would not
    /// leave out; `None` when there are none.
    pub fn new(
        file: &std::path::Path,
        disposable: &[Change],
        vouched: &super::assess::Disposable,
    ) -> Option<Self> {
        let mut paths: Vec<&PathText> = disposable
            .iter()
            .map(|c| &c.path)
            .filter(|p| !vouched.matches(p))
            .collect();
        if paths.is_empty() {
            return None;
        }
        paths.sort_unstable();
        let count = paths.len();
        paths.truncate(Self::SHOWN);
        Some(Self {
            file: file.to_path_buf(),
            count,
            paths_raw: raw_paths(paths.iter().copied()),
            paths: paths.into_iter().cloned().collect(),
        })
    }

    fn line(&self) -> String {
        let more = if self.count > self.paths.len() {
            ", …"
        } else {
            ""
        };
        format!(
            "  disposable only by {} (in the workspace, which the container can write): {} ({}{more})",
            self.file.display(),
            count_of(self.count, "change"),
            self.paths
                .iter()
                .map(PathText::shown)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The unsaved changes, by class.
pub fn classify(assessment: &Assessment) -> HashMap<Class, Vec<&Change>> {
    let venvs = venvs(&assessment.unsaved);
    let mut classes: HashMap<Class, Vec<&Change>> = HashMap::new();
    for change in &assessment.unsaved {
        classes
            .entry(class_of(&change.path, &venvs))
            .or_default()
            .push(change);
    }
    classes
}

/// A size the engine gave, or one estimated from a sample of the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Size {
    pub bytes: u64,
    /// True when only a sample of the files was measured and the rest extrapolated.
    pub estimated: bool,
}

impl Size {
    /// The size of `count` files, of which `sampled` were measured.
    pub fn from_sample(count: usize, sampled: &[u64]) -> Self {
        if sampled.is_empty() || sampled.len() >= count {
            return Self {
                bytes: sampled.iter().sum(),
                estimated: false,
            };
        }
        let total: u128 = sampled.iter().map(|&b| u128::from(b)).sum();
        let bytes = total * count as u128 / sampled.len() as u128;
        Self {
            bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
            estimated: true,
        }
    }

    fn text(self) -> String {
        let size = human_size(self.bytes);
        if self.estimated {
            format!("≈{size}")
        } else {
            size
        }
    }
}

impl std::ops::Add for Size {
    type Output = Size;
    fn add(self, other: Size) -> Size {
        Size {
            bytes: self.bytes.saturating_add(other.bytes),
            estimated: self.estimated || other.estimated,
        }
    }
}

/// Which of `count` items to measure: all of them up to `limit`, else `limit` spread
/// evenly, so a sample covers every directory of a sorted list.
pub fn sample(count: usize, limit: usize) -> Vec<usize> {
    if count <= limit {
        return (0..count).collect();
    }
    (0..limit).map(|i| i * count / limit).collect()
}

/// A directory and how many of the class's changes lie in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub path: String,
    pub count: usize,
}

/// Changes grouped by the directory that says the most (`/opt/results`,
/// `/root/notes.txt`, `/home/bob/data`), most changes first.
pub fn top_places<'a>(changes: impl IntoIterator<Item = &'a Change>, top: usize) -> Vec<Place> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for change in changes {
        let depth = if change.path.starts_with("/home/") {
            3
        } else {
            2
        };
        let place = change
            .path
            .split('/')
            .filter(|c| !c.is_empty())
            .take(depth)
            .fold(String::new(), |acc, c| acc + "/" + c);
        *counts.entry(place).or_default() += 1;
    }
    let mut places: Vec<Place> = counts
        .into_iter()
        .map(|(path, count)| Place { path, count })
        .collect();
    places.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.path.cmp(&b.path)));
    places.truncate(top);
    places
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassReport {
    pub class: Class,
    pub count: usize,
    pub size: Size,
    pub top: Vec<Place>,
    /// As the engine writes them: U+FFFD for each byte that is not UTF-8.
    pub paths: Vec<PathText>,
    /// Those of `paths` that are not UTF-8, with their own bytes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths_raw: Vec<RawPath>,
}

/// An anonymous volume and what it holds. It is never removed with the container, but
/// nothing points at it afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeReport {
    pub name: String,
    pub target: String,
    pub files: u64,
    pub bytes: u64,
    /// False when the count stopped early: there is at least this much.
    pub complete: bool,
}

/// Everything the summary says, as data (`--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The three classes, always in the same order, empty ones included.
    pub classes: Vec<ClassReport>,
    pub packages: Vec<Package>,
    /// Changes left out as disposable only by the project's own file, which the
    /// container can write.
    pub disposable_by_project: Option<ByProject>,
    /// Anonymous volumes holding data.
    pub volumes: Vec<VolumeReport>,
    /// Anonymous volumes holding data at disposable paths: listed, not asked about, and
    /// kept like every volume.
    pub disposable_volumes: Vec<VolumeReport>,
    pub disposable: Tally,
    pub deleted: Tally,
    /// Directories of the image with only their mode or times changed.
    pub touched_dirs: Tally,
    /// The writable layer: unsaved and disposable changes together.
    pub layer: Size,
    /// Who listed the changes: berth's own walk of the layer, or the engine.
    pub read_by: ReadBy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub count: usize,
    pub top: Vec<Place>,
}

impl Tally {
    fn new(changes: &[Change]) -> Self {
        Self {
            count: changes.len(),
            top: top_places(changes, 4),
        }
    }
}

impl Report {
    /// `sizes` holds the measured size of each class with changes, and of the
    /// disposable ones under `None`.
    pub fn new(
        assessment: &Assessment,
        sizes: &HashMap<Option<Class>, Size>,
        read_by: ReadBy,
        volumes: Vec<VolumeReport>,
    ) -> Self {
        let classified = classify(assessment);
        let classes: Vec<ClassReport> = Class::ALL
            .iter()
            .map(|&class| {
                let changes = classified.get(&class).map(Vec::as_slice).unwrap_or(&[]);
                ClassReport {
                    class,
                    count: changes.len(),
                    size: sizes.get(&Some(class)).copied().unwrap_or_default(),
                    top: top_places(changes.iter().copied(), 4),
                    paths: changes.iter().map(|c| c.path.clone()).collect(),
                    paths_raw: raw_paths(changes.iter().map(|c| &c.path)),
                }
            })
            .collect();
        let layer = sizes.values().fold(Size::default(), |sum, &s| sum + s);
        Self {
            packages: packages(
                classified
                    .get(&Class::Packages)
                    .into_iter()
                    .flatten()
                    .copied(),
                &venvs(&assessment.unsaved),
            ),
            disposable_by_project: None,
            classes,
            volumes,
            disposable_volumes: Vec::new(),
            disposable: Tally::new(&assessment.disposable),
            deleted: Tally::new(&assessment.deleted),
            touched_dirs: Tally::new(&assessment.touched_dirs),
            layer,
            read_by,
        }
    }

    /// Whether removing the container loses anything: unsaved files, or data in an
    /// anonymous volume that nothing will point at afterwards.
    pub fn holds_work(&self) -> bool {
        self.classes.iter().any(|c| c.count > 0) || !self.volumes.is_empty()
    }

    pub fn unsaved_files(&self) -> usize {
        self.classes.iter().map(|c| c.count).sum()
    }

    /// The summary a person reads in five seconds: per class a count, a size and the
    /// top paths; what is not kept; and what to do.
    pub fn summary(&self, container: &str, rescue_to: &str, image: &str) -> Vec<String> {
        if !self.holds_work() {
            let mut lines = vec![format!("{container} holds no unsaved work")];
            lines.extend(self.not_kept());
            lines.extend(self.disposable_by_project.iter().map(ByProject::line));
            return lines;
        }
        let mut lines = vec![format!("{container} holds unsaved work:")];
        let mut rows = Vec::new();
        for class in self.classes.iter().filter(|c| c.count > 0) {
            let what = if class.class == Class::Packages && !self.packages.is_empty() {
                self.environments()
                    .iter()
                    .map(|(label, packages)| {
                        let names: Vec<String> = packages.iter().map(|p| p.shown()).collect();
                        format!("{label}: {}", list_some(&names, 4))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                let places: Vec<String> = class
                    .top
                    .iter()
                    .map(|p| {
                        if p.count > 1 {
                            format!("{} ({})", shown(p.path.as_bytes()), p.count)
                        } else {
                            shown(p.path.as_bytes())
                        }
                    })
                    .collect();
                list_some(&places, 3)
            };
            rows.push(vec![
                format!("  {}", class.class.name()),
                count_of(class.count, "file"),
                class.size.text(),
                what,
            ]);
        }
        for volume in &self.volumes {
            let at_least = if volume.complete { "" } else { "≥" };
            rows.push(vec![
                "  volume".to_string(),
                format!("{at_least}{}", count_of(volume.files as usize, "file")),
                format!("{at_least}{}", human_size(volume.bytes)),
                format!(
                    "{} (anonymous volume {}, kept, but nothing will point to it)",
                    volume.target,
                    short_id(&volume.name)
                ),
            ]);
        }
        lines.extend(crate::ui::table(&rows));
        if self.classes.iter().any(|c| c.count > 0 && c.size.estimated) {
            lines.push(
                "  ≈: an estimate from an even sample of the files in path order, the same \
                 each time for the same files; a rescue copies and counts them all"
                    .to_string(),
            );
        }
        lines.extend(self.not_kept());
        lines.extend(self.disposable_by_project.iter().map(ByProject::line));

        lines.push("what to do:".to_string());
        for (label, packages) in self.environments() {
            let wanted: Vec<String> = packages.iter().map(|p| p.requirement()).collect();
            let line = match (packages[0].manager, &packages[0].env) {
                ("pip", Some(env)) => format!(
                    "  {label}: {env} lives in the container and goes with it (--rescue \
                     copies it); to keep one, make it in the workspace: python3 -m venv \
                     /workspace/.venv && /workspace/.venv/bin/pip install {}",
                    wanted.join(" ")
                ),
                (manager, _) => {
                    let install = match manager {
                        "pip" => "pip install",
                        "conda" => "conda install -y",
                        _ => "apt-get install -y",
                    };
                    format!(
                        "  {label}: add to your Dockerfile or requirements: {install} {}",
                        wanted.join(" ")
                    )
                }
            };
            lines.push(line);
        }
        if !self.packages.is_empty() {
            lines.push(format!(
                "  packages: --save-packages writes them, pinned, to \
                 {rescue_to}/{}/; the next deploy installs them",
                super::save::DIR
            ));
        }
        let files = self.classes.iter().any(|c| c.count > 0) || !self.volumes.is_empty();
        if files {
            lines.push(format!(
                "  files:    --rescue copies them to {rescue_to}/.rescued/<UTC time>/"
            ));
        }
        lines.push(format!(
            "  all:      --commit keeps the whole container as image {image}:<UTC time>"
        ));
        lines.push("  or:       --yes removes it anyway".to_string());
        lines
    }

    /// The named packages by manager and environment, each with the label the
    /// summary gives it: `pip`, `pip in /opt/venv`, `conda`, `apt`.
    fn environments(&self) -> Vec<(String, Vec<&Package>)> {
        let mut groups: Vec<(String, Vec<&Package>)> = Vec::new();
        for manager in ["pip", "conda", "apt"] {
            let mut envs: Vec<Option<&String>> = self
                .packages
                .iter()
                .filter(|p| p.manager == manager)
                .map(|p| p.env.as_ref())
                .collect();
            envs.dedup();
            envs.sort();
            envs.dedup();
            for env in envs {
                let label = match env {
                    Some(env) => format!("{manager} in {env}"),
                    None => manager.to_string(),
                };
                let members = self
                    .packages
                    .iter()
                    .filter(|p| p.manager == manager && p.env.as_ref() == env)
                    .collect();
                groups.push((label, members));
            }
        }
        groups
    }

    fn not_kept(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if self.disposable.count > 0 {
            let places: Vec<String> = self
                .disposable
                .top
                .iter()
                .map(|p| shown(p.path.as_bytes()))
                .collect();
            parts.push(format!(
                "{} ({})",
                count_of(self.disposable.count, "disposable change"),
                list_some(&places, 3)
            ));
        }
        for volume in &self.disposable_volumes {
            parts.push(format!(
                "anonymous volume {} at disposable {} ({}, {}; kept, but nothing will point to it)",
                short_id(&volume.name),
                volume.target,
                count_of(volume.files as usize, "file"),
                human_size(volume.bytes)
            ));
        }
        if self.deleted.count > 0 {
            parts.push(count_of(self.deleted.count, "deleted image file"));
        }
        if self.touched_dirs.count > 0 {
            parts.push(format!(
                "{} with only mode or times changed",
                count_of(self.touched_dirs.count, "directory")
            ));
        }
        if parts.is_empty() {
            Vec::new()
        } else {
            vec![format!("  not kept: {}", parts.join("; "))]
        }
    }
}

/// `1 file`, `2 files`; `1 directory`, `2 directories`.
fn count_of(n: usize, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

/// `a, b, c, +2 more`.
fn list_some(items: &[String], at_most: usize) -> String {
    let mut text = items
        .iter()
        .take(at_most)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > at_most {
        text.push_str(&format!(", +{} more", items.len() - at_most));
    }
    text
}

fn short_id(name: &str) -> &str {
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        &name[..12]
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::ChangeKind;

    fn engine_read() -> ReadBy {
        ReadBy {
            source: crate::layer::Source::Engine,
            fallback: None,
        }
    }

    fn change(path: &str) -> Change {
        Change {
            path: path.into(),
            kind: ChangeKind::Added,
        }
    }

    #[test]
    fn classes_follow_where_things_land() {
        for (path, class) in [
            (
                "/usr/local/lib/python3.11/site-packages/six.py",
                Class::Packages,
            ),
            (
                "/root/.local/lib/python3.11/site-packages/x/y.py",
                Class::Packages,
            ),
            (
                "/opt/conda/conda-meta/numpy-1.26.4-py311h0.json",
                Class::Packages,
            ),
            ("/usr/bin/htop", Class::Packages),
            ("/var/lib/dpkg/info/htop.list", Class::Packages),
            ("/root/notes.txt", Class::Home),
            ("/home/bob/run.sh", Class::Home),
            ("/opt/results/a.csv", Class::Other),
            ("/usrlocal/x", Class::Other),
            ("/etc/hosts.allow", Class::Other),
        ] {
            assert_eq!(class_of(path, &[]), class, "{path}");
        }
    }

    #[test]
    fn packages_are_named_by_their_managers_records() {
        let changes = [
            "/usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
            "/usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/RECORD",
            "/usr/local/lib/python3.11/site-packages/requests/api.py",
            "/usr/lib/python3/dist-packages/old_pkg-1.0-py3.11.egg-info/PKG-INFO",
            "/opt/conda/conda-meta/scikit-learn-1.4.2-py311he08f58d_1.json",
            "/var/lib/dpkg/info/htop.list",
            "/var/lib/dpkg/info/libc6:amd64.list",
            "/var/lib/dpkg/info/htop.md5sums",
        ]
        .map(change);
        let found: Vec<String> = packages(&changes, &[])
            .iter()
            .map(|p| format!("{} {}", p.manager, p.requirement()))
            .collect();
        assert_eq!(
            found,
            [
                "apt htop",
                "apt libc6",
                "conda scikit-learn=1.4.2",
                "pip old_pkg==1.0",
                "pip requests==2.31.0"
            ]
        );
    }

    #[test]
    fn packages_are_named_per_environment_without_a_venvs_own_pip() {
        let changes = [
            "/usr/local/lib/python3.11/dist-packages/six-1.16.0.dist-info/RECORD",
            "/opt/venv/pyvenv.cfg",
            "/opt/venv/bin/activate",
            "/opt/venv/lib/python3.11/site-packages/six-1.16.0.dist-info/RECORD",
            "/opt/venv/lib/python3.11/site-packages/pip-23.0.1.dist-info/RECORD",
            "/opt/venv/lib/python3.11/site-packages/setuptools-66.1.1.dist-info/RECORD",
            "/root/.local/lib/python3.11/site-packages/pip-24.0.dist-info/RECORD",
        ]
        .map(change);
        let venvs = venvs(&changes);
        assert_eq!(venvs, ["/opt/venv"]);
        assert_eq!(class_of("/opt/venv/bin/activate", &venvs), Class::Packages);
        assert_eq!(class_of("/opt/venvy/x", &venvs), Class::Other);
        let found: Vec<String> = packages(&changes, &venvs)
            .iter()
            .map(|p| format!("{:?} {}", p.env, p.requirement()))
            .collect();
        // A pip upgraded outside a venv is a choice someone made: it stays.
        assert_eq!(
            found,
            [
                "None six==1.16.0",
                "Some(\"/opt/venv\") six==1.16.0",
                "Some(\"/root/.local\") pip==24.0"
            ]
        );
    }

    #[test]
    fn apt_packages_get_their_versions_from_dpkgs_status() {
        let mut found = packages(&[change("/var/lib/dpkg/info/hello.list")], &[]);
        let status = "Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\n\
                      Package: hello\nStatus: install ok installed\nVersion: 2.10-3\n";
        apt_versions(&mut found, status);
        assert_eq!(found[0].requirement(), "hello=2.10-3");
    }

    #[test]
    fn the_summary_says_what_happens_to_each_environment() {
        let assessment = Assessment {
            unsaved: [
                "/usr/local/lib/python3.11/dist-packages/six-1.16.0.dist-info/RECORD",
                "/opt/venv/pyvenv.cfg",
                "/opt/venv/lib/python3.11/site-packages/six-1.16.0.dist-info/RECORD",
            ]
            .map(change)
            .to_vec(),
            ..Default::default()
        };
        let report = Report::new(&assessment, &HashMap::new(), engine_read(), Vec::new());
        let text = report.summary("c", "/w", "berth/u/p").join("\n");
        assert!(
            text.contains("pip: six 1.16.0; pip in /opt/venv: six 1.16.0"),
            "{text}"
        );
        assert!(
            text.contains("pip: add to your Dockerfile or requirements: pip install six==1.16.0"),
            "{text}"
        );
        assert!(
            text.contains("pip in /opt/venv: /opt/venv lives in the container"),
            "{text}"
        );
    }

    #[test]
    fn a_sample_spreads_and_an_estimate_extrapolates() {
        assert_eq!(sample(3, 8), [0, 1, 2]);
        assert_eq!(sample(100, 4), [0, 25, 50, 75]);
        assert_eq!(
            Size::from_sample(2, &[10, 20]),
            Size {
                bytes: 30,
                estimated: false
            }
        );
        assert_eq!(
            Size::from_sample(100, &[10, 30]),
            Size {
                bytes: 2000,
                estimated: true
            }
        );
        assert_eq!(Size::from_sample(0, &[]), Size::default());
    }

    #[test]
    fn top_places_group_by_the_telling_directory() {
        let changes = [
            "/opt/results/a",
            "/opt/results/b/c",
            "/home/bob/x/y",
            "/root/notes.txt",
        ]
        .map(change);
        let places: Vec<(String, usize)> = top_places(&changes, 8)
            .into_iter()
            .map(|p| (p.path, p.count))
            .collect();
        assert_eq!(
            places,
            [
                ("/opt/results".to_string(), 2),
                ("/home/bob/x".to_string(), 1),
                ("/root/notes.txt".to_string(), 1)
            ]
        );
    }

    fn report(unsaved: &[&str], volumes: Vec<VolumeReport>) -> Report {
        let assessment = Assessment {
            unsaved: unsaved.iter().map(|p| change(p)).collect(),
            disposable: vec![change("/tmp/x")],
            ..Default::default()
        };
        let sizes = HashMap::from([
            (Some(Class::Home), Size::from_sample(1, &[2048])),
            (Some(Class::Packages), Size::from_sample(40, &[100, 300])),
        ]);
        Report::new(&assessment, &sizes, engine_read(), volumes)
    }

    #[test]
    fn the_summary_says_what_and_what_to_do() {
        let r = report(
            &[
                "/root/notes.txt",
                "/usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info/RECORD",
            ],
            Vec::new(),
        );
        assert!(r.holds_work());
        assert_eq!(r.unsaved_files(), 2);
        assert_eq!(
            r.layer,
            Size {
                bytes: 2048 + 8000,
                estimated: true
            }
        );
        let text = r.summary("p._.alice", "/w/p", "berth/alice/p").join("\n");
        for expected in [
            "p._.alice holds unsaved work:",
            "packages  1 file",
            "pip: six 1.16.0",
            "home      1 file",
            "/root/notes.txt",
            "not kept: 1 disposable change (/tmp/x)",
            "pip install six==1.16.0",
            "--rescue copies them to /w/p/.rescued/<UTC time>/",
            "--commit keeps the whole container as image berth/alice/p:<UTC time>",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("other"), "{text}");
    }

    #[test]
    fn a_volume_with_data_is_work_even_without_files() {
        let volume = VolumeReport {
            name: "a".repeat(64),
            target: "/scratch".into(),
            files: 3,
            bytes: 10,
            complete: false,
        };
        let r = report(&[], vec![volume]);
        assert!(r.holds_work());
        let text = r.summary("c", "/w", "berth/u/p").join("\n");
        assert!(text.contains("≥3 files"), "{text}");
        assert!(
            text.contains("/scratch (anonymous volume aaaaaaaaaaaa"),
            "{text}"
        );
    }

    #[test]
    fn a_clean_container_says_so_in_one_line() {
        let r = report(&[], Vec::new());
        assert_eq!(
            r.summary("c", "/w", "i"),
            [
                "c holds no unsaved work",
                "  not kept: 1 disposable change (/tmp/x)"
            ]
        );
    }
}
