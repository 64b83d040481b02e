//! A container create request in docker's own terms: the fields of the Engine API's
//! `Config` and `HostConfig` that berth sets, as plain data. `berth run`/`create` parse
//! docker's flags into it ([`crate::dockerflags`]), deploy's plan converts into it, and
//! [`crate::engine`] turns it into the one create call. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    /// `--name`; the engine picks one when `None`.
    pub name: Option<String>,
    pub image: String,
    /// Empty: the image's own command.
    pub cmd: Vec<String>,
    /// `--entrypoint`: `Some(vec![""])` resets the image's entrypoint, as docker does for
    /// `--entrypoint ""`.
    pub entrypoint: Option<Vec<String>>,
    /// `K=V`, in the order docker sends them: env files first, then `-e`.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// `80/tcp`, from `--expose` and `-p`.
    pub exposed_ports: BTreeSet<String>,
    /// Targets of anonymous volumes (`-v /path`).
    pub volumes: BTreeSet<String>,
    pub host: HostSpec,
    /// docker's less common flags, passed on as docker passes them.
    pub extra: Extra,
}

/// The docker flags berth passes on without reading them itself (cgroups, block IO,
/// logging, health checks, namespaces, network endpoint settings), each kept as the
/// Engine API field it sets. [`EXTRA_INTS`] and its siblings name the flag of each
/// field, for the parser and for the `--dry-run` line alike.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extra {
    pub domainname: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    /// HostConfig integer fields: `CpuShares`, `BlkioWeight`, ...
    pub ints: BTreeMap<&'static str, i64>,
    /// HostConfig string fields: `CgroupParent`, `UTSMode`, ...
    pub strings: BTreeMap<&'static str, String>,
    /// HostConfig list fields: `DnsSearch`, `VolumesFrom`, ...
    pub lists: BTreeMap<&'static str, Vec<String>>,
    /// Block IO limits per device: field → `(device, weight or rate)`.
    pub throttles: BTreeMap<&'static str, Vec<(String, i64)>>,
    /// HostConfig booleans that are on: `OomKillDisable`, `PublishAllPorts`.
    pub switches: BTreeSet<&'static str>,
    pub log_driver: Option<String>,
    pub log_opts: BTreeMap<String, String>,
    pub storage_opts: BTreeMap<String, String>,
    /// Settings of the container's endpoint on its (user-defined) network.
    pub endpoint: Endpoint,
    /// `--platform`: asked of the create (and the pull).
    pub platform: Option<String>,
}

/// `--health-*`; `test` is `["NONE"]` for `--no-healthcheck`, empty when only times
/// were given (the image's test stays). Times in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub aliases: Vec<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub link_local_ips: Vec<String>,
    pub mac_address: Option<String>,
}

impl Endpoint {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `(flag, HostConfig field)` of the integer flags.
pub const EXTRA_INTS: &[(&str, &str)] = &[
    ("--blkio-weight", "BlkioWeight"),
    ("--cpu-shares", "CpuShares"),
    ("--cpu-period", "CpuPeriod"),
    ("--cpu-quota", "CpuQuota"),
    ("--cpu-rt-period", "CpuRealtimePeriod"),
    ("--cpu-rt-runtime", "CpuRealtimeRuntime"),
    ("--cpu-count", "CpuCount"),
    ("--cpu-percent", "CpuPercent"),
    ("--io-maxiops", "IOMaximumIOps"),
    ("--io-maxbandwidth", "IOMaximumBandwidth"),
    ("--memory-swappiness", "MemorySwappiness"),
];

/// `(flag, HostConfig field)` of the string flags.
pub const EXTRA_STRINGS: &[(&str, &str)] = &[
    ("--cgroup-parent", "CgroupParent"),
    ("--cgroupns", "CgroupnsMode"),
    ("--cpuset-mems", "CpusetMems"),
    ("--isolation", "Isolation"),
    ("--runtime", "Runtime"),
    ("--userns", "UsernsMode"),
    ("--uts", "UTSMode"),
    ("--volume-driver", "VolumeDriver"),
];

/// `(flag, HostConfig field)` of the list flags.
pub const EXTRA_LISTS: &[(&str, &str)] = &[
    ("--dns-option", "DnsOptions"),
    ("--dns-search", "DnsSearch"),
    ("--device-cgroup-rule", "DeviceCgroupRules"),
    ("--link", "Links"),
    ("--volumes-from", "VolumesFrom"),
];

/// `(flag, HostConfig field, what the number is)` of the per-device block IO flags.
pub const EXTRA_THROTTLES: &[(&str, &str, &str)] = &[
    ("--blkio-weight-device", "BlkioWeightDevice", "Weight"),
    ("--device-read-bps", "BlkioDeviceReadBps", "Rate"),
    ("--device-write-bps", "BlkioDeviceWriteBps", "Rate"),
    ("--device-read-iops", "BlkioDeviceReadIOps", "Rate"),
    ("--device-write-iops", "BlkioDeviceWriteIOps", "Rate"),
];

/// `(flag, HostConfig field)` of the switches.
pub const EXTRA_SWITCHES: &[(&str, &str)] = &[
    ("--oom-kill-disable", "OomKillDisable"),
    ("--publish-all", "PublishAllPorts"),
];

impl Extra {
    /// Adds the Config fields to `config` and the HostConfig fields to `host`; the
    /// endpoint settings go in `NetworkingConfig` under `network`.
    fn apply(
        &self,
        config: &mut serde_json::Map<String, serde_json::Value>,
        host: &mut serde_json::Map<String, serde_json::Value>,
        network: Option<&str>,
    ) {
        use serde_json::{json, Value};
        if let Some(domain) = &self.domainname {
            config.insert("Domainname".into(), json!(domain));
        }
        if let Some(health) = &self.healthcheck {
            let mut check = serde_json::Map::new();
            if !health.test.is_empty() {
                check.insert("Test".into(), json!(health.test));
            }
            for (key, value) in [
                ("Interval", health.interval),
                ("Timeout", health.timeout),
                ("StartPeriod", health.start_period),
                ("Retries", health.retries),
            ] {
                if value != 0 {
                    check.insert(key.into(), json!(value));
                }
            }
            config.insert("Healthcheck".into(), Value::Object(check));
        }
        for (key, value) in &self.ints {
            host.insert((*key).into(), json!(value));
        }
        for (key, value) in &self.strings {
            host.insert((*key).into(), json!(value));
        }
        // The docker CLI sends these lists even when empty, and the engine keeps them.
        for key in ["DnsOptions", "DnsSearch"] {
            host.insert(key.into(), json!([]));
        }
        for (key, list) in &self.lists {
            host.insert((*key).into(), json!(list));
        }
        for (_, field, number) in EXTRA_THROTTLES {
            let list: Vec<Value> = self
                .throttles
                .get(field)
                .into_iter()
                .flatten()
                .map(|(path, n)| json!({"Path": path, *number: n}))
                .collect();
            host.insert((*field).into(), Value::Array(list));
        }
        for key in &self.switches {
            host.insert((*key).into(), json!(true));
        }
        if self.log_driver.is_some() || !self.log_opts.is_empty() {
            host.insert(
                "LogConfig".into(),
                json!({"Type": self.log_driver.as_deref().unwrap_or(""), "Config": self.log_opts}),
            );
        }
        if !self.storage_opts.is_empty() {
            host.insert("StorageOpt".into(), json!(self.storage_opts));
        }
        if let (false, Some(network)) = (self.endpoint.is_empty(), network) {
            let e = &self.endpoint;
            let mut settings = serde_json::Map::new();
            if !e.aliases.is_empty() {
                settings.insert("Aliases".into(), json!(e.aliases));
            }
            if e.ipv4.is_some() || e.ipv6.is_some() || !e.link_local_ips.is_empty() {
                settings.insert(
                    "IPAMConfig".into(),
                    json!({
                        "IPv4Address": e.ipv4.as_deref().unwrap_or(""),
                        "IPv6Address": e.ipv6.as_deref().unwrap_or(""),
                        "LinkLocalIPs": e.link_local_ips,
                    }),
                );
            }
            if let Some(mac) = &e.mac_address {
                settings.insert("MacAddress".into(), json!(mac));
            }
            config.insert(
                "NetworkingConfig".into(),
                json!({"EndpointsConfig": {network: Value::Object(settings)}}),
            );
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostSpec {
    /// `-v` specs other than anonymous volumes, verbatim (`src:dst[:opts]`).
    pub binds: Vec<String>,
    /// `--mount`, and berth's own mounts.
    pub mounts: Vec<MountSpec>,
    /// `--tmpfs PATH[:OPTS]`: path → options.
    pub tmpfs: BTreeMap<String, String>,
    pub devices: Vec<DeviceSpec>,
    pub group_add: Vec<String>,
    /// `80/tcp` → bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub dns: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub network_mode: Option<String>,
    pub gpus: Option<GpuRequest>,
    pub shm_size: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub ipc_mode: Option<String>,
    pub pid_mode: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    pub pids_limit: Option<i64>,
    pub oom_score_adj: Option<i64>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub restart: Option<RestartPolicy>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--init`.
    pub init: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

/// One `--mount`, with the options docker accepts for its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Host path (bind) or volume name; `None` for tmpfs and anonymous volumes.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// `consistency=` (accepted and passed on; meaningful only on macOS).
    pub consistency: Option<String>,
    pub bind_propagation: Option<String>,
    pub bind_nonrecursive: bool,
    pub volume_nocopy: bool,
    pub volume_labels: BTreeMap<String, String>,
    pub volume_driver: Option<String>,
    pub volume_options: BTreeMap<String, String>,
    pub tmpfs_size: Option<i64>,
    pub tmpfs_mode: Option<u32>,
}

impl MountSpec {
    /// A plain bind mount, as berth adds its own.
    pub fn bind(source: impl Into<String>, target: impl Into<String>, read_only: bool) -> Self {
        Self {
            kind: MountKind::Bind,
            source: Some(source.into()),
            target: target.into(),
            read_only,
            consistency: None,
            bind_propagation: None,
            bind_nonrecursive: false,
            volume_nocopy: false,
            volume_labels: BTreeMap::new(),
            volume_driver: None,
            volume_options: BTreeMap::new(),
            tmpfs_size: None,
            tmpfs_mode: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSpec {
    pub path_on_host: String,
    pub path_in_container: String,
    /// `rwm` unless given.
    pub permissions: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortBinding {
    /// Empty: all interfaces.
    pub host_ip: String,
    /// Empty: a port the engine picks.
    pub host_port: String,
}

/// `--gpus`: one DeviceRequest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuRequest {
    pub driver: String,
    /// `-1` for all; `None` when devices are named.
    pub count: Option<i64>,
    pub device_ids: Vec<String>,
    pub capabilities: Vec<Vec<String>>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartPolicy {
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    pub maximum_retry_count: i64,
}

impl ContainerSpec {
    /// The create request's body as the Engine API documents it (`Config` with its
    /// `HostConfig`): fields berth does not set are left out, so the engine applies its
    /// defaults exactly as it does for the docker CLI.
    pub fn to_api_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};

        let mut config = Map::new();
        let put = |map: &mut Map<String, Value>, key: &str, value: Value| {
            map.insert(key.to_string(), value);
        };
        put(&mut config, "Image", json!(self.image));
        if !self.cmd.is_empty() {
            put(&mut config, "Cmd", json!(self.cmd));
        }
        if let Some(entrypoint) = &self.entrypoint {
            put(&mut config, "Entrypoint", json!(entrypoint));
        }
        put(&mut config, "Env", json!(self.env));
        put(&mut config, "Labels", json!(self.labels));
        for (key, value) in [
            ("User", &self.user),
            ("WorkingDir", &self.workdir),
            ("Hostname", &self.hostname),
            ("StopSignal", &self.stop_signal),
        ] {
            if let Some(value) = value {
                put(&mut config, key, json!(value));
            }
        }
        if let Some(timeout) = self.stop_timeout {
            put(&mut config, "StopTimeout", json!(timeout));
        }
        for (key, value) in [
            ("Tty", self.tty),
            ("OpenStdin", self.open_stdin),
            ("StdinOnce", self.stdin_once),
            ("AttachStdin", self.attach_stdin),
            ("AttachStdout", self.attach_stdout),
            ("AttachStderr", self.attach_stderr),
        ] {
            put(&mut config, key, json!(value));
        }
        if !self.exposed_ports.is_empty() {
            let ports: Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            put(&mut config, "ExposedPorts", Value::Object(ports));
        }
        if !self.volumes.is_empty() {
            let volumes: Map<String, Value> = self
                .volumes
                .iter()
                .map(|v| (v.clone(), json!({})))
                .collect();
            put(&mut config, "Volumes", Value::Object(volumes));
        }
        let mut host = self.host.to_api_json();
        if let Value::Object(host) = &mut host {
            self.extra
                .apply(&mut config, host, self.host.network_mode.as_deref());
        }
        config.insert("HostConfig".into(), host);
        Value::Object(config)
    }
}

impl HostSpec {
    fn to_api_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};

        let mut host = Map::new();
        let mut put = |key: &str, value: Value| {
            host.insert(key.to_string(), value);
        };
        if !self.binds.is_empty() {
            put("Binds", json!(self.binds));
        }
        put(
            "Mounts",
            Value::Array(self.mounts.iter().map(MountSpec::to_api_json).collect()),
        );
        if !self.tmpfs.is_empty() {
            put("Tmpfs", json!(self.tmpfs));
        }
        // The docker CLI sends these four even when empty, and the engine keeps what it
        // is sent: empty here too, so that `docker inspect` shows the same.
        {
            let devices: Vec<Value> = self
                .devices
                .iter()
                .map(|d| {
                    json!({
                        "PathOnHost": d.path_on_host,
                        "PathInContainer": d.path_in_container,
                        "CgroupPermissions": d.permissions,
                    })
                })
                .collect();
            put("Devices", Value::Array(devices));
        }
        put("Dns", json!(self.dns));
        let lists = [
            ("GroupAdd", &self.group_add),
            ("ExtraHosts", &self.extra_hosts),
            ("CapAdd", &self.cap_add),
            ("CapDrop", &self.cap_drop),
            ("SecurityOpt", &self.security_opt),
        ];
        for (key, list) in lists {
            if !list.is_empty() {
                put(key, json!(list));
            }
        }
        {
            let bindings: Map<String, Value> = self
                .port_bindings
                .iter()
                .map(|(port, list)| {
                    let list: Vec<Value> = list
                        .iter()
                        .map(|b| json!({"HostIp": b.host_ip, "HostPort": b.host_port}))
                        .collect();
                    (port.clone(), Value::Array(list))
                })
                .collect();
            put("PortBindings", Value::Object(bindings));
        }
        for (key, value) in [
            ("NetworkMode", &self.network_mode),
            ("CpusetCpus", &self.cpuset_cpus),
            ("IpcMode", &self.ipc_mode),
            ("PidMode", &self.pid_mode),
        ] {
            if let Some(value) = value {
                put(key, json!(value));
            }
        }
        for (key, value) in [
            ("ShmSize", self.shm_size),
            ("Memory", self.memory),
            ("MemorySwap", self.memory_swap),
            ("MemoryReservation", self.memory_reservation),
            ("NanoCpus", self.nano_cpus),
            ("PidsLimit", self.pids_limit),
            ("OomScoreAdj", self.oom_score_adj),
        ] {
            if let Some(value) = value {
                put(key, json!(value));
            }
        }
        if let Some(gpus) = &self.gpus {
            put(
                "DeviceRequests",
                json!([{
                    "Driver": gpus.driver,
                    "Count": gpus.count.unwrap_or(0),
                    "DeviceIDs": (!gpus.device_ids.is_empty()).then_some(&gpus.device_ids),
                    "Capabilities": gpus.capabilities,
                    "Options": gpus.options,
                }]),
            );
        }
        {
            let ulimits: Vec<Value> = self
                .ulimits
                .iter()
                .map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard}))
                .collect();
            put("Ulimits", Value::Array(ulimits));
        }
        if !self.sysctls.is_empty() {
            put("Sysctls", json!(self.sysctls));
        }
        if let Some(restart) = &self.restart {
            put(
                "RestartPolicy",
                json!({"Name": restart.name, "MaximumRetryCount": restart.maximum_retry_count}),
            );
        }
        put("Privileged", json!(self.privileged));
        put("ReadonlyRootfs", json!(self.readonly_rootfs));
        put("AutoRemove", json!(self.auto_remove));
        if let Some(init) = self.init {
            put("Init", json!(init));
        }
        Value::Object(host)
    }
}

impl MountSpec {
    fn to_api_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};

        let mut mount = Map::new();
        mount.insert("Type".into(), json!(self.kind));
        mount.insert("Target".into(), json!(self.target));
        if let Some(source) = &self.source {
            mount.insert("Source".into(), json!(source));
        }
        mount.insert("ReadOnly".into(), json!(self.read_only));
        if let Some(consistency) = &self.consistency {
            mount.insert("Consistency".into(), json!(consistency));
        }
        match self.kind {
            MountKind::Bind => {
                if self.bind_propagation.is_some() || self.bind_nonrecursive {
                    let mut options = Map::new();
                    if let Some(propagation) = &self.bind_propagation {
                        options.insert("Propagation".into(), json!(propagation));
                    }
                    if self.bind_nonrecursive {
                        options.insert("NonRecursive".into(), json!(true));
                    }
                    mount.insert("BindOptions".into(), Value::Object(options));
                }
            }
            MountKind::Volume => {
                let has_driver = self.volume_driver.is_some() || !self.volume_options.is_empty();
                if self.volume_nocopy || !self.volume_labels.is_empty() || has_driver {
                    let mut options = Map::new();
                    if self.volume_nocopy {
                        options.insert("NoCopy".into(), json!(true));
                    }
                    if !self.volume_labels.is_empty() {
                        options.insert("Labels".into(), json!(self.volume_labels));
                    }
                    // The CLI sends a driver config, empty or not, with any volume option.
                    let mut driver = Map::new();
                    if let Some(name) = &self.volume_driver {
                        driver.insert("Name".into(), json!(name));
                    }
                    if !self.volume_options.is_empty() {
                        driver.insert("Options".into(), json!(self.volume_options));
                    }
                    options.insert("DriverConfig".into(), Value::Object(driver));
                    mount.insert("VolumeOptions".into(), Value::Object(options));
                }
            }
            MountKind::Tmpfs => {
                if self.tmpfs_size.is_some() || self.tmpfs_mode.is_some() {
                    let mut options = Map::new();
                    if let Some(size) = self.tmpfs_size {
                        options.insert("SizeBytes".into(), json!(size));
                    }
                    if let Some(mode) = self.tmpfs_mode {
                        options.insert("Mode".into(), json!(mode));
                    }
                    mount.insert("TmpfsOptions".into(), Value::Object(options));
                }
            }
        }
        Value::Object(mount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_body_carries_what_the_spec_sets_and_nothing_else() {
        let mut spec = ContainerSpec {
            image: "img".into(),
            cmd: vec!["sh".into()],
            env: vec!["A=1".into()],
            attach_stdout: true,
            attach_stderr: true,
            exposed_ports: BTreeSet::from(["80/tcp".to_string()]),
            ..Default::default()
        };
        spec.host
            .mounts
            .push(MountSpec::bind("/h", "/workspace", false));
        spec.host.memory = Some(512 << 20);
        spec.host.restart = Some(RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: 3,
        });
        let body = spec.to_api_json();
        assert_eq!(body["Image"], "img");
        assert_eq!(body["Cmd"], serde_json::json!(["sh"]));
        assert!(body.get("Entrypoint").is_none());
        assert!(body.get("User").is_none());
        assert_eq!(body["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        let host = &body["HostConfig"];
        assert_eq!(host["Memory"], 512 << 20);
        assert!(host.get("ShmSize").is_none());
        assert_eq!(host["Mounts"][0]["Type"], "bind");
        assert_eq!(host["Mounts"][0]["Source"], "/h");
        assert_eq!(host["RestartPolicy"]["Name"], "on-failure");
        assert_eq!(host["RestartPolicy"]["MaximumRetryCount"], 3);
    }
}
