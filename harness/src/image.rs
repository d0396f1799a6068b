//! The image under test: found in a build result through the registry's output glob, then
//! turned into what QEMU boots by its profile (packed disks unpacked into the run directory; the
//! image itself is never written). The profiles with more to do have their own modules:
//! `kexec::prepare`, `container::prepare`, `diskboot::prepare`.

use std::path::{Path, PathBuf};

use formats::{Format, Packing, Profile};
use tokio::process::Command;

use crate::aarch64::ArmBoot;
use crate::arch;
use crate::HarnessError;

/// What a profile boots, after preparation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootable {
    /// A disk image with QEMU block driver `format`; `snapshot` when it is the user's file
    /// (an overlay protects it), not when it is a private unpacked copy.
    Disk {
        /// The disk file.
        path: PathBuf,
        /// QEMU block driver (`raw`, `qcow2`, ...).
        format: String,
        /// Whether writes must go to an overlay.
        snapshot: bool,
        /// Boot it with OVMF (else SeaBIOS).
        uefi: bool,
        /// The controller it is attached to (the registry's, for a cloud disk).
        controller: formats::Controller,
    },
    /// An ISO image (attached read-only).
    Iso(PathBuf),
    /// A kernel, initrd and command line (from a kexec tarball).
    Kernel {
        /// The kernel.
        kernel: PathBuf,
        /// The initrd.
        initrd: PathBuf,
        /// The kernel command line.
        cmdline: String,
    },
    /// A kernel, initrd and command line read out of the disk's own file system, booted
    /// directly with the disk attached (`kernel-from-disk`, `extlinux`).
    DiskKernel {
        /// The kernel, copied into the run directory.
        kernel: PathBuf,
        /// The initrd(s), copied into the run directory.
        initrd: PathBuf,
        /// The kernel command line of the boot entry.
        cmdline: String,
        /// The raw disk (the user's file, or its unpacked copy); booted on an overlay.
        disk: PathBuf,
        /// How the platform attaches it.
        bus: crate::diskboot::DiskBus,
        /// A fresh swap disk in the run directory, attached second (Linode's `sdb`).
        swap: Option<PathBuf>,
    },
    /// A NixOS VM run script.
    Runner(PathBuf),
    /// A container's root file system, unpacked into the run directory.
    Container {
        /// The unpacked tree.
        root: PathBuf,
    },
    /// A disk for an aarch64 machine, booted on `qemu-system-aarch64 -M virt` under TCG.
    Aarch64Disk {
        /// The disk file.
        path: PathBuf,
        /// QEMU block driver (`raw`, `qcow2`, ...).
        format: String,
        /// Whether writes must go to an overlay.
        snapshot: bool,
        /// U-Boot (an SD card image's extlinux.conf) or AAVMF (an EFI system partition).
        boot: ArmBoot,
    },
    /// An ISO whose EFI system partition holds only an aarch64 boot loader, booted through AAVMF
    /// on `qemu-system-aarch64 -M virt` under TCG.
    Aarch64Iso(PathBuf),
}

impl Bootable {
    /// Whether QEMU emulates another architecture for it (then TCG is the only accelerator).
    pub fn is_foreign(&self) -> bool {
        matches!(self, Bootable::Aarch64Disk { .. } | Bootable::Aarch64Iso(_))
    }
}

/// The image file of `format` at `image`: the file itself, or the match of the format's
/// output glob inside a build result directory.
pub fn resolve(format: &Format, image: &Path) -> Result<PathBuf, HarnessError> {
    let not_found = || HarnessError::ImageNotFound {
        format: format.name.clone(),
        path: image.to_path_buf(),
        pattern: format.output.clone(),
    };
    let found = if image.is_dir() {
        format.locate(image).ok_or_else(not_found)?
    } else if image.is_file() {
        image.to_path_buf()
    } else {
        return Err(not_found());
    };
    check_regular(&found)?;
    std::path::absolute(&found).map_err(|e| HarnessError::io("absolute image path", e))
}

/// Refuses what is no image: a device (`/dev/zero`), a FIFO or socket, an empty file. Never
/// opens the path (a FIFO would block).
pub fn check_regular(path: &Path) -> Result<(), HarnessError> {
    let bad = |detail: &str| HarnessError::BadImage {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(&e.to_string()))?;
    if !meta.is_file() {
        return Err(bad(
            "not a regular file (a device, FIFO or socket); give the image file",
        ));
    }
    if meta.len() == 0 {
        return Err(bad("the file is empty; give the built image"));
    }
    Ok(())
}

pub use crate::kexec::{extract_bundle, kexec_boot, parse_kexec_script, KexecCall};

/// Prepares the file found by [`resolve`] for booting, unpacking into `run_dir` as needed.
/// `system` is the Nix system the image was built for, when the caller knows it (`--system`):
/// `aarch64-linux` boots a UEFI disk on qemu-system-aarch64 even where its bytes cannot be
/// read here (a qcow2); a raw disk's EFI boot loader tells by itself.
pub async fn prepare(
    format: &Format,
    file: &Path,
    run_dir: &Path,
    pair: Option<&Path>,
    system: Option<&str>,
) -> Result<Bootable, HarnessError> {
    match format.profile {
        Profile::DirectKernel | Profile::VmBootloader => {
            let script = arch::head(file, 1 << 20)
                .map_err(|e| HarnessError::io(format!("read {}", file.display()), e))?;
            if let Some(other) = arch::script_arch(&String::from_utf8_lossy(&script)) {
                return Err(foreign_arch(
                    file,
                    &format!("its run script starts qemu-system-{other}"),
                ));
            }
            Ok(Bootable::Runner(file.to_path_buf()))
        }
        Profile::Iso => {
            let arm = check_loader_arch(file, file)? == Some("aarch64")
                || system.is_some_and(|s| s.starts_with("aarch64-"));
            match arm {
                true => Ok(Bootable::Aarch64Iso(qemu_path(file, run_dir)?)),
                false => Ok(Bootable::Iso(qemu_path(file, run_dir)?)),
            }
        }
        Profile::BiosDisk | Profile::EfiDisk | Profile::CloudDisk => {
            let cloud = format.profile == Profile::CloudDisk;
            let driver = format.disk.clone().unwrap_or_else(|| "raw".to_string());
            let (path, packed) = match format.packing {
                None => (qemu_path(file, run_dir)?, false),
                Some(packing) => (unpack_disk(packing, &driver, file, run_dir).await?, true),
            };
            let mut arm = system.is_some_and(|s| s.starts_with("aarch64-"));
            let refuse = |detail: String| HarnessError::BadImage {
                path: file.to_path_buf(),
                detail,
            };
            if driver == "qcow2" {
                crate::qcow2::check_self_contained(&path).map_err(|e| refuse(e.to_string()))?;
            }
            crate::cloud::check_self_contained(&path, &driver).map_err(refuse)?;
            let uefi = match format.profile {
                Profile::CloudDisk => {
                    let head = crate::cloud::read_head(&path, &driver, run_dir).await?;
                    crate::cloud::firmware_of(&head) == crate::cloud::DiskFirmware::Uefi
                }
                profile => profile == Profile::EfiDisk,
            };
            // nixpkgs boots raw and qcow by UEFI outside x86 (no BIOS GRUB there); a cloud
            // disk by its own partition table.
            // Without --system the boot loader on the ESP tells (read from a raw disk, else
            // from its head converted by qemu-img); other architectures are refused.
            if uefi && system.is_none() {
                let found = match driver.as_str() {
                    "raw" => check_loader_arch(file, &path)?,
                    _ => loader_arch_via_qemu_img(file, &path, &driver, run_dir).await?,
                };
                arm = found == Some("aarch64");
            }
            if arm && (uefi || !cloud) {
                return Ok(Bootable::Aarch64Disk {
                    path,
                    format: driver,
                    snapshot: !packed || cloud,
                    boot: ArmBoot::Uefi,
                });
            }
            if arm {
                return Err(foreign_arch(
                    file,
                    "it is an aarch64 disk without an EFI system partition",
                ));
            }
            // The user's file always boots on an overlay; an unpacked private copy only for a
            // cloud disk (an OVA's streamOptimized VMDK cannot be written in place).
            Ok(Bootable::Disk {
                path,
                format: driver,
                snapshot: !packed || cloud,
                uefi,
                controller: format.disk_controller(),
            })
        }
        Profile::Kexec => crate::kexec::prepare(file, run_dir).await,
        Profile::Container | Profile::ContainerMetadata => {
            crate::container::prepare(format, file, run_dir, pair).await
        }
        Profile::KernelFromDisk | Profile::Extlinux => {
            crate::diskboot::prepare(format, file, run_dir).await
        }
        Profile::UbootBoard => {
            let driver = format.disk.clone().unwrap_or_else(|| "raw".to_string());
            let (path, packed) = if crate::zstd_disk::is_zstd(file)? {
                (
                    crate::zstd_disk::unzstd(file, &run_dir.join("disk.img")).await?,
                    true,
                )
            } else {
                (qemu_path(file, run_dir)?, false)
            };
            Ok(Bootable::Aarch64Disk {
                path,
                format: driver,
                snapshot: !packed,
                boot: ArmBoot::UBoot,
            })
        }
        Profile::CloudOnly | Profile::Board => Err(HarnessError::NotBootable {
            format: format.name.clone(),
            profile: format.profile.to_string(),
            why: format.not_checked.clone().unwrap_or_default(),
        }),
    }
}

/// The architecture of a raw UEFI disk or ISO (`readable`, the user's `file` or its unpacked
/// copy) by the boot loaders of its EFI system partition: `None` when it has one for this host
/// (or none was found), `Some("aarch64")` when only aarch64 has one (booted on
/// qemu-system-aarch64); other architectures are refused.
fn check_loader_arch(file: &Path, readable: &Path) -> Result<Option<&'static str>, HarnessError> {
    let archs = crate::esp::loader_archs(readable);
    match archs.first() {
        _ if archs.contains(&arch::HOST_ARCH) => Ok(None),
        None => Ok(None),
        Some(_) if archs.contains(&"aarch64") => Ok(Some("aarch64")),
        Some(other) => Err(foreign_arch(
            file,
            &format!("its EFI boot loader is for {other} (EFI/BOOT on its EFI system partition)"),
        )),
    }
}

/// How much of a non-raw disk's head is read to find its ESP's boot loader: nixpkgs puts the
/// ESP at 1 or 8 MiB, and `EFI/BOOT` is among the first things written to it.
const ESP_HEAD_MIB: u32 = 64;

/// [`check_loader_arch`] for a disk QEMU reads with another block driver: its first
/// [`ESP_HEAD_MIB`] MiB are converted into the run directory (`qemu-img dd`), read, and removed.
/// `Ok(None)` when that fails: the checks that follow name what is wrong with the disk.
async fn loader_arch_via_qemu_img(
    file: &Path,
    disk: &Path,
    driver: &str,
    run_dir: &Path,
) -> Result<Option<&'static str>, HarnessError> {
    let head = run_dir.join("esp-head.raw");
    let mut cmd = Command::new("qemu-img");
    cmd.args(["dd", "-f", driver, "-O", "raw", "bs=1M"])
        .arg(format!("count={ESP_HEAD_MIB}"))
        .arg(format!("if={}", disk.display()))
        .arg(format!("of={}", head.display()))
        .stdout(std::process::Stdio::null());
    crate::lifeline::die_with_parent(&mut cmd);
    let read = run(&mut cmd, "qemu-img dd", file).await.is_ok();
    let found = if read {
        check_loader_arch(file, &head)
    } else {
        Ok(None)
    };
    let _ = std::fs::remove_file(&head);
    found
}

pub(crate) fn foreign_arch(file: &Path, why: &str) -> HarnessError {
    HarnessError::BadImage {
        path: file.to_path_buf(),
        detail: format!(
            "{why}, but --check and --run boot {} and aarch64 (UEFI or U-Boot) images only; check it on a machine of its architecture",
            arch::HOST_ARCH
        ),
    }
}

/// The path QEMU is given for the user's file: the file itself, or, when its path is not
/// UTF-8 (QEMU's options are text), a symlink to it in the run directory.
pub(crate) fn qemu_path(file: &Path, run_dir: &Path) -> Result<PathBuf, HarnessError> {
    if file.to_str().is_some() {
        return Ok(file.to_path_buf());
    }
    let link = run_dir.join("image");
    std::os::unix::fs::symlink(file, &link)
        .map_err(|e| HarnessError::io("link the image into the run directory", e))?;
    Ok(link)
}

async fn run(cmd: &mut Command, what: &str, file: &Path) -> Result<(), HarnessError> {
    // Not `output()`: tokio's sets stdout to a pipe, overriding a file given by the caller.
    let out = cmd
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HarnessError::io(what.to_string(), e))?
        .wait_with_output()
        .await
        .map_err(|e| HarnessError::io(what.to_string(), e))?;
    if !out.status.success() {
        return Err(HarnessError::BadImage {
            path: file.to_path_buf(),
            detail: format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(())
}

pub(crate) async fn untar(
    tarball: &Path,
    dest: &Path,
    compression: &str,
) -> Result<(), HarnessError> {
    std::fs::create_dir_all(dest).map_err(|e| HarnessError::io("create unpack directory", e))?;
    let mut cmd = Command::new("tar");
    cmd.arg(format!("-x{compression}f"))
        .arg(tarball)
        .arg("-C")
        .arg(dest)
        .arg("--no-same-owner")
        .stdout(std::process::Stdio::null());
    crate::lifeline::die_with_parent(&mut cmd);
    run(&mut cmd, "tar", tarball).await
}

pub(crate) async fn unpack_disk(
    packing: Packing,
    driver: &str,
    file: &Path,
    run_dir: &Path,
) -> Result<PathBuf, HarnessError> {
    match packing {
        Packing::Gzip => {
            let dest = run_dir.join("disk.img");
            let out =
                std::fs::File::create(&dest).map_err(|e| HarnessError::io("create disk.img", e))?;
            let mut cmd = Command::new("gzip");
            cmd.arg("-dc").arg(file).stdout(out);
            crate::lifeline::die_with_parent(&mut cmd);
            run(&mut cmd, "gzip -d", file).await?;
            Ok(dest)
        }
        Packing::Zstd => crate::zstd_disk::unzstd(file, &run_dir.join("disk.img")).await,
        Packing::Vma => {
            let (archive, dest) = (file.to_path_buf(), run_dir.join("disk.raw"));
            let out = dest.clone();
            tokio::task::spawn_blocking(move || crate::vma::extract_first_disk(&archive, &out))
                .await
                .map_err(|e| HarnessError::io("unpack the VMA archive", std::io::Error::other(e)))?
                .map_err(|e| HarnessError::BadImage {
                    path: file.to_path_buf(),
                    detail: e.to_string(),
                })?;
            Ok(dest)
        }
        Packing::TarGz | Packing::Tar => {
            let dir = run_dir.join("disk");
            let compression = if packing == Packing::TarGz { "z" } else { "" };
            untar(file, &dir, compression).await?;
            first_file(&dir, &|name| crate::cloud::is_disk_member(name, driver)).ok_or_else(|| {
                HarnessError::BadImage {
                    path: file.to_path_buf(),
                    detail: format!("the archive holds no {driver} disk"),
                }
            })
        }
    }
}

/// The first (by path) regular file under `dir` whose name `want`s; none when a directory
/// cannot be read. Symbolic links are neither followed nor returned.
pub(crate) fn first_file(dir: &Path, want: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.ok()?;
        if entry.file_type().is_file() && entry.file_name().to_str().is_some_and(want) {
            found.push(entry.into_path());
        }
    }
    found.sort();
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_esp_loader_picks_the_machine() {
        use crate::esp::tests::{fat_with, gpt_disk, iso};
        let registry = formats::registry();
        let raw_efi = registry.get("raw-efi").unwrap();
        let d = tempfile::tempdir().unwrap();
        let disk = |name: &str, bytes: Vec<u8>| {
            let p = d.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let arm = disk("arm.img", gpt_disk(&fat_with("BOOTAA64.EFI")));
        let b = prepare(raw_efi, &arm, d.path(), None, None).await.unwrap();
        assert_eq!(
            b,
            Bootable::Aarch64Disk {
                path: arm.clone(),
                format: "raw".into(),
                snapshot: true,
                boot: ArmBoot::Uefi
            }
        );
        let x86 = disk("x86.img", gpt_disk(&fat_with("BOOTX64.EFI")));
        let b = prepare(raw_efi, &x86, d.path(), None, None).await.unwrap();
        assert!(matches!(b, Bootable::Disk { uefi: true, .. }), "{b:?}");
        let riscv = disk("riscv.img", gpt_disk(&fat_with("BOOTRISCV64.EFI")));
        let e = prepare(raw_efi, &riscv, d.path(), None, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("riscv64"), "{e}");
        let arm_iso = disk("arm.iso", iso(&fat_with("BOOTAA64.EFI")));
        let b = prepare(registry.get("iso").unwrap(), &arm_iso, d.path(), None, None)
            .await
            .unwrap();
        assert_eq!(b, Bootable::Aarch64Iso(arm_iso.clone()));
        // A qcow2's head is converted and read; --system tells without reading.
        let qcow = registry.get("qcow-efi").unwrap();
        let arm_q = d.path().join("arm.qcow2");
        let converted = std::process::Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&arm)
            .arg(&arm_q)
            .status();
        if converted.is_ok_and(|s| s.success()) {
            let b = prepare(qcow, &arm_q, d.path(), None, None).await.unwrap();
            assert!(b.is_foreign(), "{b:?}");
            assert!(!d.path().join("esp-head.raw").exists());
        }
        let q = d.path().join("x.qcow2");
        let st = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&q)
            .arg("1M")
            .status();
        if st.is_ok_and(|s| s.success()) {
            let b = prepare(qcow, &q, d.path(), None, Some("aarch64-linux"))
                .await
                .unwrap();
            assert!(b.is_foreign(), "{b:?}");
            let b = prepare(qcow, &q, d.path(), None, None).await.unwrap();
            assert!(!b.is_foreign(), "{b:?}");
        }
    }

    #[tokio::test]
    async fn sd_images_boot_through_uboot_zstd_or_not() {
        let sd = formats::registry().get("sd-aarch64").unwrap();
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("nixos.img");
        std::fs::write(&plain, vec![7u8; 1 << 17]).unwrap();
        let b = prepare(sd, &plain, d.path(), None, None).await.unwrap();
        assert_eq!(
            b,
            Bootable::Aarch64Disk {
                path: plain.clone(),
                format: "raw".into(),
                snapshot: true,
                boot: ArmBoot::UBoot
            }
        );
        let zst = d.path().join("nixos.img.zst");
        let mut bytes = vec![0u8; 1 << 20];
        bytes[..3].copy_from_slice(b"MBR");
        std::fs::write(&zst, zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();
        let run = d.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let b = prepare(sd, &zst, &run, None, None).await.unwrap();
        let Bootable::Aarch64Disk { path, snapshot, .. } = b else {
            panic!("{b:?}")
        };
        assert!(path.starts_with(&run) && !snapshot);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[tokio::test]
    async fn packed_disks_are_unpacked_into_the_run_dir() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("nixos.raw");
        std::fs::write(&disk, b"disk bytes").unwrap();
        let run = d.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let gz = d.path().join("nixos.raw.gz");
        let out = std::process::Command::new("gzip")
            .arg("-kc")
            .arg(&disk)
            .output()
            .unwrap();
        std::fs::write(&gz, out.stdout).unwrap();
        let p = unpack_disk(Packing::Gzip, "raw", &gz, &run).await.unwrap();
        assert!(p.starts_with(&run));
        assert_eq!(std::fs::read(p).unwrap(), b"disk bytes");
        let tgz = d.path().join("nixos.raw.tar.gz");
        let st = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(d.path())
            .arg("nixos.raw")
            .status()
            .unwrap();
        assert!(st.success());
        let p = unpack_disk(Packing::TarGz, "raw", &tgz, &run)
            .await
            .unwrap();
        assert_eq!(p, run.join("disk/nixos.raw"));
        assert_eq!(std::fs::read(p).unwrap(), b"disk bytes");
        let bad = unpack_disk(Packing::Gzip, "raw", &disk, &run)
            .await
            .unwrap_err();
        assert!(matches!(bad, HarnessError::BadImage { .. }), "{bad}");
    }
}
