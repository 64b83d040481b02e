//! Configuration layering: admin policy > command line > project berth.toml > user
//! config > defaults. Every resolved value keeps the [`Source`] it came from, so `check`
//! and `--dry-run` can say why a value is what it is.

pub mod file;
pub mod policy;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cli::DeployArgs;
use crate::config::policy::Policy;
use crate::dockerargs::{GpuSpec, PortSpec, VolumeSpec};
use crate::error::{Error, Result};
use crate::host::Paths;
use file::{Argv, FileConfig, ScalarText};

pub const PROJECT_FILE: &str = "berth.toml";
/// The project's compose-style env file, read for HOST_DATA_PATH.
pub const DOT_ENV: &str = ".env";
/// The variable that names the data root, on the host and in the container.
pub const DATA_ENV: &str = "HOST_DATA_PATH";

/// Changes under these paths never block a retire (README, "What retire does").
pub const DEFAULT_DISPOSABLE: &[&str] = &[
    "/tmp",
    "/var/tmp",
    "/var/cache",
    "/var/log",
    "/var/lib/apt/lists",
    "/run",
    "**/.cache",
    "**/__pycache__",
    "**/*.pyc",
];

fn default_disposable() -> Vec<String> {
    DEFAULT_DISPOSABLE.iter().map(|s| s.to_string()).collect()
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    Policy(PathBuf),
    /// The policy's `[defaults]`: below every other layer.
    PolicyDefault(PathBuf),
    CommandLine,
    Project(PathBuf),
    User(PathBuf),
    Env(&'static str),
    EnvFile {
        path: PathBuf,
        line: usize,
    },
    /// The project's existing container (its image, when nothing else names one).
    Container(String),
    /// What the project's last deploy used or build made (`by`), at this time (RFC
    /// 3339), when nothing else names one and it has no container.
    Remembered {
        by: String,
        at: String,
    },
    /// The project's Dockerfile, built by `berth build` or the deploy: `up to date`,
    /// `built now`, or `stale` (a deploy would build it first).
    Build(String),
    /// The saved package lists on `base` (a generated build), in `state` as for
    /// [`Source::Build`].
    Generated {
        base: String,
        state: String,
    },
}

impl Source {
    /// The directory a relative path in this source is relative to.
    pub fn base_dir(&self, cwd: &Path) -> PathBuf {
        match self {
            Self::Policy(path)
            | Self::PolicyDefault(path)
            | Self::Project(path)
            | Self::User(path) => path
                .parent()
                .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf),
            Self::EnvFile { path, .. } => path
                .parent()
                .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf),
            Self::Default
            | Self::CommandLine
            | Self::Env(_)
            | Self::Container(_)
            | Self::Remembered { .. }
            | Self::Build(_)
            | Self::Generated { .. } => cwd.to_path_buf(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Policy(path) => write!(f, "policy {}", path.display()),
            Self::PolicyDefault(path) => write!(f, "policy default {}", path.display()),
            Self::CommandLine => f.write_str("command line"),
            Self::Project(path) => write!(f, "project {}", path.display()),
            Self::User(path) => write!(f, "user config {}", path.display()),
            Self::Env(name) => write!(f, "environment {name}"),
            Self::EnvFile { path, line } => write!(f, "{}:{line}", path.display()),
            Self::Container(name) => write!(f, "container {name}"),
            Self::Remembered { by, at } => write!(f, "remembered: the last {by}, {at}"),
            Self::Build(state) => write!(f, "the project's Dockerfile, build {state}"),
            Self::Generated { base, state } => write!(
                f,
                "{base} with the packages saved in .berth/packages, build {state}"
            ),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// A data root as some source wrote it, before it is resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataRootValue {
    pub raw: String,
    /// What a relative `raw` is relative to.
    pub base: PathBuf,
}

/// The configuration after layering: what the plan is built from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub image: Option<Sourced<String>>,
    pub command: Option<Sourced<Vec<String>>>,
    pub user: Option<Sourced<String>>,
    pub gpus: Option<Sourced<GpuSpec>>,
    pub nano_cpus: Option<Sourced<i64>>,
    pub memory: Option<Sourced<u64>>,
    pub shm_size: Option<Sourced<u64>>,
    pub env: BTreeMap<String, Sourced<String>>,
    /// Env files to read (absolute), from `env_files`; `.env` is read too, by
    /// [`read_env_files`].
    pub env_files: Vec<Sourced<PathBuf>>,
    pub ports: Vec<Sourced<PortSpec>>,
    /// Extra mounts, host paths already made absolute.
    pub volumes: Vec<Sourced<VolumeSpec>>,
    /// Container paths kept in the project's named volumes (`persist`), each once.
    pub persist: Vec<Sourced<String>>,
    /// Every place that names the data root, in precedence order.
    pub data_roots: Vec<Sourced<DataRootValue>>,
    pub data_target: Sourced<String>,
    pub data_group: Option<Sourced<String>>,
    pub disposable: Sourced<Vec<String>>,
    /// The disposable patterns that every layer but the project's file gives: what a
    /// project file (in the workspace, which the container can write) makes disposable
    /// beyond these is shown by name, never hidden.
    pub disposable_vouched: Vec<String>,
    /// `[build]` of the project's berth.toml, and that file; the default without one.
    #[serde(skip)]
    pub build: (Option<PathBuf>, file::BuildSection),
    /// `[backup] dir` of the user config, made absolute.
    pub backup_dir: Option<Sourced<PathBuf>>,
    /// `[backup] exclude` of every layer.
    pub backup_exclude: Vec<String>,
    /// `[backup] every` of the policy, else of the user config; never the project's
    /// file, which the container can write.
    pub backup_every: Option<Sourced<Duration>>,
    /// `[backup] keep`, from the same layers as `every`.
    pub backup_keep: Option<Sourced<usize>>,
    /// `[snapshot] every`, `keep` and `all`, from every file, the policy's as defaults
    /// (its bounds apply where snapshots are taken).
    pub snapshot_every: Option<Sourced<Duration>>,
    pub snapshot_keep: Option<Sourced<usize>>,
    pub snapshot_all: Option<Sourced<bool>>,
    /// `[retire] warn_over` of the policy, else of the user config: the project's file,
    /// which the container can write, cannot silence the alarm on entry.
    pub warn_over: Option<Sourced<u64>>,
    /// `[slurm]`, each key from the highest layer that sets it.
    pub slurm_partition: Option<Sourced<String>>,
    pub slurm_time: Option<Sourced<String>>,
    pub slurm_account: Option<Sourced<String>>,
    pub slurm_options: Option<Sourced<Vec<String>>>,
}

/// Refuses a `[retire] disposable` pattern that would make every change disposable
/// (`**`, `/`, `*`): a pattern must name something.
pub fn check_disposable(disposable: &Sourced<Vec<String>>) -> Result<()> {
    let hides_everything = |pattern: &str| {
        pattern
            .split('/')
            .filter(|part| !part.is_empty())
            .all(|part| part.chars().all(|c| c == '*'))
    };
    match disposable.value.iter().find(|p| hides_everything(p)) {
        Some(pattern) => Err(Error::failed(format!(
            "the [retire] disposable pattern {pattern:?} (from {}) would make every change \
             disposable, and retire would then remove any work unasked",
            disposable.source
        ))
        .hint("name what to leave out, like \"/scratch\" or \"**/.cache\"")),
        None => Ok(()),
    }
}

/// The files a project's settings are read from.
pub struct Files {
    pub policy: Option<(PathBuf, Policy)>,
    pub project: Option<(PathBuf, FileConfig)>,
    pub user: Option<(PathBuf, FileConfig)>,
}

impl Files {
    /// Reads the policy, the user config and `<workspace>/berth.toml`, each optional
    /// unless named explicitly by its environment variable.
    pub fn read(paths: &Paths, workspace: &Path) -> Result<Self> {
        let explicit = |path: &Path, var: &str, is_explicit: bool| -> Result<()> {
            if is_explicit && !path.exists() {
                return Err(Error::failed(format!(
                    "{var} names {}, which does not exist",
                    path.display()
                ))
                .hint(format!("create the file, or unset {var}")));
            }
            Ok(())
        };
        explicit(&paths.policy, "BERTH_POLICY", paths.policy_explicit)?;
        explicit(
            &paths.user_config,
            "BERTH_CONFIG",
            paths.user_config_explicit,
        )?;
        let load = |path: PathBuf| -> Result<Option<(PathBuf, FileConfig)>> {
            Ok(file::read(&path)?.map(|config| (path, config)))
        };
        Ok(Self {
            policy: Policy::read(&paths.policy)?.map(|policy| (paths.policy.clone(), policy)),
            project: load(workspace.join(PROJECT_FILE))?,
            user: load(paths.user_config.clone())?,
        })
    }
}

/// The command line's deploy options as one more layer.
pub fn command_line_layer(args: &DeployArgs) -> Result<FileConfig> {
    let usage = |flag: &str, why: String| Error::usage(format!("{flag}: {why}"));
    let mut env = BTreeMap::new();
    for entry in &args.env {
        match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                env.insert(key.to_string(), ScalarText(value.to_string()));
            }
            Some(_) => return Err(usage("--env", format!("{entry:?} has no name"))),
            // docker's `-e NAME`: take the value from here, or drop it when unset.
            None => {
                if let Ok(value) = std::env::var(entry) {
                    env.insert(entry.clone(), ScalarText(value));
                }
            }
        }
    }
    Ok(FileConfig {
        image: args.image.clone(),
        command: (!args.command.is_empty()).then(|| Argv(args.command.clone())),
        gpus: parse_flag(&args.gpus, GpuSpec::parse, "--gpus")?.map(file::Gpus),
        cpus: parse_flag(&args.cpus, crate::units::parse_cpus, "--cpus")?.map(file::Cpus),
        memory: parse_flag(&args.memory, crate::units::parse_size, "--memory")?.map(file::Size),
        shm_size: parse_flag(&args.shm_size, crate::units::parse_size, "--shm-size")?
            .map(file::Size),
        env,
        ports: parse_each(&args.publish, PortSpec::parse, "--publish")?
            .into_iter()
            .map(file::Port)
            .collect(),
        volumes: parse_each(&args.volume, VolumeSpec::parse, "--volume")?
            .into_iter()
            .map(file::Volume)
            .collect(),
        persist: args.persist.clone(),
        ..FileConfig::default()
    })
}

fn parse_flag<T>(
    raw: &Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
    flag: &str,
) -> Result<Option<T>> {
    raw.as_deref()
        .map(|text| parse(text).map_err(|why| Error::usage(format!("{flag}: {why}"))))
        .transpose()
}

fn parse_each<T>(
    raw: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
    flag: &str,
) -> Result<Vec<T>> {
    raw.iter()
        .map(|text| parse(text).map_err(|why| Error::usage(format!("{flag}: {why}"))))
        .collect()
}

/// Layers the files, the command line and the environment into [`Settings`].
///
/// `host_data_path` is the `HOST_DATA_PATH` environment variable; `cwd` anchors the
/// relative paths that come from the command line or the environment.
pub fn layer(
    files: &Files,
    command_line: &FileConfig,
    host_data_path: Option<&str>,
    cwd: &Path,
) -> Settings {
    let fixed = files
        .policy
        .as_ref()
        .map(|(path, policy)| (path, policy.fixed_layer(), policy.defaults_layer()));
    let mut layers: Vec<(Source, &FileConfig)> = Vec::new();
    if let Some((path, fixed, _)) = &fixed {
        layers.push((Source::Policy((*path).clone()), fixed));
    }
    layers.push((Source::CommandLine, command_line));
    if let Some((path, config)) = &files.project {
        layers.push((Source::Project(path.clone()), config));
    }
    if let Some((path, config)) = &files.user {
        layers.push((Source::User(path.clone()), config));
    }
    if let Some((path, _, defaults)) = &fixed {
        layers.push((Source::PolicyDefault((*path).clone()), defaults));
    }

    // The layers that the container cannot write.
    let vouched: Vec<(Source, &FileConfig)> = layers
        .iter()
        .filter(|(source, _)| !matches!(source, Source::Project(_)))
        .cloned()
        .collect();

    // The first layer (in precedence order) that sets a value wins.
    fn pick<T>(
        layers: &[(Source, &FileConfig)],
        get: impl Fn(&FileConfig) -> Option<T>,
    ) -> Option<Sourced<T>> {
        layers.iter().find_map(|(source, config)| {
            get(config).map(|value| Sourced {
                value,
                source: source.clone(),
            })
        })
    }

    // Lists add up, lowest precedence first so that a later `-e` wins over a file's.
    let mut env = BTreeMap::new();
    let mut env_files = Vec::new();
    let mut ports = Vec::new();
    let mut volumes = Vec::new();
    let mut persist: Vec<Sourced<String>> = Vec::new();
    for (source, config) in layers.iter().rev() {
        for path in &config.persist {
            if !persist.iter().any(|known| known.value == *path) {
                persist.push(Sourced {
                    value: path.clone(),
                    source: source.clone(),
                });
            }
        }
        for (key, ScalarText(value)) in &config.env {
            let sourced = Sourced {
                value: value.clone(),
                source: source.clone(),
            };
            env.insert(key.clone(), sourced);
        }
        for path in &config.env_files {
            env_files.push(Sourced {
                value: PathBuf::from(absolutize(path, &source.base_dir(cwd))),
                source: source.clone(),
            });
        }
        for port in &config.ports {
            ports.push(Sourced {
                value: port.0.clone(),
                source: source.clone(),
            });
        }
        for volume in &config.volumes {
            let mut spec = volume.0.clone();
            if spec.is_host_path() {
                let base = source.base_dir(cwd);
                spec.source = spec.source.map(|s| absolutize(&s, &base));
            }
            volumes.push(Sourced {
                value: spec,
                source: source.clone(),
            });
        }
    }

    // `[data] host_path`, and an `env` table that sets HOST_DATA_PATH by hand, both name
    // the data root.
    let mut data_roots: Vec<Sourced<DataRootValue>> = layers
        .iter()
        .flat_map(|(source, config)| {
            let from_env = config.env.get(DATA_ENV).map(|v| v.0.clone());
            [config.data.host_path.clone(), from_env]
                .into_iter()
                .flatten()
                .map(|raw| Sourced {
                    value: DataRootValue {
                        raw,
                        base: source.base_dir(cwd),
                    },
                    source: source.clone(),
                })
        })
        .collect();
    if let Some(raw) = host_data_path.filter(|raw| !raw.is_empty()) {
        data_roots.push(Sourced {
            value: DataRootValue {
                raw: raw.to_string(),
                base: cwd.to_path_buf(),
            },
            source: Source::Env(DATA_ENV),
        });
    }
    env.remove(DATA_ENV);

    Settings {
        image: pick(&layers, |c| c.image.clone()),
        command: pick(&layers, |c| c.command.clone().map(|a| a.0)),
        user: pick(&layers, |c| c.user.clone()),
        gpus: pick(&layers, |c| c.gpus.clone().map(|g| g.0)),
        nano_cpus: pick(&layers, |c| c.cpus.clone().map(|c| c.0)),
        memory: pick(&layers, |c| c.memory.clone().map(|s| s.0)),
        shm_size: pick(&layers, |c| c.shm_size.clone().map(|s| s.0)),
        env,
        env_files,
        ports,
        volumes,
        persist,
        data_roots,
        data_target: pick(&layers, |c| c.data.target.clone()).unwrap_or(Sourced {
            value: "/data".into(),
            source: Source::Default,
        }),
        data_group: pick(&layers, |c| c.data.group.clone()),
        disposable: pick(&layers, |c| c.retire.disposable.clone()).unwrap_or(Sourced {
            value: default_disposable(),
            source: Source::Default,
        }),
        disposable_vouched: layers
            .iter()
            .filter(|(source, _)| !matches!(source, Source::Project(_)))
            .find_map(|(_, config)| config.retire.disposable.clone())
            .unwrap_or_else(default_disposable),
        build: files
            .project
            .as_ref()
            .map(|(path, config)| (Some(path.clone()), config.build.clone()))
            .unwrap_or_default(),
        backup_dir: files.user.as_ref().and_then(|(path, config)| {
            let source = Source::User(path.clone());
            let dir = absolutize(config.backup.dir.as_ref()?, &source.base_dir(cwd));
            Some(Sourced {
                value: PathBuf::from(dir),
                source,
            })
        }),
        backup_exclude: layers
            .iter()
            .flat_map(|(_, config)| config.backup.exclude.iter().cloned())
            .collect(),
        backup_every: pick(&vouched, |c| c.backup.every.map(|s| s.0)),
        backup_keep: pick(&vouched, |c| c.backup.keep),
        snapshot_every: pick(&layers, |c| c.snapshot.every.map(|s| s.0)),
        snapshot_keep: pick(&layers, |c| c.snapshot.keep),
        snapshot_all: pick(&layers, |c| c.snapshot.all),
        warn_over: pick(&vouched, |c| c.retire.warn_over.clone().map(|s| s.0)),
        slurm_partition: pick(&layers, |c| c.slurm.partition.clone()),
        slurm_time: pick(&layers, |c| c.slurm.time.clone()),
        slurm_account: pick(&layers, |c| c.slurm.account.clone()),
        slurm_options: pick(&layers, |c| c.slurm.options.clone()),
    }
}

/// Reads `<workspace>/.env` (if present) and every file in `env_files` (which must
/// exist). `HOST_DATA_PATH=` lines become data-root sources; the other entries of
/// `env_files` join the container's environment below every `env` table.
pub fn read_env_files(settings: &mut Settings, workspace: &Path) -> Result<()> {
    let dot_env = workspace.join(DOT_ENV);
    // Each file, and the layer whose `env_files` lists it (none for `.env`, which is
    // read only where it is a file: a directory there is a virtualenv).
    let mut files: Vec<(PathBuf, Option<Source>)> = Vec::new();
    if dot_env.is_file() {
        files.push((dot_env, None));
    }
    files.extend(
        settings
            .env_files
            .iter()
            .map(|f| (f.value.clone(), Some(f.source.clone()))),
    );
    for (path, listed_by) in files {
        let into_container = listed_by.is_some();
        let listed_hint = |err: Error| match (&listed_by, &err.hint) {
            (Some(source), None) => err.hint(format!(
                "{source} lists it in env_files; fix the path or the list"
            )),
            _ => err,
        };
        let text = file::read_text(&path, "an env file")
            .map_err(listed_hint)?
            .ok_or_else(|| {
                listed_hint(Error::failed(format!(
                    "the env file {} does not exist",
                    path.display()
                )))
            })?;
        let entries = crate::envfile::parse(&text).map_err(|err| {
            Error::failed(format!("{}:{}: {}", path.display(), err.line, err.message))
        })?;
        for entry in entries {
            let source = Source::EnvFile {
                path: path.clone(),
                line: entry.line,
            };
            let Some(value) = entry.value.or_else(|| std::env::var(&entry.key).ok()) else {
                continue;
            };
            if entry.key == DATA_ENV {
                settings.data_roots.push(Sourced {
                    value: DataRootValue {
                        raw: value,
                        base: path.parent().map_or_else(PathBuf::new, Path::to_path_buf),
                    },
                    source,
                });
            } else if into_container {
                settings
                    .env
                    .entry(entry.key)
                    .or_insert(Sourced { value, source });
            }
        }
    }
    Ok(())
}

/// `raw` made absolute against `base`, with `~/` meaning the home directory. Lexical
/// only: symlinks are followed later, by whoever needs the real directory.
pub fn absolutize(raw: &str, base: &Path) -> String {
    let expanded = match raw.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().map_or_else(|| PathBuf::from(raw), |h| h.join(rest)),
        None => PathBuf::from(raw),
    };
    let joined = if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    };
    normalize(&joined).display().to_string()
}

/// `.` and `..` removed lexically, without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disposable_pattern_must_name_something() {
        let list = |patterns: &[&str]| Sourced {
            value: patterns.iter().map(|p| p.to_string()).collect(),
            source: Source::Project(PathBuf::from("/w/p/berth.toml")),
        };
        for everything in ["**", "/", "*", "/**", "*/**", ""] {
            let err = check_disposable(&list(&["/tmp", everything])).unwrap_err();
            assert!(err.message.contains("/w/p/berth.toml"), "{}", err.message);
        }
        assert!(
            check_disposable(&list(&["/tmp", "**/.cache", "*.pyc", "/data/*/scratch"])).is_ok()
        );
    }

    fn config(text: &str) -> FileConfig {
        file::parse(text, Path::new("/x.toml")).unwrap()
    }

    fn files(policy: &str, project: &str, user: &str) -> Files {
        let policy = file::parse_as(policy, Path::new("/etc/berth/policy.toml")).unwrap();
        Files {
            policy: Some((PathBuf::from("/etc/berth/policy.toml"), policy)),
            project: Some((PathBuf::from("/ws/p/berth.toml"), config(project))),
            user: Some((
                PathBuf::from("/home/u/.config/berth/config.toml"),
                config(user),
            )),
        }
    }

    #[test]
    fn precedence_is_policy_then_flags_then_project_then_user_then_policy_defaults() {
        let files = files(
            "env = { A = \"policy\" }\n[defaults]\nshm_size = \"1g\"\ncpus = 1\nmemory = \"1g\"",
            "image = \"proj\"\nmemory = \"8g\"\nenv = { A = \"proj\" }",
            "image = \"user\"\ncpus = 2\nmemory = \"4g\"",
        );
        let flags = config("memory = \"16g\"\nenv = { A = \"flag\" }");
        let s = layer(&files, &flags, None, Path::new("/cwd"));
        assert_eq!(s.image.as_ref().unwrap().value, "proj");
        assert_eq!(
            s.image.unwrap().source,
            Source::Project("/ws/p/berth.toml".into())
        );
        assert_eq!(
            s.nano_cpus.unwrap().source,
            Source::User("/home/u/.config/berth/config.toml".into())
        );
        assert_eq!(s.memory.as_ref().unwrap().value, 16 << 30);
        assert_eq!(s.memory.unwrap().source, Source::CommandLine);
        // What the policy fixes wins over everything; its defaults lose to everything.
        assert_eq!(s.env["A"].value, "policy");
        assert_eq!(
            s.shm_size.unwrap().source,
            Source::PolicyDefault("/etc/berth/policy.toml".into())
        );
    }

    #[test]
    fn the_backup_schedule_is_the_policys_else_the_users_never_the_projects() {
        let every = |s: &Settings| s.backup_every.as_ref().map(|e| e.value.as_secs());
        let keep = |s: &Settings| s.backup_keep.as_ref().map(|k| k.value);
        let flags = FileConfig::default();
        let project = "[backup]\nevery = \"1s\"\nkeep = 1000";
        let s = layer(&files("", project, ""), &flags, None, Path::new("/"));
        assert_eq!((every(&s), keep(&s)), (None, None));
        let user = "[backup]\nevery = \"2h\"\nkeep = 3";
        let s = layer(&files("", project, user), &flags, None, Path::new("/"));
        assert_eq!((every(&s), keep(&s)), (Some(7200), Some(3)));
        let policy = "[backup]\nevery = \"1d\"";
        let s = layer(&files(policy, project, user), &flags, None, Path::new("/"));
        assert_eq!((every(&s), keep(&s)), (Some(86400), Some(3)));
        assert_eq!(
            s.backup_every.unwrap().source,
            Source::Policy("/etc/berth/policy.toml".into())
        );
    }

    #[test]
    fn env_merges_with_the_higher_layer_winning_per_key() {
        let files = files(
            "",
            "env = { A = \"p\", B = \"p\" }",
            "env = { A = \"u\", C = \"u\" }",
        );
        let flags = config("env = { B = \"f\" }");
        let s = layer(&files, &flags, None, Path::new("/cwd"));
        let values: Vec<(&str, &str)> = s
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(values, [("A", "p"), ("B", "f"), ("C", "u")]);
    }

    #[test]
    fn relative_volume_sources_are_relative_to_their_file() {
        let files = files("", "volumes = [\"./cache:/cache\", \"named:/n\"]", "");
        let flags = config("volumes = [\"../x:/x\"]");
        let s = layer(&files, &flags, None, Path::new("/cwd/sub"));
        let sources: Vec<&str> = s
            .volumes
            .iter()
            .map(|v| v.value.source.as_deref().unwrap())
            .collect();
        assert_eq!(sources, ["/ws/p/cache", "named", "/cwd/x"]);
    }

    #[test]
    fn every_data_root_source_is_kept_with_its_base() {
        let files = files(
            "",
            "[data]\nhost_path = \"../data\"",
            "[data]\nhost_path = \"/mnt/d\"",
        );
        let s = layer(&files, &config(""), Some("rel"), Path::new("/cwd"));
        let roots: Vec<(String, &str, &Path)> = s
            .data_roots
            .iter()
            .map(|r| {
                (
                    r.source.to_string(),
                    r.value.raw.as_str(),
                    r.value.base.as_path(),
                )
            })
            .collect();
        assert_eq!(
            roots,
            [
                (
                    "project /ws/p/berth.toml".to_string(),
                    "../data",
                    Path::new("/ws/p")
                ),
                (
                    "user config /home/u/.config/berth/config.toml".to_string(),
                    "/mnt/d",
                    Path::new("/home/u/.config/berth")
                ),
                (
                    "environment HOST_DATA_PATH".to_string(),
                    "rel",
                    Path::new("/cwd")
                ),
            ]
        );
        assert_eq!(s.data_target.value, "/data");
    }

    #[test]
    fn flags_with_bad_values_are_usage_errors() {
        let args = crate::cli::DeployArgs {
            project: "p".into(),
            context: None,
            slurm: false,
            time: None,
            partition: None,
            no_wait: false,
            image: None,
            gpus: None,
            cpus: None,
            memory: Some("lots".into()),
            shm_size: None,
            env: vec![],
            volume: vec![],
            persist: vec![],
            publish: vec![],
            recreate: false,
            no_build: false,
            settle: None,
            new: false,
            dry_run: false,
            json: false,
            command: vec![],
        };
        let err = command_line_layer(&args).unwrap_err();
        assert_eq!(err.code(), 2);
        assert!(err.message.starts_with("--memory: invalid size"));
    }

    #[test]
    fn absolutize_handles_dots_and_slashes() {
        assert_eq!(absolutize("./a/../b/", Path::new("/base")), "/base/b");
        assert_eq!(absolutize("/abs//x/.", Path::new("/base")), "/abs/x");
    }
}
