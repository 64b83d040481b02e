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

/// [`resolve`] with the process's environment and home directory.
pub fn from_env() -> Result<Endpoint> {
    let home = dirs::home_dir();
    resolve(&|name| std::env::var(name).ok(), home.as_deref())
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
        "ssh" => {
            return Err(
                cannot("berth does not support the ssh:// transport yet".to_string()).hint(
                    format!(
                        "forward the engine's socket instead: `{}`, then DOCKER_HOST=unix:///tmp/docker.sock",
                        ssh_forward(rest)
                    ),
                ),
            );
        }
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

/// The `ssh` command line that forwards the remote engine's socket to a local one.
fn ssh_forward(rest: &str) -> String {
    let authority = rest.split('/').next().unwrap_or_default();
    let (destination, port) = match authority.rsplit_once(':') {
        Some((destination, port)) if port.parse::<u16>().is_ok() => {
            (destination, format!(" -p {port}"))
        }
        _ => (authority, String::new()),
    };
    format!("ssh -nNT{port} -L /tmp/docker.sock:/var/run/docker.sock {destination}")
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
    fn ssh_is_refused_with_a_socket_forward_to_use_instead() {
        let fx = Fixture::new().env("DOCKER_HOST", "ssh://me@gpu1:2222");
        let err = fx.error();
        assert_eq!(err.code(), 1);
        assert_eq!(
            err.message,
            "cannot use the Docker engine at ssh://me@gpu1:2222 (from DOCKER_HOST): berth does not support the ssh:// transport yet"
        );
        let hint = err.hint.unwrap();
        assert!(
            hint.contains("ssh -nNT -p 2222 -L /tmp/docker.sock:/var/run/docker.sock me@gpu1"),
            "{hint}"
        );
        assert!(
            hint.contains("DOCKER_HOST=unix:///tmp/docker.sock"),
            "{hint}"
        );

        let fx = Fixture::new().env("DOCKER_CONTEXT", "remote");
        fx.context("remote", "ssh://gpu1");
        let err = fx.error();
        assert!(
            err.message
                .contains("ssh://gpu1 (context \"remote\", from DOCKER_CONTEXT)"),
            "{}",
            err.message
        );
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
