//! zstd-compressed disks (an SD card image's `*.img.zst`, nixpkgs' `sdImage.compressImage`):
//! recognised by their frame magic and decompressed, sparse, into the run directory.

use std::path::{Path, PathBuf};

use crate::{arch, HarnessError};

/// Whether `file` starts with zstd's frame magic.
pub(crate) fn is_zstd(file: &Path) -> Result<bool, HarnessError> {
    let head =
        arch::head(file, 4).map_err(|e| HarnessError::io(format!("read {}", file.display()), e))?;
    Ok(head == [0x28, 0xB5, 0x2F, 0xFD])
}

/// Copies `reader` to `writer`, leaving runs of zeros as holes (a disk image is mostly empty).
fn copy_sparse(reader: &mut impl std::io::Read, writer: &mut std::fs::File) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let mut got = 0;
        while got < buf.len() {
            match reader.read(&mut buf[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if got == 0 {
            break;
        }
        if buf[..got].iter().all(|b| *b == 0) {
            writer.seek(SeekFrom::Current(got as i64))?;
        } else {
            writer.write_all(&buf[..got])?;
        }
        len += got as u64;
        if got < buf.len() {
            break;
        }
    }
    writer.set_len(len)
}

/// Decompresses a zstd-compressed disk (an SD card image's `*.img.zst`) into `dest`.
pub(crate) async fn unzstd(file: &Path, dest: &Path) -> Result<PathBuf, HarnessError> {
    let (src, out) = (file.to_path_buf(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut reader = zstd::stream::read::Decoder::new(std::fs::File::open(&src)?)?;
        let mut writer = std::fs::File::create(&out)?;
        copy_sparse(&mut reader, &mut writer)
    })
    .await
    .map_err(|e| HarnessError::io("decompress the disk", std::io::Error::other(e)))?
    .map_err(|e| HarnessError::BadImage {
        path: file.to_path_buf(),
        detail: format!("zstd: {e}"),
    })?;
    Ok(dest.to_path_buf())
}
