//! The local terminal during an attached run or a shell: window-size changes and the
//! stream pump between the terminal and a container (raw mode and the size itself are
//! the OS's, in `os`).

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

use crate::engine::{Attached, Chunk};

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
