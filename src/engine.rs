//! The one module that talks to Docker. Everything else hands it plain data (a
//! [`ContainerSpec`], a container id) and gets plain data back, so bollard's types stop
//! here.
//!
//! bollard (0.21) sends its requests without a version prefix (`/containers/json`, not
//! `/v1.41/containers/json`), and an engine answers those at its own API version; the
//! requests berth makes mean the same from API 1.41 (Docker 20.10) to current engines.
//! So connecting is a ping, not a version negotiation: `/_ping` is the cheapest call an
//! engine answers, where `/version` asks containerd and runc theirs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerConfig, ContainerCreateBody, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    AttachContainerOptions, KillContainerOptions, ResizeContainerTTYOptions, ResizeExecOptions,
    WaitContainerOptions,
};
use bollard::query_parameters::{
    CommitContainerOptions, ContainerArchiveInfoOptions, CreateContainerOptions,
    CreateImageOptions, DownloadFromContainerOptions, InspectContainerOptions,
    ListContainersOptions, LogsOptions, RemoveContainerOptions, StatsOptions, StopContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::StreamExt;

use crate::container::{
    ChangeKind, ContainerInfo, Inspected, PathStat, State, Storage, Timeline, Volume,
};
use crate::endpoint::{self, Endpoint, Transport};
use crate::error::{Error, Result};
use crate::label::{self, Written};
use crate::spec::{ContainerSpec, MountSpec};

mod reader;
mod ssh;
mod watchdog;
mod writer;
pub use reader::BlockingReader;
pub use watchdog::silenced;
pub use writer::BlockingWriter;

/// How long to wait for the engine's first answer before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// bollard's own limit on each request's answer (not on a stream's length), in seconds.
const REQUEST_TIMEOUT: u64 = 120;

pub struct Engine {
    docker: Docker,
    pub endpoint: Endpoint,
}

/// The error for a project with no container of the caller's.
pub fn no_container(project: &str) -> Error {
    Error::failed(format!("project {project} has no container of yours")).hint(format!(
        "`berth deploy {project}` creates it; `berth list` shows yours"
    ))
}

/// Where the engine mounts its init binary when a container runs with `--init`.
const DOCKER_INIT: &str = "/sbin/docker-init";

impl Engine {
    /// Connects to the engine the docker CLI would use ([`endpoint::from_env`]), and
    /// pings it: one round trip, so that an engine that is not there is told at once.
    pub async fn connect() -> Result<Self> {
        Self::connect_at(endpoint::from_env()?).await
    }

    /// [`Engine::connect`] to the engine of docker context `name` ([`endpoint::of_context`]).
    pub async fn connect_to_context(name: &str) -> Result<Self> {
        Self::connect_at(endpoint::of_context(name)?).await
    }

    async fn connect_at(endpoint: endpoint::Endpoint) -> Result<Self> {
        let unreachable = |why: String| {
            Error::failed(format!(
                "cannot reach the Docker engine at {endpoint}: {why}"
            ))
            .hint("is dockerd running, and may you use it? `docker info` tells")
        };
        let mut said = None;
        let docker = match &endpoint.transport {
            Transport::Unix(path) => Docker::connect_with_socket(
                &path.to_string_lossy(),
                REQUEST_TIMEOUT,
                API_DEFAULT_VERSION,
            ),
            Transport::Http { addr } => {
                Docker::connect_with_http(addr, REQUEST_TIMEOUT, API_DEFAULT_VERSION)
            }
            Transport::Https { addr, tls } => Docker::connect_with_ssl(
                addr,
                &tls.key,
                &tls.cert,
                &tls.ca,
                REQUEST_TIMEOUT,
                API_DEFAULT_VERSION,
            ),
            Transport::Ssh(target) => ssh::Ssh::connect(target, REQUEST_TIMEOUT).map(|ssh| {
                said = Some((ssh.said.clone(), target.host.clone()));
                ssh.docker
            }),
        }
        .map_err(|err| unreachable(describe(&err)))?;
        // What ssh said, where it was ssh that could not reach the engine.
        let ssh_says = |said: &Option<(ssh::Said, String)>| {
            said.as_ref()
                .and_then(|(said, host)| ssh::Ssh::why(said, host))
        };
        let answer = tokio::time::timeout(CONNECT_TIMEOUT, docker.ping()).await;
        if said.is_some() && !matches!(answer, Ok(Ok(_))) {
            // ssh's last words come on stderr as it exits.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let answer = answer
            .map_err(|_| {
                unreachable(
                    ssh_says(&said)
                        .unwrap_or_else(|| format!("no answer in {}s", CONNECT_TIMEOUT.as_secs())),
                )
            })?
            .map_err(|err| unreachable(ssh_says(&said).unwrap_or_else(|| connect_failure(&err))))?;
        if answer.trim() != "OK" {
            let first: String = answer
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(40)
                .collect();
            return Err(unreachable(format!(
                "the answer is not the Docker API's (a ping got {first:?}); is that a Docker engine?"
            )));
        }
        watchdog::start(&docker, endpoint.to_string());
        Ok(Self { docker, endpoint })
    }

    /// The caller's containers (`uid`), or everyone's with `None`; newest first.
    pub async fn list(
        &self,
        uid: Option<u32>,
        project: Option<&str>,
        sizes: bool,
    ) -> Result<Vec<ContainerInfo>> {
        let mut labels = Vec::new();
        if let Some(uid) = uid {
            labels.push(format!("{}={uid}", label::USER));
        }
        if let Some(project) = project {
            labels.push(format!("{}={project}", label::PROJECT));
        }
        self.list_labelled(labels, sizes).await
    }

    /// Every user's berth containers of data group `group`.
    pub async fn list_group(&self, group: &str) -> Result<Vec<ContainerInfo>> {
        self.list_labelled(vec![format!("{}={group}", label::DATA_GROUP)], false)
            .await
    }

    async fn list_labelled(
        &self,
        mut labels: Vec<String>,
        sizes: bool,
    ) -> Result<Vec<ContainerInfo>> {
        labels.push(label::PROJECT.to_string());
        let filters = HashMap::from([("label".to_string(), labels)]);
        let summaries = self.containers(Some(filters), sizes).await?;
        Ok(summaries
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    project: label(label::PROJECT),
                    user: label(label::USER),
                    never_started: c.state == Some(ContainerSummaryStateEnum::CREATED),
                    state: summary_state(c.state),
                    status: c.status.unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    workspace: label(label::WORKSPACE),
                    data: label(label::DATA),
                    data_group: label(label::DATA_GROUP),
                    // The engine omits a zero size.
                    size_rw: sizes.then(|| c.size_rw.unwrap_or(0)),
                    run: labels.contains_key(label::RUN),
                    gpus: label::parse_gpus(&label(label::GPUS)),
                }
            })
            .collect())
    }

    /// The helper containers ([`label::HELPER`]) that mount volume `name`: what a
    /// command killed while it used them left.
    pub async fn helpers_mounting(&self, name: &str) -> Result<Vec<String>> {
        let filters = HashMap::from([
            ("volume".to_string(), vec![name.to_string()]),
            ("label".to_string(), vec![label::HELPER.to_string()]),
        ]);
        let summaries = self.containers(Some(filters), false).await?;
        Ok(summaries.into_iter().filter_map(|c| c.id).collect())
    }

    /// [`Engine::find`], where having none is an error that says how to make one.
    pub async fn project_container(&self, project: &str, uid: u32) -> Result<ContainerInfo> {
        self.find(project, uid)
            .await?
            .ok_or_else(|| no_container(project))
    }

    /// The caller's container for `project` (the deployed one, not those of `berth
    /// run`), if there is one.
    pub async fn find(&self, project: &str, uid: u32) -> Result<Option<ContainerInfo>> {
        Ok(self
            .list(Some(uid), Some(project), false)
            .await?
            .into_iter()
            .find(|c| !c.run))
    }

    pub async fn inspect(&self, id: &str) -> Result<Inspected> {
        let details = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|err| self.failed("inspect the container", &err))?;
        let state = details.state.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        let identity = details
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|labels| labels.get(label::IDENTITY))
            .map(|value| Written::parse(value));
        let init = details
            .host_config
            .as_ref()
            .and_then(|h| h.init)
            .unwrap_or(false);
        let storage = details
            .graph_driver
            .map(|driver| Storage {
                upper: driver.data.get("UpperDir").cloned(),
                lower: driver.data.get("LowerDir").cloned(),
                driver: driver.name,
            })
            .unwrap_or_default();
        let mounts = details.mounts.unwrap_or_default();
        let anonymous_volumes = mounts
            .iter()
            .filter(|m| m.typ.as_ref().is_some_and(|t| t == "volume"))
            .filter_map(|m| match (&m.name, &m.destination) {
                // Docker names an anonymous volume with 64 hex digits; newer engines also
                // label it, but 20.10 does not.
                (Some(name), Some(target)) if is_anonymous(name) => Some(Volume {
                    name: name.clone(),
                    target: target.clone(),
                }),
                _ => None,
            })
            .collect();
        let timeline = Timeline {
            created: details.created.unwrap_or_default(),
            started_at: state.started_at.unwrap_or_default(),
            finished_at: state.finished_at.unwrap_or_default(),
            auto_remove: details
                .host_config
                .as_ref()
                .and_then(|h| h.auto_remove)
                .unwrap_or(false),
        };
        Ok(Inspected {
            state: state_from_str(&status),
            timeline,
            image: details.config.and_then(|c| c.image).unwrap_or_default(),
            own_paths: mounts
                .into_iter()
                .filter_map(|m| m.destination)
                .chain(init.then(|| DOCKER_INIT.to_string()))
                .collect(),
            identity,
            exit_code: state.exit_code.unwrap_or(0),
            anonymous_volumes,
            storage,
        })
    }

    /// The CPU time a running container has used since it started, in nanoseconds.
    /// One sample, without the second one the engine otherwise waits for to compute a
    /// rate (`one-shot`, API 1.41; older engines ignore it and take a second longer).
    pub async fn cpu_usage(&self, id: &str) -> Result<Option<u64>> {
        let options = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = self.docker.stats(id, Some(options));
        match stream.next().await {
            Some(Ok(stats)) => Ok(stats
                .cpu_stats
                .and_then(|c| c.cpu_usage)
                .and_then(|u| u.total_usage)),
            Some(Err(err)) => Err(self.failed("read the container's CPU use", &err)),
            None => Ok(None),
        }
    }

    /// The id of local image `image` (`sha256:…`), or `None` when the engine has no
    /// such image.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>> {
        Ok(self.image_facts(image).await?.map(|facts| facts.id))
    }

    /// What berth reads of image `image`, or `None` when the engine has no such image.
    pub async fn image_facts(&self, image: &str) -> Result<Option<ImageFacts>> {
        match self.docker.inspect_image(image).await {
            Ok(details) => Ok(Some(ImageFacts {
                id: details.id.unwrap_or_default(),
                user: details.config.and_then(|c| c.user).unwrap_or_default(),
                created: details
                    .created
                    .as_deref()
                    .and_then(crate::clock::parse_rfc3339),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(&format!("inspect image {image}"), &err)),
        }
    }

    /// The labels of named volume `name`, or `None` when there is no such volume.
    pub async fn volume_labels(&self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        match self.docker.inspect_volume(name).await {
            Ok(volume) => Ok(Some(volume.labels.into_iter().collect())),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(&format!("inspect volume {name}"), &err)),
        }
    }

    /// Creates named volume `name` with `labels`, with the local driver.
    pub async fn create_volume(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        let options = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(options)
            .await
            .map(drop)
            .map_err(|err| self.failed(&format!("create volume {name}"), &err))
    }

    /// The named volumes labelled with each of `labels` (`key` or `key=value`): each
    /// name with its labels.
    pub async fn volumes_labelled(
        &self,
        labels: Vec<String>,
    ) -> Result<Vec<(String, BTreeMap<String, String>)>> {
        let options = bollard::query_parameters::ListVolumesOptions {
            filters: Some(HashMap::from([("label".to_string(), labels)])),
        };
        let listed = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|err| self.failed("list volumes", &err))?;
        Ok(listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| (volume.name, volume.labels.into_iter().collect()))
            .collect())
    }

    /// Removes named volume `name`.
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        self.docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(|err| self.failed(&format!("remove volume {name}"), &err))
    }

    /// The driver options of named volume `name` (`type`, `o`, `device` for the local
    /// driver), or `None` when there is no such volume.
    pub async fn volume_options(&self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        match self.docker.inspect_volume(name).await {
            Ok(volume) => Ok(Some(volume.options.into_iter().collect())),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(&format!("inspect volume {name}"), &err)),
        }
    }

    /// Whose container `name` is, by its `berth.user` label: `None` when there is no
    /// such container, `Some(None)` when it has no owner label.
    pub async fn container_owner(&self, name: &str) -> Result<Option<Option<String>>> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(details) => Ok(Some(
                details
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|mut labels| labels.remove(label::USER)),
            )),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(&format!("inspect container {name}"), &err)),
        }
    }

    /// The tags of the engine's local images (`repo:tag`), sorted, untagged ones left out.
    pub async fn image_tags(&self) -> Result<Vec<String>> {
        let images = self
            .docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map_err(|err| self.failed("list the images", &err))?;
        let mut all: Vec<String> = images
            .into_iter()
            .flat_map(|image| tags(image.repo_tags))
            .collect();
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// Pulls `image`, telling `progress` each event the engine reports.
    pub async fn pull(&self, image: &str, mut progress: impl FnMut(&PullEvent)) -> Result<()> {
        let options = CreateImageOptions {
            from_image: Some(image.to_string()),
            ..Default::default()
        };
        let failed = |why: String| {
            Error::failed(format!("cannot pull image {image}: {why}"))
                .hint("check the name with `docker images`, or choose another with --image IMAGE")
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| match err {
                // An error the engine sent mid-pull: its words are the whole story.
                bollard::errors::Error::DockerStreamError { error } => failed(error),
                other => failed(describe(&other)),
            })?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(failed(detail));
            }
            let (current, total) = info
                .progress_detail
                .map(|p| (p.current, p.total))
                .unwrap_or_default();
            progress(&PullEvent {
                id: info.id,
                status: info.status.unwrap_or_default(),
                current: current.and_then(|n| u64::try_from(n).ok()),
                total: total.and_then(|n| u64::try_from(n).ok()),
            });
        }
        Ok(())
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|err| self.failed("start the container", &err))
    }

    /// Freezes every process of the container (cgroup freezer): nothing changes until
    /// [`Engine::unpause`].
    pub async fn pause(&self, id: &str) -> Result<()> {
        self.docker
            .pause_container(id)
            .await
            .map_err(|err| self.failed("pause the container", &err))
    }

    pub async fn unpause(&self, id: &str) -> Result<()> {
        self.docker
            .unpause_container(id)
            .await
            .map_err(|err| self.failed("unpause the container", &err))
    }

    /// SIGTERM (the container's stop signal), then SIGKILL after `timeout`.
    pub async fn stop(&self, id: &str, timeout: Duration) -> Result<()> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX)),
            signal: None,
        };
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: it was not running.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(err) => Err(self.failed("stop the container", &err)),
        }
    }

    /// Removes a stopped container, keeping every volume (named and anonymous).
    pub async fn remove(&self, id: &str) -> Result<()> {
        self.remove_with(id, false)
            .await
            .map_err(|err| self.failed("remove the container", &err))
    }

    /// Removes container `id`; with `helper`, by force and with its anonymous volumes.
    async fn remove_with(&self, id: &str, helper: bool) -> Result<(), bollard::errors::Error> {
        let options = RemoveContainerOptions {
            v: helper,
            force: helper,
            link: false,
        };
        self.docker.remove_container(id, Some(options)).await
    }

    /// The writable layer's changes, as the engine lists them.
    pub async fn changes(&self, id: &str) -> Result<Vec<(String, ChangeKind)>> {
        let changes = self
            .docker
            .container_changes(id)
            .await
            .map_err(|err| self.failed("read the container's changes", &err))?;
        Ok(changes
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let kind = match c.kind as i32 {
                    1 => ChangeKind::Added,
                    2 => ChangeKind::Deleted,
                    _ => ChangeKind::Modified,
                };
                (c.path, kind)
            })
            .collect())
    }

    /// Size and kind of `path` in the container; `None` when it is not there.
    pub async fn stat(&self, id: &str, path: &str) -> Result<Option<PathStat>> {
        let options = ContainerArchiveInfoOptions {
            path: path.to_string(),
        };
        match self
            .docker
            .get_container_archive_info(id, Some(options))
            .await
        {
            Ok(stat) => Ok(Some(PathStat {
                size: u64::try_from(stat.size).unwrap_or(0),
                // Go's os.ModeDir.
                is_dir: stat.file_mode & (1 << 31) != 0,
                link_target: Some(stat.link_target).filter(|t| !t.is_empty()),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(&format!("read {path} in the container"), &err)),
        }
    }

    /// [`Engine::download`], to be read on a blocking thread (where tar unpacks it).
    /// Made inside the runtime.
    pub fn download_reader(&self, id: &str, path: &str) -> BlockingReader {
        BlockingReader::new(self.download(id, path))
    }

    /// A tar archive of `path` in the container (the archive endpoint, as `docker cp`
    /// uses), as a stream of bytes.
    pub fn download(
        &self,
        id: &str,
        path: &str,
    ) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let path = path.to_string();
        self.docker
            .download_from_container(id, Some(options))
            .map(move |chunk| {
                chunk.map_err(|err| {
                    std::io::Error::other(format!("cannot read {path}: {}", describe(&err)))
                })
            })
    }

    /// A small text file of the container's (`/etc/passwd`); `None` when it is not
    /// there. Read whole: only for files of a few kilobytes.
    pub async fn read_file(&self, id: &str, path: &str) -> Result<Option<String>> {
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut archive = Vec::new();
        let mut stream = self.docker.download_from_container(id, Some(options));
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(None),
                Err(err) => return Err(self.failed(&format!("read {path} in the container"), &err)),
            }
        }
        let unreadable =
            |why: String| Error::failed(format!("cannot read {path} in the container: {why}"));
        let mut entries = tar::Archive::new(&archive[..]);
        let mut entries = entries
            .entries()
            .map_err(|err| unreadable(err.to_string()))?;
        let Some(entry) = entries.next() else {
            return Ok(None);
        };
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut entry.map_err(|err| unreadable(err.to_string()))?,
            &mut text,
        )
        .map_err(|err| unreadable(err.to_string()))?;
        Ok(Some(text))
    }

    /// Unpacks `archive` (a tar) into the container's directory `dir`.
    pub async fn upload(&self, id: &str, dir: &str, archive: Vec<u8>) -> Result<()> {
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(|err| self.failed(&format!("write into {dir} in the container"), &err))
    }

    /// Unpacks the tar stream `archive` into the container's directory `dir`, as it
    /// comes: the contents of a volume, say, which need not fit in memory.
    pub async fn upload_stream(
        &self,
        id: &str,
        dir: &str,
        archive: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    ) -> Result<()> {
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(options), bollard::body_try_stream(archive))
            .await
            .map_err(|err| self.failed(&format!("write into {dir} in the container"), &err))
    }

    /// Copies `image` to the engine `to`, as `docker save | docker load` would, streamed.
    pub async fn copy_image(&self, image: &str, to: &Engine) -> Result<()> {
        let saved = self.docker.export_image(image);
        let options = bollard::query_parameters::ImportImageOptions::default();
        let mut loading = to.docker.import_image_stream(options, saved, None);
        while let Some(step) = loading.next().await {
            step.map_err(|err| to.failed(&format!("load {image}"), &err))?;
        }
        Ok(())
    }

    /// Imports a root file system (`tar`, uncompressed) as image `repo:tag`, labelled
    /// `label`, as `docker import --change 'LABEL …'` does.
    pub async fn import(
        &self,
        repo: &str,
        tag: &str,
        label: (&str, &str),
        tar: Vec<u8>,
    ) -> Result<()> {
        let options = CreateImageOptions {
            from_src: Some("-".to_string()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            changes: vec![format!("LABEL {}={}", label.0, label.1)],
            ..Default::default()
        };
        let mut progress =
            self.docker
                .create_image(Some(options), Some(bollard::body_full(tar.into())), None);
        while let Some(step) = progress.next().await {
            step.map_err(|err| self.failed(&format!("import {repo}:{tag}"), &err))?;
        }
        Ok(())
    }

    /// The images labelled `key=value`: each one's id and tags (none for an image whose
    /// tag went to a newer one).
    pub async fn images_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<(String, Vec<String>)>> {
        let images = self
            .images_filtered("label", &format!("{key}={value}"))
            .await?;
        Ok(images
            .into_iter()
            .map(|image| (image.id, tags(image.repo_tags)))
            .collect())
    }

    /// The images whose name matches `reference` (docker's `reference` filter:
    /// `berth/alice/*`), one entry per tag.
    pub async fn images_named(&self, reference: &str) -> Result<Vec<ImageInfo>> {
        let images = self.images_filtered("reference", reference).await?;
        let mut listed = Vec::new();
        for image in images {
            for tag in tags(image.repo_tags) {
                listed.push(ImageInfo {
                    id: image.id.clone(),
                    tag,
                    size: u64::try_from(image.size).unwrap_or(0),
                    created: image.created,
                    labels: image.labels.clone().into_iter().collect(),
                });
            }
        }
        Ok(listed)
    }

    /// `GET /images/json` with one filter.
    async fn images_filtered(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<bollard::models::ImageSummary>> {
        let options = bollard::query_parameters::ListImagesOptions {
            filters: Some(HashMap::from([(key.to_string(), vec![value.to_string()])])),
            ..Default::default()
        };
        self.docker
            .list_images(Some(options))
            .await
            .map_err(|err| self.failed("list the images", &err))
    }

    /// Removes image `image` (an id or a tag), unless a container uses it.
    pub async fn remove_image(&self, image: &str) -> Result<()> {
        self.docker
            .remove_image(
                image,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
            .map(drop)
            .map_err(|err| self.failed(&format!("remove image {image}"), &err))
    }

    /// Removes the tag `image` (the image with it, when it has no other), unless a
    /// container uses it: then `Ok(false)`, and nothing changes.
    pub async fn remove_unused_image(&self, image: &str) -> Result<bool> {
        match self
            .docker
            .remove_image(
                image,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(err) => Err(self.failed(&format!("remove image {image}"), &err)),
        }
    }

    /// The ids of the images that containers, anyone's and of any state, are made from.
    pub async fn images_in_use(&self) -> Result<std::collections::HashSet<String>> {
        let summaries = self.containers(None, false).await?;
        Ok(summaries.into_iter().filter_map(|c| c.image_id).collect())
    }

    /// `GET /containers/json?all=1`, with `filters`, and sizes where asked.
    async fn containers(
        &self,
        filters: Option<HashMap<String, Vec<String>>>,
        sizes: bool,
    ) -> Result<Vec<bollard::models::ContainerSummary>> {
        let options = ListContainersOptions {
            all: true,
            size: sizes,
            filters,
            ..Default::default()
        };
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|err| self.failed("list containers", &err))
    }

    /// Builds an image from `context`, a tar stream, with the classic builder (every
    /// engine from API 1.41 on has it). Each line of output goes to `output` as it
    /// comes. Returns the image's id; a failed build is an error that names the step
    /// that failed. The image is not tagged: [`Engine::tag`] names it once the caller
    /// knows the context was what it hashed.
    pub async fn build(
        &self,
        request: &BuildRequest,
        context: impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
        mut output: impl FnMut(&str),
    ) -> Result<String> {
        let options = bollard::query_parameters::BuildImageOptions {
            dockerfile: request.dockerfile.clone(),
            buildargs: Some(request.args.clone().into_iter().collect()),
            labels: Some(request.labels.clone().into_iter().collect()),
            target: request.target.clone().unwrap_or_default(),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_try_stream(context)));
        let mut step = None;
        let mut id = None;
        let failed = |why: String, step: &Option<String>| {
            let at = step
                .as_deref()
                .map(|s| format!(" at {s}"))
                .unwrap_or_default();
            Error::failed(format!("the build failed{at}: {why}"))
        };
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| match err {
                bollard::errors::Error::DockerStreamError { error } => failed(error, &step),
                other => failed(describe(&other), &step),
            })?;
            if let Some(text) = info.stream.as_deref() {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    if line.starts_with("Step ") {
                        step = Some(line.trim().to_string());
                    }
                    output(line);
                }
            }
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(failed(message.trim().to_string(), &step));
            }
            if let Some(image) = info.aux {
                id = image.id.or(id);
            }
        }
        id.ok_or_else(|| failed("the engine named no image".to_string(), &step))
    }

    /// Names image `id` `repo:tag`.
    pub async fn tag(&self, id: &str, repo: &str, tag: &str) -> Result<()> {
        let options = bollard::query_parameters::TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        self.docker
            .tag_image(id, Some(options))
            .await
            .map_err(|err| self.failed(&format!("tag the image as {repo}:{tag}"), &err))
    }

    /// Commits the container's filesystem as image `repo:tag`, without pausing it again
    /// (retire has frozen it already). Returns the image id.
    pub async fn commit(&self, id: &str, repo: &str, tag: &str, comment: &str) -> Result<String> {
        let options = CommitContainerOptions {
            container: Some(id.to_string()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            comment: Some(comment.to_string()),
            pause: false,
            ..Default::default()
        };
        let committed = self
            .docker
            .commit_container(options, ContainerConfig::default())
            .await
            .map_err(|err| self.failed(&format!("commit the container as {repo}:{tag}"), &err))?;
        Ok(committed.id)
    }

    /// Creates a container in one call, limits included; `Ok(None)` when its name is
    /// already taken (for deploy: another deploy won the race).
    pub async fn create(&self, spec: &ContainerSpec) -> Result<Option<String>> {
        let body: ContainerCreateBody = serde_json::from_value(spec.to_api_json())
            .map_err(|err| Error::failed(format!("cannot build the create request: {err}")))?;
        let options = CreateContainerOptions {
            name: spec.name.clone(),
            platform: spec.extra.platform.clone().unwrap_or_default(),
        };
        match self.docker.create_container(Some(options), body).await {
            Ok(created) => Ok(Some(created.id)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(None),
            Err(err) => {
                let name = spec.name.as_deref().unwrap_or(&spec.image);
                Err(self.failed(&format!("create container {name}"), &err))
            }
        }
    }

    /// Creates a container of `image` that is never started, labelled
    /// [`label::HELPER`] `purpose`, to read the image's files through the archive
    /// endpoint. [`Engine::remove_helper`] removes it.
    pub async fn create_helper(&self, image: &str, purpose: &str) -> Result<String> {
        self.create_helper_with(image, purpose, Vec::new(), None)
            .await
    }

    /// [`Engine::create_helper`] with `mounts`: named volumes to read, say. A `name`
    /// makes it findable by a later command when the one that made it was killed
    /// before it heard its id; a container left under that name is replaced.
    pub async fn create_helper_with(
        &self,
        image: &str,
        purpose: &str,
        mounts: Vec<MountSpec>,
        name: Option<&str>,
    ) -> Result<String> {
        let mut spec = ContainerSpec {
            name: name.map(str::to_string),
            image: image.to_string(),
            // Never run, but the engine refuses an image without a command.
            cmd: vec!["true".to_string()],
            ..Default::default()
        };
        spec.host.mounts = mounts;
        spec.host.network_mode = Some("none".into());
        spec.labels
            .insert(label::HELPER.to_string(), purpose.to_string());
        // A name still taken is a helper a killed command left, perhaps still being made.
        for _ in 0..40 {
            if let Some(id) = self.create(&spec).await? {
                return Ok(id);
            }
            if let Some(name) = name {
                self.remove_with(name, true).await.ok();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(Error::failed(format!(
            "cannot create a helper container of {image}{}",
            name.map_or(String::new(), |n| format!(": {n} stays taken"))
        )))
    }

    /// Removes the helper container called `name`, if there is one.
    pub async fn remove_helper_named(&self, name: &str) -> Result<()> {
        match self.remove_with(name, true).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(err) => Err(self.failed("remove the helper container", &err)),
        }
    }

    /// Removes a helper container and the anonymous volumes its image declared, which
    /// held only copies of the image's content.
    pub async fn remove_helper(&self, id: &str) -> Result<()> {
        self.remove_with(id, true)
            .await
            .map_err(|err| self.failed("remove the helper container", &err))
    }

    /// Attaches to a created container's streams `[stdin, stdout, stderr]` (docker's `-a`);
    /// done before the start, so nothing is missed.
    pub async fn attach(
        &self,
        id: &str,
        streams: [bool; 3],
        detach_keys: Option<&str>,
    ) -> Result<Attached> {
        let [stdin, stdout, stderr] = streams;
        let options = AttachContainerOptions {
            stdin,
            stdout,
            stderr,
            stream: true,
            logs: false,
            detach_keys: detach_keys.map(str::to_string),
        };
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|err| Error::status(125, format!("cannot attach: {}", describe(&err))))?;
        Ok(Attached {
            output: Box::pin(attached.output.map(chunk)),
            input: attached.input,
        })
    }

    /// Resolves to the container's exit status once it exits (or, with `removed`, once
    /// the engine has removed it after `--rm`). Start waiting before the start.
    pub fn wait(
        &self,
        id: &str,
        removed: bool,
    ) -> impl std::future::Future<Output = Result<i64>> + Send + 'static {
        let options = WaitContainerOptions {
            condition: if removed { "removed" } else { "next-exit" }.to_string(),
        };
        let mut stream = self.docker.wait_container(id, Some(options));
        async move {
            match stream.next().await {
                Some(Ok(response)) => Ok(response.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Ok(code)
                }
                Some(Err(err)) => Err(Error::status(125, describe(&err))),
                None => Err(Error::status(125, "the engine stopped answering")),
            }
        }
    }

    /// Sets the container's terminal size.
    pub async fn resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let options = ResizeContainerTTYOptions {
            h: i32::from(rows),
            w: i32::from(cols),
        };
        self.docker
            .resize_container_tty(id, options)
            .await
            .map_err(|err| self.failed("resize the terminal", &err))
    }

    /// Sends `signal` to the container's main process.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let options = KillContainerOptions {
            signal: signal.to_string(),
        };
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(|err| self.failed("signal the container", &err))
    }

    /// Starts `cmd` in a running container and attaches to it.
    pub async fn exec(&self, id: &str, exec: &Exec) -> Result<(String, Attached)> {
        let options = CreateExecOptions {
            attach_stdin: Some(exec.stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(exec.tty),
            env: Some(exec.env.clone()),
            cmd: Some(exec.cmd.clone()),
            user: exec.user.clone(),
            working_dir: exec.workdir.clone(),
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(id, options)
            .await
            .map_err(|err| Error::status(126, describe(&err)))?;
        let start = StartExecOptions {
            detach: false,
            tty: exec.tty,
            output_capacity: None,
        };
        match self.docker.start_exec(&created.id, Some(start)).await {
            Ok(StartExecResults::Attached { output, input }) => Ok((
                created.id,
                Attached {
                    output: Box::pin(output.map(chunk)),
                    input,
                },
            )),
            Ok(StartExecResults::Detached) => Err(Error::status(126, "the exec did not attach")),
            Err(err) => Err(Error::status(126, describe(&err))),
        }
    }

    pub async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let options = ResizeExecOptions {
            h: i32::from(rows),
            w: i32::from(cols),
        };
        self.docker
            .resize_exec(exec_id, options)
            .await
            .map_err(|err| self.failed("resize the terminal", &err))
    }

    /// The exit code of a finished exec.
    pub async fn exec_exit_code(&self, exec_id: &str) -> Result<i64> {
        let inspected = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|err| self.failed("read the command's exit code", &err))?;
        Ok(inspected.exit_code.unwrap_or(0))
    }

    /// The last `lines` lines of the container's output, for an error message.
    pub async fn log_tail(&self, id: &str, lines: usize) -> Vec<String> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text.lines().map(str::to_string).collect()
    }

    fn failed(&self, action: &str, err: &bollard::errors::Error) -> Error {
        Error::failed(format!("cannot {action}: {}", describe(err)))
    }
}

/// Why the first request failed, in the OS's words where there are some ("connection
/// refused"): hyper's own ("client error (Connect)") gives a person nothing to act on.
fn connect_failure(err: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match err {
        // Something answered, but not as an engine would.
        E::DockerResponseServerError {
            status_code,
            message,
        } if message.is_empty() => {
            format!("the answer was HTTP {status_code}; is that a Docker engine?")
        }
        E::JsonDataError { message, .. } => {
            format!("the answer is not the Docker API's ({message}); is that a Docker engine?")
        }
        _ => {
            let mut deepest = None;
            let mut cause: &dyn std::error::Error = err;
            while let Some(source) = cause.source() {
                deepest = Some(source);
                cause = source;
            }
            match deepest {
                Some(cause) => match cause.downcast_ref::<std::io::Error>() {
                    Some(io) => crate::error::io_reason(io),
                    None => cause.to_string(),
                },
                None => describe(err),
            }
        }
    }
}

/// The engine's own words where it gave some, else bollard's.
fn describe(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::SocketNotFoundError(path) => format!("no socket at {path}"),
        other => {
            let text = other.to_string();
            match std::error::Error::source(other) {
                Some(source) if !text.contains(&source.to_string()) => format!("{text}: {source}"),
                _ => text,
            }
        }
    }
}

/// What [`Engine::build`] sends besides the context.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
}

/// An image's tags, without the `<none>:<none>` of an untagged one.
fn tags(repo_tags: Vec<String>) -> Vec<String> {
    repo_tags
        .into_iter()
        .filter(|tag| tag != "<none>:<none>")
        .collect()
}

/// An image as [`Engine::image_facts`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    /// The user it runs as (its `USER`); empty for root.
    pub user: String,
    /// When it was made, to the nanosecond.
    pub created: Option<std::time::SystemTime>,
}

/// An image as [`Engine::images_named`] lists it: one tag of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    pub tag: String,
    pub size: u64,
    /// Seconds since the epoch.
    pub created: i64,
    pub labels: BTreeMap<String, String>,
}

/// One event of a pull, as the engine reports it: a layer's status (`id` is the layer's
/// short id; the tag, for `Pulling from NAME`) with its bytes so far where they move, or
/// a line about the whole image (no `id`: `Digest: ...`, `Status: ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullEvent {
    pub id: Option<String>,
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// A command to run in a container with [`Engine::exec`].
#[derive(Debug, Clone, Default)]
pub struct Exec {
    pub cmd: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub env: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
}

/// What a container (or exec) writes, in order.
#[derive(Debug, Clone)]
pub enum Chunk {
    Stdout(bytes::Bytes),
    Stderr(bytes::Bytes),
}

/// An attached container or exec: its output, and its input when stdin was asked for.
pub struct Attached {
    pub output: std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Chunk>> + Send>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

fn chunk(item: std::result::Result<LogOutput, bollard::errors::Error>) -> std::io::Result<Chunk> {
    match item {
        Ok(LogOutput::StdErr { message }) => Ok(Chunk::Stderr(message)),
        Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
            Ok(Chunk::Stdout(message))
        }
        Ok(LogOutput::StdIn { message }) => Ok(Chunk::Stdout(message)),
        Err(err) => Err(std::io::Error::other(describe(&err))),
    }
}

fn is_anonymous(volume: &str) -> bool {
    volume.len() == 64 && volume.bytes().all(|b| b.is_ascii_hexdigit())
}

fn summary_state(state: Option<ContainerSummaryStateEnum>) -> State {
    state_from_str(&state.map(|s| s.to_string()).unwrap_or_default())
}

fn state_from_str(status: &str) -> State {
    match status {
        "running" => State::Running,
        "paused" => State::Paused,
        "restarting" | "removing" => State::Busy,
        _ => State::Stopped,
    }
}
