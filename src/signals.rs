//! SIGINT, SIGTERM and SIGHUP, caught where berth must finish something before it
//! exits (retire unpausing a container, an attached run passing them on).
//!
//! Once caught, a signal no longer ends the process by itself (tokio keeps its handler
//! for the life of the process), so callers decide what each one does.

use std::future::Future;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::error::{Error, Result};
use crate::ui::Printer;

pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    Interrupt,
    Terminate,
    Hangup,
}

impl Caught {
    /// As docker's kill API names it.
    pub fn name(self) -> &'static str {
        match self {
            Caught::Interrupt => "SIGINT",
            Caught::Terminate => "SIGTERM",
            Caught::Hangup => "SIGHUP",
        }
    }

    pub fn number(self) -> i32 {
        match self {
            Caught::Interrupt => libc::SIGINT,
            Caught::Terminate => libc::SIGTERM,
            Caught::Hangup => libc::SIGHUP,
        }
    }

    /// As a person would say it.
    pub fn describe(self) -> &'static str {
        match self {
            Caught::Interrupt => "Ctrl-C",
            Caught::Terminate => "SIGTERM",
            Caught::Hangup => "a hang-up",
        }
    }
}

impl Signals {
    pub fn install() -> Result<Self> {
        let listen = |kind| {
            signal(kind).map_err(|err| Error::failed(format!("cannot catch signals: {err}")))
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> Caught {
        tokio::select! {
            _ = self.interrupt.recv() => Caught::Interrupt,
            _ = self.terminate.recv() => Caught::Terminate,
            _ = self.hangup.recv() => Caught::Hangup,
        }
    }
}

/// Asks work under way to stop at its next step: set by [`finish_on_signal`], read by
/// the work between the steps it takes on the engine and by its readers mid-stream.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn asked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn ask(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// An error once a stop was asked: the step it guards is not begun.
    pub fn check(&self) -> Result<()> {
        match self.asked() {
            true => Err(Error::interrupted("interrupted")),
            false => Ok(()),
        }
    }

    /// `reader`, which fails once a stop was asked (not with
    /// [`io::ErrorKind::Interrupted`], which readers retry).
    pub fn reader<R: Read>(&self, reader: R) -> Stoppable<R> {
        Stoppable {
            stop: self.clone(),
            reader,
        }
    }
}

/// See [`Stop::reader`].
pub struct Stoppable<R> {
    stop: Stop,
    reader: R,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stop.asked() {
            true => Err(io::Error::other("interrupted")),
            false => self.reader.read(buf),
        }
    }
}

/// Runs `work` to its end even when a signal comes: the signal asks `stop`, and the
/// work, which checks it between its steps, returns at the next one. Dropping it
/// instead would leave what an engine call in flight makes (a helper container, a
/// volume) made after the caller's clean-up looked for it. The signal is the error,
/// unless the work had passed its last check and finished.
pub async fn finish_on_signal<T>(
    signals: &mut Signals,
    stop: &Stop,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => done,
        signal = signals.next() => {
            stop.ask();
            let done = work.await;
            done.map_err(|_| Error::interrupted(format!("interrupted by {}", signal.describe())))
        }
    }
}

/// Set where the process itself decides what a signal does for its whole life (a Slurm
/// job, which retires its container when Slurm signals it): [`exit_on_signal`] is then
/// a no-op.
static HANDLED: AtomicBool = AtomicBool::new(false);

/// Keeps [`exit_on_signal`] from ending the process: the caller handles the signals.
pub fn handled_by_caller() {
    HANDLED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP end the process again (exit 130). Once retire has
/// caught them, they no longer do so by themselves, so a caller that goes on after
/// retire (`deploy --recreate`) calls this to stay interruptible.
pub fn exit_on_signal(printer: Printer) -> Result<()> {
    if HANDLED.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut signals = Signals::install()?;
    tokio::spawn(async move {
        let signal = signals.next().await;
        let err = Error::interrupted(format!("interrupted by {}", signal.describe()));
        printer.error(&err);
        std::process::exit(err.code());
    });
    Ok(())
}
