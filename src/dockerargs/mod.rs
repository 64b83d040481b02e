//! Docker's `run`/`create` flags and their values: read into a
//! [`ContainerSpec`](crate::spec::ContainerSpec) exactly as the docker CLI 20.10 would
//! send them, and a spec rendered back as `docker run` arguments.
//!
//! No engine. The parsers follow the docker CLI's rules so that a value a user copies
//! from their `docker run` notes means the same thing here; the only I/O is reading the
//! env files and seccomp profiles that flags name.
//!
//! This file holds the small value types and parsers (sizes, CPUs, `--gpus`, `-p`, `-v`)
//! and the shell quoting; `from_flags` reads flags into a spec ([`spec_from_args`]),
//! `to_flags` renders a spec as flags ([`spec_to_args`]), and `go` reproduces the Go
//! standard library's readings of numbers, CSV, paths and addresses that both rely on.

mod from_flags;
mod go;
#[cfg(test)]
mod test_support;
mod to_flags;

use std::fmt;

pub use from_flags::{check_port, check_volume, spec_from_args};
pub use to_flags::spec_to_args;

/// A boolean flag's value as pflag reads it (`true`, `1`, `T`, `false`, `0`, ...).
pub fn bool_flag(flag: &str, raw: &str) -> Result<bool, String> {
    go::parse_bool(raw).ok_or_else(|| {
        format!("invalid argument {raw:?} for \"{flag}\" flag: strconv.ParseBool: parsing {raw:?}: invalid syntax")
    })
}

/// What `--gpus` asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuSpec {
    All,
    Count(u32),
    Devices(Vec<String>),
}

impl GpuSpec {
    /// Docker's forms: `all`, `2`, `device=0,1` (also quoted, as shells pass
    /// `'"device=0,1"'`), `count=2`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim().trim_matches('"').trim();
        let bad =
            || format!("invalid gpus {raw:?}: write `all`, a count like `2`, or `device=0,1`");
        if text == "all" || text == "count=all" {
            return Ok(Self::All);
        }
        if let Some(ids) = text.strip_prefix("device=") {
            let ids: Vec<String> = ids.split(',').map(|id| id.trim().to_string()).collect();
            if ids.iter().any(String::is_empty) {
                return Err(bad());
            }
            return Ok(Self::Devices(ids));
        }
        let count = text.strip_prefix("count=").unwrap_or(text);
        match count.parse::<u32>() {
            Ok(0) | Err(_) => Err(bad()),
            Ok(n) => Ok(Self::Count(n)),
        }
    }
}

impl fmt::Display for GpuSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Count(n) => write!(f, "{n}"),
            Self::Devices(ids) => write!(f, "\"device={}\"", ids.join(",")),
        }
    }
}

/// A published port: `-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortSpec {
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: String,
}

impl PortSpec {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid port {raw:?}: {why}");
        let (addr, protocol) = match raw.rsplit_once('/') {
            Some((addr, proto @ ("tcp" | "udp" | "sctp"))) => (addr, proto),
            Some(_) => return Err(bad("the protocol must be tcp, udp or sctp")),
            None => (raw, "tcp"),
        };
        let parts: Vec<&str> = addr.rsplitn(3, ':').collect();
        let port = |text: &str| -> Result<u16, String> {
            if text.contains('-') {
                return Err(bad("port ranges are not supported yet; publish each port"));
            }
            match text.parse::<u16>() {
                Ok(0) | Err(_) => Err(bad(&format!("{text:?} is not a port number"))),
                Ok(p) => Ok(p),
            }
        };
        let container_port = port(parts[0])?;
        let host_port = match parts.get(1) {
            Some(text) if !text.is_empty() => Some(port(text)?),
            _ => None,
        };
        let host_ip = parts
            .get(2)
            .map(|ip| ip.trim_start_matches('[').trim_end_matches(']').to_string());
        Ok(Self {
            host_ip,
            host_port,
            container_port,
            protocol: protocol.to_string(),
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host_ip {
            // An IPv6 address keeps its brackets, or its colons read as the ports'.
            Some(ip) if ip.contains(':') => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        match (self.host_port, &self.host_ip) {
            (Some(port), _) => write!(f, "{port}:")?,
            (None, Some(_)) => f.write_str(":")?,
            (None, None) => {}
        }
        write!(f, "{}", self.container_port)?;
        if self.protocol != "tcp" {
            write!(f, "/{}", self.protocol)?;
        }
        Ok(())
    }
}

/// A `-v` mount: `SRC:DST[:OPTS]` (a host path or a named volume) or `DST` (anonymous).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeSpec {
    /// A host path (absolute, or relative to be resolved by the caller), a volume name,
    /// or none for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    /// Docker's options as written: `ro`, `rw`, `z`, `Z`, `nocopy`, propagation.
    pub options: Vec<String>,
}

const VOLUME_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "z",
    "Z",
    "nocopy",
    "consistent",
    "cached",
    "delegated",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
];

impl VolumeSpec {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: String| format!("invalid volume {raw:?}: {why}");
        let parts: Vec<&str> = raw.split(':').collect();
        let (source, target, options) = match parts.as_slice() {
            [target] => (None, *target, ""),
            [source, target] => (Some(*source), *target, ""),
            [source, target, options] => (Some(*source), *target, *options),
            _ => return Err(bad("expected SRC:DST[:OPTIONS]".into())),
        };
        if !target.starts_with('/') {
            return Err(bad(format!(
                "the container path {target:?} must be absolute"
            )));
        }
        if source == Some("") {
            return Err(bad("the source is empty".into()));
        }
        let options: Vec<String> = options
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(unknown) = options
            .iter()
            .find(|o| !VOLUME_OPTIONS.contains(&o.as_str()))
        {
            return Err(bad(format!("unknown option {unknown:?}")));
        }
        Ok(Self {
            source: source.map(str::to_string),
            target: normalize_container_path(target),
            options,
        })
    }

    /// Whether the source names a host path (docker: it contains a `/` or starts with `.`
    /// or `~`) rather than a named volume.
    pub fn is_host_path(&self) -> bool {
        self.source
            .as_deref()
            .is_some_and(|s| s.contains('/') || s.starts_with('.') || s.starts_with('~'))
    }

    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// Back to docker's `-v` syntax.
    pub fn to_arg(&self) -> String {
        let mut arg = match &self.source {
            Some(source) => format!("{source}:{}", self.target),
            None => self.target.clone(),
        };
        if !self.options.is_empty() {
            arg.push(':');
            arg.push_str(&self.options.join(","));
        }
        arg
    }
}

/// A container path with doubled and trailing slashes removed: `/data/` → `/data`.
pub fn normalize_container_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Quote one word for a POSIX shell, only where needed.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Joins `args` into one line a POSIX shell reads back as the same words.
pub fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_in_each_docker_form() {
        assert_eq!(GpuSpec::parse("all").unwrap(), GpuSpec::All);
        assert_eq!(GpuSpec::parse("2").unwrap(), GpuSpec::Count(2));
        assert_eq!(GpuSpec::parse("count=3").unwrap(), GpuSpec::Count(3));
        let devices = GpuSpec::Devices(vec!["0".into(), "1".into()]);
        assert_eq!(GpuSpec::parse("device=0,1").unwrap(), devices);
        assert_eq!(GpuSpec::parse("\"device=0,1\"").unwrap(), devices);
        assert_eq!(GpuSpec::parse(&devices.to_string()).unwrap(), devices);
        for bad in ["", "0", "two", "device=", "device=0,,1"] {
            assert!(GpuSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports_in_each_docker_form() {
        let p = PortSpec::parse("8888").unwrap();
        assert_eq!((p.host_port, p.container_port), (None, 8888));
        let p = PortSpec::parse("8080:80").unwrap();
        assert_eq!((p.host_port, p.container_port), (Some(8080), 80));
        let p = PortSpec::parse("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.protocol, "udp");
        for raw in [
            "8888",
            "8080:80",
            "127.0.0.1:8080:80/udp",
            "127.0.0.1::80",
            "[::1]:8080:80",
            "[::]::80",
        ] {
            assert_eq!(PortSpec::parse(raw).unwrap().to_string(), raw);
        }
        for bad in ["", "x", "0", "70000", "80/icmp", "8000-8010:8000-8010"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn volumes_in_each_docker_form() {
        let v = VolumeSpec::parse("/scratch:/scratch:ro").unwrap();
        assert!(v.is_host_path() && v.read_only());
        let v = VolumeSpec::parse("cache:/root/.cache").unwrap();
        assert!(!v.is_host_path());
        let v = VolumeSpec::parse("/var/lib/thing").unwrap();
        assert_eq!(v.source, None);
        assert_eq!(VolumeSpec::parse("/a:/data/").unwrap().target, "/data");
        assert_eq!(
            VolumeSpec::parse("./x:/x:ro,z").unwrap().to_arg(),
            "./x:/x:ro,z"
        );
        for bad in ["", "a:b", "/a:/b:bogus", ":/x", "a:b:c:d"] {
            assert!(VolumeSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shell_quoting_is_minimal_and_safe() {
        assert_eq!(shell_quote("plain/path-1.0"), "plain/path-1.0");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
