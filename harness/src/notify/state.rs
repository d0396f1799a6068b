//! [`NotifyState`]: a pure fold over [`NotifyMessage`]s that decides the boot.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use super::message::NotifyMessage;

/// The target whose activation means success.
pub const MULTI_USER: &str = "multi-user.target";
/// Activating this target means the boot failed into emergency mode.
pub const EMERGENCY: &str = "emergency.target";
/// Activating this target means the boot failed into rescue mode.
pub const RESCUE: &str = "rescue.target";

/// Which failure target the guest reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureTarget {
    /// `emergency.target` became active.
    Emergency,
    /// `rescue.target` became active.
    Rescue,
}

impl fmt::Display for FailureTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureTarget::Emergency => EMERGENCY,
            FailureTarget::Rescue => RESCUE,
        })
    }
}

/// What the messages so far say about the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing conclusive yet (keep waiting, or fall back to serial).
    Undecided,
    /// `multi-user.target` is active and no failure target is.
    Ready,
    /// emergency.target or rescue.target is active, whatever `READY=1` says.
    Failed(FailureTarget),
}

/// Everything learnt from the guest's notify messages, folded in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyState {
    /// Ordered target timeline: each `X_SYSTEMD_UNIT_ACTIVE=` unit with its time since open.
    pub targets: Vec<(String, Duration)>,
    /// The units active now: added by `X_SYSTEMD_UNIT_ACTIVE=`, removed by
    /// `X_SYSTEMD_UNIT_INACTIVE=` (sent on shutdown, for example).
    pub active: BTreeSet<String>,
    /// `X_SYSTEMD_SHUTDOWN=` (e.g. `poweroff`), once the guest starts shutting down.
    pub shutdown: Option<String>,
    /// `X_SYSTEMD_HOSTNAME=`, last value seen.
    pub hostname: Option<String>,
    /// `X_SYSTEMD_MACHINE_ID=`, last value seen.
    pub machine_id: Option<String>,
    /// `EXIT_STATUS=`, last value seen.
    pub exit_status: Option<i32>,
    /// Time of the first `READY=1` (informational only: it also follows emergency.target).
    pub ready_at: Option<Duration>,
    /// Last `STATUS=` text.
    pub status: Option<String>,
    /// Time of the first message of any kind; `None` while the guest is silent.
    pub first_message_at: Option<Duration>,
    /// Number of messages folded in.
    pub messages: usize,
}

impl NotifyState {
    /// An empty state (no message yet).
    pub fn new() -> NotifyState {
        NotifyState::default()
    }

    /// Folds one message in.
    pub fn apply(&mut self, msg: &NotifyMessage) {
        self.messages += 1;
        self.first_message_at.get_or_insert(msg.at);
        for (key, value) in &msg.fields {
            match key.as_str() {
                super::message::UNIT_ACTIVE if !value.is_empty() => {
                    self.targets.push((value.clone(), msg.at));
                    self.active.insert(value.clone());
                }
                super::message::UNIT_INACTIVE => {
                    self.active.remove(value);
                }
                super::message::SHUTDOWN => self.shutdown = Some(value.clone()),
                super::message::HOSTNAME => self.hostname = Some(value.clone()),
                super::message::MACHINE_ID => self.machine_id = Some(value.clone()),
                super::message::EXIT_STATUS => {
                    if let Ok(n) = value.trim().parse() {
                        self.exit_status = Some(n);
                    }
                }
                super::message::READY if value == "1" => {
                    self.ready_at.get_or_insert(msg.at);
                }
                super::message::STATUS => self.status = Some(value.clone()),
                _ => {}
            }
        }
    }

    /// The decision from the units active now. Failure targets win over multi-user.target.
    /// On shutdown multi-user.target turns inactive and this returns to `Undecided`: a boot
    /// check takes the first decision that is not `Undecided`.
    pub fn decision(&self) -> Decision {
        if self.active.contains(EMERGENCY) {
            Decision::Failed(FailureTarget::Emergency)
        } else if self.active.contains(RESCUE) {
            Decision::Failed(FailureTarget::Rescue)
        } else if self.active.contains(MULTI_USER) {
            Decision::Ready
        } else {
            Decision::Undecided
        }
    }

    /// When `unit` first became active (time since open).
    pub fn target_time(&self, unit: &str) -> Option<Duration> {
        self.targets
            .iter()
            .find(|(name, _)| name == unit)
            .map(|(_, at)| *at)
    }

    /// The "silence" test for falling back to serial early: true when no message at all has
    /// arrived and at least `grace` has passed since `since` (e.g. the time the serial console
    /// showed systemd starting, or the time QEMU started), judged at time `now`.
    /// A systemd older than 254 (bookworm: 252) never sends anything, so this turns true.
    pub fn is_silent(&self, since: Duration, now: Duration, grace: Duration) -> bool {
        self.first_message_at.is_none() && now.saturating_sub(since) >= grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn feed(state: &mut NotifyState, secs: u64, raw: &str) {
        let m = NotifyMessage::parse(raw.as_bytes(), Instant::now(), Duration::from_secs(secs));
        state.apply(&m);
    }

    #[test]
    fn normal_boot_as_observed_with_systemd_257() {
        let mut s = NotifyState::new();
        assert_eq!(s.decision(), Decision::Undecided);
        feed(&mut s, 5, "X_SYSTEMD_HOSTNAME=standin");
        feed(&mut s, 5, "X_SYSTEMD_MACHINE_ID=abc123");
        feed(&mut s, 6, "X_SYSTEMD_SIGNALS_LEVEL=2");
        feed(&mut s, 7, "X_SYSTEMD_UNIT_ACTIVE=sysinit.target");
        feed(&mut s, 8, "X_SYSTEMD_UNIT_ACTIVE=basic.target");
        assert_eq!(s.decision(), Decision::Undecided);
        feed(&mut s, 12, "X_SYSTEMD_UNIT_ACTIVE=multi-user.target");
        assert_eq!(s.decision(), Decision::Ready);
        feed(&mut s, 12, "READY=1\nSTATUS=Ready.");
        feed(&mut s, 13, "X_SYSTEMD_UNIT_ACTIVE=graphical.target");
        assert_eq!(s.decision(), Decision::Ready);
        let names: Vec<&str> = s.targets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "sysinit.target",
                "basic.target",
                "multi-user.target",
                "graphical.target"
            ]
        );
        assert_eq!(s.hostname.as_deref(), Some("standin"));
        assert_eq!(s.machine_id.as_deref(), Some("abc123"));
        assert_eq!(s.ready_at, Some(Duration::from_secs(12)));
        assert_eq!(s.status.as_deref(), Some("Ready."));
        assert_eq!(s.target_time(MULTI_USER), Some(Duration::from_secs(12)));
        assert_eq!(s.first_message_at, Some(Duration::from_secs(5)));
        assert_eq!(s.messages, 8);
        assert_eq!(s.exit_status, None);
    }

    #[test]
    fn emergency_fails_even_with_ready() {
        let mut s = NotifyState::new();
        feed(&mut s, 3, "X_SYSTEMD_HOSTNAME=standin");
        feed(&mut s, 9, "X_SYSTEMD_UNIT_ACTIVE=emergency.target");
        feed(&mut s, 9, "READY=1\nSTATUS=Ready.");
        assert_eq!(s.decision(), Decision::Failed(FailureTarget::Emergency));
        assert!(s.ready_at.is_some());
    }

    #[test]
    fn failure_target_wins_over_multi_user() {
        let mut s = NotifyState::new();
        feed(&mut s, 9, "X_SYSTEMD_UNIT_ACTIVE=multi-user.target");
        feed(&mut s, 10, "X_SYSTEMD_UNIT_ACTIVE=rescue.target");
        assert_eq!(s.decision(), Decision::Failed(FailureTarget::Rescue));
        assert_eq!(FailureTarget::Rescue.to_string(), "rescue.target");
    }

    #[test]
    fn ready_alone_decides_nothing_and_exit_status_is_kept() {
        let mut s = NotifyState::new();
        feed(&mut s, 9, "READY=1");
        assert_eq!(s.decision(), Decision::Undecided);
        feed(&mut s, 20, "EXIT_STATUS=123");
        assert_eq!(s.exit_status, Some(123));
    }

    #[test]
    fn shutdown_deactivates_and_records_exit() {
        let mut s = NotifyState::new();
        feed(&mut s, 9, "X_SYSTEMD_UNIT_ACTIVE=multi-user.target");
        assert_eq!(s.decision(), Decision::Ready);
        feed(&mut s, 30, "X_SYSTEMD_UNIT_INACTIVE=multi-user.target");
        feed(&mut s, 30, "X_SYSTEMD_UNIT_ACTIVE=shutdown.target");
        feed(&mut s, 31, "EXIT_STATUS=0\nX_SYSTEMD_SHUTDOWN=poweroff");
        assert_eq!(s.decision(), Decision::Undecided);
        assert!(!s.active.contains(MULTI_USER));
        assert_eq!(s.target_time(MULTI_USER), Some(Duration::from_secs(9)));
        assert_eq!(s.shutdown.as_deref(), Some("poweroff"));
        assert_eq!(s.exit_status, Some(0));
    }

    #[test]
    fn silence_needs_no_message_and_the_grace_period() {
        let mut s = NotifyState::new();
        let t = Duration::from_secs;
        assert!(!s.is_silent(t(2), t(5), t(10)));
        assert!(s.is_silent(t(2), t(12), t(10)));
        feed(&mut s, 11, "X_SYSTEMD_HOSTNAME=h");
        assert!(!s.is_silent(t(2), t(30), t(10)));
    }
}
