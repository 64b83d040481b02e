//! The workspace guard: a deploy of a new project whose name is one typo away from an
//! existing workspace is refused, so a slip of the finger does not start an empty
//! workspace silently (one of the reference system's gaps).

use crate::error::{Error, Result};
use crate::suggest;

/// What is at `<workspace root>/<project>` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Directory,
    Missing,
    /// A file, socket or anything else that is not a directory.
    Other,
}

/// What deploy will do with the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workspace {
    Existing,
    /// Will be created (and berth says so).
    New,
}

/// Decides about the workspace of `project`, given what is there and the names of the
/// other workspaces; `allow_new` is `--new`.
pub fn check(
    project: &str,
    path_display: &str,
    found: Found,
    siblings: &[String],
    allow_new: bool,
) -> Result<Workspace> {
    match found {
        Found::Directory => Ok(Workspace::Existing),
        Found::Other => Err(Error::failed(format!(
            "the workspace {path_display} exists but is not a directory"
        ))
        .hint("move it aside; berth keeps each project's files in a directory of that name")),
        Found::Missing if allow_new => Ok(Workspace::New),
        Found::Missing => {
            let similar: Vec<&str> = siblings
                .iter()
                .map(String::as_str)
                .filter(|name| is_similar(project, name))
                .collect();
            if similar.is_empty() {
                return Ok(Workspace::New);
            }
            Err(Error::refused(format!(
                "there is no workspace {path_display}, but there is {}",
                similar.join(", ")
            ))
            .hint(format!(
                "did you mean `{}`? To start a new project of this name, pass --new",
                similar[0]
            )))
        }
    }
}

fn is_similar(project: &str, other: &str) -> bool {
    let other = other.to_lowercase();
    other != project && suggest::distance(project, &other) <= 2.min(project.len() / 3 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_existing_directory_is_used() {
        assert_eq!(
            check("p", "/w/p", Found::Directory, &[], false).unwrap(),
            Workspace::Existing
        );
    }

    #[test]
    fn a_new_name_unlike_any_other_is_created() {
        let siblings = names(&["alpha-proj", "vision"]);
        assert_eq!(
            check("speech", "/w/speech", Found::Missing, &siblings, false).unwrap(),
            Workspace::New
        );
    }

    #[test]
    fn a_typo_of_an_existing_workspace_is_refused_unless_new() {
        let siblings = names(&["alpha-proj", "vision"]);
        let err = check(
            "alpha-prj",
            "/w/alpha-prj",
            Found::Missing,
            &siblings,
            false,
        )
        .unwrap_err();
        assert_eq!(err.code(), 3);
        assert!(err.message.contains("alpha-proj"));
        assert!(err.hint.unwrap().contains("--new"));
        assert_eq!(
            check("alpha-prj", "/w/alpha-prj", Found::Missing, &siblings, true).unwrap(),
            Workspace::New
        );
    }

    #[test]
    fn short_names_need_a_closer_match() {
        let siblings = names(&["ab"]);
        assert_eq!(
            check("xy", "/w/xy", Found::Missing, &siblings, false).unwrap(),
            Workspace::New
        );
        let err = check("ac", "/w/ac", Found::Missing, &siblings, false).unwrap_err();
        assert_eq!(err.code(), 3);
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let err = check("p", "/w/p", Found::Other, &[], true).unwrap_err();
        assert_eq!(err.code(), 1);
        assert!(err.message.contains("not a directory"));
    }
}
