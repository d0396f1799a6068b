//! The architecture of a UEFI image's boot loader, read from its EFI system partition without
//! writing a byte: the ESP of a raw GPT disk, or the El Torito EFI boot image of an ISO, is
//! opened read-only as FAT ([`fatfs`]) and `EFI/BOOT/BOOT<arch>.EFI` (the removable-media path
//! OVMF boots) names the architecture.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The GPT partition type of an EFI system partition, as stored on disk (mixed endian).
const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];
/// El Torito's platform id for UEFI.
const EFI_PLATFORM: u8 = 0xef;

/// The architectures of the `EFI/BOOT/BOOT*.EFI` loaders of the ESP in `image` (a raw disk or
/// an ISO); empty when there is no ESP, no such directory, or the image cannot be read.
pub fn loader_archs(image: &Path) -> Vec<&'static str> {
    let Ok(mut file) = File::open(image) else {
        return Vec::new();
    };
    let Ok(len) = file.seek(SeekFrom::End(0)) else {
        return Vec::new();
    };
    let start = gpt_esp(&mut file).or_else(|| el_torito_efi(&mut file));
    start
        .filter(|s| *s < len)
        .and_then(|start| fat_loaders(Window::new(file, start, len)).ok())
        .unwrap_or_default()
}

fn read_at(file: &mut File, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The byte offset of the first EFI system partition of a GPT disk (512-byte sectors).
fn gpt_esp(file: &mut File) -> Option<u64> {
    let header = read_at(file, 512, 92)?;
    if &header[..8] != b"EFI PART" {
        return None;
    }
    let (entries_lba, count, size) = (le64(&header, 72)?, le32(&header, 80)?, le32(&header, 84)?);
    if !(128..=4096).contains(&size) || count > 1024 {
        return None;
    }
    let table = read_at(file, entries_lba.checked_mul(512)?, (count * size) as usize)?;
    table
        .chunks(size as usize)
        .find(|e| e[..16] == ESP_TYPE)
        .and_then(|e| le64(e, 32)?.checked_mul(512))
}

/// The byte offset of the UEFI boot image an ISO's El Torito catalog names.
fn el_torito_efi(file: &mut File) -> Option<u64> {
    let record = read_at(file, 17 * 2048, 2048)?;
    if &record[..6] != b"\0CD001" || !record[7..].starts_with(b"EL TORITO SPECIFICATION") {
        return None;
    }
    let catalog = read_at(file, u64::from(le32(&record, 0x47)?) * 2048, 2048)?;
    // Validation entry, default entry, then section headers (0x90, 0x91 last) each followed
    // by its entries; the validation entry's platform applies to the default entry.
    let mut platform = catalog[1];
    let mut i = 32;
    while i + 32 <= catalog.len() {
        let entry = &catalog[i..i + 32];
        match entry[0] {
            0x90 | 0x91 => platform = entry[1],
            0x88 if platform == EFI_PLATFORM => return Some(u64::from(le32(entry, 8)?) * 2048),
            0x88 | 0x00 => {}
            _ => return None,
        }
        i += 32;
    }
    None
}

/// The architectures of `EFI/BOOT/BOOT*.EFI` in a FAT file system.
fn fat_loaders(window: Window) -> io::Result<Vec<&'static str>> {
    let fs = fatfs::FileSystem::new(window, fatfs::FsOptions::new())?;
    let dir = fs.root_dir().open_dir("EFI/BOOT")?;
    let mut archs = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_ascii_uppercase();
        let arch = match name.as_str() {
            "BOOTX64.EFI" => "x86_64",
            "BOOTIA32.EFI" => "i686",
            "BOOTAA64.EFI" => "aarch64",
            "BOOTARM.EFI" => "arm",
            "BOOTRISCV64.EFI" => "riscv64",
            "BOOTLOONGARCH64.EFI" => "loongarch64",
            _ => continue,
        };
        archs.push(arch);
    }
    Ok(archs)
}

/// Bytes `start..end` of a file as a stream of their own; writing is refused.
struct Window {
    file: File,
    start: u64,
    end: u64,
    pos: u64,
}

impl Window {
    fn new(file: File, start: u64, end: u64) -> Window {
        Window {
            file,
            start,
            end,
            pos: 0,
        }
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.start).saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = self.end - self.start;
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => len.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

impl Write for Window {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::PermissionDenied))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// A FAT image holding `EFI/BOOT/<loader>`.
    pub(crate) fn fat_with(loader: &str) -> Vec<u8> {
        let mut disk = Cursor::new(vec![0u8; 2 << 20]);
        fatfs::format_volume(&mut disk, fatfs::FormatVolumeOptions::new()).unwrap();
        {
            let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).unwrap();
            let boot = fs
                .root_dir()
                .create_dir("EFI")
                .unwrap()
                .create_dir("BOOT")
                .unwrap();
            boot.create_file(loader).unwrap().write_all(b"MZ").unwrap();
        }
        disk.into_inner()
    }

    /// A GPT disk whose second partition, at sector 2048, is an ESP holding `fat`.
    pub(crate) fn gpt_disk(fat: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 2048 * 512 + fat.len()];
        d[512..520].copy_from_slice(b"EFI PART");
        d[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        d[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
        d[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        let second = 1024 + 128;
        d[second..second + 16].copy_from_slice(&ESP_TYPE);
        d[second + 32..second + 40].copy_from_slice(&2048u64.to_le_bytes());
        d[2048 * 512..].copy_from_slice(fat);
        d
    }

    /// An ISO-like image: a boot record at sector 17, a catalog at 20 with an EFI section,
    /// the FAT image at sector 24.
    pub(crate) fn iso(fat: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 24 * 2048 + fat.len()];
        let br = 17 * 2048;
        d[br..br + 6].copy_from_slice(b"\0CD001");
        d[br + 6] = 1;
        d[br + 7..br + 30].copy_from_slice(b"EL TORITO SPECIFICATION");
        d[br + 0x47..br + 0x4b].copy_from_slice(&20u32.to_le_bytes());
        let cat = 20 * 2048;
        d[cat] = 1; // validation entry, platform x86 (BIOS default entry)
        d[cat + 32] = 0x88;
        d[cat + 64] = 0x91;
        d[cat + 65] = EFI_PLATFORM;
        d[cat + 96] = 0x88;
        d[cat + 96 + 8..cat + 96 + 12].copy_from_slice(&24u32.to_le_bytes());
        d[24 * 2048..].copy_from_slice(fat);
        d
    }

    #[test]
    fn loaders_of_gpt_disks_and_isos() {
        let dir = tempfile::tempdir().unwrap();
        for (loader, arch) in [("BOOTAA64.EFI", "aarch64"), ("BOOTX64.EFI", "x86_64")] {
            let fat = fat_with(loader);
            for (kind, bytes) in [("disk", gpt_disk(&fat)), ("iso", iso(&fat))] {
                let p = dir.path().join(format!("{kind}-{arch}"));
                std::fs::write(&p, &bytes).unwrap();
                assert_eq!(loader_archs(&p), [arch], "{kind} {loader}");
                assert_eq!(std::fs::read(&p).unwrap(), bytes, "{kind} was written to");
            }
        }
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"").unwrap();
        assert!(loader_archs(&plain).is_empty());
        std::fs::write(&plain, vec![0u8; 1 << 20]).unwrap();
        assert!(loader_archs(&plain).is_empty());
    }

    /// The stand-ins' UEFI disk and ISOs (grub-mkrescue, like NixOS's) read as x86_64.
    #[test]
    fn standin_loaders_are_x86_64() {
        let Some(dir) = std::env::var_os("NIXGEN_STANDINS").map(std::path::PathBuf::from) else {
            eprintln!("SKIPPED standin_loaders_are_x86_64: NIXGEN_STANDINS is not set");
            return;
        };
        for (name, file) in [
            ("raw-efi", "nixos.img"),
            ("iso", "iso"),
            ("install-iso", "iso"),
        ] {
            let path = dir.join(name).join(file);
            let path = if path.is_dir() {
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .next()
                    .unwrap()
                    .path()
            } else {
                path
            };
            assert!(
                loader_archs(&path).contains(&"x86_64"),
                "{}",
                path.display()
            );
        }
    }
}
