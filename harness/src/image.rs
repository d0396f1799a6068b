//! The image under test: found in a build result through the registry's output glob, then
//! turned into what QEMU boots by its profile (packed disks unpacked into the run directory; the
//! image itself is never written). The profiles with more to do have their own modules:
//! `kexec::prepare`, `container::prepare`, `diskboot::prepare`.

use std::path::{Path, PathBuf};

use formats::{Format, Profile};
use tokio::process::Command;

use crate::aarch64::ArmBoot;
use crate::arch;
use crate::unpack::unpack_disk;
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
        /// A fresh swap disk in the run directory, added once the guest has taken `sda`
        /// (Linode's `sdb`; [`crate::profile::late_scsi_disk`]).
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

#[cfg(test)]
mod tests;
