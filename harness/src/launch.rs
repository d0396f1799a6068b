//! The command of one boot: QEMU with the profile's arguments, or a VM run script with its
//! environment, plus the channels every run has and the user's extra arguments.

use std::path::{Path, PathBuf};

use crate::aarch64::{self, ArmBoot};
use crate::image::Bootable;
use crate::options::{BootOptions, IsoFirmware};
use crate::qemu::Launch;
use crate::{firmware, profile, Accel, Firmware, HarnessError};

/// The program, arguments and environment for one boot.
pub(crate) fn launch_for(
    bootable: &Bootable,
    opts: &BootOptions,
    accel: Accel,
    dir: &Path,
) -> Result<Launch, HarnessError> {
    let ovmf = || -> Result<(firmware::Ovmf, PathBuf), HarnessError> {
        let ovmf = firmware::locate(opts.firmware.as_deref())?;
        let vars = crate::rundir::RunFiles::of(dir).vars_fd();
        firmware::private_vars(&ovmf, &vars)?;
        Ok((ovmf, vars))
    };
    // QEMU started by us: the machine, the run's channels, then how this image boots.
    // QEMU's own temporary files (the snapshot overlay) go into the run directory.
    let qemu = |boot: Vec<String>| {
        let mut args = profile::machine(accel, opts.memory_mib, opts.cpus_for(accel));
        args.extend(profile::channels(dir, opts.display));
        args.extend(boot);
        let env = vec![("TMPDIR".to_string(), dir.to_string_lossy().into_owned())];
        (crate::accel::qemu_program(), env, args)
    };
    // Another architecture: TCG whatever was resolved for x86 guests.
    let arm = |boot: Vec<String>| {
        let mut args = aarch64::machine(opts.memory_mib, opts.cpus_for(Accel::Tcg));
        args.extend(profile::channels_with(
            dir,
            opts.display,
            aarch64::PANIC_DEVICE,
        ));
        args.extend(boot);
        let env = vec![("TMPDIR".to_string(), dir.to_string_lossy().into_owned())];
        (aarch64::qemu_program(), env, args)
    };
    let aavmf = || -> Result<Vec<String>, HarnessError> {
        let aavmf = aarch64::locate_aavmf()?;
        let vars = dir.join("vars.fd");
        firmware::private_vars(&aavmf, &vars)?;
        Ok(profile::uefi(&aavmf, &vars))
    };
    let (program, env, mut args) = match bootable {
        Bootable::Container { root } => (
            PathBuf::from(crate::container::UNSHARE),
            crate::container::nspawn_env(),
            crate::container::nspawn_args(root),
        ),
        Bootable::Runner(script) => {
            let mut args = profile::channels(dir, opts.display);
            args.extend(profile::runner_args(opts.memory_mib, opts.cpus_for(accel)));
            (script.clone(), profile::runner_env(dir, accel), args)
        }
        Bootable::Disk {
            path,
            format: driver,
            snapshot,
            uefi,
            controller,
        } => qemu(if *uefi {
            let (o, vars) = ovmf()?;
            profile::efi_disk(&o, &vars, path, driver, *snapshot, *controller)
        } else {
            profile::bios_disk(dir, path, driver, *snapshot, *controller)
        }),
        Bootable::Iso(iso) => qemu(match opts.iso_firmware {
            IsoFirmware::Uefi => {
                let (o, vars) = ovmf()?;
                profile::iso_uefi(&o, &vars, iso)
            }
            IsoFirmware::Bios => profile::iso_bios(dir, iso),
        }),
        Bootable::Kernel {
            kernel,
            initrd,
            cmdline,
        } => qemu(profile::kexec(kernel, initrd, cmdline)),
        Bootable::DiskKernel {
            kernel,
            initrd,
            cmdline,
            disk,
            bus,
            swap: _,
        } => qemu(profile::disk_kernel(kernel, initrd, cmdline, disk, *bus)),
        Bootable::Aarch64Disk {
            path,
            format: driver,
            snapshot,
            boot,
        } => arm(match boot {
            ArmBoot::UBoot => {
                aarch64::uboot_disk(&aarch64::locate_uboot()?, path, driver, *snapshot)
            }
            ArmBoot::Uefi => {
                let mut args = aavmf()?;
                args.extend(aarch64::disk(path, driver, *snapshot));
                args
            }
        }),
        Bootable::Aarch64Iso(iso) => arm({
            let mut args = aavmf()?;
            args.extend(aarch64::cdrom(iso));
            args
        }),
    };
    args.extend(opts.extra_qemu_args.iter().cloned());
    Ok(Launch {
        pty: matches!(bootable, Bootable::Container { .. }),
        program,
        args,
        env,
        cwd: dir.to_path_buf(),
    })
}

/// The firmware a boot of `bootable` runs, as [`launch_for`] chooses it: OVMF for a UEFI disk
/// and (unless `--bios`) an ISO; SeaBIOS for other disks; none for a kernel QEMU loads itself
/// or a container. A run script is NixOS's own: `vm-bootloader`'s boots its disk with QEMU's
/// default SeaBIOS, the others load the kernel directly.
pub(crate) fn firmware_for(
    bootable: &Bootable,
    opts: &BootOptions,
    profile: formats::Profile,
) -> Firmware {
    match bootable {
        Bootable::Disk { uefi: true, .. } => Firmware::Uefi,
        Bootable::Disk { uefi: false, .. } => Firmware::Bios,
        Bootable::Iso(_) => match opts.iso_firmware {
            IsoFirmware::Uefi => Firmware::Uefi,
            IsoFirmware::Bios => Firmware::Bios,
        },
        Bootable::Aarch64Disk {
            boot: ArmBoot::UBoot,
            ..
        } => Firmware::UBoot,
        Bootable::Aarch64Disk {
            boot: ArmBoot::Uefi,
            ..
        }
        | Bootable::Aarch64Iso(_) => Firmware::Uefi,
        Bootable::Runner(_) if profile == formats::Profile::VmBootloader => Firmware::Bios,
        Bootable::Runner(_)
        | Bootable::Kernel { .. }
        | Bootable::DiskKernel { .. }
        | Bootable::Container { .. } => Firmware::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{after, values};

    /// The launch of `b` with default options, or `None` after checking the one-line error
    /// naming `package` when the firmware it needs is not installed (`found` false).
    fn launched(
        b: &Bootable,
        accel: Accel,
        dir: &Path,
        found: bool,
        package: &str,
    ) -> Option<Launch> {
        let launched = launch_for(b, &BootOptions::default(), accel, dir);
        if found {
            return Some(launched.unwrap());
        }
        let err = launched.unwrap_err().to_string();
        assert!(err.contains(package), "{err}");
        None
    }

    #[test]
    fn runner_launch_runs_the_script_in_the_run_dir_with_our_channels() {
        let dir = tempfile::tempdir().unwrap();
        let opts = BootOptions {
            extra_qemu_args: vec!["-snapshot".into()],
            ..BootOptions::default()
        };
        let script = PathBuf::from("/result/bin/run-standin-vm");
        let l = launch_for(
            &Bootable::Runner(script.clone()),
            &opts,
            Accel::Tcg,
            dir.path(),
        )
        .unwrap();
        assert_eq!(l.program, script);
        assert_eq!(l.cwd, dir.path());
        assert!(l
            .env
            .contains(&("QEMU_OPTS".into(), "-machine accel=tcg".into())));
        assert!(l.args.contains(&"chardev:ser0".to_string()));
        assert!(
            !l.args.contains(&"-machine".to_string()),
            "the script picks its machine"
        );
        assert_eq!(l.args.last().map(String::as_str), Some("-snapshot"));
    }

    #[test]
    fn efi_disk_launch_copies_vars_and_protects_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bootable::Disk {
            path: "/i.img".into(),
            format: "raw".into(),
            snapshot: true,
            uefi: true,
            controller: formats::Controller::Ahci,
        };
        let Some(l) = launched(
            &b,
            Accel::Tcg,
            dir.path(),
            firmware::locate(None).is_ok(),
            "ovmf",
        ) else {
            return;
        };
        assert_eq!(l.program, crate::accel::qemu_program());
        assert!(dir.path().join("vars.fd").is_file());
        assert!(l
            .args
            .iter()
            .any(|a| a.contains("if=pflash") && a.contains("readonly=on")));
        assert!(l
            .args
            .iter()
            .any(|a| a.starts_with("file=/i.img,format=raw,") && a.ends_with("snapshot=on")));
        assert!(l
            .env
            .contains(&("TMPDIR".into(), dir.path().to_string_lossy().into_owned())));
    }

    #[test]
    fn sd_image_launch_is_aarch64_tcg_through_uboot() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bootable::Aarch64Disk {
            path: "/r/disk.img".into(),
            format: "raw".into(),
            snapshot: false,
            boot: ArmBoot::UBoot,
        };
        // Resolved as KVM for x86 guests: an aarch64 guest still runs under TCG.
        let found = aarch64::locate_uboot().is_ok();
        let Some(l) = launched(&b, Accel::Kvm, dir.path(), found, "u-boot-qemu") else {
            return;
        };
        assert_eq!(l.program, aarch64::qemu_program());
        assert_eq!(
            values(&l.args, &["-machine", "-accel", "-bios"]),
            ["virt | acpi=off", "tcg", aarch64::UBOOT]
        );
        assert!(after(&l.args, "-device").contains(&"pvpanic-pci"));
        assert!(!l.args.iter().any(|a| a == "pvpanic"));
    }

    #[test]
    fn kexec_launch_boots_the_kernel_directly() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bootable::Kernel {
            kernel: "/r/bzImage".into(),
            initrd: "/r/initrd".into(),
            cmdline: "init=/x".into(),
        };
        let l = launch_for(&b, &BootOptions::default(), Accel::Tcg, dir.path()).unwrap();
        assert!(l
            .args
            .windows(2)
            .any(|w| w[0] == "-kernel" && w[1] == "/r/bzImage"));
        assert!(!l.args.iter().any(|a| a.contains("pflash")));
    }

    #[test]
    fn firmware_follows_what_the_launch_boots() {
        use formats::Profile;
        let opts = BootOptions::default();
        let disk = |uefi| Bootable::Disk {
            path: "/x.img".into(),
            format: "raw".into(),
            snapshot: true,
            uefi,
            controller: formats::Controller::VirtioBlk,
        };
        let fw = |b: &Bootable, p| firmware_for(b, &opts, p);
        assert_eq!(fw(&disk(true), Profile::EfiDisk), Firmware::Uefi);
        assert_eq!(fw(&disk(false), Profile::CloudDisk), Firmware::Bios);
        assert_eq!(
            fw(&Bootable::Iso("/a.iso".into()), Profile::Iso),
            Firmware::Uefi
        );
        let bios = BootOptions {
            iso_firmware: IsoFirmware::Bios,
            ..BootOptions::default()
        };
        let iso = Bootable::Iso("/a.iso".into());
        assert_eq!(firmware_for(&iso, &bios, Profile::Iso), Firmware::Bios);
        let runner = Bootable::Runner("/r/bin/run-x-vm".into());
        assert_eq!(fw(&runner, Profile::VmBootloader), Firmware::Bios);
        assert_eq!(fw(&runner, Profile::DirectKernel), Firmware::None);
        let container = Bootable::Container {
            root: "/root".into(),
        };
        assert_eq!(fw(&container, Profile::Container), Firmware::None);
    }
}
