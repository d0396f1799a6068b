//! Proxmox VMA archives (`vzdump-qemu-*.vma.zst`, the `proxmox` format): the first disk is
//! written out as a sparse raw file, streamed, the archive only read.
//!
//! The layout, as Proxmox documents it (all numbers big-endian but the blob lengths):
//! a header of `header_size` bytes: magic `VMA\0`, version 1, UUID, ctime, MD5, the blob
//! buffer's offset and size, the header size, then config names and data (blob pointers, 256
//! each, at 2044 and 3068) and 256 device entries of 32 bytes at 4096 (name pointer, size);
//! a blob is a little-endian 16-bit length and its bytes. Then extents: a 512-byte header
//! (magic `VMAE`, the number of 4 KiB blocks that follow, UUID, MD5, 59 block infos of 64 bits:
//! cluster number in the low 32, device id in the next 8, a 16-bit mask of the cluster's blocks
//! present in the top 16), followed by the present blocks in order. Blocks not present are
//! zero. The MD5 sums are not checked; sizes and bounds are.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::blocking::Cancel;

const HEADER_MIN: usize = 4096 + 256 * 32;
const HEADER_MAX: usize = 1024 * 4096;
const EXTENT_HEADER: usize = 512;
const BLOCK: usize = 4096;
const CLUSTER: u64 = 65536;
/// The largest disk this reader unpacks (16 TiB; its cluster bitmap is then 32 MiB).
const MAX_DISK: u64 = 16 << 40;
const BLOCKS_PER_EXTENT: usize = 59;
/// zstd's frame magic: a `.vma.zst` archive.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// What is wrong with an archive.
#[derive(Debug, thiserror::Error)]
pub enum VmaError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes are not a VMA archive as described above.
    #[error("not a VMA archive: {0}")]
    Format(String),
    /// It ends in the middle of an extent.
    #[error("the archive is truncated ({0}): copy or download it again")]
    Truncated(String),
}

/// The disk written out of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedDisk {
    /// The device's name in the archive (`drive-virtio0`, `drive-scsi0`, ...).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The VM configuration stored with it (`qemu-server.conf`), if any.
    pub config: Option<String>,
}

/// Writes the first disk of the VMA archive at `archive` (plain or zstd-compressed) to `out`.
pub fn extract_first_disk(archive: &Path, out: &Path) -> Result<ExtractedDisk, VmaError> {
    extract_first_disk_until(archive, out, &Cancel::never())
}

/// [`extract_first_disk`], stopping with an error at the next read once `cancel` is set.
pub(crate) fn extract_first_disk_until(
    archive: &Path,
    out: &Path,
    cancel: &Cancel,
) -> Result<ExtractedDisk, VmaError> {
    let mut file = File::open(archive)?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| VmaError::Format("shorter than its magic".into()))?;
    let file = cancel.reader(File::open(archive)?);
    if magic == ZSTD_MAGIC {
        extract(cancel.reader(zstd::stream::read::Decoder::new(file)?), out)
    } else {
        extract(io::BufReader::new(file), out)
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end before the first byte.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<bool, VmaError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(VmaError::Truncated(format!("{got} of {} bytes", buf.len()))),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// The blob at `ptr` of the blob buffer (a 16-bit little-endian length, then the bytes).
fn blob(header: &[u8], buffer: usize, ptr: u32) -> Option<&[u8]> {
    let at = buffer.checked_add(ptr as usize)?;
    let len = u16::from_le_bytes(header.get(at..at + 2)?.try_into().ok()?) as usize;
    header.get(at + 2..at + 2 + len)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\0')
        .to_string()
}

fn extract(mut r: impl Read, out: &Path) -> Result<ExtractedDisk, VmaError> {
    let mut fixed = vec![0u8; 60];
    if !matches!(read_full(&mut r, &mut fixed), Ok(true)) || &fixed[..4] != b"VMA\0" {
        return Err(VmaError::Format("no VMA magic".into()));
    }
    if be32(&fixed, 4) != 1 {
        return Err(VmaError::Format(format!("version {}", be32(&fixed, 4))));
    }
    let size = be32(&fixed, 56) as usize;
    if !(HEADER_MIN..=HEADER_MAX).contains(&size) {
        return Err(VmaError::Format(format!("header size {size}")));
    }
    let mut header = fixed;
    header.resize(size, 0);
    if !read_full(&mut r, &mut header[60..])? {
        return Err(VmaError::Truncated("in the header".into()));
    }
    let buffer = be32(&header, 48) as usize;
    // The first disk: the lowest device id with a name (`vmstate` is RAM, not a disk).
    let (dev, name, disk_size) = (1..256usize)
        .filter_map(|id| {
            let at = 4096 + id * 32;
            let ptr = be32(&header, at);
            let name = text(blob(&header, buffer, ptr)?);
            (ptr != 0 && name != "vmstate").then(|| (id as u8, name, be64(&header, at + 8)))
        })
        .next()
        .ok_or_else(|| VmaError::Format("no disk in the device table".into()))?;
    let config = (0..256usize).find_map(|i| {
        let name = text(blob(&header, buffer, be32(&header, 2044 + i * 4))?);
        (name == "qemu-server.conf")
            .then(|| blob(&header, buffer, be32(&header, 3068 + i * 4)).map(text))
            .flatten()
    });
    // Proxmox's reader insists on every cluster of every disk ("detected missing cluster"): a
    // zero cluster is listed with an empty mask. So an archive cut between two extents is
    // noticed too.
    if disk_size > MAX_DISK {
        return Err(VmaError::Format(format!(
            "{name} claims {disk_size} bytes, more than the {MAX_DISK} this reader takes"
        )));
    }
    let clusters = disk_size.div_ceil(CLUSTER);
    let mut seen = vec![0u64; usize::try_from(clusters.div_ceil(64)).expect("bounded")];
    let disk = File::create(out)?;
    disk.set_len(disk_size)?;
    let mut extent = [0u8; EXTENT_HEADER];
    let mut block = vec![0u8; BLOCK];
    let mut n = 0u64;
    let within = |n: u64, what: &'static str| {
        move |e: VmaError| match e {
            VmaError::Truncated(got) => {
                VmaError::Truncated(format!("extent {n} ends in its {what}: {got}"))
            }
            e => e,
        }
    };
    while read_full(&mut r, &mut extent).map_err(within(n + 1, "header"))? {
        n += 1;
        if &extent[..4] != b"VMAE" {
            return Err(VmaError::Format(format!("extent {n} has no VMAE magic")));
        }
        let declared = u16::from_be_bytes([extent[6], extent[7]]) as usize;
        let mut blocks = 0usize;
        for i in 0..BLOCKS_PER_EXTENT {
            let info = be64(&extent, 40 + 8 * i);
            let (cluster, id, mask) = (info & 0xffff_ffff, (info >> 32) as u8, (info >> 48) as u16);
            if id == 0 {
                continue;
            }
            if id == dev {
                if cluster >= clusters {
                    return Err(VmaError::Format(format!(
                        "extent {n} names cluster {cluster}, past the end of {name} ({disk_size} bytes)"
                    )));
                }
                seen[(cluster / 64) as usize] |= 1 << (cluster % 64);
            }
            for b in 0..16u64 {
                if mask & (1 << b) == 0 {
                    continue;
                }
                blocks += 1;
                if !read_full(&mut r, &mut block).map_err(within(n, "data"))? {
                    return Err(VmaError::Truncated(format!("extent {n} ends early")));
                }
                if id != dev {
                    continue;
                }
                let offset = cluster * CLUSTER + b * BLOCK as u64;
                if offset + BLOCK as u64 > disk_size {
                    return Err(VmaError::Format(format!(
                        "extent {n} writes past the end of {name} ({disk_size} bytes)"
                    )));
                }
                disk.write_all_at(&block, offset)?;
            }
        }
        if blocks != declared {
            return Err(VmaError::Format(format!(
                "extent {n} declares {declared} blocks and holds {blocks}"
            )));
        }
    }
    if let Some(missing) = (0..clusters).find(|c| seen[(c / 64) as usize] & (1 << (c % 64)) == 0) {
        return Err(VmaError::Truncated(format!(
            "it ends after extent {n}; cluster {missing} of {name} is in none"
        )));
    }
    Ok(ExtractedDisk {
        name,
        size: disk_size,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VMA archive of one device `drive-virtio0` holding `disk` (the layout above).
    pub(crate) fn archive(disk: &[u8]) -> Vec<u8> {
        let header_size = 12288usize;
        let mut h = vec![0u8; header_size];
        h[..4].copy_from_slice(b"VMA\0");
        h[4..8].copy_from_slice(&1u32.to_be_bytes());
        let buffer = 8192usize;
        h[48..52].copy_from_slice(&(buffer as u32).to_be_bytes());
        h[56..60].copy_from_slice(&(header_size as u32).to_be_bytes());
        let mut ptr = 1usize;
        let mut put = |h: &mut Vec<u8>, bytes: &[u8]| {
            let at = buffer + ptr;
            h[at..at + 2].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
            h[at + 2..at + 2 + bytes.len()].copy_from_slice(bytes);
            let p = ptr as u32;
            ptr += 2 + bytes.len();
            p
        };
        let conf_name = put(&mut h, b"qemu-server.conf\0");
        let conf = put(&mut h, b"bios: seabios\n\0");
        let dev = put(&mut h, b"drive-virtio0\0");
        h[2044..2048].copy_from_slice(&conf_name.to_be_bytes());
        h[3068..3072].copy_from_slice(&conf.to_be_bytes());
        h[4096 + 32..4096 + 36].copy_from_slice(&dev.to_be_bytes());
        h[4096 + 40..4096 + 48].copy_from_slice(&(disk.len() as u64).to_be_bytes());
        let mut out = h;
        for (c, cluster) in disk.chunks(CLUSTER as usize).enumerate() {
            let mut e = vec![0u8; EXTENT_HEADER];
            e[..4].copy_from_slice(b"VMAE");
            let mut mask = 0u16;
            let mut data = Vec::new();
            for (b, blk) in cluster.chunks(BLOCK).enumerate() {
                if blk.iter().any(|x| *x != 0) {
                    mask |= 1 << b;
                    data.extend_from_slice(blk);
                }
            }
            let info = (u64::from(mask) << 48) | (1u64 << 32) | c as u64;
            e[40..48].copy_from_slice(&info.to_be_bytes());
            e[6..8].copy_from_slice(&(mask.count_ones() as u16).to_be_bytes());
            out.extend(e);
            out.extend(data);
        }
        out
    }

    fn disk() -> Vec<u8> {
        let mut d = vec![0u8; 3 * CLUSTER as usize];
        d[0] = 0xEB;
        d[510] = 0x55;
        d[511] = 0xAA;
        d[CLUSTER as usize * 2 + 4096 * 3 + 7] = 9;
        d
    }

    #[test]
    fn the_first_disk_comes_out_as_it_went_in() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.vma");
        std::fs::write(&a, archive(&disk())).unwrap();
        let out = dir.path().join("disk.raw");
        let got = extract_first_disk(&a, &out).unwrap();
        assert_eq!(got.name, "drive-virtio0");
        assert_eq!(got.size, disk().len() as u64);
        assert_eq!(got.config.as_deref(), Some("bios: seabios\n"));
        assert_eq!(std::fs::read(&out).unwrap(), disk());
    }

    #[test]
    fn zstd_archives_are_read_too() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.vma.zst");
        std::fs::write(&a, zstd::encode_all(&archive(&disk())[..], 3).unwrap()).unwrap();
        let out = dir.path().join("disk.raw");
        extract_first_disk(&a, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), disk());
    }

    #[test]
    fn truncated_or_lying_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.vma");
        let out = dir.path().join("disk.raw");
        let full = archive(&disk());
        std::fs::write(&a, &full[..full.len() - 100]).unwrap();
        let err = extract_first_disk(&a, &out).unwrap_err();
        assert!(matches!(err, VmaError::Truncated(_)), "{err}");
        assert!(
            err.to_string()
                .contains("ends in its data: 3996 of 4096 bytes"),
            "{err}"
        );
        assert!(
            err.to_string().ends_with("copy or download it again"),
            "{err}"
        );
        std::fs::write(&a, &full[..12288 + 100]).unwrap();
        let err = extract_first_disk(&a, &out).unwrap_err().to_string();
        assert!(
            err.contains("extent 1 ends in its header: 100 of 512 bytes"),
            "{err}"
        );
        // Cut between two extents: the third cluster is in none.
        let third = full
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"VMAE")
            .nth(2)
            .map(|(i, _)| i)
            .unwrap();
        std::fs::write(&a, &full[..third]).unwrap();
        let err = extract_first_disk(&a, &out).unwrap_err();
        assert!(matches!(err, VmaError::Truncated(_)), "{err}");
        assert!(
            err.to_string()
                .contains("it ends after extent 2; cluster 2 of drive-virtio0 is in none"),
            "{err}"
        );
        let mut lying = full.clone();
        lying[12288 + 7] ^= 1; // the first extent's block count
        std::fs::write(&a, &lying).unwrap();
        assert!(extract_first_disk(&a, &out)
            .unwrap_err()
            .to_string()
            .contains("declares"));
        let mut beyond = full;
        beyond[12288 + 40 + 4..12288 + 48].copy_from_slice(&[0, 0, 0, 99]); // cluster 99
        std::fs::write(&a, &beyond).unwrap();
        assert!(extract_first_disk(&a, &out)
            .unwrap_err()
            .to_string()
            .contains("past the end"));
        std::fs::write(&a, b"not an archive at all").unwrap();
        assert!(matches!(
            extract_first_disk(&a, &out).unwrap_err(),
            VmaError::Format(_)
        ));
    }
}
