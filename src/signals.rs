//! SIGINT, SIGTERM and SIGHUP, caught where berth must finish something before it
//! exits (retire unpausing a container, an attached run passing them on).
//!
//! Once caught, a signal no longer ends the process by itself (tokio keeps its handler
//! for the life of the process), so callers decide what each one does.

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

/// Makes SIGINT, SIGTERM and SIGHUP end the process again (exit 130). Once retire has
/// caught them, they no longer do so by themselves, so a caller that goes on after
/// retire (`deploy --recreate`) calls this to stay interruptible.
pub fn exit_on_signal(printer: Printer) -> Result<()> {
    let mut signals = Signals::install()?;
    tokio::spawn(async move {
        let signal = signals.next().await;
        let err = Error::interrupted(format!("interrupted by {}", signal.describe()));
        printer.error(&err);
        std::process::exit(err.code());
    });
    Ok(())
}
