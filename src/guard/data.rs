//! The data-root guard (DESIGN.md section 4): every place that names the data root must
//! name the same, existing directory.
//!
//! [`resolve`] follows each value to the directory it names (the only step that reads
//! the filesystem); [`decide`] is pure and turns the rows into one root or a refusal
//! with the table of every source.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{absolutize, DataRootValue, Source, Sourced};
use crate::error::{io_reason, Error, Result};
use crate::ui;

/// One source of the data root, and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub source: Source,
    pub raw: String,
    /// The real directory (symlinks followed), or why there is none.
    pub resolved: Result<PathBuf, String>,
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
                Err(err) => Err(format!("{absolute}: {}", io_reason(&err))),
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
            "the data root named by {} does not exist ({why})",
            broken.source
        ))
        .details(table(rows))
        .hint(
            "berth never creates a data root: mount the share or create the directory, \
             then deploy again",
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
                Err(why) => format!("(missing: {why})"),
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
            Err("/nope: no such file or directory"),
        )];
        let err = decide(&rows).unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("does not exist"));
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
