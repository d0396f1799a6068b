//! The signals that stop a check or a run early: Ctrl-C (SIGINT), SIGTERM (a CI job being
//! cancelled) and SIGHUP (the terminal went away). Each stops every guest and removes its run
//! directory before the command exits.

use std::future::pending;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::exit::Exit;

/// Resolves at the first of SIGINT, SIGTERM or SIGHUP, with the matching reason to exit.
/// Create it once and keep polling the same future: the handlers are installed on first poll.
pub async fn stop_requested() -> Exit {
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Exit::Interrupted,
        _ = next(&mut term) => Exit::Terminated("SIGTERM", SignalKind::terminate().as_raw_value()),
        _ = next(&mut hup) => Exit::Terminated("SIGHUP", SignalKind::hangup().as_raw_value()),
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
