//! The local terminal during an attached run or a shell: raw mode that is always
//! restored, the window size, and the stream pump between the terminal and a container.

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

use crate::engine::{Attached, Chunk};

/// Raw mode on standard input while it lives; the saved settings come back on drop, on
/// every path out (errors and signals included, as callers drop it before exiting).
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal on standard input into raw mode; `None` when it is not a terminal.
    pub fn enable() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let fd = stdin.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it for a terminal descriptor.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a terminal (checked above) and saved is a valid termios.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: raw is a valid termios copied from the terminal's own settings.
        unsafe {
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return None;
            }
        }
        Some(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores settings read from the same descriptor.
        unsafe {
            libc::tcsetattr(std::io::stdin().as_raw_fd(), libc::TCSANOW, &self.saved);
        }
    }
}

/// Rows and columns of the terminal on standard output (or input).
pub fn size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        // SAFETY: winsize is plain data; TIOCGWINSZ fills it or fails.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: fd is one of ours; the ioctl only writes into size.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 && size.ws_row > 0 {
            return Some((size.ws_row, size.ws_col));
        }
    }
    None
}

/// A stream of window-size changes (SIGWINCH), or none when it cannot be caught.
pub fn resizes() -> Option<tokio::signal::unix::Signal> {
    signal(SignalKind::window_change()).ok()
}

/// Copies the container's output to ours until it ends and, with `forward_stdin`, our
/// input to it, closing its stdin when ours ends (as `docker run -i` does).
pub async fn pump(attached: Attached, forward_stdin: bool) -> std::io::Result<()> {
    let Attached {
        mut output,
        mut input,
    } = attached;
    let feeder = forward_stdin.then(|| {
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if input.write_all(&buf[..n]).await.is_err() || input.flush().await.is_err()
                        {
                            break;
                        }
                    }
                }
            }
            input.shutdown().await.ok();
        })
    });
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let result = async {
        while let Some(chunk) = output.next().await {
            match chunk? {
                Chunk::Stdout(bytes) => {
                    stdout.write_all(&bytes).await?;
                    stdout.flush().await?;
                }
                Chunk::Stderr(bytes) => {
                    stderr.write_all(&bytes).await?;
                    stderr.flush().await?;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some(feeder) = feeder {
        feeder.abort();
    }
    result
}
