//! QEMU argument pieces: one small pure function per boot profile, plus the pieces every run
//! shares (machine, accelerator, serial, QMP, panic device, display). Nothing here touches the
//! file system or spawns anything. The disk and CD-ROM builders live in `profile/disk.rs` and
//! are re-exported here.

use std::path::Path;

use crate::diskboot::DiskBus;
use crate::firmware::Ovmf;
use crate::rundir::RunFiles;
use crate::Accel;

mod disk;

pub use disk::{bios_disk, cdrom, disk, disk_on, efi_disk};

fn s(x: impl Into<String>) -> String {
    x.into()
}

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A `-drive` file value: QEMU's option syntax doubles commas inside values.
fn file_value(path: &Path) -> String {
    p(path).replace(',', ",,")
}

/// The QEMU machine type of a directly started QEMU.
pub const MACHINE: &str = "q35";

/// The machine, accelerator, CPU and size of a directly started QEMU.
pub fn machine(accel: Accel, memory_mib: u32, cpus: u32) -> Vec<String> {
    let cpu = match accel {
        Accel::Kvm => "host",
        // A container never gets here; TCG's CPU if it did.
        Accel::Tcg | Accel::None => "max",
    };
    vec![
        // q35: disks and CD-ROMs on its built-in AHCI (SATA) controller, whose driver (`ahci`,
        // with `sd_mod`, `sr_mod`) is in NixOS's default initrd modules, so every NixOS image
        // boots from it without extra configuration (virtio needs `profiles/qemu-guest.nix`).
        // Measured under TCG (README, "Benchmark"): OVMF and GRUB read the kernel and initrd
        // about 18 s faster through AHCI than through i440fx's PIIX IDE.
        s("-machine"),
        s(MACHINE),
        s("-accel"),
        s(accel.name()),
        s("-cpu"),
        s(cpu),
        s("-m"),
        memory_mib.to_string(),
        s("-smp"),
        cpus.to_string(),
        // No network: firmware PXE attempts would delay every verdict, and boots need none.
        s("-nic"),
        s("none"),
    ]
}

/// The console, control and evidence channels every run has: the serial chardev (unix socket
/// + log file from the first byte), QMP, pvpanic, and the display choice.
pub fn channels(run_dir: &Path, display: bool) -> Vec<String> {
    channels_with(run_dir, display, "pvpanic")
}

/// [`channels`] with another panic device (`pvpanic-pci` on machines without an ISA bus).
pub fn channels_with(run_dir: &Path, display: bool, panic_device: &str) -> Vec<String> {
    let serial = format!(
        "socket,id=ser0,path={},server=on,wait=off,logfile={}",
        file_value(&RunFiles::of(run_dir).serial_sock()),
        file_value(&RunFiles::of(run_dir).serial_log())
    );
    let qmp = format!(
        "unix:{},server=on,wait=off",
        file_value(&RunFiles::of(run_dir).qmp_sock())
    );
    let mut args = vec![
        s("-chardev"),
        serial,
        s("-serial"),
        s("chardev:ser0"),
        s("-qmp"),
        qmp,
        s("-device"),
        s(panic_device),
    ];
    if !display {
        args.extend([s("-display"), s("none")]);
    }
    args
}

/// SeaBIOS prints its boot failures to the debug console, not the serial port: log it.
pub fn bios_debugcon(run_dir: &Path) -> Vec<String> {
    vec![
        s("-chardev"),
        format!(
            "file,id=fwlog,path={}",
            file_value(&RunFiles::of(run_dir).firmware_log())
        ),
        s("-device"),
        s("isa-debugcon,iobase=0x402,chardev=fwlog"),
    ]
}

/// OVMF's code (read-only) and the run's private variable store as pflash drives.
pub fn uefi(ovmf: &Ovmf, vars: &Path) -> Vec<String> {
    vec![
        s("-drive"),
        format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            file_value(&ovmf.code)
        ),
        s("-drive"),
        format!("if=pflash,format=raw,unit=1,file={}", file_value(vars)),
    ]
}

/// An ISO through OVMF.
pub fn iso_uefi(ovmf: &Ovmf, vars: &Path, iso: &Path) -> Vec<String> {
    let mut args = uefi(ovmf, vars);
    args.extend(cdrom(iso));
    args
}

/// An ISO through SeaBIOS.
pub fn iso_bios(run_dir: &Path, iso: &Path) -> Vec<String> {
    let mut args = bios_debugcon(run_dir);
    args.extend(cdrom(iso));
    args
}

/// Direct kernel boot (kexec tarballs): kernel, initrd, command line. A serial console is
/// added to the command line when it names none.
pub fn kexec(kernel: &Path, initrd: &Path, cmdline: &str) -> Vec<String> {
    let mut append = cmdline.trim().to_string();
    if !append
        .split_whitespace()
        .any(|w| w.starts_with("console=ttyS0"))
    {
        if !append.is_empty() {
            append.push(' ');
        }
        append.push_str("console=ttyS0,115200");
    }
    vec![
        s("-kernel"),
        p(kernel),
        s("-initrd"),
        p(initrd),
        s("-append"),
        append,
    ]
}

/// A kernel read from the disk's own file system, booted directly, with the disk (on an
/// overlay: the image is never written) attached as the platform attaches it: on AHCI like
/// every disk, or as `sda` (`disk0`) on virtio-scsi (Linode), where the run's swap disk is
/// added later as `sdb` ([`late_scsi_disk`]).
pub fn disk_kernel(
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
    disk_path: &Path,
    bus: DiskBus,
) -> Vec<String> {
    let mut args = match bus {
        DiskBus::Ahci => disk(disk_path, "raw", true),
        DiskBus::VirtioScsi => vec![
            s("-device"),
            s("virtio-scsi-pci,id=scsi0"),
            s("-drive"),
            format!(
                "file={},format=raw,if=none,id=disk0,cache=unsafe,snapshot=on",
                file_value(disk_path)
            ),
            s("-device"),
            s("scsi-hd,drive=disk0,bus=scsi0.0,channel=0,scsi-id=0,lun=0"),
        ],
    };
    args.extend(kexec(kernel, initrd, cmdline));
    args
}

/// The block device name of the first disk of [`disk_kernel`] on virtio-scsi.
pub const SCSI_ROOT_DRIVE: &str = "disk0";

/// The monitor (HMP) commands that add `path` as the second disk of [`disk_kernel`]'s
/// virtio-scsi controller, target 1, while the guest runs.
///
/// Linux names SCSI disks in the order their (asynchronous) `sd` probes run, not by target: two
/// disks present at boot came up as `sda` = target 1 now and then under load, and the Linode
/// image, which mounts `/dev/sda`, dropped to the initramfs shell. Added once the guest has
/// read `disk0` (so `sda` is taken), the swap disk is `sdb` every time.
pub fn late_scsi_disk(path: &Path) -> [String; 2] {
    [
        format!(
            "drive_add 0 file={},format=raw,if=none,id=disk1,cache=unsafe",
            file_value(path)
        ),
        s("device_add scsi-hd,drive=disk1,bus=scsi0.0,channel=0,scsi-id=1,lun=0"),
    ]
}

/// The environment of a NixOS VM run script (`bin/run-*-vm`), the way NixOS's test driver
/// sets it: its disk and temporary files in the run directory, TCG forced when KVM does not
/// work (the script itself starts `qemu-kvm`), the serial console as the kernel's console.
pub fn runner_env(run_dir: &Path, accel: Accel) -> Vec<(String, String)> {
    let mut opts = Vec::new();
    if accel == Accel::Tcg {
        opts.push("-machine accel=tcg");
    }
    vec![
        (s("QEMU_OPTS"), opts.join(" ")),
        (s("QEMU_KERNEL_PARAMS"), s("console=ttyS0,115200n8")),
        (s("NIX_DISK_IMAGE"), p(&run_dir.join("disk.qcow2"))),
        (s("TMPDIR"), p(run_dir)),
        (s("USE_TMPDIR"), s("1")),
        (s("SHARED_DIR"), p(&run_dir.join("xchg"))),
        // vm-bootloader with UEFI copies its variable store here (never the user's).
        (s("NIX_EFI_VARS"), p(&run_dir.join("efi-vars.fd"))),
    ]
}

/// Arguments given to a run script after its own: guest size (QEMU keeps the last `-m`).
pub fn runner_args(memory_mib: u32, cpus: u32) -> Vec<String> {
    vec![s("-m"), memory_mib.to_string(), s("-smp"), cpus.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{after, ovmf, values};

    #[test]
    fn machine_per_accel() {
        let tcg = machine(Accel::Tcg, 1024, 2);
        assert_eq!(
            values(&tcg, &["-machine", "-accel", "-cpu", "-m"]),
            ["q35", "tcg", "max", "1024"]
        );
        assert_eq!(after(&machine(Accel::Kvm, 512, 1), "-cpu"), ["host"]);
    }

    #[test]
    fn channels_log_serial_from_first_byte() {
        let a = channels(Path::new("/tmp/ng-1"), false);
        assert_eq!(
            after(&a, "-chardev"),
            ["socket,id=ser0,path=/tmp/ng-1/serial.sock,server=on,wait=off,logfile=/tmp/ng-1/serial.log"]
        );
        assert_eq!(after(&a, "-serial"), ["chardev:ser0"]);
        assert_eq!(
            after(&a, "-qmp"),
            ["unix:/tmp/ng-1/qmp.sock,server=on,wait=off"]
        );
        assert_eq!(after(&a, "-device"), ["pvpanic"]);
        assert_eq!(after(&a, "-display"), ["none"]);
        assert!(after(&channels(Path::new("/r"), true), "-display").is_empty());
    }

    #[test]
    fn iso_both_ways() {
        let u = iso_uefi(&ovmf(), Path::new("/r/vars.fd"), Path::new("/x.iso"));
        assert_eq!(after(&u, "-drive").len(), 3);
        assert!(after(&u, "-drive")[2].contains("media=cdrom,readonly=on"));
        let b = iso_bios(Path::new("/r"), Path::new("/x.iso"));
        assert!(!b.iter().any(|x| x.contains("pflash")));
        assert_eq!(
            after(&b, "-device"),
            [
                "isa-debugcon,iobase=0x402,chardev=fwlog",
                "ide-cd,drive=cd0,bus=ide.1,bootindex=1"
            ]
        );
    }

    #[test]
    fn kexec_adds_serial_console_once() {
        let a = kexec(
            Path::new("/r/bzImage"),
            Path::new("/r/initrd"),
            "init=/nix/store/x/init loglevel=4",
        );
        assert_eq!(
            after(&a, "-append"),
            ["init=/nix/store/x/init loglevel=4 console=ttyS0,115200"]
        );
        let b = kexec(
            Path::new("/k"),
            Path::new("/i"),
            "console=ttyS0,115200 panic=30",
        );
        assert_eq!(
            values(&b, &["-append", "-kernel"]),
            ["console=ttyS0,115200 panic=30", "/k"]
        );
    }

    #[test]
    fn linode_disks_are_sda_and_sdb_on_virtio_scsi() {
        let a = disk_kernel(
            Path::new("/r/kernel"),
            Path::new("/r/initrd"),
            "init=/x console=ttyS0,19200n8",
            Path::new("/r/disk.img"),
            DiskBus::VirtioScsi,
        );
        assert_eq!(
            after(&a, "-device"),
            [
                "virtio-scsi-pci,id=scsi0",
                "scsi-hd,drive=disk0,bus=scsi0.0,channel=0,scsi-id=0,lun=0",
            ]
        );
        assert_eq!(
            after(&a, "-drive"),
            ["file=/r/disk.img,format=raw,if=none,id=disk0,cache=unsafe,snapshot=on"]
        );
        assert_eq!(
            late_scsi_disk(Path::new("/r/a,b/swap.img")),
            [
                "drive_add 0 file=/r/a,,b/swap.img,format=raw,if=none,id=disk1,cache=unsafe",
                "device_add scsi-hd,drive=disk1,bus=scsi0.0,channel=0,scsi-id=1,lun=0"
            ]
        );
        assert_eq!(after(&a, "-append"), ["init=/x console=ttyS0,19200n8"]);
        let b = disk_kernel(
            Path::new("/k"),
            Path::new("/i"),
            "",
            Path::new("/d.img"),
            DiskBus::Ahci,
        );
        assert_eq!(
            after(&b, "-device"),
            ["ide-hd,drive=disk0,bus=ide.0,bootindex=1"]
        );
        assert_eq!(after(&b, "-append"), ["console=ttyS0,115200"]);
    }

    #[test]
    fn runner_forces_tcg_and_keeps_disk_in_run_dir() {
        let env = runner_env(Path::new("/tmp/ng-2"), Accel::Tcg);
        let get = |k: &str| env.iter().find(|e| e.0 == k).map(|e| e.1.as_str());
        assert_eq!(get("QEMU_OPTS"), Some("-machine accel=tcg"));
        assert_eq!(get("NIX_DISK_IMAGE"), Some("/tmp/ng-2/disk.qcow2"));
        assert_eq!(get("TMPDIR"), Some("/tmp/ng-2"));
        assert_eq!(get("USE_TMPDIR"), Some("1"));
        assert_eq!(get("QEMU_KERNEL_PARAMS"), Some("console=ttyS0,115200n8"));
        assert_eq!(get("NIX_EFI_VARS"), Some("/tmp/ng-2/efi-vars.fd"));
        let kvm = runner_env(Path::new("/r"), Accel::Kvm);
        assert_eq!(kvm[0], ("QEMU_OPTS".to_string(), String::new()));
        assert_eq!(runner_args(768, 1), ["-m", "768", "-smp", "1"]);
    }
}
