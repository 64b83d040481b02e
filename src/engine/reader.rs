//! Reading one of the engine's byte streams (an archive) from a blocking thread, where
//! tar unpacks it. An async task forwards the stream's chunks over a channel, batched
//! up to 1 MiB whenever more than one is ready: the engine sends an archive in pieces of
//! a few KiB, and a hand-over between threads per piece cost a rescue of 1 GiB about a
//! second. A batch shares the chunks instead of joining them: a copy of every byte
//! fewer (the reader's copy into the caller's buffer is the only one).

use std::collections::VecDeque;
use std::io::{self, Read};

use bytes::{Buf, Bytes};
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;

/// The most one hand-over holds.
const BATCH: usize = 1 << 20;

/// A blocking [`Read`] of an async stream. Made inside the runtime; read outside it
/// (`spawn_blocking`). Dropping it ends the task that feeds it.
pub struct BlockingReader {
    batches: mpsc::Receiver<io::Result<Vec<Bytes>>>,
    current: VecDeque<Bytes>,
}

impl BlockingReader {
    pub fn new(stream: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Self {
        let (sender, batches) = mpsc::channel(4);
        tokio::spawn(forward(stream, sender));
        Self {
            batches,
            current: VecDeque::new(),
        }
    }
}

async fn forward(
    stream: impl Stream<Item = io::Result<Bytes>> + Send,
    sender: mpsc::Sender<io::Result<Vec<Bytes>>>,
) {
    let mut stream = std::pin::pin!(stream);
    while let Some(first) = stream.next().await {
        let mut batch = match first {
            Ok(chunk) => vec![chunk],
            Err(err) => {
                sender.send(Err(err)).await.ok();
                return;
            }
        };
        let mut size = batch[0].len();
        let mut ended = false;
        // Whatever else is ready now, without waiting for more.
        while size < BATCH && !ended {
            match stream.next().now_or_never() {
                Some(Some(Ok(chunk))) => {
                    size += chunk.len();
                    batch.push(chunk);
                }
                Some(Some(Err(err))) => {
                    sender.send(Ok(batch)).await.ok();
                    sender.send(Err(err)).await.ok();
                    return;
                }
                Some(None) => ended = true,
                None => break,
            }
        }
        if sender.send(Ok(batch)).await.is_err() || ended {
            return;
        }
    }
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let Some(chunk) = self.current.front_mut() else {
                if n > 0 {
                    // What is here now; the next read waits for more.
                    break;
                }
                match self.batches.blocking_recv() {
                    Some(Ok(batch)) => self.current.extend(batch),
                    Some(Err(err)) => return Err(err),
                    None => return Ok(0),
                }
                continue;
            };
            let take = (buf.len() - n).min(chunk.len());
            buf[n..n + take].copy_from_slice(&chunk[..take]);
            chunk.advance(take);
            n += take;
            if chunk.is_empty() {
                self.current.pop_front();
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_arrives_in_order_and_an_error_after_them() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let chunks: Vec<io::Result<Bytes>> = (0..1000u32)
            .map(|i| Ok(Bytes::from(i.to_be_bytes().to_vec())))
            .chain([Err(io::Error::other("cut off"))])
            .collect();
        let (bytes, err) = runtime.block_on(async move {
            let mut reader = BlockingReader::new(futures_util::stream::iter(chunks));
            tokio::task::spawn_blocking(move || {
                let mut bytes = Vec::new();
                let err = reader.read_to_end(&mut bytes).unwrap_err();
                (bytes, err)
            })
            .await
            .unwrap()
        });
        let expected: Vec<u8> = (0..1000u32).flat_map(u32::to_be_bytes).collect();
        assert_eq!(bytes, expected);
        assert_eq!(err.to_string(), "cut off");
    }

    #[test]
    fn a_stream_that_ends_reads_as_the_end() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let text = runtime.block_on(async {
            let chunks = [Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"c"))];
            let mut reader = BlockingReader::new(futures_util::stream::iter(chunks));
            tokio::task::spawn_blocking(move || {
                let mut text = String::new();
                reader.read_to_string(&mut text).unwrap();
                text
            })
            .await
            .unwrap()
        });
        assert_eq!(text, "abc");
    }
}
