//! The detector: typed signals from every source (serial lines, QMP events, QEMU's exit, the
//! vsock notify channel, the deadline) folded into milestones and one decision.
//!
//! Serial text decides at once, except the systemd-level decisions (multi-user, emergency,
//! rescue) while a vsock channel is live and the guest has spoken on it: those are held for
//! [`NOTIFY_GRACE`] so that the guest's own report (more reliable) can decide first.

pub mod firmware_stall;
pub mod text;

use std::time::Duration;

pub use firmware_stall::FirmwareWatch;
pub use text::{int3_oops, strip_ansi, tail_lines, Finding, TextDetector, KERNEL_TIMESTAMP};

use crate::notify::{self, NotifyMessage, NotifyState};
use crate::qemu::QemuExit;
use crate::qmp::QmpEvent;
use crate::{Milestone, MilestoneKind, Outcome, ReadinessSource, Reason};

/// How long a serial systemd-level decision waits for the vsock channel to confirm it.
pub const NOTIFY_GRACE: Duration = Duration::from_secs(3);

/// One typed signal.
#[derive(Debug, Clone, Copy)]
pub enum Signal<'a> {
    /// A complete console line (ANSI escapes removed).
    Line(&'a str),
    /// The unterminated end of the console (a prompt).
    Partial(&'a str),
    /// A QMP event.
    Qmp(&'a QmpEvent),
    /// QEMU stopped the guest's CPUs without being asked (QMP `STOP`), and `query-status`
    /// answered `status`.
    Stopped {
        /// The run state (`internal-error`, `guest-panicked`, `shutdown`, `io-error`, ...).
        status: &'a str,
        /// The line of QEMU's stderr that names an accelerator failure, if any.
        accel_error: Option<&'a str>,
    },
    /// systemd-nspawn exited (a container).
    ContainerExited {
        /// How.
        exit: QemuExit,
        /// Its last line on stderr (why it gave up), if any.
        last_words: Option<&'a str>,
    },
    /// QEMU exited.
    QemuExited {
        /// How.
        exit: QemuExit,
        /// The line of QEMU's stderr that names an accelerator failure, if any.
        accel_error: Option<&'a str>,
    },
    /// A vsock notify message.
    Notify(&'a NotifyMessage),
    /// The deadline passed.
    Deadline(Duration),
}

/// A final decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Ready or failed.
    pub outcome: Outcome,
    /// Which channel decided.
    pub source: ReadinessSource,
}

impl Decision {
    fn failed(reason: Reason, detail: impl Into<String>, source: ReadinessSource) -> Decision {
        Decision {
            outcome: Outcome::Failed {
                reason,
                detail: detail.into(),
            },
            source,
        }
    }

    fn ready(detail_source: ReadinessSource) -> Decision {
        Decision {
            outcome: Outcome::Ready,
            source: detail_source,
        }
    }
}

/// Folds signals into milestones and a decision.
#[derive(Debug)]
pub struct Judge {
    text: TextDetector,
    notify: NotifyState,
    notify_live: bool,
    milestones: Vec<Milestone>,
    fresh: Vec<Milestone>,
    held: Option<(Decision, Duration)>,
    decided: bool,
    /// The reason of a guest-initiated QMP `SHUTDOWN` (the guest powered off or reset).
    shutdown: Option<String>,
    /// A container: no firmware, boot loader, kernel or initrd of its own, and its notify
    /// messages come on a socket, not over vsock.
    container: bool,
}

impl Judge {
    /// A judge; `notify_live` says whether a vsock notify transport is in use.
    pub fn new(notify_live: bool) -> Judge {
        Judge {
            text: TextDetector::new(),
            notify: NotifyState::new(),
            notify_live,
            milestones: Vec::new(),
            fresh: Vec::new(),
            held: None,
            decided: false,
            shutdown: None,
            container: false,
        }
    }

    /// A judge for a container (see [`Judge::new`]).
    pub fn for_container(notify_live: bool) -> Judge {
        Judge {
            container: true,
            ..Judge::new(notify_live)
        }
    }

    /// Where notify decisions come from.
    fn notify_source(&self) -> ReadinessSource {
        match self.container {
            true => ReadinessSource::NotifySocket,
            false => ReadinessSource::Vsock,
        }
    }

    /// Feeds one signal seen at `at` (since QEMU started); returns the decision once.
    pub fn feed(&mut self, signal: Signal<'_>, at: Duration) -> Option<Decision> {
        if self.decided {
            return None;
        }
        let decision = match signal {
            Signal::Line(line) => {
                let mut d = None;
                for finding in self.text.line(line) {
                    d = d.or(self.on_text(finding, line, at));
                }
                d
            }
            Signal::Partial(text) => {
                let finding = self.text.partial(text)?;
                self.on_text(finding, text.trim(), at)
            }
            Signal::Qmp(event) if event.name == "GUEST_PANICKED" => Some(Decision::failed(
                Reason::GuestPanicked,
                format!("QMP GUEST_PANICKED {}", event.data),
                ReadinessSource::None,
            )),
            Signal::Qmp(event) => {
                if event.name == "SHUTDOWN" && event.data["guest"] == true {
                    let why = event.data["reason"].as_str().unwrap_or("guest-shutdown");
                    self.shutdown = Some(why.to_string());
                }
                None
            }
            Signal::Stopped {
                status,
                accel_error,
            } => self.on_stopped(status, accel_error),
            Signal::ContainerExited { exit, last_words } => {
                self.held.take().map(|h| h.0).or_else(|| {
                    let why = last_words.map_or_else(String::new, |l| format!(": {l}"));
                    Some(Decision::failed(
                        Reason::ContainerExited,
                        format!("systemd-nspawn {exit}{}{why}", self.after_shutdown()),
                        ReadinessSource::None,
                    ))
                })
            }
            Signal::QemuExited { exit, accel_error } => {
                self.held.take().map(|h| h.0).or_else(|| {
                    Some(match accel_error {
                        Some(line) => Decision::failed(
                            Reason::AcceleratorFailure,
                            format!("{line} (QEMU {exit})"),
                            ReadinessSource::None,
                        ),
                        None => Decision::failed(
                            Reason::QemuExited,
                            format!("QEMU {exit}{}", self.after_shutdown()),
                            ReadinessSource::None,
                        ),
                    })
                })
            }
            Signal::Notify(msg) => self.on_notify(msg, at),
            Signal::Deadline(timeout) => self.held.take().map(|h| h.0).or_else(|| {
                let last = self
                    .milestones
                    .iter()
                    .max_by_key(|m| m.at)
                    .map_or("none".to_string(), |m| format!("{:?}", m.kind));
                Some(Decision::failed(
                    Reason::Timeout,
                    format!(
                        "no verdict within {}s (last milestone: {last})",
                        timeout.as_secs()
                    ),
                    ReadinessSource::None,
                ))
            }),
        };
        self.finish(decision)
    }

    /// Releases a held serial decision whose grace has run out.
    pub fn tick(&mut self, at: Duration) -> Option<Decision> {
        match &self.held {
            Some((_, until)) if at >= *until => {
                let d = self.held.take().map(|h| h.0);
                self.finish(d)
            }
            _ => None,
        }
    }

    /// When a held decision becomes final, if one is held.
    pub fn held_until(&self) -> Option<Duration> {
        self.held.as_ref().map(|h| h.1)
    }

    /// Milestones reached since the last call (for progress events).
    pub fn take_fresh(&mut self) -> Vec<Milestone> {
        std::mem::take(&mut self.fresh)
    }

    /// All milestones, in the order reached.
    pub fn milestones(&self) -> Vec<Milestone> {
        let mut m = self.milestones.clone();
        m.sort_by_key(|m| (m.at, m.kind));
        m
    }

    /// What the notify messages said.
    pub fn notify_state(&self) -> &NotifyState {
        &self.notify
    }

    fn finish(&mut self, d: Option<Decision>) -> Option<Decision> {
        if let Some(d) = &d {
            self.decided = true;
            if d.outcome == Outcome::Ready {
                // The time of the decision, when the serial/vsock signal did not record it.
                if !self
                    .milestones
                    .iter()
                    .any(|m| m.kind == MilestoneKind::MultiUser)
                {
                    let at = self
                        .milestones
                        .iter()
                        .map(|m| m.at)
                        .max()
                        .unwrap_or_default();
                    self.milestone(MilestoneKind::MultiUser, at);
                }
            }
        }
        d
    }

    fn milestone(&mut self, kind: MilestoneKind, at: Duration) {
        let machine_stage = matches!(
            kind,
            MilestoneKind::Firmware
                | MilestoneKind::Bootloader
                | MilestoneKind::Kernel
                | MilestoneKind::Initrd
        );
        if self.container && machine_stage {
            return;
        }
        if !self.milestones.iter().any(|m| m.kind == kind) {
            let m = Milestone { kind, at };
            self.milestones.push(m);
            self.fresh.push(m);
        }
    }

    /// " after the guest ... " when the guest itself shut down or reset.
    fn after_shutdown(&self) -> String {
        match self.shutdown.as_deref() {
            Some("guest-reset") => " after the guest reset itself".to_string(),
            Some(why) => format!(" after the guest shut down ({why})"),
            None => String::new(),
        }
    }

    fn on_stopped(&self, status: &str, accel_error: Option<&str>) -> Option<Decision> {
        let (reason, detail) = match (status, accel_error) {
            ("running", _) => return None,
            (_, Some(line)) => (Reason::AcceleratorFailure, line.to_string()),
            ("internal-error", None) => (
                Reason::AcceleratorFailure,
                "QEMU stopped the guest with an internal error".to_string(),
            ),
            ("guest-panicked", None) => (
                Reason::GuestPanicked,
                "QEMU stopped the panicked guest (status guest-panicked)".to_string(),
            ),
            ("io-error", None) => (
                Reason::GuestStopped,
                "QEMU stopped the guest after a disk I/O error (status io-error: is the run \
                 directory's file system full?)"
                    .to_string(),
            ),
            (other, None) => (
                Reason::GuestStopped,
                format!(
                    "QEMU stopped the guest (status {other}){}",
                    self.after_shutdown()
                ),
            ),
        };
        Some(Decision::failed(reason, detail, ReadinessSource::None))
    }

    fn on_text(&mut self, finding: Finding, line: &str, at: Duration) -> Option<Decision> {
        let systemd_level = match &finding {
            Finding::Milestone(kind) => {
                self.milestone(*kind, at);
                return None;
            }
            Finding::Ready => {
                self.milestone(MilestoneKind::MultiUser, at);
                true
            }
            Finding::Failed(r) => matches!(r, Reason::EmergencyMode | Reason::RescueMode),
        };
        let decision = match finding {
            Finding::Failed(reason) => {
                Decision::failed(reason, line.trim(), ReadinessSource::Serial)
            }
            _ => Decision::ready(ReadinessSource::Serial),
        };
        if systemd_level && self.notify_live && self.notify.messages > 0 {
            if self.held.is_none() {
                self.held = Some((decision, at + NOTIFY_GRACE));
            }
            return None;
        }
        Some(decision)
    }

    fn on_notify(&mut self, msg: &NotifyMessage, at: Duration) -> Option<Decision> {
        self.notify.apply(msg);
        if self.notify.messages == 1 {
            // systemd (of the initrd or the system) is up and talking.
            self.milestone(MilestoneKind::Systemd, at);
        }
        match self.notify.decision() {
            notify::Decision::Undecided => None,
            notify::Decision::Ready => {
                self.milestone(MilestoneKind::MultiUser, at);
                self.held = None;
                Some(Decision::ready(self.notify_source()))
            }
            notify::Decision::Failed(target) => {
                self.held = None;
                let reason = match target {
                    notify::FailureTarget::Emergency => Reason::EmergencyMode,
                    notify::FailureTarget::Rescue => Reason::RescueMode,
                };
                Some(Decision::failed(
                    reason,
                    format!("{}={target}", notify::UNIT_ACTIVE),
                    self.notify_source(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
