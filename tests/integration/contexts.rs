//! berth finds the engine as the docker CLI does: DOCKER_HOST, else DOCKER_CONTEXT, else
//! `currentContext` in docker's config.json. The contexts are made by the docker CLI
//! itself, so berth is tested against what docker writes, and they point at the real
//! engine through paths the tests own, so that removing a path breaks exactly one.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A path in the sandbox that leads to the real engine, as long as it exists.
fn link_to_engine(sb: &Sandbox, name: &str) -> PathBuf {
    let link = sb.path().join(name);
    std::os::unix::fs::symlink(engine_socket(), &link).unwrap();
    link
}

fn unix(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// Runs the docker CLI on the config folder `config_dir`, untouched by the tests' own
/// engine settings.
fn docker_config(config_dir: &Path, args: &[&str]) {
    let out = Command::new("docker")
        .arg("--config")
        .arg(config_dir)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("the docker CLI runs");
    assert!(out.status.success(), "docker {args:?}: {}", stderr(&out));
}

/// `docker context create NAME --docker host=HOST`, in `config_dir`.
fn create_context(config_dir: &Path, name: &str, host: &str) {
    let endpoint = format!("host={host}");
    docker_config(
        config_dir,
        &["context", "create", name, "--docker", &endpoint],
    );
}

/// `docker context use NAME`, which writes `currentContext` into config.json.
fn use_context(config_dir: &Path, name: &str) {
    docker_config(config_dir, &["context", "use", name]);
}

fn docker_dir(sb: &Sandbox) -> PathBuf {
    sb.home.join(".docker")
}

/// `berth list --json` in the sandbox with `env`, and without the tests' DOCKER_HOST,
/// which would otherwise win over every context.
fn list(sb: &Sandbox, env: &[(&str, &str)]) -> Output {
    let mut command = sb.command(env!("CARGO_BIN_EXE_berth"), &["list", "--json"]);
    command.env_remove("DOCKER_HOST");
    for (key, value) in env {
        command.env(key, value);
    }
    command.stdin(Stdio::null()).output().expect("berth runs")
}

#[track_caller]
fn assert_listed(out: &Output) {
    assert_code(out, 0);
    let listing: Value = serde_json::from_slice(&out.stdout).expect("list --json is JSON");
    assert!(listing["containers"].is_array(), "{listing}");
}

#[test]
fn current_context_in_config_json_is_used() {
    let sb = Sandbox::new();
    let socket = link_to_engine(&sb, "engine.sock");
    create_context(&docker_dir(&sb), "lab", &unix(&socket));
    use_context(&docker_dir(&sb), "lab");
    assert_listed(&list(&sb, &[]));

    std::fs::remove_file(&socket).unwrap();
    let out = list(&sb, &[]);
    assert_code(&out, 1);
    let config = docker_dir(&sb).join("config.json");
    assert_stderr_has(
        &out,
        format!(
            "error: cannot reach the Docker engine at {} (context \"lab\", from currentContext in {}): no socket at {}",
            unix(&socket),
            config.display(),
            socket.display()
        ),
    );
    assert_stderr_has(&out, "hint:");
}

#[test]
fn docker_context_is_used_and_overrides_current_context() {
    let sb = Sandbox::new();
    let working = link_to_engine(&sb, "working.sock");
    let broken = sb.path().join("broken.sock");
    create_context(&docker_dir(&sb), "working", &unix(&working));
    create_context(&docker_dir(&sb), "broken", &unix(&broken));

    use_context(&docker_dir(&sb), "broken");
    assert_listed(&list(&sb, &[("DOCKER_CONTEXT", "working")]));

    use_context(&docker_dir(&sb), "working");
    let out = list(&sb, &[("DOCKER_CONTEXT", "broken")]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!(
            "cannot reach the Docker engine at {} (context \"broken\", from DOCKER_CONTEXT): no socket at {}",
            unix(&broken),
            broken.display()
        ),
    );
}

#[test]
fn docker_config_moves_the_config_and_the_contexts() {
    let sb = Sandbox::new();
    let elsewhere = sb.path().join("docker-config");
    let working = link_to_engine(&sb, "working.sock");
    // What HOME holds would fail: it must not be read.
    create_context(
        &docker_dir(&sb),
        "home",
        &unix(&sb.path().join("none.sock")),
    );
    use_context(&docker_dir(&sb), "home");
    create_context(&elsewhere, "moved", &unix(&working));
    use_context(&elsewhere, "moved");
    let docker_config = elsewhere.to_str().unwrap();
    assert_listed(&list(&sb, &[("DOCKER_CONFIG", docker_config)]));

    // A context that only HOME's store has does not exist under DOCKER_CONFIG.
    let out = list(
        &sb,
        &[("DOCKER_CONFIG", docker_config), ("DOCKER_CONTEXT", "home")],
    );
    assert_code(&out, 1);
    assert_stderr_has(&out, "context \"home\" (DOCKER_CONTEXT) does not exist");
    assert_stderr_has(&out, format!("{}/contexts/meta/", elsewhere.display()));
}

#[test]
fn docker_host_wins_over_docker_context() {
    let sb = Sandbox::new();
    let working = link_to_engine(&sb, "working.sock");
    create_context(&docker_dir(&sb), "working", &unix(&working));
    // A context that does not even exist is not looked up.
    let host = unix(&engine_socket());
    assert_listed(&list(
        &sb,
        &[
            ("DOCKER_HOST", &host),
            ("DOCKER_CONTEXT", "no-such-context"),
        ],
    ));

    let out = list(
        &sb,
        &[
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            ("DOCKER_CONTEXT", "working"),
        ],
    );
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        "cannot reach the Docker engine at unix:///nonexistent/docker.sock (from DOCKER_HOST)",
    );
}

#[test]
fn an_unreachable_engine_is_named_with_its_origin_at_once() {
    let sb = Sandbox::new();
    // A socket file nobody listens on: the engine is "there" but refuses.
    let dead = sb.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    assert!(UnixStream::connect(&dead).is_err());
    create_context(&docker_dir(&sb), "dead", &unix(&dead));
    use_context(&docker_dir(&sb), "dead");

    let started = Instant::now();
    let out = list(&sb, &[]);
    let took = started.elapsed();
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!(
            "error: cannot reach the Docker engine at {} (context \"dead\", from currentContext in {}): connection refused",
            unix(&dead),
            docker_dir(&sb).join("config.json").display()
        ),
    );
    assert_stderr_has(&out, "hint: is dockerd running");
    assert!(
        took < Duration::from_secs(5),
        "a refused connection took {took:?}"
    );
}

/// A socket that answers every request with `status` and `body`, as a web server
/// someone pointed DOCKER_HOST at would; it serves until the test ends.
fn not_an_engine(path: &std::path::Path, status: &'static str, body: &'static str) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut request);
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
        }
    });
}

#[test]
fn something_that_is_not_an_engine_is_called_so() {
    let sb = Sandbox::new();
    for (status, body) in [("200 OK", "hello, world"), ("404 Not Found", "")] {
        let socket = sb.path().join(format!("web-{}.sock", &status[..3]));
        not_an_engine(&socket, status, body);
        let host = unix(&socket);
        let out = list(&sb, &[("DOCKER_HOST", host.as_str())]);
        assert_code(&out, 1);
        assert_stderr_has(
            &out,
            format!("error: cannot reach the Docker engine at {host} (from DOCKER_HOST)"),
        );
        assert_stderr_has(&out, "is that a Docker engine?");
    }
    let out = list(
        &sb,
        &[(
            "DOCKER_HOST",
            unix(&sb.path().join("web-200.sock")).as_str(),
        )],
    );
    assert_stderr_has(
        &out,
        "the answer is not the Docker API's (a ping got \"hello, world\")",
    );
}

#[test]
fn a_missing_context_names_where_it_was_looked_for() {
    let sb = Sandbox::new();
    let out = list(&sb, &[("DOCKER_CONTEXT", "nowhere")]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!(
            "error: context \"nowhere\" (DOCKER_CONTEXT) does not exist: there is no {}/contexts/meta/",
            docker_dir(&sb).display()
        ),
    );
    assert_stderr_has(&out, "meta.json");
    assert_stderr_has(&out, "hint: `docker context ls` lists the contexts");
}

#[test]
fn an_ssh_context_made_by_docker_reaches_its_engine() {
    let server = ssh::SshServer::start("");
    let sb = Sandbox::new();
    create_context(&docker_dir(&sb), "remote", &server.host());
    let path = server.path_for(ssh::Client::Trusted);
    let out = list(&sb, &[("DOCKER_CONTEXT", "remote"), ("PATH", &path)]);
    assert_listed(&out);
    // A host that does not answer is ssh's own words, once.
    create_context(&docker_dir(&sb), "nowhere", "ssh://me@gpu1.invalid");
    let out = list(&sb, &[("DOCKER_CONTEXT", "nowhere"), ("PATH", &path)]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        "error: cannot reach the Docker engine at ssh://me@gpu1.invalid (context \"nowhere\", from DOCKER_CONTEXT): ssh to gpu1.invalid failed: ",
    );
}

/// Serves the real engine on a loopback TCP port, as `dockerd -H tcp://...` would, and
/// counts the connections it forwards; the threads end with the test process.
fn engine_on_tcp() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket = engine_socket();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let Ok(engine) = UnixStream::connect(&socket) else {
                continue;
            };
            let (mut from_client, mut to_engine) =
                (client.try_clone().unwrap(), engine.try_clone().unwrap());
            std::thread::spawn(move || {
                std::io::copy(&mut from_client, &mut to_engine).ok();
                to_engine.shutdown(std::net::Shutdown::Write).ok();
            });
            std::thread::spawn(move || {
                let (mut to_client, mut from_engine) = (client, engine);
                std::io::copy(&mut from_engine, &mut to_client).ok();
                to_client.shutdown(std::net::Shutdown::Write).ok();
            });
        }
    });
    (port, connections)
}

#[test]
fn a_tcp_context_reaches_the_engine_over_http() {
    let sb = Sandbox::new();
    let (port, connections) = engine_on_tcp();
    create_context(&docker_dir(&sb), "tcp", &format!("tcp://127.0.0.1:{port}"));
    assert_listed(&list(&sb, &[("DOCKER_CONTEXT", "tcp")]));
    assert!(
        connections.load(Ordering::SeqCst) > 0,
        "berth did not use TCP"
    );
}

/// Runs `openssl ARGS` in `dir`; the arguments hold no spaces.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs");
    assert!(out.status.success(), "openssl {args}: {}", stderr(&out));
}

/// A certificate authority in `dir`: `ca.pem`, `ca-key.pem`.
fn certificate_authority(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        dir,
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=berth-test-ca -keyout ca-key.pem -out ca.pem",
    );
}

/// A certificate for `name` that the CA in `dir` signs, with `extension` (an openssl
/// extension line): `<name>.pem`, `<name>-key.pem`.
fn certificate(dir: &Path, name: &str, extension: &str) {
    openssl(
        dir,
        &format!(
            "req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {name}-key.pem -out {name}.csr"
        ),
    );
    std::fs::write(dir.join(format!("{name}.ext")), extension).unwrap();
    openssl(
        dir,
        &format!("x509 -req -days 1 -in {name}.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out {name}.pem -extfile {name}.ext"),
    );
}

/// `openssl s_server`: a TLS endpoint that demands a client certificate signed by the
/// CA and answers every request with a web page, not the Docker API. Killed on drop.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-Verify", "1"])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .args([
                "-cert",
                "server.pem",
                "-key",
                "server-key.pem",
                "-CAfile",
                "ca.pem",
            ])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s_server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[test]
fn a_tls_context_verifies_the_engine_and_presents_its_certificate() {
    let sb = Sandbox::new();
    let pki = sb.path().join("pki");
    certificate_authority(&pki);
    certificate(&pki, "server", "subjectAltName=IP:127.0.0.1\n");
    certificate(&pki, "client", "extendedKeyUsage=clientAuth\n");
    let stranger = sb.path().join("stranger");
    certificate_authority(&stranger);
    let server = TlsServer::start(&pki);
    let host = format!("tcp://127.0.0.1:{}", server.port);
    let tls = |ca: &Path| {
        format!(
            "host={host},ca={},cert={},key={}",
            ca.join("ca.pem").display(),
            pki.join("client.pem").display(),
            pki.join("client-key.pem").display()
        )
    };
    // docker copies the files into its store; berth must find them there.
    docker_config(
        &docker_dir(&sb),
        &["context", "create", "tls", "--docker", &tls(&pki)],
    );
    docker_config(
        &docker_dir(&sb),
        &["context", "create", "stranger", "--docker", &tls(&stranger)],
    );

    // The handshake succeeds (the server is trusted and accepts the client's
    // certificate), so what fails is the answer: a web page, not the Docker API.
    let out = list(&sb, &[("DOCKER_CONTEXT", "tls")]);
    assert_code(&out, 1);
    assert_stderr_has(
        &out,
        format!(
            "cannot reach the Docker engine at {host} (context \"tls\", from DOCKER_CONTEXT): the answer is not the Docker API's"
        ),
    );

    let out = list(&sb, &[("DOCKER_CONTEXT", "stranger")]);
    assert_code(&out, 1);
    assert_stderr_has(&out, "invalid peer certificate");
}

#[test]
fn an_ssh_engine_is_reached_through_dial_stdio_for_every_command() {
    let server = ssh::SshServer::start("");
    let sb = Sandbox::new()
        .env("DOCKER_HOST", &server.host())
        .env("PATH", &server.path_for(ssh::Client::Trusted));
    assert_code(
        &sb.berth(&["deploy", &sb.project, "--image", &sb.image.tag]),
        0,
    );
    let out = sb.berth(&["list", "--json"]);
    assert_code(&out, 0);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["project"] == sb.project.as_str());
    assert!(mine, "{listed:#}");
    // An exec's stream is a hijacked connection: it goes through the tunnel too.
    let out = sb.berth(&["shell", &sb.project, "--", "echo", "over ssh"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "over ssh\n");
    assert_code(&sb.berth(&["retire", &sb.project, "--yes"]), 0);
    assert_eq!(sb.container_ids(), "");
}

#[test]
fn an_ssh_engine_that_cannot_be_reached_says_why_in_one_message() {
    let server = ssh::SshServer::start("");
    let sb = Sandbox::new();
    let list = |server: &ssh::SshServer, client| {
        sb.command(env!("CARGO_BIN_EXE_berth"), &["list"])
            .env("DOCKER_HOST", server.host())
            .env("PATH", server.path_for(client))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = list(&server, ssh::Client::Stranger);
    assert_code(&out, 1);
    assert_stderr_has(&out, "ssh does not know 127.0.0.1's host key");
    let out = list(&server, ssh::Client::Refused);
    assert_code(&out, 1);
    assert_stderr_has(&out, "ssh could not log in to 127.0.0.1");
    assert_stderr_has(&out, "Permission denied");

    let bare = ssh::SshServer::start("SetEnv PATH=/nowhere");
    let out = list(&bare, ssh::Client::Trusted);
    assert_code(&out, 1);
    assert_stderr_has(&out, "127.0.0.1 has no docker CLI");
    let errors = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("error"))
        .count();
    assert_eq!(errors, 1, "one message: {}", stderr(&out));
}

#[test]
fn deploy_takes_a_context_and_list_shows_every_context() {
    let server = ssh::SshServer::start("");
    let sb = Sandbox::new();
    // "far" is this machine's engine over ssh; "gone" a socket that is not there.
    create_context(&docker_dir(&sb), "far", &server.host());
    let nothing = sb.path().join("nothing.sock");
    create_context(&docker_dir(&sb), "gone", &unix(&nothing));
    let path = server.path_for(ssh::Client::Trusted);
    // The flag wins over DOCKER_HOST, as docker's --context does.
    let out = sb
        .command(
            env!("CARGO_BIN_EXE_berth"),
            &sb.deploy_args(&["--context", "far"]),
        )
        .env("DOCKER_HOST", "unix:///nowhere.sock")
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&out, 0);

    let out = sb
        .command(
            env!("CARGO_BIN_EXE_berth"),
            &["list", "--all-contexts", "--json"],
        )
        .env_remove("DOCKER_HOST")
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_stderr_has(&out, "context gone: cannot reach the Docker engine at");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let contexts: Vec<&str> = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["project"] == sb.project.as_str())
        .map(|c| c["context"].as_str().unwrap())
        .collect();
    // The same engine, reached two ways.
    assert_eq!(contexts, ["default", "far"], "{listed:#}");
    let table = sb
        .command(env!("CARGO_BIN_EXE_berth"), &["list", "--all-contexts"])
        .env_remove("DOCKER_HOST")
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(stdout(&table).starts_with("CONTEXT"), "{}", stdout(&table));
}

#[test]
fn a_context_elsewhere_books_the_gpus_the_policy_lists_for_it_or_none() {
    let server = ssh::SshServer::start("");
    let path = server.path_for(ssh::Client::Trusted);
    let prefix = unique("far");
    let deploy = |sb: &Sandbox, policy: &str| {
        std::fs::write(&sb.policy, policy).unwrap();
        create_context(&docker_dir(sb), "far", &server.host());
        let args = sb.deploy_args(&["--gpus", "1", "--context", "far"]);
        sb.command(env!("CARGO_BIN_EXE_berth"), &args)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let listed = Sandbox::new();
    let policy = format!(
        "[gpus]\nrequest = \"env\"\ninventory = [\"here-0\"]\n\
         [gpus.contexts.far]\ninventory = [\"{prefix}-0\", \"{prefix}-1\"]\n"
    );
    assert_code(&deploy(&listed, &policy), 0);
    let inspected = listed.inspect().unwrap();
    assert_eq!(
        inspected["Config"]["Labels"]["berth.gpus"],
        format!("{prefix}-0"),
        "from the context's inventory, not this host's"
    );

    let unlisted = Sandbox::new();
    let out = deploy(
        &unlisted,
        "[gpus]\nrequest = \"env\"\ninventory = [\"here-0\"]\n",
    );
    assert_code(&out, 3);
    assert_stderr_has(&out, "berth does not know the GPUs of the engine at ssh://");
    assert_stderr_has(&out, "[gpus.contexts.far] inventory");
    assert!(!unlisted.exists());
}
