//! Where the Docker engine is, decided as the docker CLI decides it: `DOCKER_HOST`, else
//! `DOCKER_CONTEXT`, else `currentContext` in docker's config.json, else the default
//! socket. Someone who set up `docker context use rootless` expects berth to reach the
//! same engine as `docker ps`; anything else would show them other containers.
//!
//! [`resolve`] takes the environment and the home directory as arguments, so every rule
//! is tested without touching the real ones; it reads only docker's own files. It also
//! refuses what berth cannot connect to yet, so an [`Endpoint`] is always one that
//! [`crate::engine`] knows how to reach.

use std::collections::HashMap;
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where dockerd listens unless told otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// docker's default when TLS is on and nothing names a host.
const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

/// docker's port for a `tcp://` host that names none (even with TLS, as docker does).
const DEFAULT_TCP_PORT: u16 = 2375;

/// The context docker never stores: it is made of `DOCKER_HOST` and the TLS variables.
const DEFAULT_CONTEXT: &str = "default";

/// The engine to talk to, how to reach it, and which setting said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As the setting wrote it (or docker's default): what the user will recognise.
    pub host: String,
    pub origin: Origin,
    pub transport: Transport,
}

/// Which setting chose the engine, for messages: a wrong engine is found by asking
/// "who said so?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    DockerHost,
    /// Nothing named an engine.
    Default,
    Context {
        name: String,
        source: ContextSource,
    },
}

/// Who named the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    DockerContext,
    /// A command's `--context` flag.
    Flag,
    /// `currentContext` in this config.json (what `docker context use` writes).
    CurrentContext(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A unix socket.
    Unix(PathBuf),
    /// Plain HTTP to `host:port`.
    Http { addr: String },
    /// HTTPS to `host:port`, verifying the engine against `tls.ca`.
    Https { addr: String, tls: Tls },
    /// `ssh [-l user] [-p port] host docker system dial-stdio`, as the docker CLI
    /// reaches an `ssh://` engine.
    Ssh(SshTarget),
}

/// Where an `ssh://[user@]host[:port]` engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// The part after `ssh://`, as docker takes it: no path, no password.
    fn parse(rest: &str) -> std::result::Result<Self, String> {
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err("an ssh:// address names no path".into());
        }
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, _)) if user.contains(':') => {
                return Err("berth takes no password in an ssh:// address: use a key".into())
            }
            Some((user, hostport)) if !user.is_empty() => (Some(user.to_string()), hostport),
            Some(_) => return Err("the user before @ is empty".into()),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !hostport.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("{port:?} is not a port"))?;
                (host, Some(port))
            }
            _ => (hostport, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        // A host that starts with `-` would be an option to ssh.
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err("that is not a host".into());
        }
        let user_ok = user
            .as_deref()
            .is_none_or(|u| !u.starts_with('-') && !u.contains(char::is_whitespace));
        if !user_ok {
            return Err("that is not a user name".into());
        }
        Ok(Self {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// The arguments of `ssh` that run `docker system dial-stdio` there, without
    /// prompting for anything.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(str::to_string));
        args
    }
}

/// The TLS files docker would use. Only the CA must exist: without a client certificate
/// the engine is still verified, and asks for one if it wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Tls {
    /// The three files under the names docker gives them, in `dir`.
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    fn any_exists(&self) -> bool {
        [&self.ca, &self.cert, &self.key].iter().any(|f| f.exists())
    }
}

impl fmt::Display for ContextSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextSource::DockerContext => f.write_str("DOCKER_CONTEXT"),
            ContextSource::Flag => f.write_str("--context"),
            ContextSource::CurrentContext(path) => {
                write!(f, "currentContext in {}", path.display())
            }
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::DockerHost => f.write_str("DOCKER_HOST"),
            Origin::Default => f.write_str("docker's default"),
            Origin::Context { name, source } => write!(f, "context \"{name}\" ({source})"),
        }
    }
}

/// `HOST (where it came from)`, as every message about the engine names it.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        named(&self.host, &self.origin).fmt(f)
    }
}

fn named(host: &str, origin: &Origin) -> String {
    match origin {
        Origin::DockerHost => format!("{host} (from DOCKER_HOST)"),
        Origin::Default => {
            format!("{host} (the default: no DOCKER_HOST, DOCKER_CONTEXT or currentContext)")
        }
        Origin::Context { name, source } => format!("{host} (context \"{name}\", from {source})"),
    }
}

/// The engine of docker context `name`, as `docker --context NAME` reaches it:
/// `DOCKER_HOST` and `DOCKER_CONTEXT` do not count.
pub fn of_context(name: &str) -> Result<Endpoint> {
    let config_dir = docker_config_dir();
    if name == DEFAULT_CONTEXT {
        let var = |var: &str| match var {
            "DOCKER_HOST" | "DOCKER_CONTEXT" => None,
            _ => std::env::var(var).ok().filter(|value| !value.is_empty()),
        };
        let origin = Origin::Context {
            name: name.to_string(),
            source: ContextSource::Flag,
        };
        return default_context(&var, config_dir.as_deref(), origin);
    }
    stored_context(name.to_string(), ContextSource::Flag, config_dir.as_deref())
}

/// The context a command's `--context` names, for every engine the process reaches.
static CHOSEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes [`from_env`] reach context `name`, as docker's `--context` does: over
/// `DOCKER_HOST` and `DOCKER_CONTEXT`. The first choice of a process holds.
pub fn choose(name: &str) {
    CHOSEN.get_or_init(|| name.to_string());
}

/// [`resolve`] with the process's environment and home directory, unless a command
/// chose a context ([`choose`]).
pub fn from_env() -> Result<Endpoint> {
    if let Some(name) = CHOSEN.get() {
        return of_context(name);
    }
    let home = dirs::home_dir();
    resolve(&|name| std::env::var(name).ok(), home.as_deref())
}

/// Every context docker knows: `default`, then those of its store, by name.
pub fn context_names() -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(rename = "Name")]
        name: String,
    }
    let mut names = Vec::new();
    if let Some(dir) = docker_config_dir() {
        let meta = dir.join("contexts/meta");
        let entries = match std::fs::read_dir(&meta) {
            Ok(entries) => entries.flatten().collect(),
            Err(err) if err.kind() == ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(Error::io("read", &meta, err)),
        };
        for entry in entries {
            let text = std::fs::read(entry.path().join("meta.json")).ok();
            let named = text.and_then(|text| serde_json::from_slice::<Named>(&text).ok());
            names.extend(named.map(|n| n.name));
        }
    }
    names.sort();
    names.retain(|name| name != DEFAULT_CONTEXT);
    names.insert(0, DEFAULT_CONTEXT.to_string());
    Ok(names)
}

/// `DOCKER_CONFIG`, else `~/.docker`.
fn docker_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|home| home.join(".docker")))
}

impl Endpoint {
    /// The docker context it is, as `docker context ls` names it: `default` for
    /// `DOCKER_HOST` and the default socket.
    pub fn context(&self) -> &str {
        match &self.origin {
            Origin::Context { name, .. } => name,
            _ => DEFAULT_CONTEXT,
        }
    }

    /// Whether it is an engine on this host: a unix socket.
    pub fn is_local(&self) -> bool {
        matches!(self.transport, Transport::Unix(_))
    }
}

/// The engine the docker CLI would talk to, given its environment (`env`) and the
/// user's home directory. An empty variable counts as unset, as it does for docker.
pub fn resolve(env: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Result<Endpoint> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    let config_dir = var("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| home.map(|home| home.join(".docker")));
    let config_dir = config_dir.as_deref();
    // DOCKER_HOST wins over any context: docker's resolveContextName.
    if var("DOCKER_HOST").is_some() {
        return default_context(&var, config_dir, Origin::DockerHost);
    }
    let (name, source) = match var("DOCKER_CONTEXT") {
        Some(name) => (name, ContextSource::DockerContext),
        None => match current_context(config_dir)? {
            Some((name, config)) => (name, ContextSource::CurrentContext(config)),
            None => return default_context(&var, config_dir, Origin::Default),
        },
    };
    if name == DEFAULT_CONTEXT {
        default_context(&var, config_dir, Origin::Context { name, source })
    } else {
        stored_context(name, source, config_dir)
    }
}

/// docker's "default" context: `DOCKER_HOST` or the default socket, with TLS when the
/// TLS variables ask for it.
fn default_context(
    var: &dyn Fn(&str) -> Option<String>,
    config_dir: Option<&Path>,
    origin: Origin,
) -> Result<Endpoint> {
    let verify = var("DOCKER_TLS_VERIFY").is_some();
    // DOCKER_TLS alone is TLS without verifying the engine.
    let skip_verify = !verify && var("DOCKER_TLS").is_some();
    let tls = if verify || skip_verify {
        let dir = var("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| config_dir.map(Path::to_path_buf));
        Some(dir.map(|dir| Tls::in_dir(&dir)).ok_or_else(|| {
            Error::failed("TLS is on, but berth cannot tell where its certificates are")
                .hint("set DOCKER_CERT_PATH to the folder of ca.pem, cert.pem and key.pem")
        })?)
    } else {
        None
    };
    let host = var("DOCKER_HOST").unwrap_or_else(|| {
        let default = if tls.is_some() {
            DEFAULT_TLS_HOST
        } else {
            DEFAULT_HOST
        };
        default.to_string()
    });
    endpoint(host, origin, tls, skip_verify)
}

/// The part of docker's config.json that berth reads; the rest is docker's.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

/// `currentContext` from `<config dir>/config.json`, and the file it came from. No file
/// is no context; a broken one is an error, since guessing could mean another engine.
fn current_context(config_dir: Option<&Path>) -> Result<Option<(String, PathBuf)>> {
    let Some(dir) = config_dir else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("read docker's config", &path, err)),
    };
    // docker accepts an empty file.
    if text.trim().is_empty() {
        return Ok(None);
    }
    let config: ConfigFile = serde_json::from_str(&text).map_err(|err| {
        Error::failed(format!(
            "cannot read docker's config {}: {err}",
            path.display()
        ))
        .hint("it names the Docker context to use; fix it, or move it aside for the default engine")
    })?;
    Ok(config
        .current_context
        .filter(|name| !name.is_empty())
        .map(|name| (name, path)))
}

/// The part of a context's meta.json that berth reads.
#[derive(Deserialize)]
struct ContextMeta {
    /// Other tools (kubernetes, once) keep their own endpoints here, in their own shape.
    #[serde(rename = "Endpoints", default)]
    endpoints: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct DockerEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The folder docker keeps a context in: the lowercase hex SHA-256 of its name, so that
/// any name is a safe path.
pub fn context_id(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A context from docker's context store, as `docker context create` wrote it.
fn stored_context(
    name: String,
    source: ContextSource,
    config_dir: Option<&Path>,
) -> Result<Endpoint> {
    let id = context_id(&name);
    let change = match source {
        ContextSource::DockerContext => "`unset DOCKER_CONTEXT` for the default engine",
        ContextSource::Flag => "`docker context ls` lists the contexts there are",
        ContextSource::CurrentContext(_) => {
            "`docker context use NAME` changes currentContext (`default` is the local socket)"
        }
    };
    let inspect = format!("`docker context inspect {name}` shows it");
    let origin = Origin::Context { name, source };
    let Some(config_dir) = config_dir else {
        return Err(Error::failed(format!(
            "cannot look up {origin}: neither HOME nor DOCKER_CONFIG is set"
        ))
        .hint("set DOCKER_CONFIG to docker's config folder (usually ~/.docker)"));
    };
    let meta = config_dir.join("contexts/meta").join(&id).join("meta.json");
    let text = match std::fs::read_to_string(&meta) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            return Err(Error::failed(format!(
                "{origin} does not exist: there is no {}",
                meta.display()
            ))
            .hint(format!("`docker context ls` lists the contexts; {change}")));
        }
        Err(err) => return Err(Error::io(&format!("read {origin} from"), &meta, err)),
    };
    let broken = |why: String| {
        Error::failed(format!(
            "cannot read {origin} from {}: {why}",
            meta.display()
        ))
        .hint(inspect.clone())
    };
    let parsed: ContextMeta = serde_json::from_str(&text).map_err(|err| broken(err.to_string()))?;
    let docker = match parsed.endpoints.get("docker") {
        Some(value) => DockerEndpoint::deserialize(value).map_err(|err| broken(err.to_string()))?,
        None => return Err(broken("it has no docker endpoint".to_string())),
    };
    let host = docker
        .host
        .filter(|host| !host.is_empty())
        .ok_or_else(|| broken("its docker endpoint has no Host".to_string()))?;
    let tls = Tls::in_dir(&config_dir.join("contexts/tls").join(&id).join("docker"));
    let tls = tls.any_exists().then_some(tls);
    endpoint(host, origin, tls, docker.skip_tls_verify)
}

/// Turns a host, in any of docker's forms, into a transport berth can open; refuses the
/// ones it cannot, naming the setting to change.
fn endpoint(host: String, origin: Origin, tls: Option<Tls>, skip_verify: bool) -> Result<Endpoint> {
    let cannot = |why: String| {
        Error::failed(format!(
            "cannot use the Docker engine at {}: {why}",
            named(&host, &origin)
        ))
    };
    let trimmed = host.trim();
    let (scheme, rest) = trimmed.split_once("://").unwrap_or(("tcp", trimmed));
    let transport = match scheme {
        "unix" => Transport::Unix(PathBuf::from(if rest.is_empty() {
            DEFAULT_SOCKET
        } else {
            rest
        })),
        "tcp" | "http" | "https" => {
            let addr = tcp_addr(rest).ok_or_else(|| {
                cannot("that is not a host and port".to_string())
                    .hint("docker's forms are unix:///path, tcp://host:port and host:port")
            })?;
            if skip_verify {
                return Err(cannot(
                    "berth does not support TLS without verifying the engine yet".to_string(),
                )
                .hint("give it the engine's CA: DOCKER_TLS_VERIFY=1, or a context made with `docker context create --docker host=...,ca=...`"));
            }
            match tls {
                Some(tls) if !tls.ca.exists() => {
                    return Err(cannot(format!(
                        "TLS is on, but there is no CA certificate at {}",
                        tls.ca.display()
                    ))
                    .hint("berth verifies the engine against ca.pem; put it next to cert.pem and key.pem"));
                }
                Some(tls) => Transport::Https { addr, tls },
                None if scheme == "https" => {
                    return Err(cannot("https:// needs TLS certificates".to_string()).hint(
                        "set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder of ca.pem, cert.pem and key.pem",
                    ));
                }
                None => Transport::Http { addr },
            }
        }
        "ssh" => Transport::Ssh(
            SshTarget::parse(rest)
                .map_err(|why| cannot(why).hint("docker's form is ssh://[user@]host[:port]"))?,
        ),
        "npipe" | "fd" => {
            return Err(cannot(format!(
                "berth does not support the {scheme}:// transport yet"
            ))
            .hint("point it at a unix:// socket or a tcp:// address"));
        }
        _ => {
            return Err(cannot(format!("unknown transport {scheme}://"))
                .hint("docker's forms are unix:///path, tcp://host:port and host:port"));
        }
    };
    Ok(Endpoint {
        host,
        origin,
        transport,
    })
}

/// `host:port` from the part after `tcp://`, with docker's defaults for a missing host
/// or port; `None` when it is not an address. docker also takes a base path after it;
/// bollard cannot, so that is not an address either.
fn tcp_addr(rest: &str) -> Option<String> {
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    // `[::1]` has colons but no port.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !authority.ends_with(']') => (host, port),
        _ => (authority, ""),
    };
    let port = if port.is_empty() {
        DEFAULT_TCP_PORT
    } else {
        port.parse::<u16>().ok()?
    };
    let host = if host.is_empty() { "localhost" } else { host };
    if host.contains(|c: char| c.is_whitespace() || "/@".contains(c)) {
        return None;
    }
    Some(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A home directory and a fake environment, as `resolve` sees them.
    struct Fixture {
        home: tempfile::TempDir,
        env: HashMap<String, String>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                home: tempfile::tempdir().unwrap(),
                env: HashMap::new(),
            }
        }

        fn env(mut self, key: &str, value: &str) -> Self {
            self.env.insert(key.to_string(), value.to_string());
            self
        }

        fn docker_dir(&self) -> PathBuf {
            self.home.path().join(".docker")
        }

        fn config(&self, text: &str) -> PathBuf {
            std::fs::create_dir_all(self.docker_dir()).unwrap();
            let path = self.docker_dir().join("config.json");
            std::fs::write(&path, text).unwrap();
            path
        }

        /// Writes a context into the store under `config_dir`, as `docker context
        /// create NAME --docker host=HOST` does.
        fn context_in(&self, config_dir: &Path, name: &str, host: &str) -> PathBuf {
            let dir = config_dir.join("contexts/meta").join(context_id(name));
            std::fs::create_dir_all(&dir).unwrap();
            let meta = serde_json::json!({
                "Name": name,
                "Metadata": {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}},
            });
            std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
            dir.join("meta.json")
        }

        fn context(&self, name: &str, host: &str) -> PathBuf {
            self.context_in(&self.docker_dir(), name, host)
        }

        fn resolve(&self) -> Result<Endpoint> {
            resolve(&|name| self.env.get(name).cloned(), Some(self.home.path()))
        }

        fn endpoint(&self) -> Endpoint {
            self.resolve()
                .unwrap_or_else(|err| panic!("{err}: {:?}", err.hint))
        }

        fn error(&self) -> Error {
            self.resolve().expect_err("resolve should fail")
        }
    }

    fn context(name: &str, source: ContextSource) -> Origin {
        Origin::Context {
            name: name.to_string(),
            source,
        }
    }

    fn unix(path: &str) -> Transport {
        Transport::Unix(PathBuf::from(path))
    }

    #[test]
    fn nothing_set_is_the_default_socket() {
        let fx = Fixture::new();
        let endpoint = fx.endpoint();
        assert_eq!(endpoint.host, DEFAULT_HOST);
        assert_eq!(endpoint.origin, Origin::Default);
        assert_eq!(endpoint.transport, unix("/var/run/docker.sock"));
    }

    #[test]
    fn docker_host_wins_over_docker_context_and_current_context() {
        let fx = Fixture::new()
            .env("DOCKER_HOST", "unix:///from/host.sock")
            .env("DOCKER_CONTEXT", "missing");
        fx.config(r#"{"currentContext": "also-missing"}"#);
        let endpoint = fx.endpoint();
        assert_eq!(endpoint.origin, Origin::DockerHost);
        assert_eq!(endpoint.transport, unix("/from/host.sock"));
    }

    #[test]
    fn docker_context_wins_over_current_context() {
        let fx = Fixture::new().env("DOCKER_CONTEXT", "rootless");
        fx.config(r#"{"currentContext": "missing"}"#);
        fx.context("rootless", "unix:///run/user/1000/docker.sock");
        let endpoint = fx.endpoint();
        assert_eq!(
            endpoint.origin,
            context("rootless", ContextSource::DockerContext)
        );
        assert_eq!(endpoint.transport, unix("/run/user/1000/docker.sock"));
        assert_eq!(
            endpoint.to_string(),
            "unix:///run/user/1000/docker.sock (context \"rootless\", from DOCKER_CONTEXT)"
        );
    }

    #[test]
    fn current_context_is_used_when_nothing_else_is_set() {
        let fx = Fixture::new();
        let config = fx.config(r#"{"auths": {}, "currentContext": "rootless"}"#);
        fx.context("rootless", "unix:///run/user/1000/docker.sock");
        let endpoint = fx.endpoint();
        assert_eq!(
            endpoint.origin,
            context("rootless", ContextSource::CurrentContext(config.clone()))
        );
        assert_eq!(
            endpoint.origin.to_string(),
            format!(
                "context \"rootless\" (currentContext in {})",
                config.display()
            )
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let fx = Fixture::new()
            .env("DOCKER_HOST", "")
            .env("DOCKER_CONTEXT", "")
            .env("DOCKER_CONFIG", "");
        fx.config(r#"{"currentContext": ""}"#);
        assert_eq!(fx.endpoint().origin, Origin::Default);
    }

    #[test]
    fn the_default_context_by_name_is_docker_host_or_the_socket() {
        let fx = Fixture::new().env("DOCKER_CONTEXT", "default");
        let endpoint = fx.endpoint();
        assert_eq!(endpoint.host, DEFAULT_HOST);
        assert_eq!(
            endpoint.origin,
            context("default", ContextSource::DockerContext)
        );
    }

    #[test]
    fn docker_config_moves_config_json_and_the_context_store() {
        let elsewhere = tempfile::tempdir().unwrap();
        let fx = Fixture::new().env("DOCKER_CONFIG", elsewhere.path().to_str().unwrap());
        // What is under HOME is not read.
        fx.config(r#"{"currentContext": "home"}"#);
        fx.context("home", "unix:///home.sock");
        std::fs::write(
            elsewhere.path().join("config.json"),
            r#"{"currentContext": "moved"}"#,
        )
        .unwrap();
        fx.context_in(elsewhere.path(), "moved", "unix:///moved.sock");
        let endpoint = fx.endpoint();
        assert_eq!(endpoint.transport, unix("/moved.sock"));
        assert_eq!(
            endpoint.origin,
            context(
                "moved",
                ContextSource::CurrentContext(elsewhere.path().join("config.json"))
            )
        );
    }

    #[test]
    fn contexts_live_under_the_sha256_of_their_name() {
        // printf NAME | sha256sum
        assert_eq!(
            context_id("rootless"),
            "12b961af5feb3e9d39f93b2cefb9a1a944f18d02cca0cac2f04f5a982240605f"
        );
        assert_eq!(
            context_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let fx = Fixture::new().env("DOCKER_CONTEXT", "abc");
        let meta = fx.context("abc", "unix:///abc.sock");
        assert_eq!(
            meta,
            fx.docker_dir().join(
                "contexts/meta/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad/meta.json"
            )
        );
        assert_eq!(fx.endpoint().transport, unix("/abc.sock"));
    }

    #[test]
    fn a_missing_context_names_itself_its_source_and_the_file_looked_for() {
        let fx = Fixture::new().env("DOCKER_CONTEXT", "nope");
        let err = fx.error();
        let meta = fx
            .docker_dir()
            .join("contexts/meta")
            .join(context_id("nope"))
            .join("meta.json");
        assert_eq!(err.code(), 1);
        assert_eq!(
            err.message,
            format!(
                "context \"nope\" (DOCKER_CONTEXT) does not exist: there is no {}",
                meta.display()
            )
        );
        let hint = err.hint.unwrap();
        assert!(hint.contains("docker context ls"), "{hint}");
        assert!(hint.contains("unset DOCKER_CONTEXT"), "{hint}");

        let fx = Fixture::new();
        let config = fx.config(r#"{"currentContext": "nope"}"#);
        let err = fx.error();
        assert!(
            err.message
                .contains(&format!("(currentContext in {})", config.display())),
            "{}",
            err.message
        );
        assert!(err.hint.unwrap().contains("docker context use"));
    }

    #[test]
    fn a_malformed_config_json_is_an_error_naming_it() {
        let fx = Fixture::new();
        let config = fx.config("{\"currentContext\": ");
        let err = fx.error();
        assert_eq!(err.code(), 1);
        assert!(
            err.message
                .starts_with(&format!("cannot read docker's config {}", config.display())),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_missing_or_empty_config_json_is_no_context() {
        let fx = Fixture::new();
        assert_eq!(fx.endpoint().origin, Origin::Default);
        fx.config("\n");
        assert_eq!(fx.endpoint().origin, Origin::Default);
    }

    #[test]
    fn config_json_is_not_read_when_a_variable_decides() {
        let fx = Fixture::new().env("DOCKER_HOST", "unix:///x.sock");
        fx.config("not json");
        assert_eq!(fx.endpoint().origin, Origin::DockerHost);
    }

    #[test]
    fn a_context_without_a_docker_endpoint_is_an_error() {
        let fx = Fixture::new().env("DOCKER_CONTEXT", "k8s");
        let dir = fx
            .docker_dir()
            .join("contexts/meta")
            .join(context_id("k8s"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("meta.json"),
            r#"{"Name":"k8s","Endpoints":{"kubernetes":{"Host":"https://k8s","Namespace":1}}}"#,
        )
        .unwrap();
        let err = fx.error();
        assert!(
            err.message.contains("has no docker endpoint"),
            "{}",
            err.message
        );
        assert!(err.message.contains("meta.json"), "{}", err.message);
    }

    #[test]
    fn ssh_endpoints_are_parsed_as_docker_takes_them_and_run_dial_stdio() {
        let fx = Fixture::new().env("DOCKER_HOST", "ssh://me@gpu1:2222");
        let endpoint = fx.endpoint();
        let Transport::Ssh(target) = &endpoint.transport else {
            panic!("{endpoint:?}");
        };
        assert_eq!(
            target.args().join(" "),
            "-T -o BatchMode=yes -o ConnectTimeout=10 -l me -p 2222 -- gpu1 docker system dial-stdio"
        );
        let fx = Fixture::new().env("DOCKER_CONTEXT", "remote");
        fx.context("remote", "ssh://gpu1");
        let endpoint = fx.endpoint();
        assert_eq!(
            endpoint.transport,
            Transport::Ssh(SshTarget {
                user: None,
                host: "gpu1".into(),
                port: None
            })
        );
        assert_eq!(
            endpoint.to_string(),
            "ssh://gpu1 (context \"remote\", from DOCKER_CONTEXT)"
        );
        for bad in [
            "ssh://gpu1/path",
            "ssh://me:secret@gpu1",
            "ssh://-oProxyCommand=x",
            "ssh://gpu1:port",
            "ssh://@gpu1",
        ] {
            let err = Fixture::new().env("DOCKER_HOST", bad).error();
            assert!(
                err.message.starts_with("cannot use"),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn named_pipes_and_fds_are_refused() {
        for host in ["npipe:////./pipe/docker_engine", "fd://"] {
            let err = Fixture::new().env("DOCKER_HOST", host).error();
            assert!(err.message.contains("does not support"), "{}", err.message);
        }
    }

    #[test]
    fn tcp_hosts_in_docker_forms() {
        for (host, addr) in [
            ("tcp://10.0.0.5:2375", "10.0.0.5:2375"),
            ("10.0.0.5:2375", "10.0.0.5:2375"),
            ("http://gpu1:2375/", "gpu1:2375"),
            ("tcp://gpu1", "gpu1:2375"),
            ("tcp://:2380", "localhost:2380"),
            ("tcp://[::1]:2375", "[::1]:2375"),
            ("tcp://[::1]", "[::1]:2375"),
        ] {
            let endpoint = Fixture::new().env("DOCKER_HOST", host).endpoint();
            assert_eq!(
                endpoint.transport,
                Transport::Http {
                    addr: addr.to_string()
                },
                "{host}"
            );
            assert_eq!(endpoint.host, host);
        }
        for host in ["gpu1:port", "tcp://gpu1:2375/prefix"] {
            let err = Fixture::new().env("DOCKER_HOST", host).error();
            assert!(
                err.message.contains("not a host and port"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn an_empty_unix_path_is_the_default_socket() {
        let endpoint = Fixture::new().env("DOCKER_HOST", "unix://").endpoint();
        assert_eq!(endpoint.transport, unix("/var/run/docker.sock"));
    }

    fn write_tls(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.join(file), "pem").unwrap();
        }
    }

    #[test]
    fn docker_tls_verify_uses_docker_cert_path() {
        let certs = tempfile::tempdir().unwrap();
        write_tls(certs.path());
        let fx = Fixture::new()
            .env("DOCKER_HOST", "tcp://gpu1:2376")
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", certs.path().to_str().unwrap());
        assert_eq!(
            fx.endpoint().transport,
            Transport::Https {
                addr: "gpu1:2376".to_string(),
                tls: Tls::in_dir(certs.path()),
            }
        );
    }

    #[test]
    fn docker_tls_verify_defaults_to_the_config_dir_and_the_tls_port() {
        let fx = Fixture::new().env("DOCKER_TLS_VERIFY", "1");
        write_tls(&fx.docker_dir());
        let endpoint = fx.endpoint();
        assert_eq!(endpoint.host, "tcp://localhost:2376");
        assert_eq!(
            endpoint.transport,
            Transport::Https {
                addr: "localhost:2376".to_string(),
                tls: Tls::in_dir(&fx.docker_dir()),
            }
        );
    }

    #[test]
    fn tls_without_a_ca_is_an_error_naming_the_file() {
        let fx = Fixture::new()
            .env("DOCKER_HOST", "tcp://gpu1:2376")
            .env("DOCKER_TLS_VERIFY", "1");
        let err = fx.error();
        let ca = fx.docker_dir().join("ca.pem");
        assert!(
            err.message.contains(&ca.display().to_string()),
            "{}",
            err.message
        );
    }

    #[test]
    fn tls_without_verification_is_refused() {
        let fx = Fixture::new()
            .env("DOCKER_HOST", "tcp://gpu1:2376")
            .env("DOCKER_TLS", "1");
        let err = fx.error();
        assert!(err.message.contains("without verifying"), "{}", err.message);
    }

    #[test]
    fn a_context_picks_up_its_tls_files() {
        let fx = Fixture::new().env("DOCKER_CONTEXT", "remote");
        fx.context("remote", "tcp://gpu1:2376");
        let dir = fx
            .docker_dir()
            .join("contexts/tls")
            .join(context_id("remote"))
            .join("docker");
        write_tls(&dir);
        assert_eq!(
            fx.endpoint().transport,
            Transport::Https {
                addr: "gpu1:2376".to_string(),
                tls: Tls::in_dir(&dir),
            }
        );
    }

    #[test]
    fn a_context_without_tls_files_is_plain_http() {
        let fx = Fixture::new().env("DOCKER_CONTEXT", "remote");
        fx.context("remote", "tcp://gpu1:2375");
        assert_eq!(
            fx.endpoint().transport,
            Transport::Http {
                addr: "gpu1:2375".to_string()
            }
        );
    }

    #[test]
    fn https_without_certificates_is_an_error() {
        let err = Fixture::new()
            .env("DOCKER_HOST", "https://gpu1:2376")
            .error();
        assert!(
            err.message.contains("needs TLS certificates"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_default_origin_names_what_was_not_set() {
        assert_eq!(
            Fixture::new().endpoint().to_string(),
            "unix:///var/run/docker.sock (the default: no DOCKER_HOST, DOCKER_CONTEXT or currentContext)"
        );
    }
}
