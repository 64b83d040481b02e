//! [`ContainerSpec`] → docker run flags: the arguments that read back, through the same
//! parsers, as the same spec.

use super::from_flags::is_long_network_syntax;
use super::go;
use crate::spec::{
    ContainerSpec, DeviceSpec, Extra, GpuRequest, MountKind, MountSpec, PortBinding, EXTRA_INTS,
    EXTRA_LISTS, EXTRA_STRINGS, EXTRA_SWITCHES, EXTRA_THROTTLES,
};
use crate::units::format_size;

/// The `docker run` arguments (without `docker run`) that create `spec`: flags in a fixed
/// order, then the image and its command. Every spec [`spec_from_args`] makes reads back
/// through [`crate::dockerflags::parse_run_args`] and [`spec_from_args`] as itself.
/// Environment goes as `-e K=V`; fields that only their default can set (the `default`
/// network, restart policy `no`) are left out.
///
/// [`spec_from_args`]: super::spec_from_args
pub fn spec_to_args(spec: &ContainerSpec) -> Vec<String> {
    let host = &spec.host;
    let mut line = Line::default();
    line.value("--name", spec.name.as_deref());
    line.switch("--detach", !spec.attach_stdout && !spec.attach_stderr);
    line.switch("--interactive", spec.open_stdin);
    line.switch("--tty", spec.tty);
    line.switch("--rm", host.auto_remove);
    line.switch("--init", host.init == Some(true));
    line.switch("--read-only", host.readonly_rootfs);
    line.switch("--privileged", host.privileged);
    line.value("--user", spec.user.as_deref());
    line.value("--workdir", spec.workdir.as_deref());
    line.value("--hostname", spec.hostname.as_deref());
    if let Some(entrypoint) = &spec.entrypoint {
        // docker's flag takes one word; a longer entrypoint has no flag form.
        line.flag(
            "--entrypoint",
            entrypoint.first().map_or("", String::as_str),
        );
    }
    line.each("--env", &spec.env);
    for (key, value) in &spec.labels {
        line.flag("--label", format!("{key}={value}"));
    }
    if let Some(restart) = &host.restart {
        match (restart.name.as_str(), restart.maximum_retry_count) {
            ("no", 0) => {}
            (name, 0) => line.flag("--restart", name),
            (name, count) => line.flag("--restart", format!("{name}:{count}")),
        }
    }
    line.value("--stop-signal", spec.stop_signal.as_deref());
    line.value("--stop-timeout", spec.stop_timeout);
    line.each("--volume", &host.binds);
    line.each("--volume", &spec.volumes);
    for mount in &host.mounts {
        line.flag("--mount", mount_arg(mount));
    }
    for (path, options) in &host.tmpfs {
        match options.as_str() {
            "" => line.flag("--tmpfs", path),
            _ => line.flag("--tmpfs", format!("{path}:{options}")),
        }
    }
    for device in &host.devices {
        line.flag("--device", device_arg(device));
    }
    line.each("--group-add", &host.group_add);
    for (port, bindings) in &host.port_bindings {
        for binding in bindings {
            line.flag("--publish", publish_arg(port, binding));
        }
    }
    for port in spec
        .exposed_ports
        .iter()
        .filter(|p| !host.port_bindings.contains_key(*p))
    {
        line.flag("--expose", port.strip_suffix("/tcp").unwrap_or(port));
    }
    if let Some(mode) = host.network_mode.as_deref().filter(|m| *m != "default") {
        if is_long_network_syntax(mode) {
            line.flag("--network", csv_field(&format!("name={mode}")));
        } else {
            line.flag("--network", mode);
        }
    }
    line.each("--add-host", &host.extra_hosts);
    line.each("--dns", &host.dns);
    if let Some(gpus) = &host.gpus {
        line.flag("--gpus", gpus_arg(gpus));
    }
    line.value("--shm-size", host.shm_size.map(size_arg));
    line.value("--memory", host.memory.map(size_arg));
    line.value("--memory-swap", host.memory_swap.map(size_arg));
    line.value(
        "--memory-reservation",
        host.memory_reservation.map(size_arg),
    );
    line.value("--cpus", host.nano_cpus.map(nano_cpus_arg));
    line.value("--cpuset-cpus", host.cpuset_cpus.as_deref());
    line.value("--ipc", host.ipc_mode.as_deref());
    line.value("--pid", host.pid_mode.as_deref());
    line.each("--cap-add", &host.cap_add);
    line.each("--cap-drop", &host.cap_drop);
    line.each("--security-opt", &host.security_opt);
    for ulimit in &host.ulimits {
        let limits = if ulimit.soft == ulimit.hard {
            ulimit.soft.to_string()
        } else {
            format!("{}:{}", ulimit.soft, ulimit.hard)
        };
        line.flag("--ulimit", format!("{}={limits}", ulimit.name));
    }
    for (key, value) in &host.sysctls {
        line.flag("--sysctl", format!("{key}={value}"));
    }
    line.value("--pids-limit", host.pids_limit);
    line.value("--oom-score-adj", host.oom_score_adj);
    extra_args(&spec.extra, &mut line);
    line.args.push(spec.image.clone());
    line.args.extend(spec.cmd.iter().cloned());
    line.args
}

/// The less common flags, from the same tables the parser reads them through.
fn extra_args(extra: &Extra, line: &mut Line) {
    line.value("--domainname", extra.domainname.as_deref());
    line.value("--platform", extra.platform.as_deref());
    for (flag, field) in EXTRA_INTS {
        line.value(flag, extra.ints.get(field));
    }
    for (flag, field) in EXTRA_STRINGS {
        line.value(flag, extra.strings.get(field));
    }
    for (flag, field) in EXTRA_LISTS {
        for value in extra.lists.get(field).into_iter().flatten() {
            line.flag(flag, value.as_str());
        }
    }
    for (flag, field, _) in EXTRA_THROTTLES {
        for (path, n) in extra.throttles.get(field).into_iter().flatten() {
            line.flag(flag, format!("{path}:{n}"));
        }
    }
    for (flag, field) in EXTRA_SWITCHES {
        line.switch(flag, extra.switches.contains(field));
    }
    line.value("--log-driver", extra.log_driver.as_deref());
    for (key, value) in &extra.log_opts {
        line.flag("--log-opt", format!("{key}={value}"));
    }
    for (key, value) in &extra.storage_opts {
        line.flag("--storage-opt", format!("{key}={value}"));
    }
    if let Some(health) = &extra.healthcheck {
        match health.test.as_slice() {
            [none] if none == "NONE" => line.switch("--no-healthcheck", true),
            [_, cmd] => line.flag("--health-cmd", cmd.as_str()),
            _ => {}
        }
        for (flag, nanos) in [
            ("--health-interval", health.interval),
            ("--health-timeout", health.timeout),
            ("--health-start-period", health.start_period),
        ] {
            if nanos != 0 {
                line.flag(flag, format!("{nanos}ns"));
            }
        }
        if health.retries != 0 {
            line.flag("--health-retries", health.retries.to_string());
        }
    }
    let endpoint = &extra.endpoint;
    line.each("--network-alias", &endpoint.aliases);
    line.value("--ip", endpoint.ipv4.as_deref());
    line.value("--ip6", endpoint.ipv6.as_deref());
    line.each("--link-local-ip", &endpoint.link_local_ips);
    line.value("--mac-address", endpoint.mac_address.as_deref());
}

#[derive(Default)]
struct Line {
    args: Vec<String>,
}

impl Line {
    fn flag(&mut self, name: &str, value: impl Into<String>) {
        self.args.push(name.to_string());
        self.args.push(value.into());
    }

    fn switch(&mut self, name: &str, on: bool) {
        if on {
            self.args.push(name.to_string());
        }
    }

    fn value(&mut self, name: &str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.flag(name, value.to_string());
        }
    }

    fn each<'a>(&mut self, name: &str, values: impl IntoIterator<Item = &'a String>) {
        for value in values {
            self.flag(name, value.clone());
        }
    }
}

/// A size in the shortest exact spelling `RAMInBytes` reads back.
fn size_arg(bytes: i64) -> String {
    match u64::try_from(bytes) {
        Ok(bytes) if bytes > 0 => format_size(bytes),
        _ => bytes.to_string(),
    }
}

/// NanoCpus as an exact decimal: `1500000000` → `1.5`.
fn nano_cpus_arg(nano: i64) -> String {
    let sign = if nano < 0 { "-" } else { "" };
    let (whole, fraction) = (
        nano.unsigned_abs() / 1_000_000_000,
        nano.unsigned_abs() % 1_000_000_000,
    );
    match fraction {
        0 => format!("{sign}{whole}"),
        _ => {
            let fraction = format!("{fraction:09}");
            format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
        }
    }
}

/// One Go CSV field, quoted when the reader would otherwise split or reject it.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

pub(super) fn csv_join(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

fn mount_arg(mount: &MountSpec) -> String {
    let kind = match mount.kind {
        MountKind::Bind => "bind",
        MountKind::Volume => "volume",
        MountKind::Tmpfs => "tmpfs",
    };
    let mut fields = vec![format!("type={kind}")];
    if let Some(source) = &mount.source {
        fields.push(format!("source={source}"));
    }
    fields.push(format!("target={}", mount.target));
    if mount.read_only {
        fields.push("readonly".into());
    }
    if let Some(consistency) = &mount.consistency {
        fields.push(format!("consistency={consistency}"));
    }
    if let Some(propagation) = &mount.bind_propagation {
        fields.push(format!("bind-propagation={propagation}"));
    }
    if mount.bind_nonrecursive {
        fields.push("bind-nonrecursive".into());
    }
    if mount.volume_nocopy {
        fields.push("volume-nocopy".into());
    }
    if let Some(driver) = &mount.volume_driver {
        fields.push(format!("volume-driver={driver}"));
    }
    for (key, value) in &mount.volume_labels {
        fields.push(format!("volume-label={key}={value}"));
    }
    for (key, value) in &mount.volume_options {
        fields.push(format!("volume-opt={key}={value}"));
    }
    if let Some(size) = mount.tmpfs_size {
        fields.push(format!("tmpfs-size={}", size_arg(size)));
    }
    if let Some(mode) = mount.tmpfs_mode {
        fields.push(format!("tmpfs-mode={mode:o}"));
    }
    csv_join(&fields)
}

/// The shortest `--device` form that reads back the same (docker cleans some paths).
fn device_arg(device: &DeviceSpec) -> String {
    let host = &device.path_on_host;
    let container = &device.path_in_container;
    let default_perms = device.permissions == "rwm";
    if host == container && default_perms && go::path_clean(host) == *host {
        host.clone()
    } else if default_perms && go::path_clean(container) == *container {
        format!("{host}:{container}")
    } else {
        format!("{host}:{container}:{}", device.permissions)
    }
}

fn publish_arg(port: &str, binding: &PortBinding) -> String {
    let port = port.strip_suffix("/tcp").unwrap_or(port);
    let ip = &binding.host_ip;
    match (ip.is_empty(), binding.host_port.is_empty()) {
        (true, true) => port.to_string(),
        (true, false) => format!("{}:{port}", binding.host_port),
        (false, _) if ip.contains(':') => format!("[{ip}]:{}:{port}", binding.host_port),
        (false, _) => format!("{ip}:{}:{port}", binding.host_port),
    }
}

fn gpus_arg(gpus: &GpuRequest) -> String {
    let default_caps = gpus.capabilities == [vec!["gpu".to_string()]];
    let plain = gpus.driver.is_empty()
        && gpus.device_ids.is_empty()
        && default_caps
        && gpus.options.is_empty();
    match gpus.count {
        Some(-1) if plain => return "all".into(),
        Some(count) if plain => return count.to_string(),
        _ => {}
    }
    let mut fields = Vec::new();
    if !gpus.driver.is_empty() {
        fields.push(format!("driver={}", gpus.driver));
    }
    match gpus.count {
        Some(-1) => fields.push("count=all".into()),
        Some(count) => fields.push(format!("count={count}")),
        None => {}
    }
    if !gpus.device_ids.is_empty() {
        fields.push(format!("device={}", gpus.device_ids.join(",")));
    }
    if let Some(caps) = gpus.capabilities.first().filter(|_| !default_caps) {
        // docker appends `gpu` to what is given; give it back without.
        let given = caps.strip_suffix(&["gpu".to_string()]).unwrap_or(caps);
        fields.push(format!("capabilities={}", given.join(",")));
    }
    if !gpus.options.is_empty() {
        let options: Vec<String> = gpus
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        fields.push(format!("options={}", csv_join(&options)));
    }
    csv_join(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerargs::shell_line;
    use crate::dockerargs::test_support::{parse_argv, spec};

    #[test]
    fn rendering_quotes_csv_and_omits_defaults() {
        assert_eq!(spec_to_args(&spec("img")), ["img"]);
        let args = spec_to_args(&spec(
            r#"--mount 'type=bind,"src=/a,b",dst=/x' --gpus '"device=0,1"' -p 127.0.0.1::80 -p [::1]:8080:80/udp --restart on-failure:3 img sh"#,
        ));
        assert_eq!(
            args,
            [
                "--restart",
                "on-failure:3",
                "--mount",
                r#"type=bind,"source=/a,b",target=/x"#,
                "--publish",
                "127.0.0.1::80",
                "--publish",
                "[::1]:8080:80/udp",
                "--gpus",
                r#""device=0,1""#,
                "img",
                "sh"
            ]
        );
        assert_eq!(
            shell_line(&args[2..6]),
            r#"--mount 'type=bind,"source=/a,b",target=/x' --publish 127.0.0.1::80"#
        );
        let gpus = spec(
            r#"--gpus 'driver=nvidia,"capabilities=compute,utility","options=a=1,""b=x,y"""' img"#,
        );
        assert_eq!(
            gpus_arg(gpus.host.gpus.as_ref().unwrap()),
            r#"driver=nvidia,count=1,"capabilities=compute,utility","options=a=1,""b=x,y""""#
        );
        assert_eq!(nano_cpus_arg(1_500_000_000), "1.5");
        assert_eq!(nano_cpus_arg(1_000_000), "0.001");
        assert_eq!(nano_cpus_arg(2_000_000_000), "2");
    }

    #[test]
    fn rendered_lines_read_back_as_the_same_spec() {
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("app.env");
        std::fs::write(
            &env_file,
            "# app\nA=1\nB=\"two words\"\nHOME_DIR\nUNSET_X\n",
        )
        .unwrap();
        let profile = dir.path().join("seccomp.json");
        std::fs::write(&profile, "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\"\n}\n").unwrap();
        let (env_file, profile) = (env_file.display(), profile.display());
        let lines = [
            "img".to_string(),
            "-it --rm --name web-1 img bash -lc 'echo $HOME'".into(),
            "-d img".into(),
            "-di img".into(),
            "-t -h box -w /work -u 1000:1000 img".into(),
            "--entrypoint '' img".into(),
            "--entrypoint '/bin/sh -c' img x".into(),
            "-e A=1 -e HOME_DIR -e UNSET_X -e EMPTY -e ' B=2' -e 'C=x y' img".into(),
            format!("--env-file {env_file} -e A=2 img"),
            "-l a=1 -l b -l ' c=x' -l d=e=f img".into(),
            "--restart always img".into(),
            "--restart on-failure:5 img".into(),
            "--restart '' img".into(),
            "--restart :3 img".into(),
            "--stop-signal SIGINT --stop-timeout 0 img".into(),
            "--stop-timeout -1 img".into(),
            "-v /data -v /data/ -v vol:/y:ro -v /tmp:/x:rw,z -v /c:/d: img".into(),
            "--mount type=bind,src=/tmp,dst=/x,readonly,bind-propagation=rslave,bind-nonrecursive,consistency=cached img".into(),
            r#"--mount 'type=volume,"src=v1",dst=/a/b/,volume-nocopy,volume-label=a=1,volume-label=b,volume-driver=local,"volume-opt=o=x,y"' img"#.into(),
            r#"--mount 'type=bind,"src=/tmp/a,b","dst=/q""x"' img"#.into(),
            "--mount type=tmpfs,dst=/t,tmpfs-size=1.5k,tmpfs-mode=1777 --mount type=tmpfs,dst=/u,tmpfs-size=0,tmpfs-mode=0 img".into(),
            "--mount dst=/anon --mount type=volume,src=_x,dst=/n,volume-driver=nfs img".into(),
            "--tmpfs /run --tmpfs /x:rw,size=64m --tmpfs /z: img".into(),
            "--device /dev/null --device /dev/null/ --device /dev/null:/dev/n2 --device /dev/null:rw --device /dev//null:/dev/x/ --device /dev//null:/dev/y/:mw img".into(),
            "--group-add 100 --group-add '' img".into(),
            "-p 80 -p 80 -p 8080:80 -p 127.0.0.1::81/udp -p [::1]:82:82 -p 0:83 img".into(),
            "-p 8000-8002:9000-9002 -p 8100-8110:84 -p 85-86/sctp -p published=8443,target=443 img".into(),
            "--expose 80 --expose 7000-7002/udp --expose 90/TCP --expose 91/icmp -p 80 img".into(),
            "--network host img".into(),
            "--network name=MyNet img".into(),
            "--network a,b img".into(),
            "--network container:db --add-host a:1.2.3.4 --add-host 'c: 1.2.3.4' --add-host gw:host-gateway img".into(),
            "--dns 8.8.8.8 --dns 0:0::1 --dns ::ffff:1.2.3.4 img".into(),
            "--gpus all img".into(),
            "--gpus 2 img".into(),
            r#"--gpus '"device=0,1"' img"#.into(),
            "--gpus device=0,1 img".into(),
            r#"--gpus '"device=",count=0' img"#.into(),
            r#"--gpus 'driver=nvidia,count=all,"capabilities=compute,utility","options=a=1,""b=x,y"",c"' img"#.into(),
            "--gpus capabilities=gpu img".into(),
            "--shm-size 1g -m 1536m --memory-swap -1 --memory-reservation 512m img".into(),
            "-m 1.5g --memory-swap 3g --shm-size 1000 img".into(),
            "--cpus 1.5 --cpuset-cpus 0-3,5 img".into(),
            "--cpus 1/4000 img".into(),
            "--ipc host --pid host img".into(),
            "--ipc container:abc --pid container:abc img".into(),
            "--cap-add net_admin --cap-add CAP_SYS_ADMIN --cap-drop all img".into(),
            format!("--security-opt seccomp={profile} --security-opt no-new-privileges --security-opt label:disable --security-opt seccomp:unconfined img"),
            "--ulimit nofile=1024:2048 --ulimit nproc=10 --ulimit nofile=5 --ulimit core=5:-1 img".into(),
            "--sysctl net.ipv4.ip_forward=1 --sysctl kernel.sem= --sysctl fs.mqueue.x=1=2 img".into(),
            "--pids-limit -1 --oom-score-adj -500 img".into(),
            "--pids-limit 0x10 --oom-score-adj 010 img".into(),
            "--init --read-only --privileged img".into(),
            "-itd --rm --init --name all-1 -e A=1 -l k=v -v /d -p 80 --gpus all --shm-size 8g -m 32g --cpus 8 --ulimit memlock=-1 img python -V".into(),
        ];
        assert!(lines.len() >= 40);
        for line in &lines {
            let first = spec(line);
            let rendered = spec_to_args(&first);
            let second = parse_argv(&rendered)
                .unwrap_or_else(|err| panic!("{line}\n  rendered {rendered:?}\n  {}", err.0));
            assert_eq!(second, first, "{line}\n  rendered {rendered:?}");
            assert_eq!(spec_to_args(&second), rendered, "{line}: not stable");
        }
    }
}
