//! The judge's decisions, signal by signal.

use super::*;
use std::time::Instant;

fn msg(text: &str, at: Duration) -> NotifyMessage {
    NotifyMessage::parse(text.as_bytes(), Instant::now(), at)
}

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn exited(exit: QemuExit) -> Signal<'static> {
    Signal::QemuExited {
        exit,
        accel_error: None,
    }
}

fn failure(d: Decision) -> (Reason, String) {
    match d.outcome {
        Outcome::Failed { reason, detail } => (reason, detail),
        Outcome::Ready => panic!("ready, expected a failure"),
    }
}

#[test]
fn an_unrequested_stop_decides_by_the_run_state() {
    let kvm = "KVM internal error. Suberror: 1 (emulation failure)";
    let cases = [
        ("internal-error", Some(kvm), Reason::AcceleratorFailure, kvm),
        (
            "internal-error",
            None,
            Reason::AcceleratorFailure,
            "internal error",
        ),
        ("guest-panicked", None, Reason::GuestPanicked, "panicked"),
        ("io-error", None, Reason::GuestStopped, "io-error"),
        ("shutdown", None, Reason::GuestStopped, "status shutdown"),
    ];
    for (status, accel_error, reason, detail) in cases {
        let mut j = Judge::new(true);
        let d = j
            .feed(
                Signal::Stopped {
                    status,
                    accel_error,
                },
                s(1),
            )
            .unwrap();
        assert_eq!(d.source, ReadinessSource::None);
        let (r, text) = failure(d);
        assert_eq!(r, reason, "{status}");
        assert!(text.contains(detail), "{status}: {text}");
    }
    // A stop that QEMU already undid decides nothing.
    let mut j = Judge::new(false);
    let running = Signal::Stopped {
        status: "running",
        accel_error: None,
    };
    assert_eq!(j.feed(running, s(1)), None);
}

#[test]
fn qemu_exit_names_signal_shutdown_and_accelerator() {
    let mut j = Judge::new(false);
    let (r, text) = failure(j.feed(exited(QemuExit::Signal(9)), s(3)).unwrap());
    assert_eq!(r, Reason::QemuExited);
    assert_eq!(text, "QEMU was killed by signal 9 (SIGKILL)");

    let mut j = Judge::new(false);
    let ev = QmpEvent {
        name: "SHUTDOWN".into(),
        data: serde_json::json!({"guest": true, "reason": "guest-reset"}),
    };
    assert_eq!(j.feed(Signal::Qmp(&ev), s(2)), None);
    let (_, text) = failure(j.feed(exited(QemuExit::Code(0)), s(3)).unwrap());
    assert_eq!(
        text,
        "QEMU exited with status 0 after the guest reset itself"
    );

    let mut j = Judge::new(false);
    let msr = Signal::QemuExited {
        exit: QemuExit::Signal(6),
        accel_error: Some("error: failed to set MSR 0x10a to 0x69"),
    };
    let (r, text) = failure(j.feed(msr, s(0)).unwrap());
    assert_eq!(r, Reason::AcceleratorFailure);
    assert!(text.starts_with("error: failed to set MSR") && text.contains("SIGABRT"));
}

#[test]
fn serial_decides_alone_when_no_vsock() {
    let mut j = Judge::new(false);
    assert_eq!(j.feed(Signal::Line("Linux version 6.1"), s(1)), None);
    let d = j
        .feed(Signal::Line("Reached target Multi-User System."), s(5))
        .unwrap();
    assert_eq!(d, Decision::ready(ReadinessSource::Serial));
    let kinds: Vec<_> = j.milestones().iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            MilestoneKind::Firmware,
            MilestoneKind::Kernel,
            MilestoneKind::MultiUser
        ]
    );
    // Decides once only.
    assert_eq!(j.feed(exited(QemuExit::Code(0)), s(6)), None);
}

#[test]
fn vsock_wins_over_serial_and_ready_alone_is_not_success() {
    let mut j = Judge::new(true);
    assert_eq!(
        j.feed(
            Signal::Notify(&msg("X_SYSTEMD_HOSTNAME=standin", s(2))),
            s(2)
        ),
        None
    );
    assert_eq!(j.feed(Signal::Notify(&msg("READY=1", s(2))), s(2)), None);
    assert_eq!(
        j.feed(Signal::Line("Reached target multi-user.target"), s(3)),
        None
    );
    assert_eq!(j.held_until(), Some(s(3) + NOTIFY_GRACE));
    let d = j
        .feed(
            Signal::Notify(&msg("X_SYSTEMD_UNIT_ACTIVE=multi-user.target", s(3))),
            s(3),
        )
        .unwrap();
    assert_eq!(d.source, ReadinessSource::Vsock);
    assert_eq!(d.outcome, Outcome::Ready);
}

#[test]
fn held_serial_decision_released_after_grace() {
    let mut j = Judge::new(true);
    j.feed(Signal::Notify(&msg("X_SYSTEMD_HOSTNAME=x", s(1))), s(1));
    j.feed(Signal::Line("You are in emergency mode."), s(4));
    assert_eq!(j.tick(s(5)), None);
    let d = j.tick(s(4) + NOTIFY_GRACE).unwrap();
    assert_eq!(d.source, ReadinessSource::Serial);
    assert!(matches!(
        d.outcome,
        Outcome::Failed {
            reason: Reason::EmergencyMode,
            ..
        }
    ));
}

#[test]
fn emergency_over_vsock_despite_ready() {
    let mut j = Judge::new(true);
    j.feed(
        Signal::Notify(&msg("X_SYSTEMD_UNIT_ACTIVE=emergency.target", s(1))),
        s(1),
    );
    // Already decided by the message above.
    let mut j2 = Judge::new(true);
    let d = j2
        .feed(
            Signal::Notify(&msg(
                "READY=1\nX_SYSTEMD_UNIT_ACTIVE=emergency.target",
                s(1),
            )),
            s(1),
        )
        .unwrap();
    assert!(matches!(
        d.outcome,
        Outcome::Failed {
            reason: Reason::EmergencyMode,
            ..
        }
    ));
    assert_eq!(d.source, ReadinessSource::Vsock);
}

#[test]
fn silent_vsock_does_not_hold_serial() {
    let mut j = Judge::new(true);
    let d = j
        .feed(Signal::Line("Reached target multi-user.target"), s(9))
        .unwrap();
    assert_eq!(d.source, ReadinessSource::Serial);
}

#[test]
fn exit_panic_and_deadline() {
    let mut j = Judge::new(false);
    let d = j.feed(exited(QemuExit::Code(1)), s(1)).unwrap();
    assert!(matches!(
        d.outcome,
        Outcome::Failed {
            reason: Reason::QemuExited,
            ..
        }
    ));
    let mut j = Judge::new(false);
    let ev = QmpEvent {
        name: "GUEST_PANICKED".into(),
        data: serde_json::json!({"action": "pause"}),
    };
    let d = j.feed(Signal::Qmp(&ev), s(1)).unwrap();
    assert!(matches!(
        d.outcome,
        Outcome::Failed {
            reason: Reason::GuestPanicked,
            ..
        }
    ));
    let mut j = Judge::new(false);
    j.feed(Signal::Line("Linux version 6"), s(1));
    let d = j.feed(Signal::Deadline(s(30)), s(30)).unwrap();
    match d.outcome {
        Outcome::Failed { reason, detail } => {
            assert_eq!(reason, Reason::Timeout);
            assert!(detail.contains("Kernel"), "{detail}");
        }
        o => panic!("unexpected {o:?}"),
    }
}
