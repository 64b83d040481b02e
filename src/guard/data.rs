//! The data-root guard (README, "One data root"): every place that names the data root must
//! name the same, existing directory.
//!
//! Pure: [`crate::dataroot`] follows each value to the directory it names and reads the
//! root's identity marker; [`decide`] turns the rows into one root or a refusal with the
//! table of every source, and [`judge`] the marker and berth's memory of it into an
//! identity or a refusal.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Source;
use crate::container::ContainerInfo;
use crate::error::{Error, Result};
use crate::ui;

/// One source of the data root, and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub source: Source,
    pub raw: String,
    /// The real directory (symlinks followed), or why there is none.
    pub resolved: Result<PathBuf, String>,
}

/// As `check --json` shows it: `{"source", "raw", "resolved", "problem"}`, one of the
/// last two null.
impl Serialize for Row {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut row = serializer.serialize_struct("Row", 4)?;
        row.serialize_field("source", &self.source)?;
        row.serialize_field("raw", &self.raw)?;
        row.serialize_field("resolved", &self.resolved.as_ref().ok())?;
        row.serialize_field("problem", &self.resolved.as_ref().err())?;
        row.end()
    }
}

/// The one data root all sources agree on, `None` when no source names one, or a
/// refusal that shows every source.
pub fn decide(rows: &[Row]) -> Result<Option<PathBuf>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    if let Some(broken) = rows.iter().find(|r| r.resolved.is_err()) {
        let why = broken.resolved.clone().err().unwrap_or_default();
        return Err(Error::refused(format!(
            "the data root named by {} is unusable: {why}",
            broken.source
        ))
        .details(table(rows))
        .hint(
            "berth never creates a data root: mount the share, create the directory or \
             fix the path, then deploy again",
        ));
    }
    let root = first.resolved.clone().unwrap_or_default();
    if rows.iter().all(|r| r.resolved.as_ref() == Ok(&root)) {
        return Ok(Some(root));
    }
    Err(
        Error::refused("the data root is named differently in different places (split-brain)")
            .details(table(rows))
            .hint(format!(
                "make every source name {} (the one from {}), or remove the others",
                root.display(),
                first.source
            )),
    )
}

/// The identity marker berth writes into a data root on first use.
pub const MARKER: &str = ".berth-data-id";

/// What the marker and berth's memory say about a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Marker and memory agree.
    Known(String),
    /// A marker berth has not seen before (another user wrote it): remember it.
    Adopt(String),
    /// First use: write a marker and remember it.
    New,
}

/// Decides from the marker found in `root` and the id berth remembers for it.
pub fn judge(root: &Path, marker: Option<String>, remembered: Option<String>) -> Result<Identity> {
    match (marker, remembered) {
        (Some(found), Some(known)) if found == known => Ok(Identity::Known(found)),
        (Some(found), Some(known)) => Err(Error::refused(format!(
            "the data root {} is not the one berth used before: its {MARKER} says {found}, \
             berth remembers {known}",
            root.display()
        ))
        .hint(
            "that usually means another disk or share is mounted at that path; mount the \
               right one, or remove the entry from data-roots.json in the state directory",
        )),
        (Some(found), None) => Ok(Identity::Adopt(found)),
        (None, Some(known)) => Err(Error::refused(format!(
            "the data root {} has lost its identity marker {MARKER} (berth remembers {known})",
            root.display()
        ))
        .hint(
            "that usually means the network filesystem is not mounted and an empty local \
               directory sits at its path; mount it and deploy again",
        )),
        (None, None) => Ok(Identity::New),
    }
}

/// Refuses when another container of the same data group has a different data root.
pub fn check_group(
    group: &str,
    own_name: &str,
    root: Option<&Path>,
    others: &[ContainerInfo],
) -> Result<()> {
    let ours = root.map(|r| r.display().to_string()).unwrap_or_default();
    let differing: Vec<&ContainerInfo> = others
        .iter()
        .filter(|c| c.name != own_name && c.data != ours)
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    let mut rows = vec![vec![
        "CONTAINER".to_string(),
        "USER".into(),
        "DATA ROOT".into(),
    ]];
    rows.push(vec![
        format!("{own_name} (this deploy)"),
        String::new(),
        show(&ours),
    ]);
    for c in &differing {
        rows.push(vec![c.name.clone(), c.user.clone(), show(&c.data)]);
    }
    Err(Error::refused(format!(
        "data group {group:?} already uses another data root (split-brain)"
    ))
    .details(ui::table(&rows))
    .hint(format!(
        "point [data] host_path at {}, or retire those containers first",
        show(&differing[0].data)
    )))
}

/// The project's own container must mount what the configuration names now: one made
/// when the workspace or the data root was another is split-brain of its own making,
/// and starting it again would hide that. `workspace` and `data` are the plan's labels
/// for them (the data root resolved, empty for none).
pub fn check_own(
    container: &ContainerInfo,
    project: &str,
    workspace: &str,
    data: &str,
) -> Result<()> {
    let mut rows = vec![vec![
        String::new(),
        "THE CONTAINER MOUNTS".to_string(),
        "THE CONFIGURATION NAMES".into(),
    ]];
    if container.workspace != workspace {
        rows.push(vec![
            "workspace".into(),
            show(&container.workspace),
            show(workspace),
        ]);
    }
    if container.data != data {
        rows.push(vec!["data root".into(), show(&container.data), show(data)]);
    }
    if rows.len() == 1 {
        return Ok(());
    }
    Err(Error::refused(format!(
        "{} mounts another {} than the configuration names now (split-brain)",
        container.name,
        if rows.len() == 3 {
            "workspace and data root"
        } else if container.data != data {
            "data root"
        } else {
            "workspace"
        }
    ))
    .details(ui::table(&rows))
    .hint(format!(
        "`berth deploy {project} --recreate` makes a new container with what the \
         configuration names (after the unsaved-work check), or put the configuration back"
    )))
}

fn show(root: &str) -> String {
    if root.is_empty() {
        "(none)".into()
    } else {
        root.to_string()
    }
}

/// The table of sources, raw values and resolved directories.
pub fn table(rows: &[Row]) -> Vec<String> {
    let mut cells = vec![vec![
        "SOURCE".to_string(),
        "VALUE".into(),
        "RESOLVES TO".into(),
    ]];
    for row in rows {
        cells.push(vec![
            row.source.to_string(),
            row.raw.clone(),
            match &row.resolved {
                Ok(path) => path.display().to_string(),
                Err(why) => format!("({why})"),
            },
        ]);
    }
    ui::table(&cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: Source, raw: &str, resolved: Result<&str, &str>) -> Row {
        Row {
            source,
            raw: raw.into(),
            resolved: resolved.map(PathBuf::from).map_err(str::to_string),
        }
    }

    fn container(name: &str, data: &str) -> ContainerInfo {
        ContainerInfo {
            id: name.into(),
            name: name.into(),
            project: "p".into(),
            user: "1000".into(),
            state: crate::container::State::Running,
            never_started: false,
            status: String::new(),
            image: String::new(),
            workspace: String::new(),
            data: data.into(),
            data_group: "g".into(),
            size_rw: None,
            gpus: Vec::new(),
            run: false,
        }
    }

    #[test]
    fn identity_is_judged_from_marker_and_memory() {
        let root = Path::new("/d");
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            judge(root, some("a"), some("a")).unwrap(),
            Identity::Known("a".into())
        );
        assert_eq!(
            judge(root, some("a"), None).unwrap(),
            Identity::Adopt("a".into())
        );
        assert_eq!(judge(root, None, None).unwrap(), Identity::New);
        let err = judge(root, None, some("a")).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.hint.unwrap().contains("not mounted"));
        let err = judge(root, some("b"), some("a")).unwrap_err();
        assert!(err.message.contains("says b") && err.message.contains("remembers a"));
    }

    #[test]
    fn a_group_must_share_one_root() {
        let root = Some(Path::new("/d"));
        assert!(check_group("g", "me", root, &[container("other", "/d")]).is_ok());
        assert!(check_group("g", "me", root, &[container("me", "/old")]).is_ok());
        let err = check_group("g", "me", root, &[container("other", "/opt/d")]).unwrap_err();
        assert_eq!(err.code(), 3);
        let table = err.details.join("\n");
        assert!(table.contains("/opt/d") && table.contains("/d"));
        assert!(check_group("g", "me", None, &[container("other", "/d")]).is_err());
    }

    #[test]
    fn no_source_means_no_data_root() {
        assert_eq!(decide(&[]).unwrap(), None);
    }

    #[test]
    fn agreeing_sources_give_the_root() {
        let rows = [
            row(Source::Project("/w/p/berth.toml".into()), "../d", Ok("/d")),
            row(Source::Env("HOST_DATA_PATH"), "/d/", Ok("/d")),
        ];
        assert_eq!(decide(&rows).unwrap(), Some(PathBuf::from("/d")));
    }

    #[test]
    fn disagreeing_sources_are_refused_with_the_table() {
        let rows = [
            row(
                Source::Project("/w/p/berth.toml".into()),
                "./ai-lab-data",
                Ok("/w/p/ai-lab-data"),
            ),
            row(
                Source::Env("HOST_DATA_PATH"),
                "/opt/ai-lab-data",
                Ok("/opt/ai-lab-data"),
            ),
        ];
        let err = decide(&rows).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("split-brain"));
        let text = err.details.join("\n");
        assert!(text.contains("/w/p/ai-lab-data") && text.contains("/opt/ai-lab-data"));
        assert!(err.hint.unwrap().contains("/w/p/ai-lab-data"));
    }

    #[test]
    fn a_missing_root_is_refused_not_created() {
        let rows = [row(
            Source::Env("HOST_DATA_PATH"),
            "/nope",
            Err("/nope does not exist"),
        )];
        let err = decide(&rows).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(
            err.message.contains("/nope does not exist"),
            "{}",
            err.message
        );
    }
}
