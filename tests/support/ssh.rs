//! A real sshd for the tests of `ssh://` engines: started per test on a free port of
//! 127.0.0.1, with its own host key and a client key it accepts, stopped on drop. The
//! engine on the far side is this machine's, reached by `docker system dial-stdio`.
//!
//! ssh reads its configuration from the home in the password database, not `$HOME`,
//! so the sandbox's `ssh` is a wrapper first in its `PATH` that adds `-F` with the
//! test's client configuration.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SshServer {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

/// How a client of the server is set up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// It knows the host key, and has the key the server takes.
    Trusted,
    /// It does not know the host key.
    Stranger,
    /// Its key is not one the server takes.
    Refused,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "berth-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs (apt-get install openssh-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SshServer {
    /// Starts sshd with `extra` appended to its configuration.
    pub fn start(extra: &str) -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "the ssh:// tests need sshd (apt-get install openssh-server)"
        );
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        keygen(&at("host_key"));
        keygen(&at("client_key"));
        keygen(&at("other_key"));
        std::fs::copy(at("client_key.pub"), at("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n{extra}\n",
            at("host_key").display(),
            at("authorized_keys").display(),
            at("sshd.pid").display(),
        );
        std::fs::write(at("sshd_config"), config).unwrap();
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(at("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let server = Self { dir, child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `ssh://root@127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", crate::support::whoami(), self.port)
    }

    /// A folder with an `ssh` that connects as `client`: put first in `PATH`.
    pub fn client(&self, client: Client) -> PathBuf {
        let at = |name: &str| self.dir.path().join(name);
        let name = match client {
            Client::Trusted => "trusted",
            Client::Stranger => "stranger",
            Client::Refused => "refused",
        };
        let known = at(&format!("{name}_known_hosts"));
        let host_key = std::fs::read_to_string(at("host_key.pub")).unwrap();
        let line = format!("[127.0.0.1]:{} {host_key}", self.port);
        let known_text = if client == Client::Stranger {
            ""
        } else {
            &line
        };
        std::fs::write(&known, known_text).unwrap();
        let key = if client == Client::Refused {
            at("other_key")
        } else {
            at("client_key")
        };
        let config = at(&format!("{name}_config"));
        std::fs::write(
            &config,
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
                key.display(),
                known.display()
            ),
        )
        .unwrap();
        let bin = at(&format!("{name}_bin"));
        std::fs::create_dir_all(&bin).unwrap();
        let real = ["/usr/bin/ssh", "/bin/ssh"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("the ssh client (apt-get install openssh-client)");
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec {real} -F {} \"$@\"\n", config.display()),
        )
        .unwrap();
        crate::support::set_mode(&wrapper, 0o755);
        bin
    }

    /// `PATH` with `client`'s `ssh` first.
    pub fn path_for(&self, client: Client) -> String {
        format!(
            "{}:{}",
            self.client(client).display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
