//! Cloud and hypervisor disks: which firmware an image boots with, read from its own partition
//! table, and which file of an unwrapped appliance (OVA, Vagrant box, tar.gz) is the disk.
//!
//! nixpkgs builds most of these for BIOS by default and for UEFI on request (`ec2.efi`, Azure's
//! `vmGeneration = "v2"`, `googleComputeImage.efi`); Hyper-V and VMware images are UEFI. The
//! image says which: make-disk-image's `efi` layout is a GPT with an EFI system partition and
//! no BIOS boot partition, its `legacy` and `legacy+gpt` layouts have an MBR or a BIOS boot
//! partition. Only the first sectors of the virtual disk are read (through `qemu-img dd` for
//! other drivers than raw), never written.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::HarnessError;

/// The firmware a disk boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFirmware {
    /// SeaBIOS: an MBR boot loader.
    Bios,
    /// OVMF: a GPT with an EFI system partition and no BIOS boot partition.
    Uefi,
}

/// Bytes read from the start of a disk: the MBR, the GPT header and 128 entries of 128 bytes.
const HEAD: usize = 512 * 34;
/// GPT partition type GUID of an EFI system partition, as stored (mixed-endian).
const ESP: [u8; 16] = guid(
    0xC12A7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// GPT partition type GUID of a BIOS boot partition (GRUB's core.img on GPT).
const BIOS_BOOT: [u8; 16] = guid(
    0x21686148,
    0x6449,
    0x6E6F,
    [0x74, 0x4E, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49],
);

const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let (a, b, c) = (a.to_le_bytes(), b.to_le_bytes(), c.to_le_bytes());
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// The firmware the partition table in `head` (the disk's first sectors) asks for.
pub fn firmware_of(head: &[u8]) -> DiskFirmware {
    let mbr_signed = head.len() >= 512 && head[510..512] == [0x55, 0xAA];
    let protective = mbr_signed && (0..4).any(|i| head[446 + 16 * i + 4] == 0xEE);
    if !protective || head.len() < 1024 || &head[512..520] != b"EFI PART" {
        // An MBR disk: BIOS, unless its only way to boot is an EFI partition (type 0xEF).
        let efi_only = mbr_signed
            && (0..4).any(|i| head[446 + 16 * i + 4] == 0xEF)
            && head[..440].iter().all(|b| *b == 0);
        return if efi_only {
            DiskFirmware::Uefi
        } else {
            DiskFirmware::Bios
        };
    }
    let le = |at: usize, n: usize| -> u64 {
        head[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    };
    let (entries_lba, count, size) = (le(512 + 72, 8), le(512 + 80, 4), le(512 + 84, 4));
    let mut types = Vec::new();
    if size >= 16 {
        for i in 0..count {
            let at = entries_lba
                .saturating_mul(512)
                .saturating_add(i.saturating_mul(size));
            let Some(entry) = usize::try_from(at)
                .ok()
                .and_then(|at| head.get(at..at + 16))
            else {
                break;
            };
            types.push(<[u8; 16]>::try_from(entry).expect("16 bytes"));
        }
    }
    match (types.contains(&ESP), types.contains(&BIOS_BOOT)) {
        (true, false) => DiskFirmware::Uefi,
        _ => DiskFirmware::Bios,
    }
}

/// Reads the first sectors of the virtual disk `disk` (QEMU block driver `driver`) into memory:
/// directly for raw, through `qemu-img dd` (into the run directory) otherwise.
pub async fn read_head(disk: &Path, driver: &str, run_dir: &Path) -> Result<Vec<u8>, HarnessError> {
    let read = |path: &Path| {
        use std::io::Read;
        let mut head = Vec::with_capacity(HEAD);
        std::fs::File::open(path)
            .and_then(|f| f.take(HEAD as u64).read_to_end(&mut head))
            .map_err(|e| HarnessError::io(format!("read {}", path.display()), e))?;
        Ok(head)
    };
    if driver == "raw" {
        return read(disk);
    }
    let out = run_dir.join("disk-head.raw");
    let mut cmd = Command::new("qemu-img");
    cmd.args([
        "dd",
        "-f",
        driver,
        "-O",
        "raw",
        &format!("bs={HEAD}"),
        "count=1",
    ])
    .arg(format!("if={}", disk.display()))
    .arg(format!("of={}", out.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    crate::lifeline::die_with_parent(&mut cmd);
    let done = cmd.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            HarnessError::MissingProgram {
                program: "qemu-img".into(),
                package: "qemu-utils".into(),
            }
        } else {
            HarnessError::io("run qemu-img dd", e)
        }
    })?;
    if !done.status.success() {
        return Err(HarnessError::BadImage {
            path: disk.to_path_buf(),
            detail: format!(
                "QEMU cannot read it as {driver}: {}",
                String::from_utf8_lossy(&done.stderr).trim()
            ),
        });
    }
    let head = read(&out);
    let _ = std::fs::remove_file(&out);
    head
}

/// Refuses a disk that would make QEMU open another file: a VMDK text descriptor (its extents
/// are other files) or a sparse VMDK with a parent, a differencing VHD. VHDX parents are
/// refused by QEMU itself ("not supported").
pub fn check_self_contained(disk: &Path, driver: &str) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(disk).map_err(|e| e.to_string())?;
    match driver {
        "vmdk" => {
            let mut header = [0u8; 512];
            let n = f
                .read(&mut header)
                .map_err(|e| format!("not a VMDK: {e}"))?;
            if n < 64 || &header[..4] != b"KDMV" {
                return Err("a VMDK descriptor file names other files as its extents; boot a \
                            self-contained copy (qemu-img convert -O vmdk -o subformat=monolithicSparse)"
                    .into());
            }
            let le =
                |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
            let (offset, sectors) = (le(28), le(36).min(2048));
            let mut text = vec![0u8; usize::try_from(sectors * 512).unwrap_or(0)];
            if offset > 0 && !text.is_empty() {
                f.seek(SeekFrom::Start(offset * 512))
                    .map_err(|e| e.to_string())?;
                let n = f.read(&mut text).map_err(|e| e.to_string())?;
                text.truncate(n);
            }
            let text = String::from_utf8_lossy(&text);
            let parent = text.lines().any(|l| {
                let l = l.trim();
                l.starts_with("parentFileNameHint")
                    || (l.starts_with("parentCID") && !l.to_ascii_lowercase().contains("ffffffff"))
            });
            if parent {
                return Err("the VMDK names a parent disk (parentFileNameHint); boot a \
                            self-contained copy (qemu-img convert -O vmdk)"
                    .into());
            }
            Ok(())
        }
        "vpc" => {
            // The footer's copy at the start (dynamic disks) or the footer at the end (fixed).
            let mut footer = [0u8; 512];
            f.read_exact(&mut footer)
                .map_err(|e| format!("not a VHD: {e}"))?;
            if &footer[..8] != b"conectix" {
                f.seek(SeekFrom::End(-512)).map_err(|e| e.to_string())?;
                f.read_exact(&mut footer).map_err(|e| e.to_string())?;
            }
            let disk_type = u32::from_be_bytes(footer[60..64].try_into().expect("4 bytes"));
            if &footer[..8] == b"conectix" && disk_type == 4 {
                return Err(
                    "a differencing VHD needs its parent disk; boot a self-contained \
                            copy (qemu-img convert -O vpc)"
                        .into(),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether the file called `name` in an unwrapped appliance is the disk of driver `driver`
/// (an OVA or box also holds the .ovf descriptor, a manifest, a Vagrantfile).
pub fn is_disk_member(name: &str, driver: &str) -> bool {
    let name = name.to_ascii_lowercase();
    match driver {
        "vmdk" => name.ends_with(".vmdk"),
        "qcow2" => name.ends_with(".qcow2"),
        "vpc" => name.ends_with(".vhd"),
        "vhdx" => name.ends_with(".vhdx"),
        _ => {
            !(name.ends_with(".ovf")
                || name.ends_with(".mf")
                || name.ends_with(".json")
                || name == "vagrantfile")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbr(part_type: u8, boot_code: bool) -> Vec<u8> {
        let mut d = vec![0u8; HEAD];
        if boot_code {
            d[0] = 0xEB;
        }
        d[446 + 4] = part_type;
        d[510] = 0x55;
        d[511] = 0xAA;
        d
    }

    fn gpt(types: &[[u8; 16]]) -> Vec<u8> {
        let mut d = mbr(0xEE, true);
        d[512..520].copy_from_slice(b"EFI PART");
        d[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        d[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
        d[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        for (i, t) in types.iter().enumerate() {
            d[1024 + 128 * i..1024 + 128 * i + 16].copy_from_slice(t);
        }
        d
    }

    #[test]
    fn make_disk_image_layouts_get_their_firmware() {
        // partitionTableType "efi": ESP + root.
        let linux = [0u8; 16];
        assert_eq!(firmware_of(&gpt(&[ESP, linux])), DiskFirmware::Uefi);
        // "legacy+gpt": BIOS boot partition + root; "hybrid": both.
        assert_eq!(firmware_of(&gpt(&[BIOS_BOOT, linux])), DiskFirmware::Bios);
        assert_eq!(
            firmware_of(&gpt(&[BIOS_BOOT, ESP, linux])),
            DiskFirmware::Bios
        );
        // "legacy": an MBR with GRUB's boot code.
        assert_eq!(firmware_of(&mbr(0x83, true)), DiskFirmware::Bios);
        // An MBR whose only way to boot is an EFI partition.
        assert_eq!(firmware_of(&mbr(0xEF, false)), DiskFirmware::Uefi);
        // Nothing readable: BIOS (SeaBIOS will say there is nothing to boot).
        assert_eq!(firmware_of(&[]), DiskFirmware::Bios);
        assert_eq!(firmware_of(&[0u8; 100]), DiskFirmware::Bios);
    }

    #[test]
    fn the_esp_guid_is_stored_mixed_endian() {
        assert_eq!(&ESP[..4], &[0x28, 0x73, 0x2A, 0xC1]);
        assert_eq!(&BIOS_BOOT, b"Hah!IdontNeedEFI");
    }

    #[test]
    fn disks_naming_other_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let text = d.path().join("desc.vmdk");
        std::fs::write(
            &text,
            "# Disk DescriptorFile\nRW 8 FLAT \"/etc/shadow\" 0\n",
        )
        .unwrap();
        assert!(check_self_contained(&text, "vmdk")
            .unwrap_err()
            .contains("descriptor"));
        let mut sparse = vec![0u8; 4096];
        sparse[..4].copy_from_slice(b"KDMV");
        sparse[28..36].copy_from_slice(&1u64.to_le_bytes());
        sparse[36..44].copy_from_slice(&1u64.to_le_bytes());
        let desc = b"parentCID=ffffffff\ncreateType=\"monolithicSparse\"\n";
        sparse[512..512 + desc.len()].copy_from_slice(desc);
        let ok = d.path().join("ok.vmdk");
        std::fs::write(&ok, &sparse).unwrap();
        assert_eq!(check_self_contained(&ok, "vmdk"), Ok(()));
        let child = b"parentCID=1234abcd\nparentFileNameHint=\"/etc/shadow\"\n";
        sparse[512..512 + child.len()].copy_from_slice(child);
        std::fs::write(&ok, &sparse).unwrap();
        assert!(check_self_contained(&ok, "vmdk")
            .unwrap_err()
            .contains("parent"));
        let mut vhd = vec![0u8; 1024];
        vhd[512..520].copy_from_slice(b"conectix");
        vhd[512 + 60..512 + 64].copy_from_slice(&4u32.to_be_bytes());
        let diff = d.path().join("d.vhd");
        std::fs::write(&diff, &vhd).unwrap();
        assert!(check_self_contained(&diff, "vpc")
            .unwrap_err()
            .contains("differencing"));
        vhd[512 + 60..512 + 64].copy_from_slice(&2u32.to_be_bytes());
        std::fs::write(&diff, &vhd).unwrap();
        assert_eq!(check_self_contained(&diff, "vpc"), Ok(()));
    }

    #[tokio::test]
    async fn the_head_of_a_vhd_is_read_through_qemu_img() {
        if which::which("qemu-img").is_err() {
            eprintln!(
                "SKIPPED the_head_of_a_vhd_is_read_through_qemu_img: no qemu-img (qemu-utils)"
            );
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let raw = d.path().join("disk.raw");
        let mut disk = gpt(&[ESP, [0u8; 16]]);
        disk.resize(4 << 20, 0);
        std::fs::write(&raw, &disk).unwrap();
        let vhd = d.path().join("disk.vhd");
        let converted = std::process::Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "vpc"])
            .arg(&raw)
            .arg(&vhd)
            .status()
            .unwrap();
        assert!(converted.success());
        let head = read_head(&vhd, "vpc", d.path()).await.unwrap();
        assert_eq!(head.len(), HEAD);
        assert_eq!(firmware_of(&head), DiskFirmware::Uefi);
        assert!(
            !d.path().join("disk-head.raw").exists(),
            "scratch file removed"
        );
        let err = read_head(&raw, "vhdx", d.path()).await.unwrap_err();
        assert!(err.to_string().contains("cannot read it as vhdx"), "{err}");
    }

    #[test]
    fn an_appliance_s_disk_is_picked_by_driver() {
        assert!(is_disk_member("nixos-disk001.vmdk", "vmdk"));
        assert!(!is_disk_member("box.ovf", "vmdk"));
        assert!(is_disk_member("disk.raw", "raw"));
        assert!(!is_disk_member("Vagrantfile", "raw"));
        assert!(!is_disk_member("metadata.json", "raw"));
    }
}
