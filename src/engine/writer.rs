//! Writing one of the engine's request bodies (a build context, an archive to upload)
//! from a blocking thread, where tar writes it: the counterpart of
//! [`super::BlockingReader`]. What is written is handed over in chunks of a fixed size,
//! through a channel, to the stream the request sends.

use std::io::{self, Write};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// A [`Write`] that feeds [`BlockingWriter::new`]'s stream. Written outside the runtime
/// (`spawn_blocking`); [`BlockingWriter::send`] hands over what is left.
pub struct BlockingWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
    size: usize,
    /// What the request was for, in the error when the engine stops reading.
    what: &'static str,
    /// Bytes handed over.
    pub sent: u64,
    /// Told of each chunk handed over (a progress bar).
    on_send: Option<Box<dyn FnMut(u64) + Send>>,
}

impl BlockingWriter {
    /// A writer of chunks of `size` bytes, and the stream that sends them: `what` names
    /// the request ("the build context"). At most a few chunks wait in between.
    pub fn new(
        size: usize,
        what: &'static str,
    ) -> (Self, impl Stream<Item = io::Result<Bytes>> + Send + 'static) {
        let (sender, receiver) = mpsc::channel(8);
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        });
        let writer = Self {
            sender,
            buffer: Vec::with_capacity(size),
            size,
            what,
            sent: 0,
            on_send: None,
        };
        (writer, stream)
    }

    /// Calls `on_send` with the size of each chunk as it is handed over.
    pub fn on_send(mut self, on_send: impl FnMut(u64) + Send + 'static) -> Self {
        self.on_send = Some(Box::new(on_send));
        self
    }

    /// Hands over what is written and not yet sent.
    pub fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(self.size),
        ));
        let len = chunk.len() as u64;
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::other(format!("the engine stopped reading {}", self.what)))?;
        self.sent += len;
        if let Some(on_send) = self.on_send.as_mut() {
            on_send(len);
        }
        Ok(())
    }
}

impl Write for BlockingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= self.size {
            self.send()?;
        }
        Ok(buf.len())
    }

    /// Nothing: a chunk goes when it is full, or on [`BlockingWriter::send`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn what_is_written_arrives_in_chunks_in_order_and_is_counted() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let told = Arc::new(AtomicU64::new(0));
        let (chunks, sent) = runtime.block_on(async {
            let (writer, stream) = BlockingWriter::new(4, "the test");
            let counter = Arc::clone(&told);
            let mut writer = writer.on_send(move |n| {
                counter.fetch_add(n, Ordering::Relaxed);
            });
            let writing = tokio::task::spawn_blocking(move || {
                for piece in [&b"ab"[..], b"cdef", b"ghij", b"k"] {
                    writer.write_all(piece).unwrap();
                }
                writer.send().unwrap();
                writer.sent
            });
            let chunks: Vec<Bytes> = stream.map(Result::unwrap).collect().await;
            (chunks, writing.await.unwrap())
        });
        assert_eq!(chunks, [&b"abcdef"[..], b"ghij", b"k"]);
        assert_eq!(sent, 11);
        assert_eq!(told.load(Ordering::Relaxed), 11);
    }

    #[test]
    fn a_request_that_stops_reading_is_an_error_that_names_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime.block_on(async {
            let (mut writer, stream) = BlockingWriter::new(4, "the volume");
            drop(stream);
            tokio::task::spawn_blocking(move || writer.write_all(b"abcdef").unwrap_err())
                .await
                .unwrap()
        });
        assert_eq!(err.to_string(), "the engine stopped reading the volume");
    }
}
