//! Scenario `boot`: the harness verdict reached multi-user.target. Its facts say how: the
//! milestone kinds in order, the boot profile, the firmware kind, where readiness came from,
//! the vsock target timeline (names only) and the shape of the QEMU command line.

use std::path::PathBuf;

use formats::Profile;
use serde::Serialize;

use crate::redact::{qemu_arg_shape, Roots};

/// What the harness reported about one boot, in plain data (filled from its `Verdict` and its
/// `Started` event), so this scenario is testable without QEMU.
#[derive(Debug, Clone, Default)]
pub struct BootRecord {
    /// Whether the verdict says multi-user was reached.
    pub ready: bool,
    /// The failure reason and detail, when not ready.
    pub failure: Option<String>,
    /// Milestone kinds in the order they were seen (`firmware`, `bootloader`, ...).
    pub milestones: Vec<String>,
    /// Where readiness was read from (`vsock`, `serial`, `none`).
    pub readiness: String,
    /// The notify transport (`vhost-device-vsock`, `serial-only: <why>`, ...).
    pub transport: String,
    /// Names of the units in the vsock target timeline, in order.
    pub targets: Vec<String>,
    /// The QEMU command line.
    pub qemu_args: Vec<String>,
    /// The run directory (redacted in the argument shape).
    pub run_dir: Option<PathBuf>,
    /// The guest's hostname, if the notify channel told it.
    pub hostname: Option<String>,
}

/// The firmware that starts the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF (AAVMF on aarch64).
    Uefi,
    /// U-Boot (an aarch64 board's boot loader, QEMU's `-bios`).
    UBoot,
    /// None: QEMU loads the kernel directly, or a container runs on the host's kernel.
    None,
}

/// The firmware kind of a boot: U-Boot when the command line loads it, UEFI when it loads
/// OVMF (pflash or `-bios`), otherwise none for direct-kernel and kexec profiles and BIOS for
/// the rest.
pub fn firmware(profile: Profile, qemu_args: &[String]) -> Firmware {
    if qemu_args
        .iter()
        .any(|a| a.to_ascii_lowercase().contains("u-boot"))
    {
        return Firmware::UBoot;
    }
    let uefi = qemu_args.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        a.contains("ovmf") || a.contains("if=pflash") || a.contains("edk2")
    });
    match (uefi, profile) {
        (true, _) => Firmware::Uefi,
        (false, Profile::DirectKernel | Profile::Kexec | Profile::Container) => Firmware::None,
        (false, _) => Firmware::Bios,
    }
}

/// The normalised facts of a boot, as recorded in the `boot@...` snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct BootFacts {
    /// The format's boot profile.
    pub profile: String,
    /// See [`firmware`].
    pub firmware: Firmware,
    /// Milestone kinds in order.
    pub milestones: Vec<String>,
    /// Where readiness was read from.
    pub readiness_source: String,
    /// The transport's kind (the part before any `:` explanation).
    pub transport: String,
    /// The units of the vsock target timeline, names only, sorted: systemd reaches independent
    /// targets in parallel, so their order varies from boot to boot; the set does not.
    pub targets: Vec<String>,
    /// The guest's hostname, if reported.
    pub hostname: Option<String>,
    /// The QEMU command line with temporary paths, ports, CIDs and sizes redacted.
    pub qemu_args: Vec<String>,
}

/// Checks the verdict and derives the facts. Fails with the verdict's reason when the boot did
/// not reach multi-user.
pub fn check(profile: Profile, record: &BootRecord, roots: &Roots) -> Result<BootFacts, String> {
    if !record.ready {
        return Err(record
            .failure
            .clone()
            .unwrap_or_else(|| "did not reach multi-user.target".into()));
    }
    let roots = Roots {
        run_dir: record.run_dir.clone().or_else(|| roots.run_dir.clone()),
        images: roots.images.clone(),
    };
    Ok(BootFacts {
        profile: profile.name().to_owned(),
        firmware: firmware(profile, &record.qemu_args),
        milestones: record.milestones.clone(),
        readiness_source: record.readiness.clone(),
        transport: record
            .transport
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        targets: {
            let mut t = record.targets.clone();
            t.sort();
            t.dedup();
            t
        },
        hostname: record.hostname.clone(),
        qemu_args: qemu_arg_shape(&record.qemu_args, &roots),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn firmware_from_profile_and_arguments() {
        let ovmf = args(&[
            "-drive",
            "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
        ]);
        assert_eq!(firmware(Profile::EfiDisk, &ovmf), Firmware::Uefi);
        assert_eq!(firmware(Profile::Iso, &ovmf), Firmware::Uefi);
        assert_eq!(
            firmware(Profile::Iso, &args(&["-cdrom", "x.iso"])),
            Firmware::Bios
        );
        assert_eq!(firmware(Profile::BiosDisk, &[]), Firmware::Bios);
        assert_eq!(
            firmware(Profile::Kexec, &args(&["-kernel", "bzImage"])),
            Firmware::None
        );
        assert_eq!(firmware(Profile::DirectKernel, &[]), Firmware::None);
        assert_eq!(
            firmware(
                Profile::UbootBoard,
                &args(&["-bios", "/usr/lib/u-boot/qemu_arm64/u-boot.bin"])
            ),
            Firmware::UBoot
        );
    }

    #[test]
    fn a_failed_verdict_fails_with_its_reason() {
        let record = BootRecord {
            failure: Some("kernel-panic: VFS: Unable to mount root fs".into()),
            ..BootRecord::default()
        };
        let err = check(Profile::BiosDisk, &record, &Roots::default()).unwrap_err();
        assert!(err.contains("kernel-panic"), "{err}");
    }

    #[test]
    fn facts_are_normalised() {
        let record = BootRecord {
            ready: true,
            milestones: args(&["firmware", "bootloader", "kernel", "systemd", "multi-user"]),
            readiness: "vsock".into(),
            transport: "serial-only: no vhost-device-vsock".into(),
            targets: args(&["basic.target", "multi-user.target"]),
            qemu_args: args(&[
                "qemu-system-x86_64",
                "-chardev",
                "socket,path=/tmp/ng-x1/serial.sock",
            ]),
            run_dir: Some("/tmp/ng-x1".into()),
            hostname: Some("standin".into()),
            ..BootRecord::default()
        };
        let facts = check(Profile::EfiDisk, &record, &Roots::default()).unwrap();
        assert_eq!(facts.transport, "serial-only");
        assert_eq!(facts.firmware, Firmware::Bios);
        assert_eq!(facts.qemu_args[2], "socket,path=<run>/serial.sock");
    }
}
