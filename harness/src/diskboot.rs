//! Disks whose kernel is loaded from the disk's own file system by a loader outside the image,
//! which the harness plays itself: it reads the loader's configuration, kernel and initrd out
//! of the ext4 file system with `debugfs` (e2fsprogs; read-only, nothing mounted, the image
//! never written) and boots them directly, with the disk attached as the platform attaches it.
//!
//! - `kernel-from-disk` (linode): Linode's GRUB 2 reads `/boot/grub/grub.cfg` of a disk that
//!   is one ext4 file system without partition table (nixpkgs' `partitionTableType = "none"`)
//!   and boots its default entry. The disk is `sda` on virtio-scsi (linode-config.nix loads
//!   `virtio_scsi` in the initrd and mounts `/dev/sda`), and Linode gives every machine a swap
//!   disk `sdb` (linode-config.nix: `swapDevices = [ { device = "/dev/sdb"; } ]`): the run
//!   gets a fresh, formatted one in its directory, added while the guest runs, once it has read
//!   `sda` (Linux's SCSI disk names follow probe order, which is not target order).
//! - `extlinux` (sd-x86_64): nixpkgs' SD card image is an MBR disk (FAT firmware partition,
//!   bootable ext4 root) with no boot code, whose `/boot/extlinux/extlinux.conf` is written by
//!   generic-extlinux-compatible for U-Boot (nixpkgs boots it in its own tests with U-Boot's
//!   `qemu-x86` ROM). U-Boot's distro boot takes the bootable partition's
//!   `/extlinux/extlinux.conf` or `/boot/extlinux/extlinux.conf` and its default label; so does
//!   the harness. The disk is on the AHCI controller, as other disks.

use std::path::{Path, PathBuf};

use formats::{Format, Packing, Profile};
use tokio::process::Command;

use crate::bootcfg::{self, BootEntry};
use crate::image::Bootable;
use crate::{arch, HarnessError};

/// How the disk is attached to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    /// On the machine's AHCI controller (`ide-hd`).
    Ahci,
    /// On a virtio-scsi controller (`scsi-hd`, the guest's `sda`), as Linode attaches disks.
    VirtioScsi,
}

/// Size of the swap disk a `kernel-from-disk` run gets (Linode's default is larger; the
/// size does not matter for a boot check).
const SWAP_BYTES: u64 = 64 << 20;

/// Prepares a `kernel-from-disk` or `extlinux` image: unpacks it into `run_dir` when it is
/// compressed, reads the boot entry, kernel and initrd out of its file system.
pub(crate) async fn prepare(
    format: &Format,
    file: &Path,
    run_dir: &Path,
) -> Result<Bootable, HarnessError> {
    let bad = |detail: String| HarnessError::BadImage {
        path: file.to_path_buf(),
        detail,
    };
    which::which("debugfs").map_err(|_| HarnessError::MissingProgram {
        program: "debugfs".into(),
        package: "e2fsprogs".into(),
    })?;
    let disk = if format.packing == Some(Packing::Gzip) {
        crate::unpack::unpack_disk(Packing::Gzip, "raw", file, run_dir).await?
    } else if crate::zstd_disk::is_zstd(file)? {
        crate::zstd_disk::unzstd(file, &run_dir.join("disk.img")).await?
    } else {
        crate::image::qemu_path(file, run_dir)?
    };
    // debugfs reads `PATH?offset=N`: hand it a link with a plain name in the run directory.
    let link = run_dir.join("fs-disk");
    std::os::unix::fs::symlink(std::path::absolute(&disk).unwrap_or(disk.clone()), &link)
        .map_err(|e| HarnessError::io("link the disk into the run directory", e))?;
    let head = crate::arch::head(&disk, 512)
        .map_err(|e| HarnessError::io(format!("read {}", disk.display()), e))?;
    let (offset, entry, bus) = if format.profile == Profile::KernelFromDisk {
        if !is_ext(&disk, 0) {
            return Err(bad(
                "no ext2/3/4 file system at the start of the disk; Linode boots \
                 a disk that is one file system without partition table (kernel from disk)"
                    .into(),
            ));
        }
        let cfg = read_text(&link, 0, "/boot/grub/grub.cfg", run_dir)
            .await?
            .ok_or_else(|| {
                bad("the file system has no /boot/grub/grub.cfg, which Linode's GRUB boots".into())
            })?;
        let entry = bootcfg::grub_default(&cfg).map_err(|e| bad(e.to_string()))?;
        (0, entry, DiskBus::VirtioScsi)
    } else {
        let mut found = None;
        for start in boot_partitions(&head) {
            if !is_ext(&disk, start) {
                continue;
            }
            for dir in ["/extlinux", "/boot/extlinux"] {
                let conf = format!("{dir}/extlinux.conf");
                if let Some(text) = read_text(&link, start, &conf, run_dir).await? {
                    let entry =
                        bootcfg::extlinux_default(&text, dir).map_err(|e| bad(e.to_string()))?;
                    found = Some((start, entry));
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        let (start, entry) = found.ok_or_else(|| {
            bad(
                "no bootable ext4 partition with /boot/extlinux/extlinux.conf (or \
                 /extlinux/extlinux.conf) in its MBR partition table, which U-Boot boots"
                    .into(),
            )
        })?;
        (start, entry, DiskBus::Ahci)
    };
    let (kernel, initrd) =
        load_entry(&link, offset, &entry, run_dir)
            .await
            .map_err(|e| match e {
                Load::Missing(path) => bad(format!(
                    "its boot entry {:?} names {path}, which is not a file in the image",
                    entry.title
                )),
                Load::Harness(e) => e,
            })?;
    let kernel_head = arch::head(&kernel, 4096)
        .map_err(|e| HarnessError::io(format!("read {}", kernel.display()), e))?;
    if let Some(a) = arch::kernel_arch(&kernel_head).filter(|a| *a != arch::HOST_ARCH) {
        return Err(bad(format!(
            "its kernel is for {a}, but --check and --run boot {} images only; check it on a \
             machine of its architecture",
            arch::HOST_ARCH
        )));
    }
    let swap = match bus {
        DiskBus::VirtioScsi => Some(make_swap(&run_dir.join("swap.img"))?),
        DiskBus::Ahci => None,
    };
    Ok(Bootable::DiskKernel {
        kernel,
        initrd,
        cmdline: entry.cmdline,
        disk,
        bus,
        swap,
    })
}

async fn spawn(
    mut cmd: Command,
    program: &str,
    package: &str,
) -> Result<std::process::Output, HarnessError> {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    crate::lifeline::die_with_parent(&mut cmd);
    cmd.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            HarnessError::MissingProgram {
                program: program.into(),
                package: package.into(),
            }
        } else {
            HarnessError::io(format!("run {program}"), e)
        }
    })
}

/// Whether an ext2/3/4 superblock (magic 0xEF53) starts `offset` bytes into `disk`.
fn is_ext(disk: &Path, offset: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut magic = [0u8; 2];
    std::fs::File::open(disk)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(offset + 1024 + 56))?;
            f.read_exact(&mut magic)
        })
        .is_ok()
        && magic == [0x53, 0xEF]
}

/// Byte offsets of the MBR partitions U-Boot's distro boot looks at: those with the boot flag,
/// or every partition when none has it.
pub fn boot_partitions(mbr: &[u8]) -> Vec<u64> {
    if mbr.len() < 512 || mbr[510..512] != [0x55, 0xAA] {
        return Vec::new();
    }
    let parts: Vec<(bool, u64)> = (0..4)
        .map(|i| &mbr[446 + 16 * i..462 + 16 * i])
        .filter(|e| e[4] != 0 && e[4] != 0xEE)
        .map(|e| {
            let lba = u32::from_le_bytes(e[8..12].try_into().expect("4 bytes"));
            (e[0] == 0x80, u64::from(lba) * 512)
        })
        .collect();
    let bootable: Vec<u64> = parts.iter().filter(|p| p.0).map(|p| p.1).collect();
    if bootable.is_empty() {
        parts.into_iter().map(|p| p.1).collect()
    } else {
        bootable
    }
}

enum Load {
    Missing(String),
    Harness(HarnessError),
}

impl From<HarnessError> for Load {
    fn from(e: HarnessError) -> Self {
        Load::Harness(e)
    }
}

/// Copies `path` of the file system at `offset` of `disk` to `dest` with debugfs; false when
/// the file system has no such file.
async fn dump(disk: &Path, offset: u64, path: &str, dest: &Path) -> Result<bool, HarnessError> {
    let mut cmd = Command::new("debugfs");
    cmd.arg("-R")
        .arg(format!("dump {path} {}", dest.display()))
        .arg(format!("{}?offset={offset}", disk.display()));
    spawn(cmd, "debugfs", "e2fsprogs").await?;
    Ok(std::fs::metadata(dest).is_ok_and(|m| m.is_file() && m.len() > 0))
}

async fn read_text(
    disk: &Path,
    offset: u64,
    path: &str,
    run_dir: &Path,
) -> Result<Option<String>, HarnessError> {
    let dest = run_dir.join("boot.cfg");
    let _ = std::fs::remove_file(&dest);
    if !dump(disk, offset, path, &dest).await? {
        return Ok(None);
    }
    let text = std::fs::read(&dest).map_err(|e| HarnessError::io("read boot.cfg", e))?;
    Ok(Some(String::from_utf8_lossy(&text).into_owned()))
}

/// Kernel and initrd of `entry` copied into the run directory; several initrds are
/// concatenated into one (the kernel unpacks them in order, as the loaders load them).
async fn load_entry(
    disk: &Path,
    offset: u64,
    entry: &BootEntry,
    run_dir: &Path,
) -> Result<(PathBuf, PathBuf), Load> {
    let kernel = run_dir.join("kernel");
    if !dump(disk, offset, &entry.kernel, &kernel).await? {
        return Err(Load::Missing(entry.kernel.clone()));
    }
    let initrd = run_dir.join("initrd");
    let mut all = std::fs::File::create(&initrd)
        .map_err(|e| HarnessError::io("create the initrd in the run directory", e))?;
    for (i, path) in entry.initrds.iter().enumerate() {
        let part = run_dir.join(format!("initrd.{i}"));
        if !dump(disk, offset, path, &part).await? {
            return Err(Load::Missing(path.clone()));
        }
        let mut src = std::fs::File::open(&part)
            .map_err(|e| HarnessError::io("read an initrd in the run directory", e))?;
        std::io::copy(&mut src, &mut all).map_err(|e| HarnessError::io("join the initrds", e))?;
        let _ = std::fs::remove_file(&part);
    }
    Ok((kernel, initrd))
}

/// A fresh swap disk (mkswap's version-1 header, no label) of `SWAP_BYTES` at `path`.
pub fn make_swap(path: &Path) -> Result<PathBuf, HarnessError> {
    use std::io::{Seek, SeekFrom, Write};
    const PAGE: u64 = 4096;
    let mut header = vec![0u8; PAGE as usize];
    header[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    let last_page = u32::try_from(SWAP_BYTES / PAGE - 1).expect("small");
    header[1028..1032].copy_from_slice(&last_page.to_le_bytes());
    header[4086..4096].copy_from_slice(b"SWAPSPACE2");
    let io = |e| HarnessError::io("write the swap disk", e);
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(&header).map_err(io)?;
    f.set_len(SWAP_BYTES).map_err(io)?;
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootable_mbr_partition_is_chosen() {
        let mut mbr = vec![0u8; 512];
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        // p1: FAT at 8 MiB, p2: Linux, bootable, at 38 MiB (nixpkgs' sd-image layout).
        mbr[446 + 4] = 0x0B;
        mbr[446 + 8..446 + 12].copy_from_slice(&(8u32 * 2048).to_le_bytes());
        mbr[462] = 0x80;
        mbr[462 + 4] = 0x83;
        mbr[462 + 8..462 + 12].copy_from_slice(&(38u32 * 2048).to_le_bytes());
        assert_eq!(boot_partitions(&mbr), [38 << 20]);
        mbr[462] = 0;
        assert_eq!(boot_partitions(&mbr), [8 << 20, 38 << 20]);
        assert!(boot_partitions(&[0u8; 512]).is_empty());
    }

    #[test]
    fn the_swap_disk_has_mkswap_s_signature() {
        let d = tempfile::tempdir().unwrap();
        let p = make_swap(&d.path().join("swap.img")).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len() as u64, SWAP_BYTES);
        assert_eq!(&bytes[4086..4096], b"SWAPSPACE2");
        assert_eq!(&bytes[1024..1028], &1u32.to_le_bytes());
    }

    /// `tree` made into an 8 MiB ext4 image beside it (`fs.img`), or `None` (skipped, said on
    /// stderr) where e2fsprogs is not installed.
    fn ext4_of(tree: &Path) -> Option<PathBuf> {
        if which::which("debugfs").is_err() || which::which("mke2fs").is_err() {
            eprintln!("SKIPPED: no debugfs/mke2fs (e2fsprogs)");
            return None;
        }
        let fs = tree.with_file_name("fs.img");
        let ok = std::process::Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-d"])
            .arg(tree)
            .arg(&fs)
            .arg("8M")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        Some(fs)
    }

    #[tokio::test]
    async fn files_are_read_from_an_ext4_file_system_at_an_offset() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree/boot/extlinux");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("extlinux.conf"), "LABEL a\n LINUX ../k\n").unwrap();
        let Some(fs) = ext4_of(&d.path().join("tree")) else {
            return;
        };
        let disk = d.path().join("disk.img");
        let mut bytes = vec![0u8; 1 << 20];
        bytes.extend(std::fs::read(&fs).unwrap());
        std::fs::write(&disk, &bytes).unwrap();
        assert!(is_ext(&disk, 1 << 20) && !is_ext(&disk, 0));
        let text = read_text(&disk, 1 << 20, "/boot/extlinux/extlinux.conf", d.path())
            .await
            .unwrap();
        assert_eq!(text.as_deref(), Some("LABEL a\n LINUX ../k\n"));
        let none = read_text(&disk, 1 << 20, "/boot/nope", d.path())
            .await
            .unwrap();
        assert_eq!(none, None);
        assert_eq!(std::fs::read(&disk).unwrap(), bytes, "never written");
    }

    #[tokio::test]
    async fn an_entry_naming_a_symlink_to_a_host_file_reads_nothing() {
        let d = tempfile::tempdir().unwrap();
        let boot = d.path().join("tree/boot");
        std::fs::create_dir_all(&boot).unwrap();
        let host = d.path().join("host-secret");
        std::fs::write(&host, b"secret").unwrap();
        std::os::unix::fs::symlink(&host, boot.join("kernel")).unwrap();
        let Some(fs) = ext4_of(&d.path().join("tree")) else {
            return;
        };
        let run = d.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let entry = bootcfg::grub_default("menuentry x {\n linux /boot/kernel\n}\n").unwrap();
        match load_entry(&fs, 0, &entry, &run).await {
            Err(Load::Missing(p)) => assert_eq!(p, "/boot/kernel"),
            Err(Load::Harness(e)) => panic!("{e}"),
            Ok(_) => panic!("a symlink was followed"),
        }
        let copied = std::fs::read(run.join("kernel")).unwrap_or_default();
        assert!(!copied.starts_with(b"secret"), "host file read");
    }
}
