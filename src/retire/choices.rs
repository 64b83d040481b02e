//! What the caller chose (`--yes`, `--rescue`, `--commit[=TAG]`, `--dry-run`) and what
//! retire needs from the configuration. Pure.

use std::path::PathBuf;

use crate::cli::RetireArgs;
use crate::config::Source;
use crate::container::ContainerInfo;
use crate::context::Context;
use crate::error::{Error, Result};

/// `berth/<user>` of `berth/<user>/<project>`: the repositories that are the caller's.
pub(super) fn own_repos(image_repo: &str) -> &str {
    image_repo
        .rsplit_once('/')
        .map_or(image_repo, |(own, _)| own)
}

/// What the caller chose about unsaved work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choices {
    /// `--yes`: accept the loss without asking.
    pub yes: bool,
    /// Only report; change nothing (not even a pause).
    pub dry_run: bool,
    pub rescue: Option<RescueScope>,
    pub commit: Option<CommitTo>,
    /// `--verbose`: also say how the changes were read.
    pub verbose: bool,
    /// `--save-packages`: write the package lists into the workspace.
    pub save_packages: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescueScope {
    /// The unsaved files and anonymous volumes.
    Unsaved,
    /// Those and the disposable files.
    All,
}

/// `--commit[=TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitTo {
    /// `berth/<user>/<project>:<UTC time>`.
    Default,
    /// `berth/<user>/<project>:TAG`.
    Tag(String),
    /// `REPO:TAG`, or `REPO:<UTC time>` without a tag.
    Reference(String, Option<String>),
}

impl CommitTo {
    /// Reads `--commit`'s value: empty, a tag, or `REPO[:TAG]` (a `/` or `:` says which).
    pub fn parse(raw: &str) -> Result<Self> {
        let check_tag = |tag: &str| -> Result<String> {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !tag.starts_with(['.', '-']);
            if !valid {
                return Err(Error::usage(format!("`{tag}` is not a valid image tag"))
                    .hint("a tag is letters, digits, `_`, `.` and `-`, at most 128"));
            }
            if tag == "latest" {
                return Err(Error::usage("retire never commits to :latest")
                    .hint("a snapshot should not replace an image others build on; pick a tag, or leave it out for a UTC time stamp"));
            }
            Ok(tag.to_string())
        };
        if raw.is_empty() {
            return Ok(Self::Default);
        }
        let last_slash = raw.rfind('/');
        match raw.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                let (repo, tag) = (&raw[..colon], &raw[colon + 1..]);
                if repo.is_empty() {
                    return Err(Error::usage(format!("`{raw}` names no repository")));
                }
                Ok(Self::Reference(repo.to_string(), Some(check_tag(tag)?)))
            }
            _ if last_slash.is_some() => Ok(Self::Reference(raw.to_string(), None)),
            _ => Ok(Self::Tag(check_tag(raw)?)),
        }
    }

    /// The `REPO:TAG` an existing image may already hold, where a commit to it would
    /// re-point a tag outside the caller's own `berth/<user>/` (`default_repo` is
    /// `berth/<user>/<project>`): such a tag may be what others build on. `None` for
    /// the caller's own repositories, and for a tag that is a fresh UTC time.
    pub fn shared_reference(&self, default_repo: &str) -> Option<String> {
        let Self::Reference(repo, Some(tag)) = self else {
            return None;
        };
        let inside = repo
            .strip_prefix(own_repos(default_repo))
            .is_some_and(|rest| rest.starts_with('/'));
        (!inside).then(|| format!("{repo}:{tag}"))
    }

    /// The repository and tag to commit to.
    pub(super) fn resolve(&self, default_repo: &str, stamp: &str) -> (String, String) {
        match self {
            Self::Default => (default_repo.to_string(), stamp.to_string()),
            Self::Tag(tag) => (default_repo.to_string(), tag.clone()),
            Self::Reference(repo, tag) => (
                repo.clone(),
                tag.clone().unwrap_or_else(|| stamp.to_string()),
            ),
        }
    }
}

impl Choices {
    pub fn from_args(args: &RetireArgs) -> Result<Self> {
        let rescue = if args.rescue_all {
            Some(RescueScope::All)
        } else {
            args.rescue.then_some(RescueScope::Unsaved)
        };
        Ok(Self {
            yes: args.yes,
            dry_run: args.dry_run,
            rescue,
            commit: args.commit.as_deref().map(CommitTo::parse).transpose()?,
            verbose: args.verbose,
            save_packages: args.save_packages,
        })
    }

    /// Whether the caller already said what to do with unsaved work.
    pub(super) fn decided(&self) -> bool {
        self.yes || self.rescue.is_some() || self.commit.is_some()
    }
}

/// What retire needs from the configuration.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where `.rescued/` goes: the workspace the container was given.
    pub workspace: PathBuf,
    /// `berth/<user>/<project>`, for `--commit`.
    pub image_repo: String,
    pub disposable: Vec<String>,
    /// Where the disposable patterns come from the project's own file, which the
    /// container can write: that file, and the patterns every other layer gives. What
    /// only the file's patterns leave out is shown by name.
    pub disposable_from_project: Option<(PathBuf, Vec<String>)>,
    /// Where berth records the pauses it makes ([`crate::paused`]).
    pub state_dir: PathBuf,
}

impl Target {
    pub fn new(ctx: &Context, container: &ContainerInfo) -> Self {
        let workspace = if container.workspace.is_empty() {
            ctx.workspace.clone()
        } else {
            PathBuf::from(&container.workspace)
        };
        Self {
            workspace,
            image_repo: crate::host::image_repo(&ctx.user.name, ctx.project.as_str()),
            disposable: ctx.settings.disposable.value.clone(),
            disposable_from_project: match &ctx.settings.disposable.source {
                Source::Project(file) => {
                    Some((file.clone(), ctx.settings.disposable_vouched.clone()))
                }
                _ => None,
            },
            state_dir: ctx.paths.state_dir.clone(),
        }
    }
}

/// A name as an image path component: lowercase letters and digits, runs of anything
/// else turned into one `-` (`Alice.Smith` → `alice-smith`).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_outside_the_users_own_repositories_is_checked_for_an_existing_tag() {
        let own = "berth/ana/alpha";
        let shared = |raw: &str| CommitTo::parse(raw).unwrap().shared_reference(own);
        assert_eq!(shared("lab/base:v1").as_deref(), Some("lab/base:v1"));
        assert_eq!(
            shared("berth/bob/alpha:v1").as_deref(),
            Some("berth/bob/alpha:v1")
        );
        assert_eq!(
            shared("berth/anabel/x:v1").as_deref(),
            Some("berth/anabel/x:v1")
        );
        // The caller's own, a bare tag, the default, and a fresh time stamp: no check.
        assert_eq!(shared("berth/ana/other:v1"), None);
        assert_eq!(shared("v1"), None);
        assert_eq!(shared(""), None);
        assert_eq!(shared("lab/base"), None);
    }

    #[test]
    fn commit_targets_never_name_latest() {
        assert_eq!(CommitTo::parse("").unwrap(), CommitTo::Default);
        assert_eq!(CommitTo::parse("v1").unwrap(), CommitTo::Tag("v1".into()));
        assert_eq!(
            CommitTo::parse("me/snap:v2").unwrap(),
            CommitTo::Reference("me/snap".into(), Some("v2".into()))
        );
        assert_eq!(
            CommitTo::parse("registry:5000/me/snap").unwrap(),
            CommitTo::Reference("registry:5000/me/snap".into(), None)
        );
        for bad in ["latest", "me/snap:latest", "bad tag", ":v1", "-x"] {
            let err = CommitTo::parse(bad).unwrap_err();
            assert_eq!(err.code(), 2, "{bad}");
        }
        assert_eq!(
            CommitTo::Default.resolve("berth/a/p", "20261121T000000Z"),
            ("berth/a/p".to_string(), "20261121T000000Z".to_string())
        );
        assert_eq!(
            CommitTo::Reference("me/snap".into(), None).resolve("berth/a/p", "T"),
            ("me/snap".to_string(), "T".to_string())
        );
    }
}
