//! The qcow2 header fields that make QEMU open other files: a backing file (offset 8) and an
//! external data file (incompatible feature bit 2). A qcow2 under test may name neither: the
//! image is untrusted, and QEMU would read whatever host file it names.

use std::io::Read;
use std::path::Path;

const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Incompatible feature bit: guest data lives in an external file named in a header extension.
const INCOMPAT_DATA_FILE: u64 = 1 << 2;

/// Why a qcow2 file is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Qcow2Error {
    /// Not a qcow2 file at all (too short, or no `QFI\xfb` magic).
    #[error("not a qcow2 image (no QFI header)")]
    NotQcow2,
    /// The header names a backing file.
    #[error("its qcow2 header names a backing file ({0:?}), which would be read from the host; give a self-contained image (qemu-img convert -O qcow2)")]
    BackingFile(String),
    /// The header says the data lives in an external data file.
    #[error("it keeps its data in an external data file, which would be read from the host; give a self-contained image (qemu-img convert -O qcow2)")]
    ExternalDataFile,
    /// Reading failed.
    #[error("cannot read its header: {0}")]
    Read(String),
}

/// Checks that the qcow2 file at `path` refers to no other file.
pub fn check_self_contained(path: &Path) -> Result<(), Qcow2Error> {
    let mut file = std::fs::File::open(path).map_err(|e| Qcow2Error::Read(e.to_string()))?;
    let mut header = Vec::with_capacity(104);
    (&mut file)
        .take(104)
        .read_to_end(&mut header)
        .map_err(|e| Qcow2Error::Read(e.to_string()))?;
    check_header(&header, |offset, len| {
        use std::io::{Seek, SeekFrom};
        let mut name = vec![0u8; len.min(1023)];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut name).ok()?;
        Some(String::from_utf8_lossy(&name).into_owned())
    })
}

/// [`check_self_contained`] on the first bytes of a file; `read_name(offset, len)` reads the
/// backing file name for the message.
fn check_header(
    header: &[u8],
    read_name: impl FnOnce(u64, usize) -> Option<String>,
) -> Result<(), Qcow2Error> {
    let be32 = |at: usize| {
        header
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    let be64 = |at: usize| {
        header
            .get(at..at + 8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
    };
    if header.get(..4) != Some(MAGIC) {
        return Err(Qcow2Error::NotQcow2);
    }
    let (Some(version), Some(backing_offset), Some(backing_len)) = (be32(4), be64(8), be32(16))
    else {
        return Err(Qcow2Error::NotQcow2);
    };
    if backing_offset != 0 {
        let name = read_name(backing_offset, backing_len as usize).unwrap_or_default();
        return Err(Qcow2Error::BackingFile(name));
    }
    if version >= 3 && be64(72).unwrap_or(0) & INCOMPAT_DATA_FILE != 0 {
        return Err(Qcow2Error::ExternalDataFile);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_img(args: &[&str]) -> bool {
        std::process::Command::new("qemu-img")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn header_fields() {
        let mut h = vec![0u8; 104];
        h[..4].copy_from_slice(MAGIC);
        h[7] = 3;
        assert_eq!(check_header(&h, |_, _| None), Ok(()));
        let mut backed = h.clone();
        backed[15] = 200;
        backed[19] = 11;
        assert_eq!(
            check_header(&backed, |o, l| Some(format!("{o}+{l}"))),
            Err(Qcow2Error::BackingFile("200+11".into()))
        );
        let mut data_file = h.clone();
        data_file[79] = 4;
        assert_eq!(
            check_header(&data_file, |_, _| None),
            Err(Qcow2Error::ExternalDataFile)
        );
        assert_eq!(check_header(b"", |_, _| None), Err(Qcow2Error::NotQcow2));
        assert_eq!(
            check_header(&[0; 104], |_, _| None),
            Err(Qcow2Error::NotQcow2)
        );
    }

    #[test]
    fn images_made_by_qemu_img() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).to_string_lossy().into_owned();
        let secret = p("host-secret.raw");
        std::fs::write(&secret, vec![7u8; 65536]).unwrap();
        if !qemu_img(&["create", "-f", "qcow2", &p("plain.qcow2"), "1M"]) {
            eprintln!("SKIPPED images_made_by_qemu_img: qemu-img (qemu-utils) is not installed");
            return;
        }
        assert_eq!(
            check_self_contained(d.path().join("plain.qcow2").as_ref()),
            Ok(())
        );
        assert!(qemu_img(&[
            "create",
            "-f",
            "qcow2",
            "-F",
            "raw",
            "-b",
            &secret,
            &p("backed.qcow2")
        ]));
        assert_eq!(
            check_self_contained(d.path().join("backed.qcow2").as_ref()),
            Err(Qcow2Error::BackingFile(secret.clone()))
        );
        assert!(qemu_img(&[
            "create",
            "-f",
            "qcow2",
            "-o",
            &format!("data_file={}", p("data.raw")),
            &p("external.qcow2"),
            "1M"
        ]));
        assert_eq!(
            check_self_contained(d.path().join("external.qcow2").as_ref()),
            Err(Qcow2Error::ExternalDataFile)
        );
    }
}
