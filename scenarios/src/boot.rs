//! Scenario `boot`: the harness verdict reached multi-user.target. Its facts say how: the
//! milestone kinds in order, the boot profile, the firmware, where readiness came from, the
//! notify transport, the vsock target timeline (names only) and the shape of the QEMU command
//! line. All of it is read from the harness's typed [`Verdict`]; the snapshot spells each enum
//! as the verdict's own serde does.

use formats::Profile;
use harness::{Firmware, MilestoneKind, Outcome, ReadinessSource, TransportKind, Verdict};
use serde::Serialize;

use crate::redact::{qemu_arg_shape, Roots};

/// The normalised facts of a boot, as recorded in the `boot@...` snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct BootFacts {
    /// The format's boot profile.
    pub profile: String,
    /// The firmware the harness started the guest with.
    pub firmware: Firmware,
    /// Milestone kinds in order.
    pub milestones: Vec<MilestoneKind>,
    /// Where readiness was read from.
    pub readiness_source: ReadinessSource,
    /// The notify transport's kind.
    pub transport: TransportKind,
    /// The units of the vsock target timeline, names only, sorted: systemd reaches independent
    /// targets in parallel, so their order varies from boot to boot; the set does not.
    pub targets: Vec<String>,
    /// The guest's hostname, if reported.
    pub hostname: Option<String>,
    /// The QEMU command line with temporary paths, ports, CIDs and sizes redacted.
    pub qemu_args: Vec<String>,
}

/// Checks the verdict and derives the facts. Fails with the verdict's reason when the boot did
/// not reach multi-user. `roots.run_dir` is the machine's run directory (whether kept or not).
pub fn check(profile: Profile, verdict: &Verdict, roots: &Roots) -> Result<BootFacts, String> {
    if let Outcome::Failed { reason, detail } = &verdict.outcome {
        return Err(format!("{reason}: {detail}"));
    }
    let roots = Roots {
        run_dir: verdict.run_dir.clone().or_else(|| roots.run_dir.clone()),
        images: roots.images.clone(),
    };
    Ok(BootFacts {
        profile: profile.name().to_owned(),
        firmware: verdict.firmware,
        milestones: verdict.milestones.iter().map(|m| m.kind).collect(),
        readiness_source: verdict.source,
        transport: verdict.transport,
        targets: target_set(profile, &verdict.targets),
        hostname: verdict.hostname.clone(),
        qemu_args: qemu_arg_shape(&verdict.qemu_args, &roots),
    })
}

/// The first target a guest booted through U-Boot is sure to report over vsock: its transport
/// module is loaded by `modprobe@vmw_vsock_virtio_transport.service` (the harness's drop-in
/// credential, `harness::notify::transport::VSOCK_DROPIN`), which is ordered before it.
const FIRST_SURE_TARGET_UBOOT: &str = "sysinit.target";

/// The vsock timeline's targets as a sorted set. For `uboot-board` only those reported from
/// `sysinit.target` on: the targets systemd reaches before it race the transport module's
/// loading (`local-fs-pre.target` came in each of four boots here, but nothing orders it after
/// the module), so whether they are reported varies from boot to boot.
pub fn target_set(profile: Profile, targets: &[(String, std::time::Duration)]) -> Vec<String> {
    let from = match profile {
        Profile::UbootBoard => targets
            .iter()
            .find(|(t, _)| t == FIRST_SURE_TARGET_UBOOT)
            .map(|(_, at)| *at),
        _ => None,
    };
    let mut t: Vec<String> = targets
        .iter()
        .filter(|(_, at)| from.map_or(true, |from| *at >= from))
        .map(|(t, _)| t.clone())
        .collect();
    t.sort();
    t.dedup();
    t
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::path::Path;

    use harness::{rundir::RunFiles, Accel, Milestone, Reason};

    use super::*;

    fn verdict(outcome: Outcome) -> Verdict {
        let ms = |kind| Milestone {
            kind,
            at: Duration::from_secs(1),
        };
        Verdict {
            outcome,
            accel: Accel::Tcg,
            kvm_dropped: None,
            vcpus: Some(1),
            vcpus_dropped: None,
            firmware_restarted: None,
            source: ReadinessSource::Vsock,
            firmware: Firmware::Uefi,
            transport: TransportKind::SerialOnly,
            serial_only_reason: Some("no vhost-device-vsock".into()),
            milestones: vec![ms(MilestoneKind::Firmware), ms(MilestoneKind::MultiUser)],
            targets: vec![
                ("multi-user.target".into(), Duration::from_secs(2)),
                ("basic.target".into(), Duration::from_secs(1)),
            ],
            hostname: Some("standin".into()),
            machine_id: None,
            exit_status: None,
            elapsed: Duration::from_secs(3),
            run_dir: None,
            evidence: RunFiles::of(Path::new("/tmp/ng-x1")).evidence(),
            qemu_args: [
                "qemu-system-x86_64",
                "-chardev",
                "socket,path=/tmp/ng-x1/serial.sock",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    #[test]
    fn uboot_targets_start_at_sysinit() {
        let at = |t: &str, s| (t.to_string(), Duration::from_secs(s));
        let timeline = [
            at("local-fs-pre.target", 1),
            at("sysinit.target", 2),
            at("multi-user.target", 4),
            at("basic.target", 3),
        ];
        assert_eq!(
            target_set(Profile::UbootBoard, &timeline),
            ["basic.target", "multi-user.target", "sysinit.target"]
        );
        assert_eq!(target_set(Profile::EfiDisk, &timeline).len(), 4);
        // No sysinit.target reported: nothing to cut at.
        assert_eq!(target_set(Profile::UbootBoard, &timeline[2..]).len(), 2);
    }

    #[test]
    fn a_failed_verdict_fails_with_its_reason() {
        let v = verdict(Outcome::Failed {
            reason: Reason::KernelPanic,
            detail: "VFS: Unable to mount root fs".into(),
        });
        let err = check(Profile::BiosDisk, &v, &Roots::default()).unwrap_err();
        assert_eq!(err, "kernel-panic: VFS: Unable to mount root fs");
    }

    #[test]
    fn facts_are_normalised_and_spelt_as_in_the_snapshots() {
        let roots = Roots {
            run_dir: Some("/tmp/ng-x1".into()),
            images: None,
        };
        let facts = check(Profile::EfiDisk, &verdict(Outcome::Ready), &roots).unwrap();
        assert_eq!(facts.qemu_args[2], "socket,path=<run>/serial.sock");
        assert_eq!(facts.targets, ["basic.target", "multi-user.target"]);
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["firmware"], "uefi");
        assert_eq!(json["transport"], "serial-only");
        assert_eq!(json["readiness_source"], "vsock");
        assert_eq!(
            json["milestones"],
            serde_json::json!(["firmware", "multi-user"])
        );
        assert_eq!(json["profile"], "efi-disk");
    }
}
