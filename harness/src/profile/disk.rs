//! The disk and CD-ROM pieces of a QEMU command line: the disk under test on the controller
//! its platform uses (on a snapshot overlay, so the image is never written), the BIOS and UEFI
//! disk profiles built on it, and the ISO as a read-only CD-ROM. Re-exported by
//! [`profile`](super), whose callers use them as `profile::disk_on(...)` and so on.

use std::path::Path;

use formats::Controller;

use super::{bios_debugcon, file_value, s, uefi};
use crate::firmware::Ovmf;

/// The disk under test on the machine's AHCI controller (q35's `ide.0` bus), first in boot
/// order. `snapshot=on` puts a qcow2 overlay (backed by the image, with its block driver
/// `format`) in QEMU's TMPDIR, the run directory: the image is never written and starting costs
/// the same for any size.
pub fn disk(image: &Path, format: &str, snapshot: bool) -> Vec<String> {
    disk_on(Controller::Ahci, image, format, snapshot)
}

/// The disk under test on `controller`, first in boot order, on an overlay as [`disk`].
/// SeaBIOS and OVMF boot from each of them. Not here: QEMU's `pvscsi` (VMware's paravirtual
/// SCSI), which Debian 12's OVMF did not boot from (its EFI shell came up).
pub fn disk_on(controller: Controller, image: &Path, format: &str, snapshot: bool) -> Vec<String> {
    let snap = if snapshot { ",snapshot=on" } else { "" };
    let mut args = vec![
        s("-drive"),
        format!(
            "file={},format={format},if=none,id=disk0,cache=unsafe{snap}",
            file_value(image)
        ),
    ];
    let devices: &[&str] = match controller {
        Controller::Ahci => &["ide-hd,drive=disk0,bus=ide.0,bootindex=1"],
        // NVMe needs a serial number; the guest sees it as the namespace's.
        Controller::Nvme => &["nvme,drive=disk0,serial=nixgen0,bootindex=1"],
        Controller::VirtioBlk => &["virtio-blk-pci,drive=disk0,bootindex=1"],
        Controller::VirtioScsi => &[
            "virtio-scsi-pci,id=scsi0",
            "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=1",
        ],
    };
    for d in devices {
        args.extend([s("-device"), s(*d)]);
    }
    args
}

/// A BIOS disk (raw, qcow, a BIOS cloud disk): SeaBIOS boots its MBR.
pub fn bios_disk(
    run_dir: &Path,
    image: &Path,
    format: &str,
    snapshot: bool,
    controller: Controller,
) -> Vec<String> {
    let mut args = bios_debugcon(run_dir);
    args.extend(disk_on(controller, image, format, snapshot));
    args
}

/// A UEFI disk (raw-efi, qcow-efi, a UEFI cloud disk): OVMF boots its ESP.
pub fn efi_disk(
    ovmf: &Ovmf,
    vars: &Path,
    image: &Path,
    format: &str,
    snapshot: bool,
    controller: Controller,
) -> Vec<String> {
    let mut args = uefi(ovmf, vars);
    args.extend(disk_on(controller, image, format, snapshot));
    args
}

/// The ISO as a read-only CD-ROM on the AHCI controller (`ide.1`), first in boot order.
pub fn cdrom(iso: &Path) -> Vec<String> {
    vec![
        s("-drive"),
        format!(
            "file={},format=raw,if=none,id=cd0,media=cdrom,readonly=on",
            file_value(iso)
        ),
        s("-device"),
        s("ide-cd,drive=cd0,bus=ide.1,bootindex=1"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{after, ovmf};

    #[test]
    fn efi_disk_has_readonly_code_private_vars_and_snapshot_disk() {
        let a = efi_disk(
            &ovmf(),
            Path::new("/r/vars.fd"),
            Path::new("/img/nixos.img"),
            "raw",
            true,
            Controller::Ahci,
        );
        assert_eq!(
            after(&a, "-drive"),
            [
                "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
                "if=pflash,format=raw,unit=1,file=/r/vars.fd",
                "file=/img/nixos.img,format=raw,if=none,id=disk0,cache=unsafe,snapshot=on",
            ]
        );
        assert_eq!(
            after(&a, "-device"),
            ["ide-hd,drive=disk0,bus=ide.0,bootindex=1"]
        );
    }

    #[test]
    fn cloud_disks_sit_on_their_platforms_controller() {
        let devices = |c| {
            let a = disk_on(c, Path::new("/i/d.vhd"), "vpc", true);
            assert_eq!(
                after(&a, "-drive"),
                ["file=/i/d.vhd,format=vpc,if=none,id=disk0,cache=unsafe,snapshot=on"]
            );
            after(&a, "-device")
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            devices(Controller::Ahci),
            ["ide-hd,drive=disk0,bus=ide.0,bootindex=1"]
        );
        assert_eq!(
            devices(Controller::Nvme),
            ["nvme,drive=disk0,serial=nixgen0,bootindex=1"]
        );
        assert_eq!(
            devices(Controller::VirtioBlk),
            ["virtio-blk-pci,drive=disk0,bootindex=1"]
        );
        assert_eq!(
            devices(Controller::VirtioScsi),
            [
                "virtio-scsi-pci,id=scsi0",
                "scsi-hd,drive=disk0,bus=scsi0.0,bootindex=1"
            ]
        );
        assert_eq!(
            disk(Path::new("/i/d.vhd"), "vpc", true),
            disk_on(Controller::Ahci, Path::new("/i/d.vhd"), "vpc", true)
        );
    }

    #[test]
    fn bios_disk_logs_seabios_and_keeps_backing_format() {
        let a = bios_disk(
            Path::new("/r"),
            Path::new("/i/a,b.qcow2"),
            "qcow2",
            true,
            Controller::Ahci,
        );
        assert!(after(&a, "-drive")[0].starts_with("file=/i/a,,b.qcow2,format=qcow2,"));
        assert_eq!(
            after(&a, "-chardev"),
            ["file,id=fwlog,path=/r/firmware.log"]
        );
        assert!(!bios_disk(
            Path::new("/r"),
            Path::new("/i"),
            "raw",
            false,
            Controller::Nvme
        )
        .iter()
        .any(|x| x.contains("snapshot")));
    }
}
