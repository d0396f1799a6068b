//! Packed images unpacked into the run directory, streamed through crates (no `tar` or `gzip`
//! process): tarballs (plain, gzip or xz: a gce or Vagrant disk, a kexec tarball, a container's
//! root file system) and compressed disks (gzip here, zstd in [`crate::zstd_disk`]; written
//! sparse). The packed file itself is only read.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use formats::Packing;
use tar::EntryType;

use crate::blocking::{self, Cancel};
use crate::HarnessError;

/// How a tarball is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Not at all (`.tar`).
    None,
    /// gzip (`.tar.gz`).
    Gzip,
    /// xz (`.tar.xz`).
    Xz,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::None => "tarball",
            Compression::Gzip => "gzip-compressed tarball",
            Compression::Xz => "xz-compressed tarball",
        }
    }
}

/// Unpacks `tarball` into `dest` (created) and returns how many entries were skipped: device
/// nodes and FIFOs (nothing booted here needs them: nspawn gives a container its own /dev).
/// With `owners` the entries keep their owners and full modes (a container's root file system
/// needs them, and root to unpack it), else they belong to the caller (`tar --no-same-owner`).
/// Absolute paths are taken as relative to `dest`; an entry that would land outside it (`..`,
/// through a symlink) is refused, naming `outside` (what `dest` is to the user). Directories are
/// made first as needed and get their own modes last, so a read-only one (every directory of
/// a Nix store) still receives its files. Stops, with an error, at the next read once `cancel`
/// is set.
pub(crate) fn untar(
    tarball: &Path,
    dest: &Path,
    compression: Compression,
    owners: bool,
    outside: &str,
    cancel: &Cancel,
) -> Result<usize, HarnessError> {
    let bad = |detail: String| HarnessError::BadImage {
        path: tarball.to_path_buf(),
        detail,
    };
    std::fs::create_dir_all(dest)
        .map_err(|e| HarnessError::io(format!("create {}", dest.display()), e))?;
    let file = BufReader::new(
        cancel.reader(
            File::open(tarball)
                .map_err(|e| HarnessError::io(format!("open {}", tarball.display()), e))?,
        ),
    );
    // Checked on both sides of the decompressor: a few KiB of xz can be many MiB of output.
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(cancel.reader(flate2::bufread::MultiGzDecoder::new(file))),
        Compression::Xz => Box::new(cancel.reader(liblzma::read::XzDecoder::new(file))),
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(owners);
    archive.set_preserve_ownerships(owners);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a {}: {e}", compression.name())))?;
    let mut skipped = 0;
    let mut directories = Vec::new();
    let unpack = |entry: &mut tar::Entry<'_, Box<dyn Read>>| {
        let path = entry.path().map(|p| p.into_owned()).unwrap_or_default();
        let inside = entry
            .unpack_in(dest)
            .map_err(|e| bad(format!("cannot unpack {}: {e}", path.display())))?;
        match inside {
            true => Ok(()),
            false => Err(bad(format!(
                "its entry {} points outside {outside}",
                path.display()
            ))),
        }
    };
    for entry in entries {
        let mut entry =
            entry.map_err(|e| bad(format!("unreadable {}: {e}", compression.name())))?;
        match entry.header().entry_type() {
            EntryType::Block | EntryType::Char | EntryType::Fifo => skipped += 1,
            EntryType::Directory => directories.push(entry),
            _ => unpack(&mut entry)?,
        }
    }
    // Deepest first, as the tar crate's own `Archive::unpack` does: a parent's mode (read-only)
    // is set after its children's.
    directories.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut dir in directories {
        unpack(&mut dir)?;
    }
    Ok(skipped)
}

/// [`untar`] off the async runtime, with the caller's ownership (`tar --no-same-owner`);
/// dropping the future stops it ([`blocking::run`]).
pub(crate) async fn untar_owned(
    tarball: &Path,
    dest: &Path,
    compression: Compression,
) -> Result<(), HarnessError> {
    let (tarball, dest) = (tarball.to_path_buf(), dest.to_path_buf());
    blocking::run("unpack the tarball", move |cancel| {
        untar(
            &tarball,
            &dest,
            compression,
            false,
            "the unpacked tree",
            cancel,
        )
        .map(|_| ())
    })
    .await?
}

/// Decompresses `file` into `dest`, sparse, through the decoder `open` makes of it; `what`
/// names the compression in the error of a file that is not what it says. Dropping the future
/// stops it ([`blocking::run`]).
pub(crate) async fn decompress(
    file: &Path,
    dest: &Path,
    what: &'static str,
    open: fn(File) -> std::io::Result<Box<dyn Read>>,
) -> Result<PathBuf, HarnessError> {
    let (src, out) = (file.to_path_buf(), dest.to_path_buf());
    blocking::run(
        "decompress the disk",
        move |cancel| -> std::io::Result<()> {
            let mut reader = cancel.reader(open(File::open(&src)?)?);
            let mut writer = File::create(&out)?;
            copy_sparse(&mut reader, &mut writer)
        },
    )
    .await?
    .map_err(|e| HarnessError::BadImage {
        path: file.to_path_buf(),
        detail: format!("{what}: {e}"),
    })?;
    Ok(dest.to_path_buf())
}

/// Copies `reader` to `writer`, leaving runs of zeros as holes (a disk image is mostly empty).
fn copy_sparse(reader: &mut impl Read, writer: &mut File) -> std::io::Result<()> {
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

/// Unpacks a packed disk of QEMU block driver `driver` into `run_dir` and returns the disk.
pub(crate) async fn unpack_disk(
    packing: Packing,
    driver: &str,
    file: &Path,
    run_dir: &Path,
) -> Result<PathBuf, HarnessError> {
    match packing {
        Packing::Gzip => {
            decompress(file, &run_dir.join("disk.img"), "gzip", |f| {
                Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
                    f,
                ))))
            })
            .await
        }
        Packing::Zstd => crate::zstd_disk::unzstd(file, &run_dir.join("disk.img")).await,
        Packing::Vma => {
            let (archive, dest) = (file.to_path_buf(), run_dir.join("disk.raw"));
            let out = dest.clone();
            blocking::run("unpack the VMA archive", move |cancel| {
                crate::vma::extract_first_disk_until(&archive, &out, cancel)
            })
            .await?
            .map_err(|e| HarnessError::BadImage {
                path: file.to_path_buf(),
                detail: e.to_string(),
            })?;
            Ok(dest)
        }
        Packing::TarGz | Packing::Tar => {
            let dir = run_dir.join("disk");
            let compression = match packing {
                Packing::TarGz => Compression::Gzip,
                _ => Compression::None,
            };
            untar_owned(file, &dir, compression).await?;
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
    use std::io::Write;

    /// A tar.gz holding `nixos.raw` and, after it by path, a read-only directory with a file (as
    /// every directory of a Nix store is).
    fn tar_gz(dir: &Path) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, kind: EntryType, mode: u32, body: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(body.len() as u64);
            b.append_data(&mut h, path, body).unwrap();
        };
        add("store/a", EntryType::Directory, 0o555, b"");
        add("store/a/kernel", EntryType::Regular, 0o444, b"k");
        add("nixos.raw", EntryType::Regular, 0o644, b"disk bytes");
        let tar = b.into_inner().unwrap();
        let path = dir.join("nixos.raw.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        path
    }

    #[tokio::test]
    async fn packed_disks_are_unpacked_into_the_run_dir() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("nixos.raw");
        std::fs::write(&disk, b"disk bytes").unwrap();
        let run = d.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let gz = d.path().join("nixos.raw.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"disk bytes").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let p = unpack_disk(Packing::Gzip, "raw", &gz, &run).await.unwrap();
        assert!(p.starts_with(&run));
        assert_eq!(std::fs::read(p).unwrap(), b"disk bytes");
        let tgz = tar_gz(d.path());
        let p = unpack_disk(Packing::TarGz, "raw", &tgz, &run)
            .await
            .unwrap();
        assert_eq!(p, run.join("disk/nixos.raw"));
        assert_eq!(std::fs::read(p).unwrap(), b"disk bytes");
        let store = run.join("disk/store/a");
        assert_eq!(std::fs::read(store.join("kernel")).unwrap(), b"k");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&store).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o555, "the directory's own mode, set last");
        let bad = unpack_disk(Packing::Gzip, "raw", &disk, &run)
            .await
            .unwrap_err();
        assert!(matches!(bad, HarnessError::BadImage { .. }), "{bad}");
        assert!(bad.to_string().contains("gzip"), "{bad}");
        let bad = unpack_disk(Packing::TarGz, "raw", &disk, &run)
            .await
            .unwrap_err();
        assert!(matches!(bad, HarnessError::BadImage { .. }), "{bad}");
    }

    #[test]
    fn a_stopped_untar_writes_no_entry() {
        let d = tempfile::tempdir().unwrap();
        let tgz = tar_gz(d.path());
        let (done, stopped) = (Cancel::never(), Cancel::never());
        stopped.stop();
        let dest = d.path().join("out");
        untar(&tgz, &dest, Compression::Gzip, false, "out", &stopped).unwrap_err();
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        untar(&tgz, &dest, Compression::Gzip, false, "out", &done).unwrap();
        assert!(dest.join("nixos.raw").is_file());
    }
}
