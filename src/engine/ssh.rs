//! An `ssh://` engine, reached as the docker CLI reaches it: each connection is
//! `ssh [-l user] [-p port] host docker system dial-stdio`, and the Engine API is
//! spoken over its stdin and stdout. ssh runs without prompts (`BatchMode`), with the
//! user's own keys, agent, `known_hosts` and `~/.ssh/config`. What ssh says on stderr is
//! kept, so that a host key not known, a login refused or a host without docker is told
//! in one clear message ([`Ssh::why`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::endpoint::SshTarget;

/// What the last ssh said on stderr, shared by every connection to one engine.
#[derive(Clone, Default)]
pub struct Said(Arc<Mutex<Vec<u8>>>);

impl Said {
    fn text(&self) -> String {
        let said = self.0.lock().map(|s| s.clone()).unwrap_or_default();
        String::from_utf8_lossy(&said).trim().to_string()
    }
}

/// A client of an `ssh://` engine.
pub struct Ssh {
    pub docker: Docker,
    pub said: Said,
}

impl Ssh {
    pub fn connect(target: &SshTarget, timeout: u64) -> Result<Self, bollard::errors::Error> {
        let said = Said::default();
        let connector = Connector {
            target: Arc::new(target.clone()),
            said: said.clone(),
        };
        let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
        let docker = Docker::connect_with_custom_transport(
            move |request: BollardRequest| {
                let client = Arc::clone(&client);
                async move {
                    client
                        .request(request)
                        .await
                        .map_err(bollard::errors::Error::from)
                }
            },
            Some("http://docker"),
            timeout,
            bollard::API_DEFAULT_VERSION,
        )?;
        Ok(Self { docker, said })
    }

    /// Why the engine could not be reached, from what ssh said: `None` where it said
    /// nothing that tells.
    pub fn why(said: &Said, host: &str) -> Option<String> {
        let text = said.text();
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())?
            .trim()
            .to_string();
        let has = |needle: &str| text.contains(needle);
        Some(
            if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION") {
                format!(
                    "ssh does not know {host}'s host key, or it changed ({last}); \
                 `ssh {host}` once, and check the key it shows"
                )
            } else if has("Permission denied") {
                format!(
                    "ssh could not log in to {host} ({last}); berth runs ssh without prompts, \
                 so it needs a key the host takes (in ssh-agent, or without a passphrase)"
                )
            } else if has("command not found") || has("docker: not found") || has("No such file") {
                format!(
                    "{host} has no docker CLI for `docker system dial-stdio` ({last}); \
                 install docker there, or reach its engine another way"
                )
            } else {
                format!("ssh to {host} failed: {last}")
            },
        )
    }
}

/// Opens one connection: one ssh process.
#[derive(Clone)]
struct Connector {
    target: Arc<SshTarget>,
    said: Said,
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let (target, said) = (self.target.clone(), self.said.clone());
        Box::pin(async move {
            let mut child = Command::new("ssh")
                .args(target.args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|err| match err.kind() {
                    io::ErrorKind::NotFound => {
                        io::Error::other("there is no ssh command here (install openssh-client)")
                    }
                    _ => err,
                })?;
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh started without its pipes"));
            };
            // Kept as it comes: a failed ping reads it while ssh may still be exiting.
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 4096];
                let mut first = true;
                while let Ok(read) = stderr.read(&mut chunk).await {
                    if read == 0 {
                        break;
                    }
                    if let Ok(mut said) = said.0.lock() {
                        if std::mem::take(&mut first) {
                            said.clear();
                        }
                        said.extend_from_slice(&chunk[..read]);
                    }
                }
            });
            Ok(TokioIo::new(Stream {
                _child: child,
                stdin,
                stdout,
            }))
        })
    }
}

/// One ssh process's stdout and stdin, as one connection.
struct Stream {
    _child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(text: &str) -> Said {
        let said = Said::default();
        *said.0.lock().unwrap() = text.as_bytes().to_vec();
        said
    }

    #[test]
    fn what_ssh_says_becomes_one_clear_reason() {
        let why = |text| Ssh::why(&said(text), "gpu1").unwrap();
        assert!(why("Host key verification failed.\r\n").contains("does not know gpu1's host key"));
        assert!(why("me@gpu1: Permission denied (publickey).").contains("could not log in"));
        assert!(why("bash: line 1: docker: command not found").contains("has no docker CLI"));
        assert_eq!(
            why("ssh: Could not resolve hostname gpu1: Name or service not known"),
            "ssh to gpu1 failed: ssh: Could not resolve hostname gpu1: Name or service not known"
        );
        assert_eq!(Ssh::why(&said(""), "gpu1"), None);
    }
}
