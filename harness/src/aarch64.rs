//! aarch64 guests on an x86_64 host: `qemu-system-aarch64 -M virt` under TCG (KVM runs only
//! guests of the host's own architecture), started by U-Boot (an SD card image: U-Boot's
//! distro boot reads `/boot/extlinux/extlinux.conf` from the bootable partition, the way a
//! board boots it) or by AAVMF, the aarch64 build of OVMF (a disk or ISO with an EFI system
//! partition holding `EFI/BOOT/BOOTAA64.EFI`). The argument builders are pure functions; the
//! locators only look at files and the environment.

use std::path::{Path, PathBuf};

use crate::firmware::{self, Ovmf};
use crate::HarnessError;

/// The QEMU system emulator for aarch64 guests unless [`QEMU_ENV`] names another.
pub const QEMU: &str = "qemu-system-aarch64";
/// The environment variable naming another aarch64 QEMU program.
pub const QEMU_ENV: &str = "NIXGEN_QEMU_AARCH64";
/// The Debian package that provides [`QEMU`].
pub const QEMU_PACKAGE: &str = "qemu-system-arm";
/// Debian's U-Boot for QEMU's `virt` machine (package `u-boot-qemu`).
pub const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// The environment variable naming another U-Boot (`u-boot.bin` for `qemu_arm64`).
pub const UBOOT_ENV: &str = "NIXGEN_UBOOT";
/// The environment variable naming an AAVMF code file (its `*VARS*` template beside it).
pub const AAVMF_ENV: &str = "NIXGEN_AAVMF_CODE";
/// Debian's AAVMF (package `qemu-efi-aarch64`), used when no firmware descriptor names one.
pub const AAVMF: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
/// The machine type: QEMU's generic board, with PCI (virtio) and a PL011 UART (`ttyAMA0`).
pub const MACHINE: &str = "virt";
/// The CPU model. Cortex-A57 (ARMv8.0) runs every aarch64 kernel, and TCG emulates it faster
/// than `max`, whose pointer authentication costs much under emulation.
pub const CPU: &str = "cortex-a57";

/// How an aarch64 guest is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmBoot {
    /// U-Boot as the machine's firmware (`-bios`), reading the disk's extlinux.conf.
    UBoot,
    /// AAVMF (UEFI) from pflash, booting the disk's EFI system partition.
    Uefi,
}

fn s(x: &str) -> String {
    x.to_string()
}

/// The aarch64 QEMU program: `$NIXGEN_QEMU_AARCH64` if set and not empty, else [`QEMU`].
pub fn qemu_program() -> PathBuf {
    std::env::var_os(QEMU_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(QEMU), PathBuf::from)
}

/// The machine, accelerator (always TCG), CPU and size of an aarch64 guest.
pub fn machine(memory_mib: u32, cpus: u32) -> Vec<String> {
    vec![
        s("-machine"),
        s(MACHINE),
        s("-accel"),
        s("tcg"),
        s("-cpu"),
        s(CPU),
        s("-m"),
        memory_mib.to_string(),
        s("-smp"),
        cpus.to_string(),
        // No network: U-Boot's distro boot would try DHCP and TFTP after the disk.
        s("-nic"),
        s("none"),
    ]
}

/// QEMU's panic device on `virt` (no ISA bus there for `pvpanic`).
pub const PANIC_DEVICE: &str = "pvpanic-pci";

/// The disk under test on virtio-blk (PCI), first in boot order: U-Boot's `qemu_arm64`
/// build scans virtio block devices, AAVMF boots them, and NixOS's initrd for the SD image has
/// `virtio_pci` and `virtio_blk` (`hardware.enableAllHardware`, which sd-image.nix sets).
/// `snapshot=on` puts the overlay in the run directory: the image is never written.
pub fn disk(image: &Path, format: &str, snapshot: bool) -> Vec<String> {
    let snap = if snapshot { ",snapshot=on" } else { "" };
    vec![
        s("-drive"),
        format!(
            "file={},format={format},if=none,id=disk0,cache=unsafe{snap}",
            image.to_string_lossy().replace(',', ",,")
        ),
        s("-device"),
        s("virtio-blk-pci,drive=disk0,bootindex=1"),
    ]
}

/// An ISO as a read-only CD-ROM on virtio-scsi, first in boot order (AAVMF boots it; NixOS's
/// and Debian's initrds have `virtio_scsi` and `sr_mod`).
pub fn cdrom(iso: &Path) -> Vec<String> {
    vec![
        s("-drive"),
        format!(
            "file={},format=raw,if=none,id=cd0,media=cdrom,readonly=on",
            iso.to_string_lossy().replace(',', ",,")
        ),
        s("-device"),
        s("virtio-scsi-pci,id=scsi0"),
        s("-device"),
        s("scsi-cd,drive=cd0,bus=scsi0.0,bootindex=1"),
    ]
}

/// A disk started by U-Boot (`-bios`), as a board's boot ROM would start it.
///
/// `acpi=off`: with firmware loaded and ACPI on (the default), `virt` puts its power button on
/// the ACPI GED device and creates no PL061 and no `gpio-keys` node in the device tree, which
/// is all a kernel booted by U-Boot (`booti`, a device tree) reads: QMP's `system_powerdown`
/// then reaches nothing it can hear. With ACPI off the device tree has the PL061 with a
/// `gpio-keys` power key (QEMU 7.2, `-machine dumpdtb`), heard by a kernel with `gpio_keys`.
pub fn uboot_disk(uboot: &Path, image: &Path, format: &str, snapshot: bool) -> Vec<String> {
    let mut args = vec![
        s("-machine"),
        s("acpi=off"),
        s("-bios"),
        uboot.to_string_lossy().into_owned(),
    ];
    args.extend(disk(image, format, snapshot));
    args
}

/// U-Boot for QEMU's `virt` machine: `$NIXGEN_UBOOT`, else Debian's [`UBOOT`]. Missing, a
/// one-line error naming the package.
pub fn locate_uboot() -> Result<PathBuf, HarnessError> {
    let path = std::env::var_os(UBOOT_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(UBOOT), PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::Firmware(format!(
            "no U-Boot for qemu-system-aarch64 at {}: install the `u-boot-qemu` package (or set {UBOOT_ENV})",
            path.display()
        )))
    }
}

/// AAVMF (UEFI for aarch64): `$NIXGEN_AAVMF_CODE` (its `*VARS*` template beside it), else
/// QEMU's firmware descriptors for aarch64, else Debian's [`AAVMF`]. Missing, a one-line error
/// naming the package.
pub fn locate_aavmf() -> Result<Ovmf, HarnessError> {
    let explicit = std::env::var_os(AAVMF_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(code) = explicit {
        let vars_template = firmware::vars_for_code(&code).filter(|_| code.is_file());
        return vars_template
            .map(|vars_template| Ovmf {
                code: code.clone(),
                vars_template,
            })
            .ok_or_else(|| {
                HarnessError::Firmware(format!(
                    "{AAVMF_ENV}={}: no such AAVMF code file with a *VARS* template beside it",
                    code.display()
                ))
            });
    }
    let dirs = firmware::descriptor_dirs();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    firmware::from_descriptors_for(&dirs, "aarch64")
        .or_else(|| {
            let code = PathBuf::from(AAVMF);
            let vars_template = firmware::vars_for_code(&code)?;
            code.is_file().then_some(Ovmf {
                code,
                vars_template,
            })
        })
        .ok_or_else(|| {
            HarnessError::Firmware(
                "no UEFI firmware for aarch64 (AAVMF) found: install the `qemu-efi-aarch64` package"
                    .to_string(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{after, values};

    #[test]
    fn virt_machine_under_tcg() {
        let a = machine(1024, 1);
        assert_eq!(
            values(&a, &["-machine", "-accel", "-cpu", "-m", "-smp", "-nic"]),
            ["virt", "tcg", "cortex-a57", "1024", "1", "none"]
        );
    }

    #[test]
    fn uboot_boots_a_virtio_disk_on_an_overlay() {
        let a = uboot_disk(
            Path::new("/fw/u-boot.bin"),
            Path::new("/i/a,b.img"),
            "raw",
            true,
        );
        assert_eq!(after(&a, "-bios"), ["/fw/u-boot.bin"]);
        // The power button as a GPIO key in the device tree, not on ACPI's GED.
        assert_eq!(after(&a, "-machine"), ["acpi=off"]);
        assert_eq!(
            after(&a, "-drive"),
            ["file=/i/a,,b.img,format=raw,if=none,id=disk0,cache=unsafe,snapshot=on"]
        );
        assert_eq!(
            after(&a, "-device"),
            ["virtio-blk-pci,drive=disk0,bootindex=1"]
        );
        assert_eq!(
            after(&cdrom(Path::new("/i/x.iso")), "-device"),
            [
                "virtio-scsi-pci,id=scsi0",
                "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=1"
            ]
        );
        assert!(!disk(Path::new("/r/disk.img"), "raw", false)
            .iter()
            .any(|x| x.contains("snapshot")));
    }
}
