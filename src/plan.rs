//! Settings + host facts → [`LaunchPlan`]: everything the container will be, as plain
//! data. Pure; the engine turns a plan into a create call, dockerargs into a
//! `docker run` line, and the printer into the plan people read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Settings, Source};
use crate::dockerargs::{self, GpuSpec, PortSpec, VolumeSpec};
use crate::error::{Error, Result};
use crate::guard::{self, mounts::Protected};
use crate::host::{HostUser, ProjectName};
use crate::label;
use crate::spec::{ContainerSpec, GpuRequest, MountSpec, PortBinding};
use crate::units::{format_cpus, format_size};

pub const WORKSPACE_TARGET: &str = "/workspace";
/// With no command configured, the container idles so that people can enter it; the
/// init process (`--init`) makes it stop at once on SIGTERM.
pub const KEEP_ALIVE: &[&str] = &["sleep", "infinity"];

/// `<project>._.<user>`: unique per person and project on a shared engine.
pub fn container_name(project: &ProjectName, user: &HostUser) -> String {
    format!("{project}._.{}", user.name_for_container())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Mount {
    /// One of berth's own mounts: an existing host directory, which the engine must
    /// never create (unlike `-v`, which creates a missing source as root).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A user's `-v`, passed on with docker's own semantics.
    Volume(VolumeSpec),
    /// A `persist` path: the project's own named volume, which the engine fills from
    /// the image's content there the first time it is mounted.
    Persist { volume: String, target: String },
}

impl Mount {
    pub fn target(&self) -> &str {
        match self {
            Self::Bind { target, .. } => target,
            Self::Volume(spec) => &spec.target,
            Self::Persist { target, .. } => target,
        }
    }
}

/// The resolved data root and its identity marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataRoot {
    pub path: PathBuf,
    pub id: String,
}

/// What `plan::build` needs to know about the host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub user: HostUser,
    pub workspace: PathBuf,
    /// The host directory that persists as the container's `$HOME`.
    pub home: PathBuf,
    pub data_root: Option<DataRoot>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchPlan {
    pub project: String,
    pub container_name: String,
    pub image: String,
    pub cmd: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// `$HOME` inside the container.
    pub home: String,
    pub mounts: Vec<Mount>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<PortSpec>,
    pub gpus: Option<GpuSpec>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<u64>,
    pub shm_size: Option<u64>,
    pub init: bool,
}

impl LaunchPlan {
    /// The `docker run` line that creates the same container.
    pub fn docker_run_line(&self) -> String {
        let plan = self;
        let mut args: Vec<String> = vec!["docker".into(), "run".into(), "-d".into()];
        let mut flag = |name: &str, value: String| {
            args.push(name.to_string());
            args.push(value);
        };
        flag("--name", plan.container_name.clone());
        for (key, value) in &plan.labels {
            flag("--label", format!("{key}={value}"));
        }
        flag("--user", plan.user.clone());
        flag("--workdir", plan.workdir.clone());
        for mount in &plan.mounts {
            match mount {
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => {
                    let mut spec = format!("type=bind,source={},target={target}", source.display());
                    if *read_only {
                        spec.push_str(",readonly");
                    }
                    flag("--mount", spec);
                }
                Mount::Volume(spec) => flag("--volume", spec.to_arg()),
                Mount::Persist { volume, target } => flag("--volume", format!("{volume}:{target}")),
            }
        }
        for (key, value) in &plan.env {
            flag("--env", format!("{key}={value}"));
        }
        for port in &plan.ports {
            flag("--publish", port.to_string());
        }
        if let Some(gpus) = &plan.gpus {
            flag("--gpus", gpus.to_string());
        }
        if let Some(nano) = plan.nano_cpus {
            flag("--cpus", format_cpus(nano));
        }
        if let Some(bytes) = plan.memory {
            flag("--memory", format_size(bytes));
        }
        if let Some(bytes) = plan.shm_size {
            flag("--shm-size", format_size(bytes));
        }
        if plan.init {
            args.push("--init".into());
        }
        args.push(plan.image.clone());
        args.extend(plan.cmd.iter().cloned());
        dockerargs::shell_line(&args)
    }

    /// The plan as a create request: the one form the engine creates containers from.
    pub fn to_spec(&self) -> ContainerSpec {
        let mut spec = ContainerSpec {
            name: Some(self.container_name.clone()),
            image: self.image.clone(),
            cmd: self.cmd.clone(),
            env: self.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            labels: self.labels.clone(),
            user: Some(self.user.clone()),
            workdir: Some(self.workdir.clone()),
            ..Default::default()
        };
        let host = &mut spec.host;
        for mount in &self.mounts {
            match mount {
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => host.mounts.push(MountSpec::bind(
                    source.display().to_string(),
                    target.clone(),
                    *read_only,
                )),
                Mount::Volume(volume) if volume.source.is_some() => {
                    host.binds.push(volume.to_arg())
                }
                Mount::Volume(volume) => {
                    spec.volumes.insert(volume.target.clone());
                }
                Mount::Persist { volume, target } => host.binds.push(format!("{volume}:{target}")),
            }
        }
        for port in &self.ports {
            let key = format!("{}/{}", port.container_port, port.protocol);
            spec.exposed_ports.insert(key.clone());
            host.port_bindings
                .entry(key)
                .or_default()
                .push(PortBinding {
                    host_ip: port.host_ip.clone().unwrap_or_default(),
                    host_port: port.host_port.map(|p| p.to_string()).unwrap_or_default(),
                });
        }
        host.gpus = self.gpus.as_ref().map(|gpus| {
            let (count, device_ids) = match gpus {
                GpuSpec::All => (Some(-1), Vec::new()),
                GpuSpec::Count(n) => (Some(i64::from(*n)), Vec::new()),
                GpuSpec::Devices(ids) => (None, ids.clone()),
            };
            GpuRequest {
                driver: String::new(),
                count,
                device_ids,
                capabilities: vec![vec!["gpu".to_string()]],
                options: BTreeMap::new(),
            }
        });
        let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
        host.nano_cpus = self.nano_cpus;
        host.memory = self.memory.map(bytes);
        host.shm_size = self.shm_size.map(bytes);
        host.init = Some(self.init);
        spec
    }
}

/// berth's own mounts that no user mount may shadow: the workspace, and the data root
/// (`data`: its target and source) when there is one.
/// The `persist` paths as mounts of the project's own volumes: each absolute and
/// plain, none at, above or below the workspace, the data root or the home (which
/// persists already), no two in one volume.
fn persisted(
    project: &ProjectName,
    settings: &Settings,
    host: &HostFacts,
    home: &str,
    data: Option<(&str, &Path)>,
) -> Result<Vec<Mount>> {
    let mut protected = protected(&host.workspace, data);
    protected.push(Protected {
        name: "the persistent home",
        target: home,
        source: &host.home,
    });
    let mut mounts: Vec<Mount> = Vec::new();
    for path in &settings.persist {
        let raw = &path.value;
        let volume = crate::host::persist_volume(&host.user.name, project.as_str(), raw)
            .ok_or_else(|| {
                Error::failed(format!(
                    "persist {raw:?} ({}) is not an absolute container path",
                    path.source
                ))
                .hint("name it from the root, without `.` or `..`: persist = [\"/srv\"]")
            })?;
        let target = raw.trim_end_matches('/').to_string();
        let mount = guard::mounts::UserMount {
            spelled: format!("persist {raw:?}"),
            source: Some(volume.clone()),
            target: target.clone(),
        };
        guard::mounts::check_user(&protected, std::slice::from_ref(&mount))?;
        if let Some(Mount::Persist { target: other, .. }) = mounts
            .iter()
            .find(|m| matches!(m, Mount::Persist { volume: v, .. } if *v == volume))
        {
            return Err(Error::failed(format!(
                "persist {raw:?} and {other:?} would share the volume {volume}"
            ))
            .hint("persist one of them, or a folder above both"));
        }
        mounts.push(Mount::Persist { volume, target });
    }
    Ok(mounts)
}

pub fn protected<'a>(workspace: &'a Path, data: Option<(&'a str, &'a Path)>) -> Vec<Protected<'a>> {
    let mut protected = vec![Protected {
        name: "the workspace",
        target: WORKSPACE_TARGET,
        source: workspace,
    }];
    if let Some((target, source)) = data {
        protected.push(Protected {
            name: "the data root",
            target,
            source,
        });
    }
    protected
}

/// `data.group`, by default the project itself.
pub fn data_group(project: &ProjectName, settings: &Settings) -> String {
    settings
        .data_group
        .as_ref()
        .map_or_else(|| project.to_string(), |g| g.value.clone())
}

pub fn build(project: &ProjectName, settings: &Settings, host: &HostFacts) -> Result<LaunchPlan> {
    let image = settings
        .image
        .as_ref()
        .map(|s| s.value.clone())
        .ok_or_else(|| {
            Error::failed(format!("no image for project {project}")).hint(format!(
                "pass --image IMAGE, set `image = \"...\"` in {}/berth.toml, or build the \
                 project's Dockerfile with `berth build {project}`",
                host.workspace.display()
            ))
        })?;
    check_values(settings)?;
    let user = match &settings.user {
        Some(user) => user.value.clone(),
        None => format!("{}:{}", host.user.uid, host.user.gid),
    };
    let runs_as_root = user == "root" || user == "0" || user.starts_with("0:");
    let home = if runs_as_root {
        "/root".to_string()
    } else {
        format!("/home/{}", host.user.name_for_container())
    };

    let mut mounts = vec![
        Mount::Bind {
            source: host.workspace.clone(),
            target: WORKSPACE_TARGET.into(),
            read_only: false,
        },
        Mount::Bind {
            source: host.home.clone(),
            target: home.clone(),
            read_only: false,
        },
    ];
    let mut env: BTreeMap<String, String> = settings
        .env
        .iter()
        .map(|(key, value)| (key.clone(), value.value.clone()))
        .collect();
    env.insert("HOME".into(), home.clone());
    if let Some(root) = &host.data_root {
        mounts.push(Mount::Bind {
            source: root.path.clone(),
            target: settings.data_target.value.clone(),
            read_only: false,
        });
        env.insert("HOST_DATA_PATH".into(), root.path.display().to_string());
    }
    let volumes: Vec<VolumeSpec> = settings.volumes.iter().map(|v| v.value.clone()).collect();
    let data = host
        .data_root
        .as_ref()
        .map(|root| (settings.data_target.value.as_str(), root.path.as_path()));
    guard::mounts::check(&protected(&host.workspace, data), &volumes)?;
    if let Some((target, _)) = data {
        check_data_target(target, &settings.data_target.source, &home, &host.workspace)?;
    }
    mounts.extend(volumes.into_iter().map(Mount::Volume));
    mounts.extend(persisted(project, settings, host, &home, data)?);

    let mut labels = BTreeMap::from([
        (label::PROJECT.to_string(), project.to_string()),
        (label::USER.to_string(), host.user.uid.to_string()),
        (
            label::WORKSPACE.to_string(),
            host.workspace.display().to_string(),
        ),
        (
            label::DATA.to_string(),
            host.data_root
                .as_ref()
                .map(|r| r.path.display().to_string())
                .unwrap_or_default(),
        ),
        (
            label::DATA_ID.to_string(),
            host.data_root
                .as_ref()
                .map(|r| r.id.clone())
                .unwrap_or_default(),
        ),
        (label::DATA_GROUP.to_string(), data_group(project, settings)),
        (
            label::VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ]);
    // Running as the host user, whom the image does not know: berth writes them into
    // the container's passwd and group before it starts.
    if settings.user.is_none() && host.user.uid != 0 {
        labels.insert(label::IDENTITY.to_string(), "1".to_string());
    }

    let cmd = match &settings.command {
        Some(command) => command.value.clone(),
        None => KEEP_ALIVE.iter().map(|s| s.to_string()).collect(),
    };

    Ok(LaunchPlan {
        project: project.to_string(),
        container_name: container_name(project, &host.user),
        image,
        cmd,
        user,
        workdir: WORKSPACE_TARGET.into(),
        home,
        mounts,
        env,
        labels,
        ports: settings.ports.iter().map(|p| p.value.clone()).collect(),
        gpus: settings.gpus.as_ref().map(|g| g.value.clone()),
        nano_cpus: settings.nano_cpus.as_ref().map(|c| c.value),
        memory: settings.memory.as_ref().map(|m| m.value),
        shm_size: settings.shm_size.as_ref().map(|s| s.value),
        init: true,
    })
}

/// Docker's smallest memory limit; the engine refuses a create below it.
const MIN_MEMORY: u64 = 6 << 20;

/// Values the configuration can hold that the engine would refuse only at the create,
/// after the workspace and the home exist: refused here, naming where they came from.
fn check_values(settings: &Settings) -> Result<()> {
    let bad = |what: String, source: &Source| {
        let message = format!("{what} (from {source})");
        match source {
            Source::CommandLine => Error::usage(message),
            _ => Error::failed(message),
        }
    };
    if let Some(image) = settings
        .image
        .as_ref()
        .filter(|i| i.value.trim().is_empty())
    {
        return Err(bad("the image is empty".into(), &image.source)
            .hint("name an image, like `image = \"ubuntu:24.04\"`"));
    }
    if let Some(command) = &settings.command {
        if command.value.first().is_none_or(|word| word.is_empty()) {
            return Err(
                bad("the command's first word is empty".into(), &command.source)
                    .hint("name the program to run first, like `command = [\"python\", \"x.py\"]`"),
            );
        }
    }
    for volume in &settings.volumes {
        let raw = volume.value.to_arg();
        if let Err(why) = crate::dockerargs::check_volume(&raw) {
            return Err(bad(format!("volume {raw:?}: {why}"), &volume.source)
                .hint("a host path is absolute or starts with ./ or ~/; a volume name has at least two characters of [a-zA-Z0-9_.-]"));
        }
    }
    for port in &settings.ports {
        let raw = port.value.to_string();
        if let Err(why) = crate::dockerargs::check_port(&raw) {
            return Err(bad(format!("port {raw:?}: {why}"), &port.source).hint(
                "write [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], like 127.0.0.1:8888:8888",
            ));
        }
    }
    if let Some(memory) = settings.memory.as_ref().filter(|m| m.value != 0) {
        if memory.value < MIN_MEMORY {
            return Err(bad(
                format!(
                    "memory {} bytes is below docker's minimum of 6 MiB",
                    memory.value
                ),
                &memory.source,
            )
            .hint("write a size with a unit, like `memory = \"512m\"`"));
        }
    }
    Ok(())
}

/// Where the data root appears in the container: an absolute path that is neither `/`,
/// the home, nor over or under the workspace (which would shadow it).
fn check_data_target(target: &str, source: &Source, home: &str, workspace: &Path) -> Result<()> {
    let clean = crate::dockerargs::normalize_container_path(target);
    if !target.starts_with('/') || clean == "/" || clean == home {
        return Err(Error::failed(format!(
            "data.target {target:?} (from {source}) cannot hold the data root"
        ))
        .hint(format!(
            "write an absolute path other than / and {home}, like `target = \"/data\"`"
        )));
    }
    let mount = guard::mounts::UserMount {
        spelled: format!("data.target = {target:?} ({source})"),
        source: None,
        target: clean,
    };
    guard::mounts::check_user(&protected(workspace, None), &[mount])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{file, layer, Files};
    use std::path::Path;

    fn settings(project_toml: &str) -> Settings {
        let files = Files {
            policy: None,
            project: Some((
                "/ws/p/berth.toml".into(),
                file::parse(project_toml, Path::new("/ws/p/berth.toml")).unwrap(),
            )),
            user: None,
        };
        layer(
            &files,
            &file::FileConfig::default(),
            None,
            Path::new("/cwd"),
        )
    }

    fn host(data_root: Option<DataRoot>) -> HostFacts {
        HostFacts {
            user: HostUser {
                uid: 1000,
                gid: 1001,
                name: "alice".into(),
            },
            workspace: "/ws/p".into(),
            home: "/h/p".into(),
            data_root,
        }
    }

    fn project() -> ProjectName {
        ProjectName::parse("p").unwrap()
    }

    #[test]
    fn defaults_run_as_the_host_user_in_the_workspace() {
        let plan = build(&project(), &settings("image = \"img\""), &host(None)).unwrap();
        assert_eq!(plan.container_name, "p._.alice");
        assert_eq!(plan.user, "1000:1001");
        assert_eq!(plan.workdir, "/workspace");
        assert_eq!(plan.home, "/home/alice");
        assert_eq!(plan.env["HOME"], "/home/alice");
        assert_eq!(plan.cmd, ["sleep", "infinity"]);
        assert!(plan.init);
        assert_eq!(
            plan.mounts,
            [
                Mount::Bind {
                    source: "/ws/p".into(),
                    target: "/workspace".into(),
                    read_only: false
                },
                Mount::Bind {
                    source: "/h/p".into(),
                    target: "/home/alice".into(),
                    read_only: false
                },
            ]
        );
        assert!(!plan.env.contains_key("HOST_DATA_PATH"));
        assert_eq!(plan.labels["berth.user"], "1000");
        assert_eq!(plan.labels["berth.data"], "");
    }

    #[test]
    fn the_data_root_is_mounted_and_named_in_the_environment() {
        let root = DataRoot {
            path: "/mnt/data".into(),
            id: "abc".into(),
        };
        let plan = build(
            &project(),
            &settings("image = \"img\"\n[data]\ntarget = \"/d\""),
            &host(Some(root)),
        )
        .unwrap();
        assert!(plan.mounts.contains(&Mount::Bind {
            source: "/mnt/data".into(),
            target: "/d".into(),
            read_only: false
        }));
        assert_eq!(plan.env["HOST_DATA_PATH"], "/mnt/data");
        assert_eq!(plan.labels["berth.data"], "/mnt/data");
        assert_eq!(plan.labels["berth.data-id"], "abc");
    }

    #[test]
    fn root_gets_root_home_and_limits_pass_through() {
        let plan = build(
            &project(),
            &settings("image = \"img\"\nuser = \"root\"\ncpus = 2\nmemory = \"1g\"\nshm_size = \"64m\"\ngpus = \"all\"\ncommand = [\"python\"]"),
            &host(None),
        )
        .unwrap();
        assert_eq!(plan.home, "/root");
        assert_eq!(plan.nano_cpus, Some(2_000_000_000));
        assert_eq!(plan.memory, Some(1 << 30));
        assert_eq!(plan.shm_size, Some(64 << 20));
        assert_eq!(plan.gpus, Some(GpuSpec::All));
        assert_eq!(plan.cmd, ["python"]);
    }

    #[test]
    fn values_the_engine_would_refuse_late_are_refused_naming_their_source() {
        for (toml, want) in [
            (
                "image = \"\"",
                "the image is empty (from project /ws/p/berth.toml)",
            ),
            ("image = \" \"", "the image is empty"),
            (
                "image = \"i\"\ncommand = [\"\"]",
                "the command's first word is empty",
            ),
            (
                "image = \"i\"\nmemory = 5",
                "memory 5 bytes is below docker's minimum",
            ),
            (
                "image = \"i\"\nmemory = \"6291455\"",
                "below docker's minimum of 6 MiB",
            ),
        ] {
            let err = build(&project(), &settings(toml), &host(None)).unwrap_err();
            assert_eq!(err.code(), 1, "{toml}");
            assert!(err.message.contains(want), "{toml}: {}", err.message);
            assert!(err.hint.is_some(), "{toml}");
        }
        for fine in [
            "volumes = [\"./c:/c\", \"ab:/v:ro\", \"/anon\"]",
            "ports = [\"[::1]:80:80\"]",
        ] {
            let toml = format!("image = \"i\"\n{fine}");
            assert!(
                build(&project(), &settings(&toml), &host(None)).is_ok(),
                "{toml}"
            );
        }
        // 0 is docker's "no limit"; 6 MiB is the least it takes.
        for memory in ["0", "\"6m\""] {
            let toml = format!("image = \"i\"\nmemory = {memory}");
            assert!(
                build(&project(), &settings(&toml), &host(None)).is_ok(),
                "{toml}"
            );
        }
    }

    #[test]
    fn a_data_target_that_cannot_hold_the_root_is_refused() {
        let root = || {
            Some(DataRoot {
                path: "/mnt/data".into(),
                id: "abc".into(),
            })
        };
        let with_target =
            |target: &str| settings(&format!("image = \"i\"\n[data]\ntarget = \"{target}\""));
        for target in ["rel", "", "/", "//", "/home/alice", "/home/alice/"] {
            let err = build(&project(), &with_target(target), &host(root())).unwrap_err();
            assert_eq!(err.code(), 1, "{target:?}");
            assert!(
                err.message.contains("cannot hold the data root"),
                "{}",
                err.message
            );
        }
        for target in ["/workspace", "/workspace/data", "/workspace/"] {
            let err = build(&project(), &with_target(target), &host(root())).unwrap_err();
            assert_eq!(err.code(), 3, "{target:?}");
            assert!(
                err.message.contains("would shadow the workspace"),
                "{}",
                err.message
            );
        }
        // Without a data root the target mounts nothing.
        assert!(build(&project(), &with_target("rel"), &host(None)).is_ok());
        assert!(build(&project(), &with_target("/mnt/d/"), &host(root())).is_ok());
    }

    #[test]
    fn no_image_is_an_error_with_a_hint() {
        let err = build(&project(), &settings(""), &host(None)).unwrap_err();
        assert!(err.message.contains("no image"));
        assert!(err.hint.unwrap().contains("--image"));
    }

    #[test]
    fn the_plan_becomes_one_create_request() {
        let plan = build(
            &project(),
            &settings(
                "image = \"img:1\"\ngpus = \"device=0,1\"\nports = [\"127.0.0.1:8888:88\"]\n\
                 volumes = [\"/s:/s:ro\", \"/anon\"]\nshm_size = \"1g\"",
            ),
            &host(None),
        )
        .unwrap();
        let spec = plan.to_spec();
        assert_eq!(spec.name.as_deref(), Some("p._.alice"));
        assert_eq!(spec.user.as_deref(), Some("1000:1001"));
        assert_eq!(
            spec.host.mounts[0],
            MountSpec::bind("/ws/p", "/workspace", false)
        );
        assert_eq!(spec.host.binds, ["/s:/s:ro"]);
        assert!(spec.volumes.contains("/anon"));
        assert_eq!(spec.host.port_bindings["88/tcp"][0].host_ip, "127.0.0.1");
        assert_eq!(spec.host.port_bindings["88/tcp"][0].host_port, "8888");
        assert!(spec.exposed_ports.contains("88/tcp"));
        let gpus = spec.host.gpus.unwrap();
        assert_eq!(
            (gpus.count, gpus.device_ids),
            (None, vec!["0".into(), "1".into()])
        );
        assert_eq!(spec.host.shm_size, Some(1 << 30));
        assert_eq!(spec.host.init, Some(true));
        assert!(spec.env.contains(&"HOME=/home/alice".to_string()));
    }

    #[test]
    fn the_docker_run_line_says_the_same_as_the_plan() {
        let plan = build(
            &project(),
            &settings("image = \"img:1\"\ncpus = 1.5\nmemory = \"2g\"\nvolumes = [\"/s:/s:ro\"]\nenv = { A = \"x y\" }"),
            &host(None),
        )
        .unwrap();
        let line = plan.docker_run_line();
        for part in [
            "docker run -d --name p._.alice",
            "--label berth.project=p",
            "--user 1000:1001 --workdir /workspace",
            "--mount type=bind,source=/ws/p,target=/workspace",
            "--volume /s:/s:ro",
            "--env 'A=x y'",
            "--cpus 1.5 --memory 2g --init img:1 sleep infinity",
        ] {
            assert!(line.contains(part), "{part:?} not in {line}");
        }
    }
}
