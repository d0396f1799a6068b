//! The signals that stop a check or a run early: Ctrl-C (SIGINT), SIGTERM (a CI job being
//! cancelled) and SIGHUP (the terminal went away). Each stops every guest and removes its run
//! directory before the command exits.

use std::future::pending;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::exit::Exit;

/// The handlers of SIGINT, SIGTERM and SIGHUP, installed when it is made: from then on these
/// signals no longer end the process by themselves, they only resolve [`Stop::requested`].
pub struct Stop {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
}

impl Stop {
    /// Installs the handlers now (call it before anything that must be cleaned up starts).
    pub fn install() -> Stop {
        Stop {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// Resolves at the next of SIGINT, SIGTERM or SIGHUP, with the matching reason to exit.
    /// Cancel-safe: a signal that arrived while nobody waited is returned by the next call.
    pub async fn requested(&mut self) -> Exit {
        tokio::select! {
            _ = next(&mut self.int) => Exit::Interrupted,
            _ = next(&mut self.term) => Exit::Terminated("SIGTERM", SignalKind::terminate().as_raw_value()),
            _ = next(&mut self.hup) => Exit::Terminated("SIGHUP", SignalKind::hangup().as_raw_value()),
        }
    }
}

/// The next delivery of `s`; never, if its handler could not be installed.
async fn next(s: &mut Option<Signal>) {
    if let Some(s) = s {
        if s.recv().await.is_some() {
            return;
        }
    }
    pending().await
}
