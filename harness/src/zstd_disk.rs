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

/// Decompresses a zstd-compressed disk (an SD card image's `*.img.zst`) into `dest`.
pub(crate) async fn unzstd(file: &Path, dest: &Path) -> Result<PathBuf, HarnessError> {
    crate::unpack::decompress(file, dest, "zstd", |f| {
        Ok(Box::new(zstd::stream::read::Decoder::new(f)?))
    })
    .await
}
