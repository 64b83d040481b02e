//! Everything a command knows before it talks to the engine: the project, the host
//! user, berth's paths, and the layered settings. Loading it validates the project name
//! first, so no path is ever built from a bad one.

use std::path::{Path, PathBuf};

use crate::config::policy::Policy;
use crate::config::{self, file::FileConfig, Files, Settings};
use crate::error::{Error, Result};
use crate::guard::workspace::{self, Found, Workspace};
use crate::host::{HostUser, Paths, ProjectName};
use crate::ui::Printer;

pub struct Context {
    pub project: ProjectName,
    pub user: HostUser,
    pub paths: Paths,
    pub workspace: PathBuf,
    pub settings: Settings,
    /// The admin policy and where it was read from; none without a policy file.
    pub policy: Option<(PathBuf, Policy)>,
}

impl Context {
    pub fn load(raw_project: &str, command_line: &FileConfig) -> Result<Self> {
        let project = ProjectName::parse(raw_project)?;
        let mut paths = Paths::from_env()?;
        let mut workspace = paths.workspace(&project);
        let mut files = Files::read(&paths, &workspace)?;
        let user = HostUser::current();
        if let Some(pinned) = pinned_workspace_root(&files, &paths, &user)? {
            if paths.workspace_root != pinned {
                paths.workspace_root = pinned;
                workspace = paths.workspace(&project);
                files = Files::read(&paths, &workspace)?;
            }
        }
        let cwd = std::env::current_dir()
            .map_err(|err| Error::failed(format!("cannot read the current directory: {err}")))?;
        let host_data_path = std::env::var("HOST_DATA_PATH").ok();
        let mut settings = config::layer(&files, command_line, host_data_path.as_deref(), &cwd);
        config::check_disposable(&settings.disposable)?;
        config::read_env_files(&mut settings, &workspace)?;
        Ok(Self {
            project,
            user,
            paths,
            workspace,
            settings,
            policy: files.policy,
        })
    }

    /// Tells the user what they may not expect: a `BERTH_POLICY` that was not followed.
    pub fn warn(&self, printer: &Printer) {
        if let Some(warning) = &self.paths.policy_warning {
            printer.warn(warning);
        }
    }

    /// Whether the workspace exists, will be created, or is refused (`allow_new`: `--new`).
    pub fn check_workspace(&self, allow_new: bool) -> Result<Workspace> {
        let found = match std::fs::metadata(&self.workspace) {
            Ok(meta) if meta.is_dir() => Found::Directory,
            Ok(_) => Found::Other,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink: creating the workspace "through" it would fail
                // late, or make a directory somewhere else.
                if let Ok(target) = std::fs::read_link(&self.workspace) {
                    return Err(Error::failed(format!(
                        "the workspace {} is a symlink to {}, which does not exist",
                        self.workspace.display(),
                        target.display()
                    ))
                    .hint("create the directory it points to, or remove the symlink"));
                }
                Found::Missing
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
                return Err(Error::failed(format!(
                    "the workspace root {} is not a directory",
                    self.paths.workspace_root.display()
                ))
                .hint("move that file aside, or set BERTH_WORKSPACE_ROOT to a directory"));
            }
            Err(err) => return Err(Error::io("read", &self.workspace, err)),
        };
        let siblings = if found == Found::Missing {
            list_dirs(&self.paths.workspace_root)
        } else {
            Vec::new()
        };
        workspace::check(
            self.project.as_str(),
            &self.workspace.display().to_string(),
            found,
            &siblings,
            allow_new,
        )
    }
}

/// Names of the directories in `root`; none when it does not exist yet.
fn list_dirs(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The workspace root the policy pins, if it does. A `BERTH_WORKSPACE_ROOT` that names
/// another is refused (exit 3): the workspace would be somewhere the user did not say.
fn pinned_workspace_root(files: &Files, paths: &Paths, user: &HostUser) -> Result<Option<PathBuf>> {
    let Some((path, policy)) = &files.policy else {
        return Ok(None);
    };
    let home = crate::host::passwd_home(user.uid);
    let home = home.as_deref().unwrap_or(Path::new("/nonexistent"));
    let Some(pinned) = policy.pinned_workspace_root(&user.name, home) else {
        return Ok(None);
    };
    let resolve = crate::files::resolve;
    if paths.workspace_root_explicit && resolve(&paths.workspace_root) != resolve(&pinned) {
        return Err(Error::refused(format!(
            "policy {} pins the workspace root to {}; BERTH_WORKSPACE_ROOT={} cannot move it",
            path.display(),
            pinned.display(),
            paths.workspace_root.display()
        ))
        .hint("unset BERTH_WORKSPACE_ROOT"));
    }
    Ok(Some(pinned))
}
