//! The data-root guard (DESIGN.md section 4): every place that names the data root must
//! name the same, existing directory.
//!
//! [`resolve`] follows each value to the directory it names (the only step that reads
//! the filesystem); [`decide`] is pure and turns the rows into one root or a refusal
//! with the table of every source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{absolutize, DataRootValue, Source, Sourced};
use crate::engine::ContainerInfo;
use crate::error::{io_reason, Error, Result};
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

/// Resolves each value relative to the file that holds it, following symlinks.
pub fn resolve(candidates: &[Sourced<DataRootValue>]) -> Vec<Row> {
    candidates
        .iter()
        .map(|c| {
            let absolute = absolutize(&c.value.raw, &c.value.base);
            let resolved = match std::fs::canonicalize(&absolute) {
                Ok(path) if path.is_dir() => Ok(path),
                Ok(path) => Err(format!("{} is not a directory", path.display())),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    Err(format!("{absolute} does not exist"))
                }
                // A symlink loop, a file on the way, no permission: name the reason.
                Err(err) => Err(format!(
                    "{absolute} cannot be followed: {}",
                    io_reason(&err)
                )),
            };
            Row {
                source: c.source.clone(),
                raw: c.value.raw.clone(),
                resolved,
            }
        })
        .collect()
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
/// Where berth remembers (root → id), inside the state directory.
const REMEMBERED: &str = "data-roots.json";

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

/// Reads the marker and berth's memory of `root`, and judges them.
pub fn identify(root: &Path, state_dir: &Path) -> Result<Identity> {
    let marker = read_marker(root)?;
    let remembered = remembered_ids(state_dir).remove(&root.display().to_string());
    judge(root, marker, remembered)
}

/// A marker is one short line; anything longer was not written by berth.
const MAX_MARKER: u64 = 256;

/// The id in `root`'s marker, read only from a small regular file. The root is shared:
/// a symlink, a device, a pipe or a directory planted there is refused, not followed.
fn read_marker(root: &Path) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let marker = root.join(MARKER);
    let planted = || {
        Error::refused(format!(
            "the data root's identity marker {} is not a file berth wrote",
            marker.display()
        ))
        .hint("it is a symlink, a directory or a large file: remove it, and berth writes its own")
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&marker);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => return Err(planted()),
        Err(err) => return Err(Error::io("read", &marker, err)),
    };
    let meta = file
        .metadata()
        .map_err(|err| Error::io("read", &marker, err))?;
    if !meta.is_file() || meta.len() > MAX_MARKER {
        return Err(planted());
    }
    let mut text = String::new();
    file.take(MAX_MARKER)
        .read_to_string(&mut text)
        .map_err(|err| Error::io("read", &marker, err))?;
    Ok(Some(text.trim().to_string()))
}

/// Makes the identity real: writes a new marker or remembers an adopted one; returns
/// the id.
pub fn settle(identity: Identity, root: &Path, state_dir: &Path) -> Result<String> {
    let id = match identity {
        Identity::Known(id) => return Ok(id),
        Identity::Adopt(id) => id,
        Identity::New => {
            let id = new_id()?;
            let marker = root.join(MARKER);
            match write_marker(&marker, &id) {
                Ok(()) => id,
                // Another deploy wrote one first: that one is the root's id.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_marker(root)?
                        .ok_or_else(|| Error::io("write the identity marker", &marker, err))?
                }
                Err(err) => {
                    return Err(Error::io("write the identity marker", &marker, err)
                        .hint("ask whoever owns the data root to let you write it once"))
                }
            }
        }
    };
    let mut ids = remembered_ids(state_dir);
    ids.insert(root.display().to_string(), id.clone());
    std::fs::create_dir_all(state_dir).map_err(|err| Error::io("create", state_dir, err))?;
    let path = state_dir.join(REMEMBERED);
    let text = serde_json::to_string_pretty(&ids).unwrap_or_default();
    crate::files::write_atomically(&path, text.as_bytes())
        .map_err(|err| Error::io("write", &path, err))?;
    Ok(id)
}

/// Creates the marker, never through a symlink or over a file already there.
fn write_marker(marker: &Path, id: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(marker)?
        .write_all(format!("{id}\n").as_bytes())
}

fn remembered_ids(state_dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(state_dir.join(REMEMBERED))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn new_id() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|err| Error::failed(format!("cannot read /dev/urandom: {err}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
    fn settle_writes_a_marker_once_and_remembers_it() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        std::fs::create_dir(&root).unwrap();
        assert_eq!(identify(&root, &state).unwrap(), Identity::New);
        let id = settle(Identity::New, &root, &state).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(identify(&root, &state).unwrap(), Identity::Known(id));
        std::fs::remove_file(root.join(MARKER)).unwrap();
        assert_eq!(identify(&root, &state).unwrap_err().code(), 3);
    }

    fn container(name: &str, data: &str) -> ContainerInfo {
        ContainerInfo {
            id: name.into(),
            name: name.into(),
            project: "p".into(),
            user: "1000".into(),
            state: crate::engine::State::Running,
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

    #[test]
    fn a_planted_marker_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        std::fs::create_dir(&root).unwrap();
        let marker = root.join(MARKER);
        let outside = dir.path().join("outside");
        let plants: [&dyn Fn(); 5] = [
            &|| std::os::unix::fs::symlink(&outside, &marker).unwrap(),
            &|| std::os::unix::fs::symlink("/dev/zero", &marker).unwrap(),
            &|| std::os::unix::fs::symlink(&marker, &marker).unwrap(),
            &|| std::fs::create_dir(&marker).unwrap(),
            &|| std::fs::write(&marker, "x".repeat(1000)).unwrap(),
        ];
        for plant in plants {
            plant();
            let err = identify(&root, &state).unwrap_err();
            assert_eq!(err.code(), 3);
            assert!(
                err.message.contains("not a file berth wrote"),
                "{}",
                err.message
            );
            assert!(!outside.exists());
            std::fs::remove_dir(&marker)
                .or_else(|_| std::fs::remove_file(&marker))
                .unwrap();
        }
        // A dangling symlink planted between the check and the write is not written
        // through either.
        std::os::unix::fs::symlink(&outside, &marker).unwrap();
        assert!(settle(Identity::New, &root, &state).is_err());
        assert!(!outside.exists());
    }

    #[test]
    fn a_marker_written_meanwhile_by_another_deploy_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let (root, state) = (dir.path().join("root"), dir.path().join("state"));
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join(MARKER), "theirs\n").unwrap();
        assert_eq!(settle(Identity::New, &root, &state).unwrap(), "theirs");
        assert_eq!(
            identify(&root, &state).unwrap(),
            Identity::Known("theirs".into())
        );
    }

    #[test]
    fn a_symlink_loop_or_a_file_on_the_way_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("b"), dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let value = |raw: &str| Sourced {
            value: DataRootValue {
                raw: raw.into(),
                base: dir.path().to_path_buf(),
            },
            source: Source::Env("HOST_DATA_PATH"),
        };
        let rows = resolve(&[value("a"), value("a/sub"), value("file/sub"), value("file")]);
        let problems: Vec<String> = rows
            .iter()
            .map(|r| r.resolved.clone().unwrap_err())
            .collect();
        let at = |name: &str| dir.path().join(name).display().to_string();
        assert_eq!(
            problems,
            [
                format!(
                    "{} cannot be followed: too many levels of symbolic links",
                    at("a")
                ),
                format!(
                    "{} cannot be followed: too many levels of symbolic links",
                    at("a/sub")
                ),
                format!("{} cannot be followed: not a directory", at("file/sub")),
                format!("{} is not a directory", at("file")),
            ]
        );
        let err = decide(&rows).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("symbolic links"), "{}", err.message);
    }

    #[test]
    fn resolve_follows_symlinks_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let value = |raw: &str| Sourced {
            value: DataRootValue {
                raw: raw.into(),
                base: dir.path().to_path_buf(),
            },
            source: Source::Env("HOST_DATA_PATH"),
        };
        let rows = resolve(&[
            value("real"),
            value("./link/"),
            value("link/../real"),
            value(real.to_str().unwrap()),
        ]);
        let real = std::fs::canonicalize(&real).unwrap();
        assert_eq!(decide(&rows).unwrap(), Some(real));
    }
}
