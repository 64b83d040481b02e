//! docker run/create flags → [`ContainerSpec`]: the create request the docker CLI 20.10
//! sends, with the engine's checks that need nothing but the values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::go;
use crate::cli::RunArgs;
use crate::dockerflags::FlagError;
use crate::spec::{
    ContainerSpec, DeviceSpec, GpuRequest, HostSpec, MountKind, MountSpec, PortBinding,
    RestartPolicy, Ulimit,
};

type LookupEnv<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The create request the docker CLI 20.10 sends for these flags (its
/// `cli/command/container/opts.go` `parse()`), so that `docker inspect` shows the same
/// Config and HostConfig either way. Also makes the engine's own checks that need
/// nothing but the values (paths absolute, memory minimums, known capabilities, ...), so
/// a mistake is reported before anything is created.
///
/// `lookup_env` answers `-e NAME` and bare `NAME` lines in env files. The only I/O is
/// reading the files `--env-file` and `--security-opt seccomp=FILE` name.
pub fn spec_from_args(
    args: &RunArgs,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<ContainerSpec, FlagError> {
    let Some((image, cmd)) = args.image_and_command.split_first() else {
        return Err(fail(
            "\"docker run\" requires at least 1 argument: the image",
        ));
    };
    if image.is_empty() {
        return Err(fail("invalid reference format: the image name is empty"));
    }
    // `berth run -- -x`: no reference starts with a dash, and the --dry-run line would
    // read it back as a flag.
    if image.starts_with('-') {
        return Err(fail(format!(
            "invalid reference format: the image name {image:?} starts with '-'"
        )));
    }
    let mut spec = ContainerSpec {
        image: image.clone(),
        cmd: cmd.to_vec(),
        ..ContainerSpec::default()
    };
    container_fields(args, lookup_env, &mut spec)?;
    lifecycle(args, &mut spec.host)?;
    storage(args, &mut spec)?;
    network(args, &mut spec)?;
    resources(args, &mut spec.host)?;
    extra(args, &mut spec)?;
    Ok(spec)
}

fn fail(message: impl Into<String>) -> FlagError {
    FlagError(message.into())
}

/// pflag's wording for a value a flag's own parser rejects.
fn bad_value(flag: &str, value: &str, why: impl fmt::Display) -> FlagError {
    FlagError(format!(
        "invalid argument {value:?} for \"{flag}\" flag: {why}"
    ))
}

/// docker sends an empty string for these, which the engine reads as "not set".
fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

fn container_fields(
    args: &RunArgs,
    lookup_env: LookupEnv,
    spec: &mut ContainerSpec,
) -> Result<(), FlagError> {
    spec.name = non_empty(&args.name);
    if let Some(name) = &spec.name {
        check_container_name(name)?;
    }
    spec.entrypoint = args.entrypoint.as_ref().map(|e| vec![e.clone()]);
    spec.env = environment(args, lookup_env)?;
    // docker reads the label files first; `-l` wins.
    let mut all_labels = Vec::new();
    for path in &args.label_file {
        all_labels.extend(read_label_file(path)?);
    }
    all_labels.extend(args.label.iter().cloned());
    spec.labels = labels(&all_labels)?;
    spec.user = non_empty(&args.user);
    spec.workdir = non_empty(&args.workdir);
    if let Some(dir) = spec.workdir.as_deref().filter(|d| !d.starts_with('/')) {
        return Err(fail(format!(
            "the working directory '{dir}' is invalid, it needs to be an absolute path"
        )));
    }
    spec.hostname = non_empty(&args.hostname);
    spec.tty = args.tty;
    spec.open_stdin = args.interactive;
    // `docker run -d` clears all three attach flags; `docker create` has no -d.
    if !args.detach {
        let attach = attach_streams(&args.attach)?;
        let all = attach.is_empty();
        spec.attach_stdin = args.interactive || attach.contains("stdin");
        spec.attach_stdout = all || attach.contains("stdout");
        spec.attach_stderr = all || attach.contains("stderr");
        spec.stdin_once = args.interactive && spec.attach_stdin;
    } else if !args.attach.is_empty() {
        return Err(fail("Conflicting options: -a and -d"));
    }
    spec.stop_signal = non_empty(&args.stop_signal);
    if let Some(signal) = &spec.stop_signal {
        check_signal(signal)?;
    }
    spec.stop_timeout = args
        .stop_timeout
        .as_deref()
        .map(|raw| int_flag("--stop-timeout", raw))
        .transpose()?;
    Ok(())
}

fn check_container_name(name: &str) -> Result<(), FlagError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let valid = bare.len() >= 2
        && bare.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(fail(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// docker's `signal.ParseSignal`: a non-zero number, or a name with or without `SIG`.
fn check_signal(raw: &str) -> Result<(), FlagError> {
    let known = match go::atoi(raw) {
        Ok(number) => number != 0,
        Err(_) => {
            let upper = raw.to_uppercase();
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            let offset =
                |prefix: &str| name.strip_prefix(prefix).and_then(|n| n.parse::<u8>().ok());
            SIGNALS.contains(&name)
                || offset("RTMIN+").is_some_and(|n| (1..=15).contains(&n))
                || offset("RTMAX-").is_some_and(|n| (1..=14).contains(&n))
        }
    };
    if known {
        Ok(())
    } else {
        Err(fail(format!("Invalid signal: {raw}")))
    }
}

/// pflag's int flags: Go's `strconv.ParseInt(s, 0, 64)`, so `010` is 8 and `0x10` 16.
fn int_flag(flag: &str, raw: &str) -> Result<i64, FlagError> {
    go::parse_int(raw, 0).map_err(|why| bad_value(flag, raw, why))
}

fn environment(args: &RunArgs, lookup_env: LookupEnv) -> Result<Vec<String>, FlagError> {
    let mut env = Vec::new();
    for path in &args.env_file {
        env.extend(read_env_file(path, lookup_env)?);
    }
    // docker 20.10 sends repeated `-e` through a Go map (one entry per name, in random
    // order); keeping them as given matches what the container sees, since the engine
    // lets a later entry win, and keeps env-file entries and `-e` overrides apart.
    for entry in &args.env {
        let name = entry.split('=').next().unwrap_or_default();
        if name.is_empty() {
            return Err(bad_value(
                "-e, --env",
                entry,
                format!("invalid environment variable: {entry}"),
            ));
        }
        if entry.contains('=') {
            env.push(entry.clone());
        } else if let Some(value) = lookup_env(entry) {
            env.push(format!("{entry}={value}"));
        } else {
            // docker sends the bare name (inspect shows it); the container does not get it.
            env.push(entry.clone());
        }
    }
    Ok(env)
}

fn read_env_file(path: &str, lookup_env: LookupEnv) -> Result<Vec<String>, FlagError> {
    let file = std::fs::File::open(path).map_err(|e| fail(go::io_error("open", path, &e)))?;
    parse_env_file(path, std::io::BufReader::new(file), lookup_env)
}

/// docker's longest env-file line (its `bufio.Scanner` token limit, 64 KiB with the
/// newline): a longer one is an error, so a file with no newline at all (a device)
/// cannot be read for ever.
const MAX_ENV_FILE_LINE: usize = 64 * 1024 - 1;

/// docker's env-file rules (`opts/envfile.go`), not compose's: `K=V` taken literally,
/// quotes and trailing spaces included; blank lines and `#` lines skipped; leading
/// whitespace trimmed; a bare `K` takes its value from `lookup_env`, or is left out.
/// Read a line at a time, as docker reads it: the first bad line ends the reading.
/// Errors name the file and the line. A NUL byte in a value is refused here too: docker
/// passes it on, and the container then fails to start.
fn parse_env_file(
    path: &str,
    mut reader: impl std::io::BufRead,
    lookup_env: LookupEnv,
) -> Result<Vec<String>, FlagError> {
    use std::io::{BufRead, Read};
    let invalid = |why: String| fail(format!("invalid env file ({path}): {why}"));
    let mut env = Vec::new();
    let mut bytes = Vec::new();
    for number in 1.. {
        bytes.clear();
        (&mut reader)
            .take(MAX_ENV_FILE_LINE as u64 + 2)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| invalid(go::io_error("read", path, &e)))?;
        if bytes.is_empty() {
            break;
        }
        let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if line.len() > MAX_ENV_FILE_LINE {
            return Err(invalid(format!(
                "line {number} is longer than docker's limit of {MAX_ENV_FILE_LINE} bytes"
            )));
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(text) = std::str::from_utf8(line) else {
            let bytes: Vec<String> = line.iter().map(u8::to_string).collect();
            return Err(invalid(format!(
                "invalid utf8 bytes at line {number}: [{}]",
                bytes.join(" ")
            )));
        };
        let text = match number {
            1 => text.strip_prefix('\u{feff}').unwrap_or(text),
            _ => text,
        };
        let line = text.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (line, None),
        };
        let name = name.trim_start_matches([' ', '\t']);
        if name.contains([' ', '\t']) {
            return Err(invalid(format!(
                "line {number}: variable '{name}' contains whitespaces"
            )));
        }
        if name.is_empty() {
            return Err(invalid(format!(
                "line {number}: no variable name in '{line}'"
            )));
        }
        if line.contains('\0') {
            return Err(invalid(format!(
                "line {number}: variable '{name}' holds a NUL byte, which no environment can"
            )));
        }
        match value {
            Some(value) => env.push(format!("{name}={value}")),
            None => {
                if let Some(value) = lookup_env(name) {
                    env.push(format!("{name}={value}"));
                }
            }
        }
    }
    Ok(env)
}

/// `-a STDIN|STDOUT|STDERR`, as docker spells them in any case.
fn attach_streams(raw: &[String]) -> Result<BTreeSet<String>, FlagError> {
    raw.iter()
        .map(|stream| {
            let lower = stream.to_lowercase();
            match lower.as_str() {
                "stdin" | "stdout" | "stderr" => Ok(lower),
                _ => Err(bad_value(
                    "-a, --attach",
                    stream,
                    "valid streams are STDIN, STDOUT and STDERR",
                )),
            }
        })
        .collect()
}

/// A `--label-file`: `K=V` lines; blank lines and `#` comments are skipped.
fn read_label_file(path: &str) -> Result<Vec<String>, FlagError> {
    let text =
        std::fs::read_to_string(path).map_err(|err| fail(go::io_error("open", path, &err)))?;
    Ok(text
        .lines()
        .map(|line| line.trim_start())
        // A name without `=` is dropped: docker looks it up in an empty environment.
        .filter(|line| !line.starts_with('#') && line.contains('='))
        .map(str::to_string)
        .collect())
}

fn labels(raw: &[String]) -> Result<BTreeMap<String, String>, FlagError> {
    let mut labels = BTreeMap::new();
    for label in raw {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        let trimmed = key.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            return Err(bad_value(
                "-l, --label",
                label,
                format!("invalid label '{label}': empty name"),
            ));
        }
        if trimmed.contains([' ', '\t']) {
            return Err(bad_value(
                "-l, --label",
                label,
                format!("label '{trimmed}' contains whitespaces"),
            ));
        }
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

fn lifecycle(args: &RunArgs, host: &mut HostSpec) -> Result<(), FlagError> {
    // The CLI's flag default is "no", and it sends it.
    let restart = restart_policy(args.restart.as_deref().unwrap_or("no"))?;
    if args.rm && !matches!(restart.name.as_str(), "no" | "") {
        return Err(fail("Conflicting options: --restart and --rm"));
    }
    host.restart = Some(restart);
    host.auto_remove = args.rm;
    host.init = args.init.then_some(true);
    host.privileged = args.privileged;
    host.readonly_rootfs = args.read_only;
    Ok(())
}

fn restart_policy(raw: &str) -> Result<RestartPolicy, FlagError> {
    let mut policy = RestartPolicy {
        name: String::new(),
        maximum_retry_count: 0,
    };
    if raw.is_empty() {
        return Ok(policy);
    }
    let parts: Vec<&str> = raw.split(':').collect();
    if parts.len() > 2 {
        return Err(fail("invalid restart policy format"));
    }
    if let Some(count) = parts.get(1) {
        policy.maximum_retry_count =
            go::atoi(count).map_err(|_| fail("maximum retry count must be an integer"))?;
    }
    policy.name = parts[0].to_string();
    match policy.name.as_str() {
        "always" | "unless-stopped" | "no" if policy.maximum_retry_count != 0 => {
            Err(fail(format!(
                "maximum retry count cannot be used with restart policy '{}'",
                policy.name
            )))
        }
        "on-failure" if policy.maximum_retry_count < 0 => {
            Err(fail("maximum retry count cannot be negative"))
        }
        "always" | "unless-stopped" | "no" | "on-failure" | "" => Ok(policy),
        _ => Err(fail(format!("invalid restart policy '{}'", policy.name))),
    }
}

fn storage(args: &RunArgs, spec: &mut ContainerSpec) -> Result<(), FlagError> {
    for raw in &args.volume {
        if volume_flag(raw)? {
            // docker keeps `-v` specs in a set: a repeated one is sent once.
            if !spec.host.binds.contains(raw) {
                spec.host.binds.push(raw.clone());
            }
        } else {
            spec.volumes.insert(raw.clone());
        }
    }
    for raw in &args.mount {
        spec.host.mounts.push(mount_flag(raw)?);
    }
    for raw in &args.tmpfs {
        let (path, options) = raw.split_once(':').unwrap_or((raw, ""));
        check_mount_target(path)?;
        spec.host
            .tmpfs
            .insert(path.to_string(), options.to_string());
    }
    for raw in &args.device {
        spec.host.devices.push(device_flag(raw)?);
    }
    spec.host.group_add = args.group_add.clone();
    check_duplicate_mount_points(&spec.host)
}

/// The checks docker's `-v` reader and the engine make on `raw`: a config's `volumes`
/// entry (its source made absolute) is refused with docker's words before anything is
/// created, rather than by the engine at the create.
pub fn check_volume(raw: &str) -> Result<(), String> {
    volume_flag(raw).map(|_| ()).map_err(|err| err.0)
}

/// The same for a `ports` entry, with docker's `-p` reader.
pub fn check_port(raw: &str) -> Result<(), String> {
    port_mappings(&standard_port_notation(raw).map_err(|err| err.0)?)
        .map(|_| ())
        .map_err(|err| err.0)
}

/// The engine's check on a container path (`linuxValidateNotRoot`, `linuxValidateAbsolute`).
fn mount_target_error(target: &str) -> Option<String> {
    if !target.starts_with('/') {
        Some(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ))
    } else if go::path_clean(target) == "/" {
        Some("invalid specification: destination can't be '/'".to_string())
    } else {
        None
    }
}

fn check_mount_target(target: &str) -> Result<(), FlagError> {
    mount_target_error(target).map_or(Ok(()), |why| Err(fail(why)))
}

/// `-v`: true for a bind or a named volume (sent verbatim in `Binds`), false for an
/// anonymous volume (sent in `Volumes`). Checked as the engine's Linux parser does.
fn volume_flag(raw: &str) -> Result<bool, FlagError> {
    let invalid_spec = format!("invalid volume specification: '{raw}'");
    if !raw.contains(':') {
        return match mount_target_error(raw) {
            None => Ok(false),
            Some(why) => Err(fail(format!("{invalid_spec}: {why}"))),
        };
    }
    // docker would make an anonymous volume with the whole odd string as its path
    // (`:/x`, `a:/x` read as a Windows drive); none is absolute, so refuse.
    let first = raw.split(':').next().unwrap_or_default();
    let mut first_chars = first.chars();
    let drive = first_chars.next().is_some_and(char::is_alphabetic) && first_chars.next().is_none();
    if raw.len() <= 2 || first.is_empty() || drive {
        return Err(fail(format!(
            "{invalid_spec}: the container path must be absolute"
        )));
    }
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [_, target] if valid_mount_mode(target) => return Err(fail(invalid_spec)),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(fail(invalid_spec)),
    };
    if !valid_mount_mode(mode) {
        return Err(fail(format!("invalid mode: {mode}")));
    }
    let bind = source.starts_with('/');
    let kind = if bind { "bind" } else { "volume" };
    let config = |why: String| {
        fail(format!(
            "{invalid_spec}: invalid mount config for type \"{kind}\": {why}"
        ))
    };
    if target.is_empty() {
        return Err(config("field Target must not be empty".into()));
    }
    if let Some(why) = mount_target_error(target) {
        return Err(config(why));
    }
    let options: Vec<&str> = mode.split(',').collect();
    if bind && options.contains(&"nocopy") {
        return Err(config("field VolumeOptions must not be specified".into()));
    }
    if !bind && options.iter().any(|o| PROPAGATION_MODES.contains(o)) {
        return Err(config("field BindOptions must not be specified".into()));
    }
    if !bind {
        check_volume_name(source)?;
    }
    Ok(true)
}

const PROPAGATION_MODES: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// The engine's `ValidMountMode`: comma-separated, at most one of each kind.
fn valid_mount_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let kinds: [&[&str]; 5] = [
        &["ro", "rw"],
        &["z", "Z"],
        PROPAGATION_MODES,
        &["nocopy"],
        &["consistent", "cached", "delegated"],
    ];
    let mut counts = [0; 5];
    for option in mode.split(',') {
        match kinds.iter().position(|kind| kind.contains(&option)) {
            Some(kind) => counts[kind] += 1,
            None => return false,
        }
    }
    counts.iter().all(|count| *count <= 1)
}

/// The local volume driver's name rule, checked when it creates a volume.
fn check_volume_name(name: &str) -> Result<(), FlagError> {
    if name.len() < 2 {
        return Err(fail(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    let valid = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(fail(format!(
            "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

/// `--mount`: docker's `opts/mount.go` (a CSV record of `key=value` fields), then the
/// engine's checks on the result.
fn mount_flag(raw: &str) -> Result<MountSpec, FlagError> {
    let mount = parse_mount(raw).map_err(|why| bad_value("--mount", raw, why))?;
    let kind = match mount.kind.as_str() {
        "bind" => MountKind::Bind,
        "volume" => MountKind::Volume,
        "tmpfs" => MountKind::Tmpfs,
        _ => return Err(mount_config_error(&mount.kind, "mount type unknown")),
    };
    let config = |why: &str| mount_config_error(&mount.kind, why);
    if let Some(why) = mount_target_error(&mount.target) {
        return Err(config(&why));
    }
    match kind {
        MountKind::Bind => {
            if mount.source.is_empty() {
                return Err(config("field Source must not be empty"));
            }
            if !mount.propagation.is_empty()
                && !PROPAGATION_MODES.contains(&mount.propagation.as_str())
            {
                return Err(config(&format!(
                    "invalid propagation mode: {}",
                    mount.propagation
                )));
            }
            if !mount.source.starts_with('/') {
                return Err(config(&format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    mount.source
                )));
            }
        }
        MountKind::Volume => {
            if mount.source.is_empty() && mount.read_only {
                return Err(config(
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            if !mount.source.is_empty() && matches!(mount.driver.as_str(), "" | "local") {
                check_volume_name(&mount.source)?;
            }
        }
        MountKind::Tmpfs => {
            if !mount.source.is_empty() {
                return Err(config("field Source must not be specified"));
            }
        }
    }
    let non_empty = |value: String| Some(value).filter(|v| !v.is_empty());
    Ok(MountSpec {
        kind,
        source: non_empty(mount.source),
        target: mount.target,
        read_only: mount.read_only,
        consistency: non_empty(mount.consistency),
        bind_propagation: non_empty(mount.propagation),
        bind_nonrecursive: mount.nonrecursive,
        volume_nocopy: mount.nocopy,
        volume_labels: mount.labels,
        volume_driver: non_empty(mount.driver),
        volume_options: mount.options,
        tmpfs_size: mount.tmpfs_size,
        tmpfs_mode: mount.tmpfs_mode,
    })
}

fn mount_config_error(kind: &str, why: &str) -> FlagError {
    fail(format!("invalid mount config for type \"{kind}\": {why}"))
}

/// `--mount` as the CLI reads it, before the engine looks at it.
#[derive(Default)]
struct RawMount {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    consistency: String,
    propagation: String,
    nonrecursive: bool,
    nocopy: bool,
    labels: BTreeMap<String, String>,
    driver: String,
    options: BTreeMap<String, String>,
    tmpfs_size: Option<i64>,
    tmpfs_mode: Option<u32>,
}

fn parse_mount(raw: &str) -> Result<RawMount, String> {
    let mut mount = RawMount {
        kind: "volume".into(),
        ..RawMount::default()
    };
    let (mut bind_options, mut volume_options, mut tmpfs_options) = (false, false, false);
    let set_on_map = |map: &mut BTreeMap<String, String>, value: &str| {
        let (key, value) = value.split_once('=').unwrap_or((value, ""));
        map.insert(key.to_string(), value.to_string());
    };
    for field in go::csv_record(raw)? {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_lowercase(), Some(value)),
            None => (field.to_lowercase(), None),
        };
        let invalid = || format!("invalid value for {key}: {}", value.unwrap_or_default());
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => mount.read_only = true,
                "volume-nocopy" => (volume_options, mount.nocopy) = (true, true),
                "bind-nonrecursive" => (bind_options, mount.nonrecursive) = (true, true),
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        match key.as_str() {
            "type" => mount.kind = value.to_lowercase(),
            "source" | "src" => mount.source = value.to_string(),
            "target" | "dst" | "destination" => mount.target = value.to_string(),
            "readonly" | "ro" => mount.read_only = go::parse_bool(value).ok_or_else(invalid)?,
            "consistency" => mount.consistency = value.to_lowercase(),
            "bind-propagation" => {
                bind_options = true;
                mount.propagation = value.to_lowercase();
            }
            "bind-nonrecursive" => {
                bind_options = true;
                mount.nonrecursive = go::parse_bool(value).ok_or_else(invalid)?;
            }
            "volume-nocopy" => {
                volume_options = true;
                mount.nocopy = go::parse_bool(value)
                    .ok_or_else(|| format!("invalid value for volume-nocopy: {value}"))?;
            }
            "volume-label" => {
                volume_options = true;
                set_on_map(&mut mount.labels, value);
            }
            "volume-driver" => {
                volume_options = true;
                mount.driver = value.to_string();
            }
            "volume-opt" => {
                volume_options = true;
                set_on_map(&mut mount.options, value);
            }
            "tmpfs-size" => {
                tmpfs_options = true;
                mount.tmpfs_size = Some(go::ram_in_bytes(value).map_err(|_| invalid())?);
            }
            "tmpfs-mode" => {
                tmpfs_options = true;
                let mode = go::parse_uint(value, 8, 32).map_err(|_| invalid())?;
                mount.tmpfs_mode = Some(u32::try_from(mode).map_err(|_| invalid())?);
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if mount.kind.is_empty() {
        return Err("type is required".into());
    }
    if mount.target.is_empty() {
        return Err("target is required".into());
    }
    for (used, prefix, kind) in [
        (volume_options, "volume", "volume"),
        (bind_options, "bind", "bind"),
        (tmpfs_options, "tmpfs", "tmpfs"),
    ] {
        if used && mount.kind != kind {
            return Err(format!(
                "cannot mix '{prefix}-*' options with mount type '{}'",
                mount.kind
            ));
        }
    }
    Ok(mount)
}

/// `--device HOST[:CONTAINER][:PERMS]`: docker's `validateLinuxPath` then
/// `parseLinuxDevice`, including where each cleans a path and where it does not.
fn device_flag(raw: &str) -> Result<DeviceSpec, FlagError> {
    let bad_format = || fail(format!("bad format for path: {raw}"));
    if raw.matches(':').count() > 2 {
        return Err(bad_format());
    }
    let split: Vec<&str> = raw.splitn(3, ':').collect();
    if split[0].is_empty() {
        return Err(bad_format());
    }
    let absolute = |path: &str| {
        if path.starts_with('/') {
            Ok(())
        } else {
            Err(fail(format!("{path} is not an absolute path")))
        }
    };
    let device = |host: String, container: String, permissions: &str| DeviceSpec {
        path_on_host: host,
        path_in_container: container,
        permissions: permissions.to_string(),
    };
    match split.as_slice() {
        [path] => {
            absolute(path)?;
            let path = go::path_clean(path);
            Ok(device(path.clone(), path, "rwm"))
        }
        [host, mode] if valid_device_mode(mode) => {
            absolute(host)?;
            let host = go::path_clean(host);
            Ok(device(host.clone(), host, mode))
        }
        [host, container] => {
            absolute(container)?;
            Ok(device(host.to_string(), go::path_clean(container), "rwm"))
        }
        [host, container, mode] => {
            if !valid_device_mode(mode) {
                return Err(fail(format!("bad mode specified: {mode}")));
            }
            absolute(container)?;
            Ok(device(host.to_string(), container.to_string(), mode))
        }
        _ => Err(bad_format()),
    }
}

/// Some of `r`, `w`, `m`, each at most once.
fn valid_device_mode(mode: &str) -> bool {
    let mut seen = String::new();
    !mode.is_empty()
        && mode.chars().all(|c| {
            let fresh = "rwm".contains(c) && !seen.contains(c);
            seen.push(c);
            fresh
        })
}

/// The engine refuses two mounts on one path, except where an anonymous volume or a
/// `--tmpfs` meets a `--mount`.
fn check_duplicate_mount_points(host: &HostSpec) -> Result<(), FlagError> {
    let bind_targets: Vec<String> = host
        .binds
        .iter()
        .filter_map(|bind| bind.split(':').nth(1))
        .map(go::path_clean)
        .collect();
    let mut seen = BTreeSet::new();
    let mount_targets = host.mounts.iter().map(|m| go::path_clean(&m.target));
    for target in bind_targets.iter().cloned().chain(mount_targets) {
        if !seen.insert(target.clone()) {
            return Err(fail(format!("Duplicate mount point: {target}")));
        }
    }
    for path in host.tmpfs.keys().map(|p| go::path_clean(p)) {
        if bind_targets.contains(&path) {
            return Err(fail(format!("Duplicate mount point: {path}")));
        }
    }
    Ok(())
}

fn network(args: &RunArgs, spec: &mut ContainerSpec) -> Result<(), FlagError> {
    for raw in &args.publish {
        for (port, binding) in port_mappings(&standard_port_notation(raw)?)? {
            spec.exposed_ports.insert(port.clone());
            spec.host
                .port_bindings
                .entry(port)
                .or_default()
                .push(binding);
        }
    }
    for raw in &args.expose {
        spec.exposed_ports.extend(expose_ports(raw)?);
    }
    spec.host.network_mode = Some(network_mode(args.network.as_deref())?);
    for raw in &args.add_host {
        check_extra_host(raw)?;
        spec.host.extra_hosts.push(raw.clone());
    }
    for raw in &args.dns {
        let ip = go::parse_ip(raw.trim())
            .ok_or_else(|| bad_value("--dns", raw, format!("{raw} is not an ip address")))?;
        spec.host.dns.push(go::ip_string(ip));
    }
    Ok(())
}

/// `-p published=8080,target=80[,protocol=udp]` → `8080:80/udp`, as the CLI does first.
fn standard_port_notation(raw: &str) -> Result<String, FlagError> {
    if !raw.contains('=') {
        return Ok(raw.to_string());
    }
    let mut params = BTreeMap::from([("protocol", "tcp")]);
    for param in raw.split(',') {
        let parts: Vec<&str> = param.split('=').collect();
        if parts.len() < 2 {
            return Err(fail(format!(
                "invalid publish opts format (should be name=value but got '{param}')"
            )));
        }
        params.insert(parts[0], parts[1]);
    }
    let get = |key: &str| params.get(key).copied().unwrap_or_default();
    Ok(format!(
        "{}:{}/{}",
        get("published"),
        get("target"),
        get("protocol")
    ))
}

/// One `-p` spec: go-connections 0.4's `nat.ParsePortSpec` (the version docker 20.10
/// vendors), quirks included: a host range for one container port is sent as a range.
fn port_mappings(raw: &str) -> Result<Vec<(String, PortBinding)>, FlagError> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (raw_ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = split_proto_port(container);
    let ip = go::split_host_port(&format!("{raw_ip}:"))
        .map_err(|why| fail(format!("Invalid ip address {raw_ip}: {why}")))?;
    if !ip.is_empty() && go::parse_ip(&ip).is_none() {
        return Err(fail(format!("Invalid ip address: {ip}")));
    }
    if container.is_empty() {
        return Err(fail(format!("No port specified: {raw}<empty>")));
    }
    let (start, end) = parse_port_range(container)
        .map_err(|_| fail(format!("Invalid containerPort: {container}")))?;
    let (host_start, host_end) = match host_port {
        "" => (0, 0),
        _ => parse_port_range(host_port)
            .map_err(|_| fail(format!("Invalid hostPort: {host_port}")))?,
    };
    if !host_port.is_empty() && end - start != host_end - host_start && end != start {
        return Err(fail(format!(
            "Invalid ranges specified for container and host Ports: {container} and {host_port}"
        )));
    }
    let protocol = proto.to_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(fail(format!("Invalid proto: {proto}")));
    }
    Ok((0..=end - start)
        .map(|i| {
            let mut host_port = match host_port {
                "" => String::new(),
                _ => (host_start + i).to_string(),
            };
            if start == end && host_start != host_end {
                host_port = format!("{host_port}-{host_end}");
            }
            let binding = PortBinding {
                host_ip: ip.clone(),
                host_port,
            };
            (format!("{}/{protocol}", start + i), binding)
        })
        .collect())
}

/// go-connections 0.4's `SplitProtoPort`: `(proto, port)`; tcp when none is given.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    match parts.as_slice() {
        ["", ..] | [] => ("", ""),
        [_] => ("tcp", raw),
        [port, "", ..] => ("tcp", port),
        [port, proto, ..] => (proto, port),
    }
}

/// go-connections 0.4's `ParsePortRange`: `80` or `8000-8010` (anything after a second
/// `-` ignored).
fn parse_port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("Empty string specified for ports.".into());
    }
    let parts: Vec<&str> = ports.split('-').collect();
    let start = go::parse_uint(parts[0], 10, 16)?;
    let Some(end) = parts.get(1) else {
        return Ok((start, start));
    };
    let end = go::parse_uint(end, 10, 16)?;
    if end < start {
        return Err(format!("Invalid range specified for the Port: {ports}"));
    }
    Ok((start, end))
}

/// `--expose PORT[-END][/PROTO]`: the protocol is taken as written, not checked.
fn expose_ports(raw: &str) -> Result<Vec<String>, FlagError> {
    if raw.contains(':') {
        return Err(fail(format!("invalid port format for --expose: {raw}")));
    }
    let (proto, port) = split_proto_port(raw);
    let (start, end) = parse_port_range(port).map_err(|why| {
        fail(format!(
            "invalid range format for --expose: {raw}, error: {why}"
        ))
    })?;
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `--network NAME`, or the long form `name=NAME` (which docker lower-cases). The CLI
/// sends `default` when the flag is not given.
fn network_mode(raw: Option<&str>) -> Result<String, FlagError> {
    let Some(raw) = raw else {
        return Ok("default".into());
    };
    let mut target = raw.to_string();
    if is_long_network_syntax(raw) {
        for field in go::csv_record(raw).map_err(|why| bad_value("--network", raw, why))? {
            let Some((key, value)) = field.split_once('=') else {
                return Err(bad_value(
                    "--network",
                    raw,
                    format!("invalid field {field}"),
                ));
            };
            let key = key.to_lowercase();
            match key.trim() {
                "name" => target = value.to_lowercase().trim().to_string(),
                "alias" | "driver-opt" => {
                    return Err(fail(format!(
                        "--network {key}=... is not supported; use --network NAME"
                    )))
                }
                other => {
                    return Err(bad_value(
                        "--network",
                        raw,
                        format!("invalid field key {other}"),
                    ))
                }
            }
        }
    }
    if target.trim().is_empty() {
        return Err(fail("no name set for network"));
    }
    Ok(target)
}

/// docker's test for the long form: the regexp `\w+=\w+`, unanchored.
pub(super) fn is_long_network_syntax(raw: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    raw.as_bytes()
        .windows(3)
        .any(|w| w[1] == b'=' && word(&w[0]) && word(&w[2]))
}

fn check_extra_host(raw: &str) -> Result<(), FlagError> {
    match raw.split_once(':') {
        Some((host, ip)) if !host.is_empty() => {
            if ip != "host-gateway" && go::parse_ip(ip.trim()).is_none() {
                return Err(bad_value(
                    "--add-host",
                    raw,
                    format!("invalid IP address in add-host: {ip:?}"),
                ));
            }
            Ok(())
        }
        _ => Err(bad_value(
            "--add-host",
            raw,
            format!("bad format for add-host: {raw:?}"),
        )),
    }
}

fn resources(args: &RunArgs, host: &mut HostSpec) -> Result<(), FlagError> {
    host.gpus = args
        .gpus
        .as_deref()
        .map(|raw| gpu_request(raw).map_err(|why| bad_value("--gpus", raw, why)))
        .transpose()?;
    host.shm_size = size_flag("--shm-size", &args.shm_size)?;
    host.memory = size_flag("-m, --memory", &args.memory)?;
    host.memory_reservation = size_flag("--memory-reservation", &args.memory_reservation)?;
    host.memory_swap = match args.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        _ => size_flag("--memory-swap", &args.memory_swap)?,
    };
    check_memory(host)?;
    if let Some(raw) = &args.cpus {
        let nano = go::nano_cpus(raw).map_err(|why| bad_value("--cpus", raw, why))?;
        if nano < 0 {
            return Err(bad_value(
                "--cpus",
                raw,
                "the number of CPUs cannot be negative",
            ));
        }
        host.nano_cpus = (nano != 0).then_some(nano);
    }
    host.cpuset_cpus = non_empty(&args.cpuset_cpus);
    if let Some(cpus) = &host.cpuset_cpus {
        check_cpuset(cpus)?;
    }
    host.ipc_mode = non_empty(&args.ipc);
    if let Some(mode) = &host.ipc_mode {
        let valid = matches!(mode.as_str(), "none" | "private" | "shareable" | "host")
            || mode.starts_with("container:");
        if !valid {
            return Err(fail("--ipc: invalid IPC mode"));
        }
    }
    host.pid_mode = non_empty(&args.pid);
    if let Some(mode) = &host.pid_mode {
        let parts: Vec<&str> = mode.split(':').collect();
        let valid = match parts[0] {
            "host" => true,
            "container" => parts.len() == 2 && !parts[1].is_empty(),
            _ => false,
        };
        if !valid {
            return Err(fail("--pid: invalid PID mode"));
        }
    }
    host.cap_add = capabilities("CapAdd", &args.cap_add)?;
    host.cap_drop = capabilities("CapDrop", &args.cap_drop)?;
    host.security_opt = security_opts(&args.security_opt)?;
    for raw in &args.ulimit {
        let ulimit = parse_ulimit(raw).map_err(|why| bad_value("--ulimit", raw, why))?;
        // docker keeps one per name, the last given.
        match host.ulimits.iter_mut().find(|u| u.name == ulimit.name) {
            Some(existing) => *existing = ulimit,
            None => host.ulimits.push(ulimit),
        }
    }
    for raw in &args.sysctl {
        let (key, value) = sysctl(raw)?;
        host.sysctls.insert(key, value);
    }
    if let Some(raw) = &args.pids_limit {
        // docker sends 0, which the engine reads as "no limit set".
        host.pids_limit = Some(int_flag("--pids-limit", raw)?).filter(|n| *n != 0);
    }
    if let Some(raw) = &args.oom_score_adj {
        let score = int_flag("--oom-score-adj", raw)?;
        if !(-1000..=1000).contains(&score) {
            return Err(fail(format!(
                "Invalid value {score}, range for oom score adj is [-1000, 1000]"
            )));
        }
        host.oom_score_adj = (score != 0).then_some(score);
    }
    Ok(())
}

/// A size flag: docker's `RAMInBytes`; 0 is what docker sends for "not set".
fn size_flag(flag: &str, raw: &Option<String>) -> Result<Option<i64>, FlagError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let bytes = go::ram_in_bytes(raw).map_err(|why| bad_value(flag, raw, why))?;
    Ok((bytes != 0).then_some(bytes))
}

/// The engine's memory checks that depend only on the values.
fn check_memory(host: &HostSpec) -> Result<(), FlagError> {
    const MINIMUM: i64 = 6 << 20;
    let memory = host.memory.unwrap_or(0);
    let swap = host.memory_swap.unwrap_or(0);
    let reservation = host.memory_reservation.unwrap_or(0);
    if memory > 0 && memory < MINIMUM {
        return Err(fail("Minimum memory limit allowed is 6MB"));
    }
    if swap > 0 && memory == 0 {
        return Err(fail(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(fail(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(fail(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if reservation > 0 && reservation < MINIMUM {
        return Err(fail("Minimum memory reservation allowed is 6MB"));
    }
    Ok(())
}

/// The engine's `ParseUintList` format: `0-3,5`.
fn check_cpuset(raw: &str) -> Result<(), FlagError> {
    let valid = raw.split(',').all(|part| match part.split_once('-') {
        None => go::atoi(part).is_ok(),
        Some((low, high)) => matches!((go::atoi(low), go::atoi(high)), (Ok(l), Ok(h)) if h >= l),
    });
    if valid {
        Ok(())
    } else {
        Err(fail(format!(
            "Invalid value {raw} for cpuset cpus: invalid format: {raw}"
        )))
    }
}

/// Every capability some engine knows (which ones a given engine knows varies: 20.10
/// stops at AUDIT_READ), so only names no engine knows are refused here.
const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// `--cap-add`/`--cap-drop`: checked, then written as current docker CLIs send them
/// (`net_admin` → `CAP_NET_ADMIN`, `all` → `ALL`). The 20.10 CLI sent them as typed;
/// the engine reads both spellings alike.
fn capabilities(field: &str, raw: &[String]) -> Result<Vec<String>, FlagError> {
    let mut normalized = Vec::new();
    for cap in raw {
        let upper = cap.to_uppercase();
        if upper == "ALL" {
            normalized.push(upper);
            continue;
        }
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if !CAPABILITIES.contains(&name) {
            return Err(fail(format!(
                "invalid {field}: unknown capability: \"CAP_{name}\""
            )));
        }
        normalized.push(format!("CAP_{name}"));
    }
    Ok(normalized)
}

/// `--security-opt`: docker's `parseSecurityOpts` (a seccomp profile file is read and
/// inlined as compact JSON), then the engine's check of the option names.
fn security_opts(raw: &[String]) -> Result<Vec<String>, FlagError> {
    let mut opts = Vec::new();
    for opt in raw {
        if opt == "no-new-privileges" {
            opts.push(opt.clone());
            continue;
        }
        if opt == "systempaths=unconfined" {
            return Err(fail(
                "--security-opt systempaths=unconfined is not supported",
            ));
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(fail(format!("Invalid --security-opt: {opt:?}")));
        };
        match key {
            "seccomp" if value != "unconfined" => {
                opts.push(format!("seccomp={}", seccomp_profile(value)?));
                continue;
            }
            "label" | "apparmor" | "seccomp" => {}
            "no-new-privileges" if go::parse_bool(value).is_some() => {}
            _ => return Err(fail(format!("invalid --security-opt 2: {opt:?}"))),
        }
        opts.push(opt.clone());
    }
    Ok(opts)
}

/// A seccomp profile file as compact JSON. A value that is already JSON is taken as the
/// profile itself (docker would look for a file of that name), so that a rendered
/// `--security-opt seccomp={...}` reads back the same.
fn seccomp_profile(value: &str) -> Result<String, FlagError> {
    let text = if value.trim_start().starts_with('{') {
        value.to_string()
    } else {
        let bytes = std::fs::read(value).map_err(|e| {
            fail(format!(
                "opening seccomp profile ({value}) failed: {}",
                go::io_error("open", value, &e)
            ))
        })?;
        String::from_utf8_lossy(&bytes).into_owned()
    };
    go::compact_json(&text).map_err(|why| {
        fail(format!(
            "compacting json for seccomp profile ({value}) failed: {why}"
        ))
    })
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// go-units `ParseUlimit`: `NAME=SOFT[:HARD]`, hard defaulting to soft.
fn parse_ulimit(raw: &str) -> Result<Ulimit, String> {
    let Some((name, limits)) = raw.split_once('=') else {
        return Err(format!("invalid ulimit argument: {raw}"));
    };
    if !ULIMITS.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let (soft, hard) = match limits.split(':').collect::<Vec<_>>().as_slice() {
        [soft] => {
            let soft = go::parse_int(soft, 10)?;
            (soft, soft)
        }
        [soft, hard] => {
            let hard = go::parse_int(hard, 10)?;
            (go::parse_int(soft, 10)?, hard)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

const SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `--sysctl K=V`, for the namespaced keys docker allows.
fn sysctl(raw: &str) -> Result<(String, String), FlagError> {
    let allowed = |key: &str| {
        SYSCTLS.contains(&key) || key.starts_with("net.") || key.starts_with("fs.mqueue.")
    };
    match raw.split_once('=') {
        Some((key, value)) if allowed(key) => Ok((key.to_string(), value.to_string())),
        _ => Err(bad_value(
            "--sysctl",
            raw,
            format!("sysctl '{raw}' is not whitelisted"),
        )),
    }
}

/// `--gpus`: docker's `opts/gpus.go`, a CSV record: `all`, `N`, `count=N|all`,
/// `"device=0,1"`, `driver=`, `"capabilities=a,b"` (docker appends `gpu`),
/// `"options=k=v,..."`. The count is `None` when devices are named and no count given
/// (docker sends 0).
fn gpu_request(raw: &str) -> Result<GpuRequest, String> {
    let parse_count = |text: &str| -> Result<i64, String> {
        match text {
            "all" => Ok(-1),
            _ => go::atoi(text).map_err(|why| format!("count must be an integer: {why}")),
        }
    };
    let mut seen = BTreeSet::new();
    let mut request = GpuRequest {
        driver: String::new(),
        count: None,
        device_ids: Vec::new(),
        capabilities: vec![vec!["gpu".to_string()]],
        options: BTreeMap::new(),
    };
    let mut devices_named = false;
    for field in go::csv_record(raw)? {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (field.as_str(), None),
        };
        if !seen.insert(key.to_string()) {
            return Err(format!(
                "gpu request key '{key}' can be specified only once"
            ));
        }
        let Some(value) = value else {
            seen.insert("count".to_string());
            request.count = Some(parse_count(key)?);
            continue;
        };
        match key {
            "driver" => request.driver = value.to_string(),
            "count" => request.count = Some(parse_count(value)?),
            "device" => {
                devices_named = true;
                request.device_ids = value.split(',').map(str::to_string).collect();
            }
            "capabilities" => {
                let mut caps: Vec<String> = value.split(',').map(str::to_string).collect();
                caps.push("gpu".to_string());
                request.capabilities = vec![caps];
            }
            "options" => {
                let fields = go::csv_record(value)
                    .map_err(|why| format!("failed to read gpu options: {why}"))?;
                request.options = fields
                    .iter()
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect();
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if !seen.contains("count") && !devices_named {
        request.count = Some(1);
    }
    Ok(request)
}

/// docker's less common flags, passed on as docker passes them ([`crate::spec::Extra`]).
fn extra(args: &RunArgs, spec: &mut ContainerSpec) -> Result<(), FlagError> {
    let extra = &mut spec.extra;
    extra.domainname = non_empty(&args.domainname);
    extra.platform = non_empty(&args.platform);
    let ints: [(&'static str, &Option<String>); 11] = [
        ("BlkioWeight", &args.blkio_weight),
        ("CpuShares", &args.cpu_shares),
        ("CpuPeriod", &args.cpu_period),
        ("CpuQuota", &args.cpu_quota),
        ("CpuRealtimePeriod", &args.cpu_rt_period),
        ("CpuRealtimeRuntime", &args.cpu_rt_runtime),
        ("CpuCount", &args.cpu_count),
        ("CpuPercent", &args.cpu_percent),
        ("IOMaximumIOps", &args.io_maxiops),
        ("IOMaximumBandwidth", &args.io_maxbandwidth),
        ("MemorySwappiness", &args.memory_swappiness),
    ];
    for (field, raw) in ints {
        let Some(raw) = raw else { continue };
        let flag = extra_flag(crate::spec::EXTRA_INTS, field);
        let value = match field {
            "BlkioWeight" => go::parse_uint(raw, 0, 16)
                .map(|n| n as i64)
                .map_err(|why| bad_value(flag, raw, why))?,
            "IOMaximumBandwidth" => {
                go::ram_in_bytes(raw).map_err(|why| bad_value(flag, raw, why))?
            }
            _ => int_flag(flag, raw)?,
        };
        if field == "MemorySwappiness" {
            if value == -1 {
                continue;
            }
            if !(0..=100).contains(&value) {
                return Err(fail(format!(
                    "invalid value: {value}. Valid memory swappiness range is 0-100"
                )));
            }
        }
        if value != 0 {
            extra.ints.insert(field, value);
        }
    }
    let strings: [(&'static str, &Option<String>); 8] = [
        ("CgroupParent", &args.cgroup_parent),
        ("CgroupnsMode", &args.cgroupns),
        ("CpusetMems", &args.cpuset_mems),
        ("Isolation", &args.isolation),
        ("Runtime", &args.runtime),
        ("UsernsMode", &args.userns),
        ("UTSMode", &args.uts),
        ("VolumeDriver", &args.volume_driver),
    ];
    for (field, raw) in strings {
        let Some(value) = non_empty(raw) else {
            continue;
        };
        let valid = match field {
            "CgroupnsMode" => matches!(value.as_str(), "host" | "private"),
            "UTSMode" | "UsernsMode" => value == "host",
            _ => true,
        };
        if !valid {
            let flag = extra_flag(crate::spec::EXTRA_STRINGS, field);
            let what = match field {
                "CgroupnsMode" => "CGROUP",
                "UTSMode" => "UTS",
                _ => "USER",
            };
            return Err(fail(format!("{flag}: invalid {what} mode")));
        }
        extra.strings.insert(field, value);
    }
    let lists: [(&'static str, &Vec<String>); 5] = [
        ("DnsOptions", &args.dns_option),
        ("DnsSearch", &args.dns_search),
        ("DeviceCgroupRules", &args.device_cgroup_rule),
        ("Links", &args.link),
        ("VolumesFrom", &args.volumes_from),
    ];
    for (field, list) in lists {
        if list.is_empty() {
            continue;
        }
        if field == "Links" {
            // docker stores `NAME` as `NAME:NAME`.
            let links = list
                .iter()
                .map(|link| match link.split_once(':') {
                    Some((name, alias)) if !name.is_empty() && !alias.is_empty() => {
                        Ok(link.clone())
                    }
                    None if !link.is_empty() => Ok(format!("{link}:{link}")),
                    _ => Err(bad_value("--link", link, "bad format for links")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            extra.lists.insert(field, links);
        } else {
            extra.lists.insert(field, list.clone());
        }
    }
    let throttles: [(&'static str, &Vec<String>); 5] = [
        ("BlkioWeightDevice", &args.blkio_weight_device),
        ("BlkioDeviceReadBps", &args.device_read_bps),
        ("BlkioDeviceWriteBps", &args.device_write_bps),
        ("BlkioDeviceReadIOps", &args.device_read_iops),
        ("BlkioDeviceWriteIOps", &args.device_write_iops),
    ];
    for (field, list) in throttles {
        let flag = crate::spec::EXTRA_THROTTLES
            .iter()
            .find(|(_, f, _)| *f == field)
            .map_or("", |(flag, _, _)| flag);
        for raw in list {
            let parsed = raw.rsplit_once(':').and_then(|(path, n)| {
                let n = match field {
                    "BlkioWeightDevice" => go::parse_uint(n, 10, 16).ok().map(|n| n as i64),
                    "BlkioDeviceReadBps" | "BlkioDeviceWriteBps" => go::ram_in_bytes(n).ok(),
                    _ => go::parse_uint(n, 10, 64)
                        .ok()
                        .and_then(|n| i64::try_from(n).ok()),
                }?;
                path.starts_with("/dev/").then(|| (path.to_string(), n))
            });
            let Some(entry) = parsed else {
                return Err(bad_value(
                    flag,
                    raw,
                    format!("bad format for {flag}: {raw}"),
                ));
            };
            extra.throttles.entry(field).or_default().push(entry);
        }
    }
    for (field, on) in [
        ("OomKillDisable", args.oom_kill_disable),
        ("PublishAllPorts", args.publish_all),
    ] {
        if on {
            extra.switches.insert(field);
        }
    }
    extra.log_driver = non_empty(&args.log_driver);
    for raw in &args.log_opt {
        let (key, value) = raw.split_once('=').unwrap_or((raw, ""));
        extra.log_opts.insert(key.to_string(), value.to_string());
    }
    if extra.log_driver.as_deref() == Some("none") && !extra.log_opts.is_empty() {
        return Err(fail("invalid logging opts for driver none"));
    }
    for raw in &args.storage_opt {
        let Some((key, value)) = raw.split_once('=') else {
            return Err(fail("invalid storage option"));
        };
        extra
            .storage_opts
            .insert(key.to_string(), value.to_string());
    }
    health(args, extra)?;
    endpoint(args, spec)
}

fn extra_flag(table: &[(&'static str, &str)], field: &str) -> &'static str {
    table
        .iter()
        .find(|(_, f)| *f == field)
        .map_or("", |(flag, _)| flag)
}

fn health(args: &RunArgs, extra: &mut crate::spec::Extra) -> Result<(), FlagError> {
    let duration = |flag: &str, raw: &Option<String>| -> Result<i64, FlagError> {
        let Some(raw) = raw else { return Ok(0) };
        let nanos = go::parse_duration(raw).map_err(|why| bad_value(flag, raw, why))?;
        if nanos < 0 {
            return Err(fail(format!("{flag} cannot be negative")));
        }
        Ok(nanos)
    };
    let check = crate::spec::Healthcheck {
        test: match non_empty(&args.health_cmd) {
            Some(cmd) => vec!["CMD-SHELL".into(), cmd],
            None => Vec::new(),
        },
        interval: duration("--health-interval", &args.health_interval)?,
        timeout: duration("--health-timeout", &args.health_timeout)?,
        start_period: duration("--health-start-period", &args.health_start_period)?,
        retries: match &args.health_retries {
            Some(raw) => int_flag("--health-retries", raw)?,
            None => 0,
        },
    };
    if check.retries < 0 {
        return Err(fail("--health-retries cannot be negative"));
    }
    let any = check != crate::spec::Healthcheck::default();
    if args.no_healthcheck {
        if any {
            return Err(fail("--no-healthcheck conflicts with --health-* options"));
        }
        extra.healthcheck = Some(crate::spec::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        });
    } else if any {
        extra.healthcheck = Some(check);
    }
    Ok(())
}

/// `--ip`, `--ip6`, `--link-local-ip`, `--network-alias`, `--mac-address`: settings of
/// the endpoint on the container's network.
fn endpoint(args: &RunArgs, spec: &mut ContainerSpec) -> Result<(), FlagError> {
    let endpoint = &mut spec.extra.endpoint;
    endpoint.aliases = args.network_alias.clone();
    endpoint.ipv4 = non_empty(&args.ip);
    endpoint.ipv6 = non_empty(&args.ip6);
    endpoint.link_local_ips = args.link_local_ip.clone();
    endpoint.mac_address = non_empty(&args.mac_address);
    if let Some(mac) = &endpoint.mac_address {
        let valid = mac.split(':').count() == 6
            && mac
                .split(':')
                .all(|part| part.len() == 2 && part.bytes().all(|b| b.is_ascii_hexdigit()));
        if !valid {
            return Err(fail(format!("{mac} is not a valid mac address")));
        }
    }
    for (flag, ip) in [("--ip", &endpoint.ipv4), ("--ip6", &endpoint.ipv6)] {
        if let Some(ip) = ip {
            if go::parse_ip(ip).is_none() {
                return Err(bad_value(flag, ip, format!("{ip} is not an ip address")));
            }
        }
    }
    let network = spec.host.network_mode.as_deref().unwrap_or("default");
    let user_defined = !matches!(network, "default" | "bridge" | "host" | "none")
        && !network.starts_with("container:");
    if !endpoint.aliases.is_empty() && !user_defined {
        return Err(fail(
            "network-scoped aliases are only supported for user-defined networks",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerargs::test_support::{error, lookup, parse, spec, strings};

    fn binding(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn image_and_command_come_last() {
        let s = spec("img sh -c 'echo hi'");
        assert_eq!(s.image, "img");
        assert_eq!(s.cmd, ["sh", "-c", "echo hi"]);
        let missing = spec_from_args(&RunArgs::default(), &lookup).unwrap_err();
        assert!(
            missing.0.contains("requires at least 1 argument"),
            "{missing:?}"
        );
        // Found by fuzzing: an image after `--` that starts with a dash rendered as a
        // flag in the --dry-run line.
        assert_eq!(
            error("-- --project img"),
            "invalid reference format: the image name \"--project\" starts with '-'"
        );
    }

    #[test]
    fn no_flags_give_what_docker_sends_by_default() {
        let s = spec("img");
        assert!(s.attach_stdout && s.attach_stderr);
        assert!(!s.attach_stdin && !s.open_stdin && !s.stdin_once && !s.tty);
        assert_eq!(s.host.network_mode.as_deref(), Some("default"));
        let no = RestartPolicy {
            name: "no".into(),
            maximum_retry_count: 0,
        };
        assert_eq!(s.host.restart, Some(no));
        assert_eq!(s.host.init, None);
        assert_eq!(s.entrypoint, None);
        assert_eq!(s.stop_timeout, None);
        assert!(s.env.is_empty() && s.exposed_ports.is_empty() && s.host.binds.is_empty());
    }

    #[test]
    fn attach_and_stdin_fields_follow_docker() {
        // (attach stdin, stdout, stderr, open stdin, stdin once, tty), checked with docker.
        let table = [
            ("img", (false, true, true, false, false, false)),
            ("-i img", (true, true, true, true, true, false)),
            ("-it img", (true, true, true, true, true, true)),
            ("-t img", (false, true, true, false, false, true)),
            ("-d img", (false, false, false, false, false, false)),
            ("-di img", (false, false, false, true, false, false)),
            ("-dit img", (false, false, false, true, false, true)),
        ];
        for (line, want) in table {
            let s = spec(line);
            let got = (
                s.attach_stdin,
                s.attach_stdout,
                s.attach_stderr,
                s.open_stdin,
                s.stdin_once,
                s.tty,
            );
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn env_flags_take_values_from_the_environment() {
        let s = spec("-e A=1 -e HOME_DIR -e EMPTY -e B=x=y -e C= -e UNSET_X img");
        // docker sends an unset `-e NAME` bare; the container then does not get it.
        assert_eq!(
            s.env,
            [
                "A=1",
                "HOME_DIR=/home/me",
                "EMPTY=",
                "B=x=y",
                "C=",
                "UNSET_X"
            ]
        );
        assert_eq!(
            error("-e =x img"),
            "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
        );
    }

    #[test]
    fn env_files_follow_docker_rules_not_compose() {
        let text = b"\xef\xbb\xbfA=1\n  # comment\n\n  B=\"quoted\" \nHOME_DIR\nUNSET_X\nC=a b\r\n\tD=tab\nE=$HOME\n1A=x\n";
        let env = parse_env_file("f.env", &text[..], &lookup).unwrap();
        assert_eq!(
            env,
            [
                "A=1",
                "B=\"quoted\" ",
                "HOME_DIR=/home/me",
                "C=a b",
                "D=tab",
                "E=$HOME",
                "1A=x"
            ]
        );
        // The byte-order mark is dropped from the first line only; a lone \r stays.
        let env = parse_env_file(
            "f",
            &b"\xef\xbb\xbf\n\xef\xbb\xbfA=1\nB=2\r\r\n"[..],
            &lookup,
        )
        .unwrap();
        assert_eq!(env, ["\u{feff}A=1", "B=2\r"]);
        let bad = |text: &[u8]| parse_env_file("f.env", text, &lookup).unwrap_err().0;
        assert_eq!(
            bad(b"E\t=1\n"),
            "invalid env file (f.env): line 1: variable 'E\t' contains whitespaces"
        );
        assert_eq!(
            bad(b"# c\nexport A=1\n"),
            "invalid env file (f.env): line 2: variable 'export A' contains whitespaces"
        );
        assert_eq!(
            bad(b"HOME_DIR  \n"),
            "invalid env file (f.env): line 1: variable 'HOME_DIR  ' contains whitespaces"
        );
        assert_eq!(
            bad(b" =x\n"),
            "invalid env file (f.env): line 1: no variable name in '=x'"
        );
        assert_eq!(
            bad(b"A=\xff\n"),
            "invalid env file (f.env): invalid utf8 bytes at line 1: [65 61 255]"
        );
    }

    #[test]
    fn env_file_lines_stop_at_dockers_limit() {
        let line = |len: usize| format!("A={}\n", "x".repeat(len - 2)).into_bytes();
        let longest = parse_env_file("f", &line(MAX_ENV_FILE_LINE)[..], &lookup).unwrap();
        assert_eq!(longest[0].len(), MAX_ENV_FILE_LINE);
        let err = parse_env_file("f", &line(MAX_ENV_FILE_LINE + 1)[..], &lookup).unwrap_err();
        assert_eq!(
            err.0,
            "invalid env file (f): line 1 is longer than docker's limit of 65535 bytes"
        );
        // No newline at all, as from a device: the reading stops at the limit.
        let endless = std::io::Read::take(std::io::repeat(0), u64::MAX);
        let err = parse_env_file("/dev/zero", std::io::BufReader::new(endless), &lookup);
        assert!(err.unwrap_err().0.contains("line 1 is longer"));
    }

    #[test]
    fn a_nul_byte_in_an_env_file_is_refused_at_its_line() {
        let err = parse_env_file("f", &b"A=1\nB=x\0y\n"[..], &lookup).unwrap_err();
        assert_eq!(
            err.0,
            "invalid env file (f): line 2: variable 'B' holds a NUL byte, which no environment can"
        );
    }

    #[test]
    fn env_files_come_before_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.env");
        std::fs::write(&path, "A=1\nB=2").unwrap();
        let s = spec(&format!("-e A=3 --env-file {} img", path.display()));
        assert_eq!(s.env, ["A=1", "B=2", "A=3"]);
        let missing = dir.path().join("missing.env");
        assert_eq!(
            error(&format!("--env-file {} img", missing.display())),
            format!("open {}: no such file or directory", missing.display())
        );
        assert_eq!(
            error(&format!("--env-file {} img", dir.path().display())),
            format!(
                "invalid env file ({0}): read {0}: is a directory",
                dir.path().display()
            )
        );
    }

    #[test]
    fn labels_take_the_last_value() {
        let s = spec("-l a=1 -l b -l a=2 -l c= --label ' d=x y' img");
        let want: BTreeMap<String, String> = [("a", "2"), ("b", ""), ("c", ""), (" d", "x y")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(s.labels, want);
        assert_eq!(
            error("-l =x img"),
            "invalid argument \"=x\" for \"-l, --label\" flag: invalid label '=x': empty name"
        );
        assert_eq!(
            error("-l 'a =1' img"),
            "invalid argument \"a =1\" for \"-l, --label\" flag: label 'a ' contains whitespaces"
        );
    }

    #[test]
    fn volumes_split_into_anonymous_and_binds() {
        let s = spec(
            "-v /data -v /data/ -v /tmp:/x:ro -v vol:/y -v vol:/z:ro,nocopy -v /tmp:/x:ro -v /a:/b:rw,z,rprivate,consistent -v /c:/d: img",
        );
        assert_eq!(s.volumes, BTreeSet::from(["/data".into(), "/data/".into()]));
        assert_eq!(
            s.host.binds,
            [
                "/tmp:/x:ro",
                "vol:/y",
                "vol:/z:ro,nocopy",
                "/a:/b:rw,z,rprivate,consistent",
                "/c:/d:"
            ]
        );
        // Messages as docker's engine gives them (it, not the CLI, checks these).
        let table = [
            ("-v /data:ro", "invalid volume specification: '/data:ro'"),
            ("-v /tmp:", "invalid volume specification: '/tmp:'"),
            ("-v ab:/c:ro:x", "invalid volume specification: 'ab:/c:ro:x'"),
            ("-v /tmp:/x:ro,rw", "invalid mode: ro,rw"),
            ("-v /tmp:/x:z,Z", "invalid mode: z,Z"),
            ("-v /tmp:/x:copy", "invalid mode: copy"),
            ("-v /tmp:/x:bogus", "invalid mode: bogus"),
            (
                "-v /tmp:rel",
                "invalid volume specification: '/tmp:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
            ),
            (
                "-v /tmp::ro",
                "invalid volume specification: '/tmp::ro': invalid mount config for type \"bind\": field Target must not be empty",
            ),
            (
                "-v /tmp:/",
                "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
            ),
            (
                "-v /tmp:/x:nocopy",
                "invalid volume specification: '/tmp:/x:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified",
            ),
            (
                "-v vol:/x:rshared",
                "invalid volume specification: 'vol:/x:rshared': invalid mount config for type \"volume\": field BindOptions must not be specified",
            ),
            (
                "-v ./rel:/x",
                "create ./rel: \"./rel\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
            ),
            (
                "-v relative",
                "invalid volume specification: 'relative': invalid mount path: 'relative' mount path must be absolute",
            ),
            (
                "-v a:/x",
                "invalid volume specification: 'a:/x': the container path must be absolute",
            ),
            (
                "-v :/x",
                "invalid volume specification: ':/x': the container path must be absolute",
            ),
            ("-v /tmp:/x -v /var:/x/", "Duplicate mount point: /x"),
            (
                "-v /tmp:/x --mount type=bind,src=/tmp,dst=/x",
                "Duplicate mount point: /x",
            ),
            ("-v /tmp:/x --tmpfs /x", "Duplicate mount point: /x"),
        ];
        for (flags, want) in table {
            assert_eq!(error(&format!("{flags} img")), want, "{flags}");
        }
        // What the engine allows side by side.
        spec("-v /x -v /tmp:/x --mount type=volume,dst=/y -v /y --mount type=tmpfs,dst=/z --tmpfs /z img");
    }

    fn mount(line: &str) -> MountSpec {
        let s = spec(&format!("--mount {line} img"));
        assert_eq!(s.host.mounts.len(), 1);
        s.host.mounts[0].clone()
    }

    #[test]
    fn mounts_read_docker_csv() {
        let m = mount("type=bind,src=/tmp,dst=/x");
        assert_eq!(m, MountSpec::bind("/tmp", "/x", false));
        let m = mount("type=bind,source=/tmp,target=/x,readonly");
        assert!(m.read_only);
        let m = mount("type=bind,source=/tmp,destination=/x,ro=false");
        assert!(!m.read_only);
        let m = mount("TYPE=BIND,SRC=/tmp,DST=/x/,bind-propagation=RShared,bind-nonrecursive,consistency=Cached");
        assert_eq!(m.kind, MountKind::Bind);
        assert_eq!(m.target, "/x/");
        assert_eq!(m.bind_propagation.as_deref(), Some("rshared"));
        assert!(m.bind_nonrecursive);
        assert_eq!(m.consistency.as_deref(), Some("cached"));
        let m = mount("type=volume,src=v1,dst=/x,volume-nocopy,volume-label=a=1,volume-label=b,volume-label=a=2,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs");
        assert_eq!(m.kind, MountKind::Volume);
        assert_eq!(m.source.as_deref(), Some("v1"));
        assert!(m.volume_nocopy);
        assert_eq!(m.volume_driver.as_deref(), Some("local"));
        assert_eq!(
            m.volume_labels,
            BTreeMap::from([("a".into(), "2".into()), ("b".into(), String::new())])
        );
        assert_eq!(
            m.volume_options,
            BTreeMap::from([
                ("device".into(), "tmpfs".into()),
                ("type".into(), "tmpfs".into())
            ])
        );
        let m = mount("dst=/x");
        assert_eq!((m.kind, m.source), (MountKind::Volume, None));
        let m = mount("type=tmpfs,dst=/x,tmpfs-size=64m,tmpfs-mode=1777,ro");
        assert_eq!((m.tmpfs_size, m.tmpfs_mode), (Some(64 << 20), Some(0o1777)));
        assert!(m.read_only);
        assert_eq!(
            mount("type=tmpfs,dst=/x,tmpfs-size=1.5k").tmpfs_size,
            Some(1536)
        );
        // Go's CSV: a quoted field keeps its commas; "" is a quote.
        let m = mount(r#"'"type=bind","src=/tmp/a,b",dst=/x'"#);
        assert_eq!(m.source.as_deref(), Some("/tmp/a,b"));
        let m = mount(r#"'type=bind,"src=/tmp/say ""hi""",dst=/x'"#);
        assert_eq!(m.source.as_deref(), Some("/tmp/say \"hi\""));
    }

    #[test]
    fn bad_mounts_are_refused_as_docker_does() {
        let cli = |value: &str, why: &str| {
            format!("invalid argument {value:?} for \"--mount\" flag: {why}")
        };
        let table = [
            ("type=bind,src=/tmp", cli("type=bind,src=/tmp", "target is required")),
            (
                "type=bind,src=/tmp,dst=/x,ro=maybe",
                cli("type=bind,src=/tmp,dst=/x,ro=maybe", "invalid value for ro: maybe"),
            ),
            (
                "type=bind,src=/tmp,dst=/x,foo=1",
                cli("type=bind,src=/tmp,dst=/x,foo=1", "unexpected key 'foo' in 'foo=1'"),
            ),
            (
                "type=bind,src=/tmp,dst=/x,foo",
                cli("type=bind,src=/tmp,dst=/x,foo", "invalid field 'foo' must be a key=value pair"),
            ),
            (
                "type=volume,dst=/x,bind-propagation=shared",
                cli(
                    "type=volume,dst=/x,bind-propagation=shared",
                    "cannot mix 'bind-*' options with mount type 'volume'",
                ),
            ),
            (
                "type=bind,src=/tmp,dst=/x,volume-nocopy",
                cli(
                    "type=bind,src=/tmp,dst=/x,volume-nocopy",
                    "cannot mix 'volume-*' options with mount type 'bind'",
                ),
            ),
            (
                "type=volume,dst=/x,tmpfs-size=1m",
                cli(
                    "type=volume,dst=/x,tmpfs-size=1m",
                    "cannot mix 'tmpfs-*' options with mount type 'volume'",
                ),
            ),
            (
                "type=tmpfs,dst=/x,tmpfs-mode=9",
                cli("type=tmpfs,dst=/x,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
            ),
            (
                "type=tmpfs,dst=/x,tmpfs-size=x",
                cli("type=tmpfs,dst=/x,tmpfs-size=x", "invalid value for tmpfs-size: x"),
            ),
            (
                "type=bind,src=/a\"b,dst=/x",
                cli(
                    "type=bind,src=/a\"b,dst=/x",
                    "parse error on line 1, column 17: bare \" in non-quoted-field",
                ),
            ),
            (
                "type=bind,dst=/x",
                "invalid mount config for type \"bind\": field Source must not be empty".into(),
            ),
            (
                "type=bind,src=rel,dst=/x",
                "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute".into(),
            ),
            (
                "type=bind,src=/tmp,dst=rel",
                "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute".into(),
            ),
            (
                "type=tmpfs,dst=/",
                "invalid mount config for type \"tmpfs\": invalid specification: destination can't be '/'".into(),
            ),
            (
                "type=tmpfs,src=/tmp,dst=/x",
                "invalid mount config for type \"tmpfs\": field Source must not be specified".into(),
            ),
            (
                "type=bind,src=/tmp,dst=/x,bind-propagation=bogus",
                "invalid mount config for type \"bind\": invalid propagation mode: bogus".into(),
            ),
            (
                "dst=/x,ro",
                "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes".into(),
            ),
            (
                "type=npipe,src=/tmp,dst=/x",
                "invalid mount config for type \"npipe\": mount type unknown".into(),
            ),
            (
                "type=volume,src=a,dst=/x",
                "create a: volume name is too short, names should be at least two alphanumeric characters".into(),
            ),
        ];
        for (value, want) in table {
            assert_eq!(error(&format!("--mount '{value}' img")), want, "{value}");
        }
        assert_eq!(
            error("--mount dst=/x --mount dst=/x/ img"),
            "Duplicate mount point: /x"
        );
        // A volume driver other than local names its volumes its own way.
        spec("--mount type=volume,src=_x,dst=/x,volume-driver=nfs img");
    }

    #[test]
    fn tmpfs_paths_take_their_options() {
        let s = spec("--tmpfs /run --tmpfs /x:rw,size=64m,mode=1777 --tmpfs /y:a --tmpfs /y:b --tmpfs /z: img");
        let want: BTreeMap<String, String> = [
            ("/run", ""),
            ("/x", "rw,size=64m,mode=1777"),
            ("/y", "b"),
            ("/z", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(s.host.tmpfs, want);
        assert_eq!(
            error("--tmpfs rel img"),
            "invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            error("--tmpfs / img"),
            "invalid specification: destination can't be '/'"
        );
    }

    #[test]
    fn devices_in_each_docker_form() {
        let device = |host: &str, container: &str, perms: &str| DeviceSpec {
            path_on_host: host.into(),
            path_in_container: container.into(),
            permissions: perms.into(),
        };
        // Where docker cleans a path and where it does not, checked with docker.
        let table = [
            ("/dev/null", device("/dev/null", "/dev/null", "rwm")),
            ("/dev/null/", device("/dev/null", "/dev/null", "rwm")),
            ("/dev/null:/dev/n2", device("/dev/null", "/dev/n2", "rwm")),
            ("/dev/null:rw", device("/dev/null", "/dev/null", "rw")),
            ("/dev/null:/dev/n2:r", device("/dev/null", "/dev/n2", "r")),
            ("/dev//null:/dev/x/", device("/dev//null", "/dev/x", "rwm")),
            (
                "/dev//null:/dev/x/:mw",
                device("/dev//null", "/dev/x/", "mw"),
            ),
            ("/dev/tty*", device("/dev/tty*", "/dev/tty*", "rwm")),
        ];
        for (value, want) in table {
            let s = spec(&format!("--device '{value}' img"));
            assert_eq!(s.host.devices, [want], "{value}");
        }
        let table = [
            ("/dev/null:/dev/n2:x", "bad mode specified: x"),
            ("/dev/null:/dev/n2:rr", "bad mode specified: rr"),
            ("/dev/null:rel", "rel is not an absolute path"),
            ("rel", "rel is not an absolute path"),
            ("a:b:c:d", "bad format for path: a:b:c:d"),
            (":/dev/x", "bad format for path: :/dev/x"),
        ];
        for (value, want) in table {
            assert_eq!(error(&format!("--device {value} img")), want, "{value}");
        }
    }

    #[test]
    fn groups_dns_and_hosts() {
        let s = spec("--group-add 100 --group-add audio --dns 8.8.8.8 --dns 0:0::1 --dns ::ffff:1.2.3.4 --dns ' 1.1.1.1 ' --add-host a:1.2.3.4 --add-host b:::1 --add-host 'c: 1.2.3.4' --add-host gw:host-gateway img");
        assert_eq!(s.host.group_add, ["100", "audio"]);
        // docker sends each DNS server as Go prints the address.
        assert_eq!(s.host.dns, ["8.8.8.8", "::1", "1.2.3.4", "1.1.1.1"]);
        assert_eq!(
            s.host.extra_hosts,
            ["a:1.2.3.4", "b:::1", "c: 1.2.3.4", "gw:host-gateway"]
        );
        assert_eq!(
            error("--dns bad img"),
            "invalid argument \"bad\" for \"--dns\" flag: bad is not an ip address"
        );
        assert_eq!(
            error("--dns 01.2.3.4 img"),
            "invalid argument \"01.2.3.4\" for \"--dns\" flag: 01.2.3.4 is not an ip address"
        );
        assert_eq!(
            error("--add-host a=1.2.3.4 img"),
            "invalid argument \"a=1.2.3.4\" for \"--add-host\" flag: bad format for add-host: \"a=1.2.3.4\""
        );
        assert_eq!(
            error("--add-host :1.2.3.4 img"),
            "invalid argument \":1.2.3.4\" for \"--add-host\" flag: bad format for add-host: \":1.2.3.4\""
        );
        assert_eq!(
            error("--add-host a:bad img"),
            "invalid argument \"a:bad\" for \"--add-host\" flag: invalid IP address in add-host: \"bad\""
        );
    }

    #[test]
    fn capabilities_are_sent_as_current_clis_spell_them() {
        let s = spec(
            "--cap-add net_admin --cap-add CAP_SYS_ADMIN --cap-add sys_Ptrace --cap-drop all img",
        );
        assert_eq!(
            s.host.cap_add,
            ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]
        );
        assert_eq!(s.host.cap_drop, ["ALL"]);
        assert_eq!(
            error("--cap-add bogus img"),
            "invalid CapAdd: unknown capability: \"CAP_BOGUS\""
        );
        assert_eq!(
            error("--cap-drop '' img"),
            "invalid CapDrop: unknown capability: \"CAP_\""
        );
    }

    #[test]
    fn security_options_inline_seccomp_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("sc.json");
        std::fs::write(
            &profile,
            "{ \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"names\": [\"a b\"] }\n",
        )
        .unwrap();
        let inlined = r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","names":["a b"]}"#;
        for form in ["seccomp=", "seccomp:"] {
            let s = spec(&format!("--security-opt {form}{} img", profile.display()));
            assert_eq!(s.host.security_opt, [inlined]);
        }
        // An inline profile reads back as itself (docker would look for a file).
        let s = spec(&format!("--security-opt '{inlined}' img"));
        assert_eq!(s.host.security_opt, [inlined]);
        let s = spec("--security-opt seccomp=unconfined --security-opt no-new-privileges --security-opt no-new-privileges:true --security-opt label:disable --security-opt apparmor=unconfined img");
        assert_eq!(
            s.host.security_opt,
            [
                "seccomp=unconfined",
                "no-new-privileges",
                "no-new-privileges:true",
                "label:disable",
                "apparmor=unconfined"
            ]
        );
        let missing = dir.path().join("nope.json");
        assert_eq!(
            error(&format!("--security-opt seccomp={} img", missing.display())),
            format!(
                "opening seccomp profile ({0}) failed: open {0}: no such file or directory",
                missing.display()
            )
        );
        std::fs::write(&profile, "not json").unwrap();
        let bad = error(&format!("--security-opt seccomp={} img", profile.display()));
        assert!(
            bad.starts_with("compacting json for seccomp profile"),
            "{bad}"
        );
        assert_eq!(
            error("--security-opt bogus img"),
            "Invalid --security-opt: \"bogus\""
        );
        assert_eq!(
            error("--security-opt bogus=1 img"),
            "invalid --security-opt 2: \"bogus=1\""
        );
        assert_eq!(
            error("--security-opt no-new-privileges=maybe img"),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert!(error("--security-opt systempaths=unconfined img").contains("not supported"));
    }

    #[test]
    fn sysctls_and_ulimits() {
        let s = spec("--sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.ip_forward=0 --sysctl kernel.sem= --sysctl fs.mqueue.x=1=2 --ulimit nofile=1024:2048 --ulimit nproc=10 --ulimit nofile=1 --ulimit rtprio=-1:-1 --ulimit core=5:-1 img");
        let want: BTreeMap<String, String> = [
            ("fs.mqueue.x", "1=2"),
            ("kernel.sem", ""),
            ("net.ipv4.ip_forward", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(s.host.sysctls, want);
        let ulimit = |name: &str, soft, hard| Ulimit {
            name: name.into(),
            soft,
            hard,
        };
        assert_eq!(
            s.host.ulimits,
            [
                ulimit("nofile", 1, 1),
                ulimit("nproc", 10, 10),
                ulimit("rtprio", -1, -1),
                ulimit("core", 5, -1)
            ]
        );
        let table = [
            ("--sysctl a", "invalid argument \"a\" for \"--sysctl\" flag: sysctl 'a' is not whitelisted"),
            ("--sysctl bogus.x=1", "invalid argument \"bogus.x=1\" for \"--sysctl\" flag: sysctl 'bogus.x=1' is not whitelisted"),
            ("--ulimit nofile=2048:1024", "invalid argument \"nofile=2048:1024\" for \"--ulimit\" flag: ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
            ("--ulimit bogus=1", "invalid argument \"bogus=1\" for \"--ulimit\" flag: invalid ulimit type: bogus"),
            ("--ulimit NOFILE=1", "invalid argument \"NOFILE=1\" for \"--ulimit\" flag: invalid ulimit type: NOFILE"),
            ("--ulimit nofile=x", "invalid argument \"nofile=x\" for \"--ulimit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"),
            ("--ulimit nofile", "invalid argument \"nofile\" for \"--ulimit\" flag: invalid ulimit argument: nofile"),
            ("--ulimit nofile=1:2:3", "invalid argument \"nofile=1:2:3\" for \"--ulimit\" flag: too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
        ];
        for (flags, want) in table {
            assert_eq!(error(&format!("{flags} img")), want, "{flags}");
        }
    }

    #[test]
    fn published_ports_follow_docker_20_10() {
        // (spec, exposed ports, bindings), each checked with docker 20.10.
        type Case = (
            &'static str,
            &'static [&'static str],
            &'static [(&'static str, &'static str, &'static str)],
        );
        let table: &[Case] = &[
            ("80", &["80/tcp"], &[("80/tcp", "", "")]),
            ("8080:80", &["80/tcp"], &[("80/tcp", "", "8080")]),
            (
                "127.0.0.1:8080:80/udp",
                &["80/udp"],
                &[("80/udp", "127.0.0.1", "8080")],
            ),
            ("127.0.0.1::80", &["80/tcp"], &[("80/tcp", "127.0.0.1", "")]),
            ("[::1]:80:80", &["80/tcp"], &[("80/tcp", "::1", "80")]),
            ("[::1]::80", &["80/tcp"], &[("80/tcp", "::1", "")]),
            (
                "8000-8001:8000-8001",
                &["8000/tcp", "8001/tcp"],
                &[("8000/tcp", "", "8000"), ("8001/tcp", "", "8001")],
            ),
            ("8000-8010:80", &["80/tcp"], &[("80/tcp", "", "8000-8010")]),
            (
                "80-81",
                &["80/tcp", "81/tcp"],
                &[("80/tcp", "", ""), ("81/tcp", "", "")],
            ),
            ("80/TCP", &["80/tcp"], &[("80/tcp", "", "")]),
            ("80/sctp", &["80/sctp"], &[("80/sctp", "", "")]),
            ("80/", &["80/tcp"], &[("80/tcp", "", "")]),
            ("80/tcp/x", &["80/tcp"], &[("80/tcp", "", "")]),
            ("0:80", &["80/tcp"], &[("80/tcp", "", "0")]),
            (
                "1-2-3",
                &["1/tcp", "2/tcp"],
                &[("1/tcp", "", ""), ("2/tcp", "", "")],
            ),
            (":80", &["80/tcp"], &[("80/tcp", "", "")]),
            ("::80", &["80/tcp"], &[("80/tcp", "", "")]),
            (
                "published=8080,target=80,protocol=udp",
                &["80/udp"],
                &[("80/udp", "", "8080")],
            ),
            ("target=80", &["80/tcp"], &[("80/tcp", "", "")]),
        ];
        for (value, exposed, bindings) in table {
            let s = spec(&format!("-p {value} img"));
            let want_exposed: BTreeSet<String> = exposed.iter().map(|p| p.to_string()).collect();
            assert_eq!(s.exposed_ports, want_exposed, "{value}");
            let mut want: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
            for (port, ip, host_port) in *bindings {
                want.entry(port.to_string())
                    .or_default()
                    .push(binding(ip, host_port));
            }
            assert_eq!(s.host.port_bindings, want, "{value}");
        }
        let s = spec("-p 80 -p 80 -p 8080:80 -p 80/udp img");
        assert_eq!(
            s.host.port_bindings["80/tcp"],
            [binding("", ""), binding("", ""), binding("", "8080")]
        );
        let table = [
            (
                "::1:80:80",
                "Invalid ip address ::1: address ::1:: too many colons in address",
            ),
            ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
            ("localhost:80:80", "Invalid ip address: localhost"),
            ("80/icmp", "Invalid proto: icmp"),
            ("70000", "Invalid containerPort: 70000"),
            ("81-80", "Invalid containerPort: 81-80"),
            ("x:80", "Invalid hostPort: x"),
            (
                "8080:80-81",
                "Invalid ranges specified for container and host Ports: 80-81 and 8080",
            ),
            ("''", "No port specified: <empty>"),
            ("/tcp", "No port specified: /tcp<empty>"),
            (
                "published=8080,target",
                "invalid publish opts format (should be name=value but got 'target')",
            ),
        ];
        for (value, want) in table {
            assert_eq!(error(&format!("-p {value} img")), want, "{value}");
        }
    }

    #[test]
    fn exposed_ports_keep_their_protocol_as_written() {
        let s =
            spec("--expose 80 -p 80 --expose 7000-7002/udp --expose 90/TCP --expose 91/icmp img");
        let want: BTreeSet<String> = [
            "80/tcp", "7000/udp", "7001/udp", "7002/udp", "90/TCP", "91/icmp",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(s.exposed_ports, want);
        assert_eq!(s.host.port_bindings.len(), 1);
        let table = [
            ("1:2", "invalid port format for --expose: 1:2"),
            ("90-80", "invalid range format for --expose: 90-80, error: Invalid range specified for the Port: 90-80"),
            ("x", "invalid range format for --expose: x, error: strconv.ParseUint: parsing \"x\": invalid syntax"),
            ("/tcp", "invalid range format for --expose: /tcp, error: Empty string specified for ports."),
        ];
        for (value, want) in table {
            assert_eq!(error(&format!("--expose {value} img")), want, "{value}");
        }
    }

    #[test]
    fn network_modes_as_docker_sends_them() {
        let mode = |line: &str| spec(line).host.network_mode.unwrap();
        assert_eq!(mode("img"), "default");
        assert_eq!(mode("--network default img"), "default");
        assert_eq!(mode("--net=host img"), "host");
        assert_eq!(mode("--network container:abc img"), "container:abc");
        assert_eq!(mode("--network Mynet img"), "Mynet");
        // The long form is lower-cased (a docker quirk); spaced `=` is not the long form.
        assert_eq!(mode("--network name=MyNet img"), "mynet");
        assert_eq!(mode("--network ' name = MyNet ' img"), " name = MyNet ");
        assert_eq!(mode("--network a,b img"), "a,b");
        assert_eq!(error("--network '' img"), "no name set for network");
        assert_eq!(
            error("--network my=net img"),
            "invalid argument \"my=net\" for \"--network\" flag: invalid field key my"
        );
        assert!(error("--network name=n,alias=x img").contains("not supported"));
        let s = spec("--ipc host --pid container:abc img");
        assert_eq!(s.host.ipc_mode.as_deref(), Some("host"));
        assert_eq!(s.host.pid_mode.as_deref(), Some("container:abc"));
        assert_eq!(spec("--ipc '' --pid '' img").host.ipc_mode, None);
        assert_eq!(error("--pid bogus img"), "--pid: invalid PID mode");
        assert_eq!(error("--pid container: img"), "--pid: invalid PID mode");
        assert_eq!(error("--ipc bogus img"), "--ipc: invalid IPC mode");
    }

    #[test]
    fn gpu_requests_in_each_docker_form() {
        let gpu = |count: Option<i64>, ids: &[&str]| GpuRequest {
            driver: String::new(),
            count,
            device_ids: strings(ids),
            capabilities: vec![vec!["gpu".into()]],
            options: BTreeMap::new(),
        };
        let table = [
            ("all", gpu(Some(-1), &[])),
            ("2", gpu(Some(2), &[])),
            ("0", gpu(Some(0), &[])),
            ("count=all", gpu(Some(-1), &[])),
            ("count=3", gpu(Some(3), &[])),
            (r#""device=0,1""#, gpu(None, &["0", "1"])),
            ("device=GPU-abc", gpu(None, &["GPU-abc"])),
            // Unquoted, the `1` is a second CSV field: a bare count (as docker reads it).
            ("device=0,1", gpu(Some(1), &["0"])),
            (r#""device=0,1",count=2"#, gpu(Some(2), &["0", "1"])),
            (r#""device=""#, gpu(None, &[""])),
        ];
        for (value, want) in table {
            let s = spec(&format!("--gpus '{value}' img"));
            assert_eq!(s.host.gpus, Some(want), "{value}");
        }
        let g =
            spec(r#"--gpus 'driver=nvidia,"capabilities=compute,utility","options=a=1,b=2"' img"#)
                .host
                .gpus
                .unwrap();
        assert_eq!(g.driver, "nvidia");
        assert_eq!(g.count, Some(1));
        assert_eq!(g.capabilities, [strings(&["compute", "utility", "gpu"])]);
        assert_eq!(
            g.options,
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        let caps = spec("--gpus capabilities=gpu img").host.gpus.unwrap();
        assert_eq!(caps.capabilities, [strings(&["gpu", "gpu"])]);
        let bad = |value: &str, why: &str| {
            assert_eq!(
                error(&format!("--gpus '{value}' img")),
                format!("invalid argument {value:?} for \"--gpus\" flag: {why}")
            );
        };
        bad(
            "count=x",
            "count must be an integer: strconv.Atoi: parsing \"x\": invalid syntax",
        );
        bad(
            "all,count=2",
            "gpu request key 'count' can be specified only once",
        );
        bad("", "EOF");
        bad("bogus=1", "unexpected key 'bogus' in 'bogus=1'");
        bad("options=", "failed to read gpu options: EOF");
        bad(
            r#""device=0,1"x"#,
            "parse error on line 1, column 12: extraneous or missing \" in quoted-field",
        );
        bad(
            r#"a"b"#,
            "parse error on line 1, column 2: bare \" in non-quoted-field",
        );
    }

    #[test]
    fn sizes_follow_docker_ram_in_bytes() {
        let s = spec("-m 1g --memory-swap 2g --memory-reservation 512m --shm-size 64MiB img");
        assert_eq!(s.host.memory, Some(1 << 30));
        assert_eq!(s.host.memory_swap, Some(2 << 30));
        assert_eq!(s.host.memory_reservation, Some(512 << 20));
        assert_eq!(s.host.shm_size, Some(64 << 20));
        let s = spec("-m 1.5g --memory-swap -1 --shm-size 1 img");
        assert_eq!(s.host.memory, Some(3 << 29));
        assert_eq!(s.host.memory_swap, Some(-1));
        assert_eq!(s.host.shm_size, Some(1));
        assert_eq!(spec("--memory-swap -1 img").host.memory_swap, Some(-1));
        assert_eq!(spec("-m '1 g' img").host.memory, Some(1 << 30));
        // 0 is what docker sends for "not set".
        let s = spec("-m 0 --shm-size 0 img");
        assert_eq!((s.host.memory, s.host.shm_size), (None, None));
        let table = [
            ("-m 1x", "invalid argument \"1x\" for \"-m, --memory\" flag: invalid size: '1x'"),
            ("-m ' 1g'", "invalid argument \" 1g\" for \"-m, --memory\" flag: invalid size: ' 1g'"),
            ("-m 1.", "invalid argument \"1.\" for \"-m, --memory\" flag: invalid size: '1.'"),
            ("-m 1.2.3", "invalid argument \"1.2.3\" for \"-m, --memory\" flag: strconv.ParseFloat: parsing \"1.2.3\": invalid syntax"),
            ("--memory-swap -2", "invalid argument \"-2\" for \"--memory-swap\" flag: invalid size: '-2'"),
            ("--shm-size x", "invalid argument \"x\" for \"--shm-size\" flag: invalid size: 'x'"),
            ("-m 4m", "Minimum memory limit allowed is 6MB"),
            ("-m 6291455", "Minimum memory limit allowed is 6MB"),
            ("--memory-swap 2g", "You should always set the Memory limit when using Memoryswap limit, see usage"),
            ("-m 1g --memory-swap 512m", "Minimum memoryswap limit should be larger than memory limit, see usage"),
            ("-m 512m --memory-reservation 1g", "Minimum memory limit can not be less than memory reservation limit, see usage"),
            ("--memory-reservation 1k", "Minimum memory reservation allowed is 6MB"),
        ];
        for (flags, want) in table {
            assert_eq!(error(&format!("{flags} img")), want, "{flags}");
        }
        spec("-m 1g --memory-swap 1g --memory-reservation 1g img");
        assert_eq!(spec("-m 6m img").host.memory, Some(6 << 20));
    }

    #[test]
    fn cpus_are_exact_nano_cpus() {
        let nano = |value: &str| spec(&format!("--cpus {value} img")).host.nano_cpus;
        assert_eq!(nano("1.5"), Some(1_500_000_000));
        assert_eq!(nano("0.001"), Some(1_000_000));
        assert_eq!(nano("1/2"), Some(500_000_000));
        assert_eq!(nano("1e-1"), Some(100_000_000));
        assert_eq!(nano(".5"), Some(500_000_000));
        assert_eq!(nano("+1"), Some(1_000_000_000));
        assert_eq!(nano("2.50000000000000000000"), Some(2_500_000_000));
        assert_eq!(nano("0"), None);
        let bad = |value: &str, why: &str| {
            assert_eq!(
                error(&format!("--cpus {value} img")),
                format!("invalid argument \"{value}\" for \"--cpus\" flag: {why}")
            );
        };
        bad("0.0000000001", "value is too precise");
        bad("1/3", "value is too precise");
        bad("x", "failed to parse x as a rational number");
        bad("1/0", "failed to parse 1/0 as a rational number");
        bad("-1", "the number of CPUs cannot be negative");
        let s = spec("--cpuset-cpus 0-3,5 img");
        assert_eq!(s.host.cpuset_cpus.as_deref(), Some("0-3,5"));
        assert_eq!(
            error("--cpuset-cpus bogus img"),
            "Invalid value bogus for cpuset cpus: invalid format: bogus"
        );
        assert_eq!(
            error("--cpuset-cpus 3-1 img"),
            "Invalid value 3-1 for cpuset cpus: invalid format: 3-1"
        );
    }

    #[test]
    fn integer_flags_read_go_literals() {
        // pflag's int flags parse with base 0, as docker does (checked: 010 is 8).
        let timeout = |value: &str| spec(&format!("--stop-timeout {value} img")).stop_timeout;
        assert_eq!(timeout("10"), Some(10));
        assert_eq!(timeout("0"), Some(0));
        assert_eq!(timeout("-1"), Some(-1));
        assert_eq!(timeout("010"), Some(8));
        assert_eq!(timeout("0x10"), Some(16));
        assert_eq!(timeout("0b11"), Some(3));
        assert_eq!(timeout("0o17"), Some(15));
        assert_eq!(timeout("1_0"), Some(10));
        assert_eq!(timeout("+5"), Some(5));
        assert_eq!(
            error("--stop-timeout x img"),
            "invalid argument \"x\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            error("--stop-timeout 99999999999999999999 img"),
            "invalid argument \"99999999999999999999\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        for bad in ["08", "1__0", "_1", "1_", "0x", ""] {
            assert!(
                parse(&format!("--stop-timeout '{bad}' img")).is_err(),
                "{bad:?}"
            );
        }
        let pids = |value: &str| spec(&format!("--pids-limit {value} img")).host.pids_limit;
        assert_eq!(pids("10"), Some(10));
        assert_eq!(pids("-1"), Some(-1));
        assert_eq!(pids("0"), None);
        let oom = |value: &str| {
            spec(&format!("--oom-score-adj {value} img"))
                .host
                .oom_score_adj
        };
        assert_eq!(oom("5"), Some(5));
        assert_eq!(oom("-0x10"), Some(-16));
        assert_eq!(oom("0"), None);
        assert_eq!(
            error("--oom-score-adj 1001 img"),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
    }

    #[test]
    fn restart_policies_and_rm() {
        let restart = |line: &str| {
            let r = spec(line).host.restart.unwrap();
            (r.name, r.maximum_retry_count)
        };
        assert_eq!(restart("--restart always img"), ("always".into(), 0));
        assert_eq!(
            restart("--restart unless-stopped img"),
            ("unless-stopped".into(), 0)
        );
        assert_eq!(
            restart("--restart on-failure img"),
            ("on-failure".into(), 0)
        );
        assert_eq!(
            restart("--restart on-failure:3 img"),
            ("on-failure".into(), 3)
        );
        assert_eq!(restart("--restart '' img"), (String::new(), 0));
        assert_eq!(restart("--restart no --rm img"), ("no".into(), 0));
        assert!(spec("--rm img").host.auto_remove);
        let table = [
            (
                "--restart always --rm",
                "Conflicting options: --restart and --rm",
            ),
            (
                "--restart on-failure:x",
                "maximum retry count must be an integer",
            ),
            ("--restart on-failure:1:2", "invalid restart policy format"),
            ("--restart bogus", "invalid restart policy 'bogus'"),
            (
                "--restart always:3",
                "maximum retry count cannot be used with restart policy 'always'",
            ),
            (
                "--restart on-failure:-1",
                "maximum retry count cannot be negative",
            ),
        ];
        for (flags, want) in table {
            assert_eq!(error(&format!("{flags} img")), want, "{flags}");
        }
    }

    #[test]
    fn plain_string_flags() {
        let s = spec("--name web-1 -u 1000:1000 -w /a/b/ -h 'bad host' --stop-signal SIGUSR1 --init --read-only --privileged img");
        assert_eq!(s.name.as_deref(), Some("web-1"));
        assert_eq!(s.user.as_deref(), Some("1000:1000"));
        assert_eq!(s.workdir.as_deref(), Some("/a/b/"));
        assert_eq!(s.hostname.as_deref(), Some("bad host"));
        assert_eq!(s.stop_signal.as_deref(), Some("SIGUSR1"));
        assert_eq!(s.host.init, Some(true));
        assert!(s.host.readonly_rootfs && s.host.privileged);
        let s = spec("--name '' -u '' -w '' -h '' --stop-signal '' img");
        assert_eq!(
            (s.name, s.user, s.workdir, s.hostname),
            (None, None, None, None)
        );
        assert_eq!(s.stop_signal, None);
        assert_eq!(spec("--entrypoint '' img").entrypoint, Some(strings(&[""])));
        assert_eq!(
            spec("--entrypoint 'a b' img").entrypoint,
            Some(strings(&["a b"]))
        );
        for signal in ["9", "KILL", "sigusr1", "RTMIN+3", "SIGRTMAX-1"] {
            spec(&format!("--stop-signal {signal} img"));
        }
        assert_eq!(error("--stop-signal bogus img"), "Invalid signal: bogus");
        assert_eq!(error("--stop-signal 0 img"), "Invalid signal: 0");
        assert_eq!(
            error("--name 'bad name' img"),
            "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert!(error("--name a img").starts_with("Invalid container name (a)"));
        assert_eq!(
            error("-w rel img"),
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
    }

    #[test]
    fn the_less_common_flags_land_where_docker_puts_them() {
        let s = spec(
            "--cpu-shares 512 --memory-swappiness=10 --uts host --dns-search a.org \
             --link db --volumes-from data:ro --device-read-bps /dev/sda:1mb \
             --blkio-weight-device /dev/sda:300 -P --oom-kill-disable \
             --log-driver json-file --log-opt max-size=10m --storage-opt size=1G \
             --health-cmd 'curl -f x' --health-interval 1m30s --health-retries 3 \
             --domainname d.org --platform linux/amd64 img",
        );
        let e = &s.extra;
        assert_eq!(e.ints["CpuShares"], 512);
        assert_eq!(e.ints["MemorySwappiness"], 10);
        assert_eq!(e.strings["UTSMode"], "host");
        assert_eq!(e.lists["Links"], ["db:db"]);
        assert_eq!(e.lists["VolumesFrom"], ["data:ro"]);
        assert_eq!(
            e.throttles["BlkioDeviceReadBps"],
            [("/dev/sda".to_string(), 1 << 20)]
        );
        assert_eq!(
            e.throttles["BlkioWeightDevice"],
            [("/dev/sda".to_string(), 300)]
        );
        assert!(e.switches.contains("PublishAllPorts") && e.switches.contains("OomKillDisable"));
        assert_eq!(e.log_opts["max-size"], "10m");
        assert_eq!(e.storage_opts["size"], "1G");
        let health = e.healthcheck.as_ref().unwrap();
        assert_eq!(health.test, ["CMD-SHELL", "curl -f x"]);
        assert_eq!(health.interval, 90_000_000_000);
        assert_eq!(health.retries, 3);
        assert_eq!(e.domainname.as_deref(), Some("d.org"));
        assert_eq!(e.platform.as_deref(), Some("linux/amd64"));
        let body = s.to_api_json();
        assert_eq!(body["HostConfig"]["BlkioDeviceReadBps"][0]["Rate"], 1 << 20);
        assert_eq!(body["HostConfig"]["BlkioWeightDevice"][0]["Weight"], 300);
        assert_eq!(body["HostConfig"]["LogConfig"]["Type"], "json-file");
        assert_eq!(body["Healthcheck"]["Interval"], 90_000_000_000_i64);
        // A spec with none of them sends what the docker CLI sends for none.
        let plain = spec("img").to_api_json();
        assert_eq!(plain["HostConfig"]["DnsSearch"], serde_json::json!([]));
        assert!(plain["HostConfig"].get("LogConfig").is_none());
    }

    #[test]
    fn the_less_common_flags_refuse_what_docker_refuses() {
        assert!(error("--memory-swappiness 101 img").contains("swappiness range is 0-100"));
        assert!(error("--cgroupns maybe img").contains("--cgroupns: invalid CGROUP mode"));
        assert!(error("--uts private img").contains("--uts: invalid UTS mode"));
        assert!(error("--no-healthcheck --health-retries 2 img").contains("conflicts"));
        assert!(error("--health-interval 10 img").contains("missing unit"));
        assert!(error("--health-timeout -1s img").contains("cannot be negative"));
        assert!(error("-d -a stdout img").contains("Conflicting options: -a and -d"));
        assert!(error("-a stdmeh img").contains("valid streams"));
        assert!(error("--network-alias x img").contains("user-defined networks"));
        assert!(error("--device-read-bps sda:1mb img").contains("bad format"));
        assert!(error("--blkio-weight 70000 img").contains("--blkio-weight"));
        assert!(error("--log-driver none --log-opt a=b img").contains("driver none"));
        assert!(error("--storage-opt size img").contains("invalid storage option"));
        assert!(error("--mac-address 12:34 img").contains("not a valid mac address"));
        assert!(error("--ip 300.1.1.1 --network n img").contains("not an ip address"));
        let aliased = spec("--network n --network-alias x --ip 10.0.0.5 img").to_api_json();
        let endpoint = &aliased["NetworkingConfig"]["EndpointsConfig"]["n"];
        assert_eq!(endpoint["Aliases"], serde_json::json!(["x"]));
        assert_eq!(endpoint["IPAMConfig"]["IPv4Address"], "10.0.0.5");
    }
}
