//! Progress events of a [`Machine`](crate::Machine): optional and bounded.
//!
//! A caller that wants them passes the sender of [`channel`] to `Machine::start` (or
//! [`check`](crate::check)); one that does not passes `None`, and nothing is sent at all.
//!
//! The channel holds [`CAPACITY`] events. Two kinds are treated differently:
//! - *chatter* ([`Event::Serial`], [`Event::Notify`]): one per console line or notify message,
//!   many per boot. They are sent with `try_send`, and only while more than [`RESERVE`] slots are
//!   free: a receiver that falls behind loses console lines (the serial log in the run directory
//!   keeps all of them), and the boot never waits for it.
//! - *decisive* ([`Event::Started`], [`Event::Restarted`], [`Event::Milestone`],
//!   [`Event::Verdict`]): a handful per boot, never dropped. Chatter never takes the last
//!   [`RESERVE`] slots, so they find room at once; only a receiver that is kept but not read
//!   for dozens of decisive events would make the machine wait for it (so a caller that does not
//!   read its receiver must pass `None` instead).

use tokio::sync::mpsc;

use crate::Event;

/// How many events the channel of [`channel`] holds.
pub const CAPACITY: usize = 256;
/// Slots that chatter leaves free for decisive events.
pub const RESERVE: usize = 64;

/// A bounded channel for a machine's progress events ([`CAPACITY`] events).
pub fn channel() -> (mpsc::Sender<Event>, mpsc::Receiver<Event>) {
    mpsc::channel(CAPACITY)
}

/// Whether `event` may be dropped when the receiver falls behind.
pub fn is_chatter(event: &Event) -> bool {
    matches!(event, Event::Serial(_) | Event::Notify(_))
}

/// The sending end a machine holds: nothing, or a bounded sender.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(Option<mpsc::Sender<Event>>);

impl Progress {
    pub(crate) fn new(tx: Option<mpsc::Sender<Event>>) -> Progress {
        Progress(tx)
    }

    /// Whether anyone listens (so callers can skip building an event nobody reads).
    pub(crate) fn wanted(&self) -> bool {
        self.0.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// Sends `event`: chatter only if there is room beyond the reserve, decisive events always
    /// (waiting for room if the receiver is behind). A closed receiver is not an error.
    pub(crate) async fn send(&self, event: Event) {
        let Some(tx) = &self.0 else { return };
        if is_chatter(&event) {
            if tx.capacity() > RESERVE {
                let _ = tx.try_send(event);
            }
        } else {
            let _ = tx.send(event).await;
        }
    }

    /// Sends chatter without waiting (from synchronous code); decisive events go through
    /// [`Progress::send`].
    pub(crate) fn chatter(&self, event: Event) {
        debug_assert!(is_chatter(&event));
        if let Some(tx) = &self.0 {
            if tx.capacity() > RESERVE {
                let _ = tx.try_send(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chatter_is_dropped_when_full_and_decisive_events_are_not() {
        let (tx, mut rx) = channel();
        let progress = Progress::new(Some(tx));
        for i in 0..CAPACITY * 2 {
            progress.chatter(Event::Serial(format!("line {i}")));
        }
        progress.send(Event::Notify("READY=1".into())).await;
        for _ in 0..RESERVE {
            progress
                .send(Event::Restarted {
                    accel: crate::Accel::Tcg,
                    why: crate::KvmDropped::AtStart("test".into()),
                })
                .await;
        }
        let mut chatter = 0;
        let mut decisive = 0;
        while let Ok(ev) = rx.try_recv() {
            match is_chatter(&ev) {
                true => chatter += 1,
                false => decisive += 1,
            }
        }
        assert_eq!(chatter, CAPACITY - RESERVE);
        assert_eq!(decisive, RESERVE);
    }

    #[tokio::test]
    async fn no_sender_sends_nothing() {
        let progress = Progress::new(None);
        assert!(!progress.wanted());
        progress.chatter(Event::Serial("x".into()));
        progress.send(Event::Serial("x".into())).await;
    }
}
