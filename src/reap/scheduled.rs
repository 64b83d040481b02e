//! What `berth reap` does on a schedule for each project that has a container, as the
//! project's owner: `berth backup PROJECT --scheduled` (`[backup] every`), then `berth
//! snapshot PROJECT --scheduled` (`[snapshot] every`). When the reaper is root it runs
//! each through `setpriv`, with the owner's uid, groups and home and a clean
//! environment, so that the owner's config decides, the workspace is read with the
//! owner's rights and the copies are the owner's, in the owner's folders.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::backup::Done;
use crate::container::ContainerInfo;
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::os::{self, Passwd};

/// The scheduled commands, in the order they run, each with its event's action.
const JOBS: [(&str, &str); 2] = [("backup", "reap-backup"), ("snapshot", "reap-snapshot")];

/// What the scheduled jobs of one reap did, and what failed, one line each.
#[derive(Debug, Default)]
pub struct Scheduled {
    pub backups: Vec<Done>,
    pub snapshots: Vec<Done>,
    pub failures: Vec<String>,
}

/// Runs the scheduled jobs of each project of `containers`, one at a time.
pub async fn run(containers: &[&ContainerInfo], log: &Path) -> Scheduled {
    let projects: BTreeSet<(String, String, String)> = containers
        .iter()
        .filter(|c| !c.workspace.is_empty())
        .map(|c| (c.user.clone(), c.project.clone(), c.workspace.clone()))
        .collect();
    let mut scheduled = Scheduled::default();
    for (user, project, workspace) in projects {
        let uid: u32 = user.parse().unwrap_or(u32::MAX);
        let owner = os::passwd(uid);
        let name = owner.as_ref().map_or(user.clone(), |o| o.name.clone());
        for (job, action) in JOBS {
            let event = |outcome: &str, reason: &str| {
                let event = Event::now(&name, uid, &project, action, outcome).reason(reason);
                events::record(log, &event).ok();
            };
            let ran = {
                let (owner, project) = (owner.clone(), project.clone());
                let workspace = PathBuf::from(&workspace);
                tokio::task::spawn_blocking(move || {
                    run_as(uid, owner.as_ref(), job, &project, &workspace)
                })
                .await
                .unwrap_or_else(|err| Err(Error::failed(format!("the {job} stopped: {err}"))))
            };
            match ran {
                Ok(done) => {
                    if done.outcome == "taken" {
                        let path = done.path.as_deref().unwrap_or(Path::new(""));
                        event("taken", &path.display().to_string());
                    }
                    match job {
                        "backup" => scheduled.backups.push(done),
                        _ => scheduled.snapshots.push(done),
                    }
                }
                Err(err) => {
                    event("failed", &err.message);
                    scheduled
                        .failures
                        .push(format!("{job} of {project} ({name}): {}", err.message));
                }
            }
        }
    }
    scheduled
}

/// `berth JOB PROJECT --scheduled --json` as user `uid`: this process itself when
/// that is who runs it, else through `setpriv` (root only). The workspace is where the
/// container mounts it from, which the owner's environment may have chosen.
fn run_as(
    uid: u32,
    owner: Option<&Passwd>,
    job: &str,
    project: &str,
    workspace: &Path,
) -> Result<Done> {
    let exe = std::env::current_exe()
        .map_err(|err| Error::failed(format!("cannot tell where berth is: {err}")))?;
    let args = [job, project, "--scheduled", "--json"];
    let mut command = if uid == os::uid() {
        let mut command = Command::new(&exe);
        command.args(args);
        command
    } else {
        let owner = owner.ok_or_else(|| {
            Error::failed(format!("uid {uid} has no entry in the password database"))
        })?;
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={}", owner.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(&exe)
            .args(args)
            .env_clear()
            .env("HOME", &owner.home)
            .env("USER", &owner.name)
            .env("LOGNAME", &owner.name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir("/");
        // The engine the reaper talks to, which holds the project's container.
        if let Some(host) = std::env::var_os("DOCKER_HOST") {
            command.env("DOCKER_HOST", host);
        }
        command
    };
    if workspace.file_name() == Some(OsStr::new(project)) {
        if let Some(root) = workspace.parent() {
            command.env("BERTH_WORKSPACE_ROOT", root);
        }
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    let out = command.output().map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => Error::failed(format!(
            "cannot run the {job} as its owner: setpriv (util-linux) is missing"
        )),
        _ => Error::failed(format!("cannot run the {job}: {err}")),
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let said = stderr
            .lines()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(stderr.trim());
        return Err(Error::failed(said.to_string()));
    }
    serde_json::from_slice(&out.stdout).map_err(|err| {
        Error::failed(format!(
            "the {job} said what it did in a way berth cannot read: {err}"
        ))
    })
}
