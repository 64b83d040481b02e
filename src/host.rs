//! Facts about the host that the rest of berth takes as input: who is calling, and where
//! berth's files live (README, "Files and environment variables"). Read once, at
//! start-up, then passed along.

use std::env;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::os;

/// The user who runs berth; containers run as this uid:gid by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUser {
    pub uid: u32,
    pub gid: u32,
    /// Login name, as `id -un` says it on the host.
    pub name: String,
}

impl HostUser {
    pub fn current() -> Self {
        let (uid, gid) = (os::uid(), os::gid());
        let name = passwd_name(uid)
            .or_else(|| env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| uid.to_string());
        Self { uid, gid, name }
    }

    /// The user's name as it may appear in a container name: docker allows
    /// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, so anything else becomes `-`.
    pub fn name_for_container(&self) -> String {
        let cleaned: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if cleaned.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            cleaned
        } else {
            format!("u{cleaned}")
        }
    }
}

/// The login name of `uid` on this host, if it has one.
pub fn passwd_name(uid: u32) -> Option<String> {
    os::passwd(uid).map(|entry| entry.name)
}

/// The home directory of `uid` in the password database: unlike `$HOME`, not the
/// caller's to choose.
pub fn passwd_home(uid: u32) -> Option<PathBuf> {
    os::passwd(uid).map(|entry| entry.home)
}

/// Where berth reads and writes on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `BERTH_WORKSPACE_ROOT`, else `~/workspace`.
    pub workspace_root: PathBuf,
    /// Whether `BERTH_WORKSPACE_ROOT` named it (a pinned root then must agree).
    pub workspace_root_explicit: bool,
    /// `BERTH_CONFIG`, else `$XDG_CONFIG_HOME/berth/config.toml`; and whether it was named
    /// explicitly (then it must exist).
    pub user_config: PathBuf,
    pub user_config_explicit: bool,
    /// `BERTH_POLICY` for root, else `/etc/berth/policy.toml` (see
    /// [`policy_path`]).
    pub policy: PathBuf,
    pub policy_explicit: bool,
    /// Why a non-root user's `BERTH_POLICY` was not followed, to tell them.
    pub policy_warning: Option<String>,
    /// `BERTH_STATE_DIR`, else `$XDG_STATE_HOME/berth`.
    pub state_dir: PathBuf,
    /// Persistent container home directories: `$XDG_DATA_HOME/berth/home`.
    pub homes: PathBuf,
}

impl Paths {
    pub fn from_env() -> Result<Self> {
        let home = dirs::home_dir()
            .ok_or_else(|| Error::failed("cannot tell your home directory").hint("set HOME"))?;
        let var = |name: &str| {
            env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let xdg = |name: &str, fallback: &str| {
            var(name)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(fallback))
        };
        let user_config = var("BERTH_CONFIG");
        let uid = os::uid();
        let (policy, policy_warning) = policy_path(uid, var("BERTH_POLICY").as_deref());
        let policy_explicit = uid == 0 && var("BERTH_POLICY").is_some();
        Ok(Self {
            workspace_root_explicit: var("BERTH_WORKSPACE_ROOT").is_some(),
            workspace_root: var("BERTH_WORKSPACE_ROOT").unwrap_or_else(|| home.join("workspace")),
            user_config_explicit: user_config.is_some(),
            user_config: user_config
                .unwrap_or_else(|| xdg("XDG_CONFIG_HOME", ".config").join("berth/config.toml")),
            policy_explicit,
            policy,
            policy_warning,
            state_dir: var("BERTH_STATE_DIR")
                .unwrap_or_else(|| xdg("XDG_STATE_HOME", ".local/state").join("berth")),
            homes: xdg("XDG_DATA_HOME", ".local/share").join("berth/home"),
        })
    }

    pub fn workspace(&self, project: &ProjectName) -> PathBuf {
        self.workspace_root.join(project.as_str())
    }

    pub fn container_home(&self, project: &ProjectName) -> PathBuf {
        self.homes.join(project.as_str())
    }
}

/// A project name that passed the rule for project names: `[a-z0-9][a-z0-9_.-]*`, at
/// most 64 characters. Holding one is the proof that it is safe to join onto a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectName(String);

pub const MAX_PROJECT_NAME: usize = 64;

impl ProjectName {
    pub fn parse(raw: &str) -> Result<Self> {
        match name_problem(raw) {
            None => Ok(Self(raw.to_string())),
            Some(why) => Err(
                Error::usage(format!("invalid project name {raw:?}: {why}")).hint(
                    suggest_name(raw).map_or_else(
                        || {
                            "use lowercase letters, digits, and . _ - (at most 64 characters)"
                                .into()
                        },
                        |s| {
                            format!(
                                "project names use lowercase letters, digits, and . _ -; try {s:?}"
                            )
                        },
                    ),
                ),
            ),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why `raw` is not a valid project name, or `None` when it is.
fn name_problem(raw: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
    if raw.is_empty() {
        Some("it is empty".to_string())
    } else if raw.len() > MAX_PROJECT_NAME {
        Some(format!(
            "it is {} characters long; the limit is {MAX_PROJECT_NAME}",
            raw.len()
        ))
    } else if !raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        Some("it must start with a lowercase letter or a digit".to_string())
    } else {
        raw.chars()
            .find(|c| !allowed(*c))
            .map(|c| format!("{c:?} is not allowed"))
    }
}

/// A valid name close to a rejected one (`My Project` → `my-project`), if there is one.
fn suggest_name(raw: &str) -> Option<String> {
    let lowered: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '/' {
                '-'
            } else {
                c
            }
        })
        .collect();
    let trimmed = lowered.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    (trimmed != raw && name_problem(trimmed).is_none()).then(|| trimmed.to_string())
}

/// `berth/<user>/<project>`: where a user's images of a project go, commits and builds.
pub fn image_repo(user: &str, project: &str) -> String {
    format!(
        "berth/{}/{}",
        image_component(user),
        image_component(project)
    )
}

pub fn image_component(name: &str) -> String {
    let parts: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if parts.is_empty() {
        "unnamed".to_string()
    } else {
        parts.join("-")
    }
}

/// The named volume that keeps container path `path` of `user`'s `project`:
/// `berth.<user>.<project>.<slug>`, the slug the path's components joined by `-`
/// (`/opt/conda` → `opt-conda`), each reduced to what a volume name may hold. `None`
/// for a path that is not absolute and plain (`/`, `..`, an empty component).
pub fn persist_volume(user: &str, project: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let parts: Vec<String> = rest
        .trim_end_matches('/')
        .split('/')
        .map(|part| match part {
            "" | "." | ".." => None,
            part => Some(
                part.chars()
                    .map(|c| match c.is_ascii_alphanumeric() || c == '_' {
                        true => c,
                        false => '_',
                    })
                    .collect(),
            ),
        })
        .collect::<Option<_>>()?;
    Some(format!(
        "berth.{}.{project}.{}",
        image_component(user),
        parts.join("-")
    ))
}

/// Where the policy lives when nobody (or a non-root user) says otherwise.
pub const DEFAULT_POLICY: &str = "/etc/berth/policy.toml";

/// Which policy file applies: `BERTH_POLICY` for root, [`DEFAULT_POLICY`] for everyone
/// else. A non-root user's `BERTH_POLICY` is ignored with a warning: honouring it would
/// let anyone switch the policy off (`BERTH_POLICY=/dev/null`).
pub fn policy_path(uid: u32, named: Option<&Path>) -> (PathBuf, Option<String>) {
    match named {
        Some(path) if uid == 0 => (path.to_path_buf(), None),
        Some(path) if path != Path::new(DEFAULT_POLICY) => (
            PathBuf::from(DEFAULT_POLICY),
            Some(format!(
                "BERTH_POLICY ({}) is honoured for root only; the policy is {DEFAULT_POLICY}",
                path.display()
            )),
        ),
        _ => (PathBuf::from(DEFAULT_POLICY), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persisted_path_has_a_volume_of_its_own() {
        let name = |path| persist_volume("Alice", "alpha", path);
        assert_eq!(name("/srv").unwrap(), "berth.alice.alpha.srv");
        assert_eq!(name("/opt/conda/").unwrap(), "berth.alice.alpha.opt-conda");
        assert_eq!(name("/a b/ü").unwrap(), "berth.alice.alpha.a_b-_");
        for bad in ["srv", "/", "/a/../b", "/a//b", "/./a", ""] {
            assert_eq!(name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_root_may_name_another_policy() {
        let mine = Path::new("/home/u/permissive.toml");
        assert_eq!(policy_path(0, Some(mine)), (mine.to_path_buf(), None));
        let (path, warning) = policy_path(1000, Some(mine));
        assert_eq!(path, Path::new(DEFAULT_POLICY));
        assert!(warning.unwrap().contains("root only"));
        assert_eq!(
            policy_path(1000, None),
            (PathBuf::from(DEFAULT_POLICY), None)
        );
        assert_eq!(
            policy_path(1000, Some(Path::new(DEFAULT_POLICY))),
            (PathBuf::from(DEFAULT_POLICY), None)
        );
    }

    #[test]
    fn image_components_are_valid_repository_names() {
        assert_eq!(image_component("Alice.Smith"), "alice-smith");
        assert_eq!(image_component("my_proj..x"), "my-proj-x");
        assert_eq!(image_component("__"), "unnamed");
    }

    #[test]
    fn accepts_valid_names() {
        for name in ["a", "my-project", "p1.v2_x", "0abc", &"a".repeat(64)] {
            assert_eq!(ProjectName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn refuses_names_that_could_escape_or_confuse() {
        for name in [
            "",
            "..",
            ".",
            "../x",
            "a/b",
            "/abs",
            "My",
            "has space",
            "-dash",
            "_x",
            &"a".repeat(65),
            "a\0b",
            "é",
        ] {
            let err = ProjectName::parse(name).unwrap_err();
            assert_eq!(err.code(), 2, "{name:?}");
            assert!(err.message.contains("invalid project name"), "{name:?}");
        }
    }

    #[test]
    fn suggests_a_close_valid_name() {
        let err = ProjectName::parse("My Project").unwrap_err();
        assert!(err.hint.unwrap().contains("\"my-project\""));
    }

    #[test]
    fn container_user_names_are_docker_safe() {
        let user = |name: &str| HostUser {
            uid: 1,
            gid: 1,
            name: name.into(),
        };
        assert_eq!(user("alice").name_for_container(), "alice");
        assert_eq!(user("j.doe@LAB").name_for_container(), "j.doe-LAB");
        assert_eq!(user("_svc").name_for_container(), "u_svc");
    }
}
