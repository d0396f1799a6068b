//! Kexec tarballs and bundles: the bundle's archive, the `kexec --load` line of the script,
//! and the kernel, initrd and command line it names, resolved inside the unpacked tarball.

use std::path::{Path, PathBuf};

use crate::blocking::{self, Cancel};
use crate::confined::{self, ConfinedError};
use crate::image::Bootable;
use crate::unpack::{first_file, untar_owned, Compression};
use crate::{arch, HarnessError};

const BUNDLE_MARKER: &[u8] = b"\n__ARCHIVE_BELOW__";

pub(crate) fn is_bundle(file: &Path) -> Result<bool, HarnessError> {
    use std::io::Read;
    let mut head = [0u8; 2];
    let mut f = std::fs::File::open(file)
        .map_err(|e| HarnessError::io(format!("open {}", file.display()), e))?;
    let n = f
        .read(&mut head)
        .map_err(|e| HarnessError::io("read image", e))?;
    Ok(n == 2 && &head == b"#!")
}

/// How far into a bundle its script (and so the marker) may reach: the script is a few hundred
/// bytes; the archive after it is the size of a NixOS closure.
const SCRIPT_LIMIT: u64 = 1 << 20;

/// Writes the archive that follows the `__ARCHIVE_BELOW__` line of a kexec bundle to `dest`,
/// streamed: only the script (at most `SCRIPT_LIMIT` bytes) is held in memory.
pub fn extract_bundle(bundle: &Path, dest: &Path) -> Result<PathBuf, HarnessError> {
    extract_bundle_until(bundle, dest, &Cancel::never())
}

/// [`extract_bundle`], stopping with an error at the next read once `cancel` is set.
fn extract_bundle_until(
    bundle: &Path,
    dest: &Path,
    cancel: &Cancel,
) -> Result<PathBuf, HarnessError> {
    use std::io::{Read, Seek, SeekFrom};
    let bad = |detail: &str| HarnessError::BadImage {
        path: bundle.to_path_buf(),
        detail: detail.to_string(),
    };
    let read_err = |e| HarnessError::io(format!("read {}", bundle.display()), e);
    let mut file = std::fs::File::open(bundle).map_err(read_err)?;
    let mut head = Vec::new();
    (&mut file)
        .take(SCRIPT_LIMIT)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let at = memchr::memmem::find(&head, BUNDLE_MARKER)
        .ok_or_else(|| bad("no __ARCHIVE_BELOW__ marker in its first MiB"))?;
    let rest = &head[at + BUNDLE_MARKER.len()..];
    let nl = memchr::memchr(b'\n', rest).ok_or_else(|| bad("nothing after the marker"))?;
    let archive = (at + BUNDLE_MARKER.len() + nl + 1) as u64;
    file.seek(SeekFrom::Start(archive)).map_err(read_err)?;
    let mut out = std::fs::File::create(dest)
        .map_err(|e| HarnessError::io("write the bundle's archive", e))?;
    std::io::copy(&mut cancel.reader(file), &mut out)
        .map_err(|e| HarnessError::io("write the bundle's archive", e))?;
    Ok(dest.to_path_buf())
}

/// Prepares a kexec tarball or bundle: the bundle's archive is extracted, the tarball unpacked
/// into `run_dir/kexec`, and the kernel, initrd and command line its script names are resolved
/// inside it; a kernel for another architecture is refused.
pub(crate) async fn prepare(file: &Path, run_dir: &Path) -> Result<Bootable, HarnessError> {
    let tarball = if is_bundle(file)? {
        let (bundle, dest) = (file.to_path_buf(), run_dir.join("kexec.tar.xz"));
        blocking::run("extract the bundle's archive", move |cancel| {
            extract_bundle_until(&bundle, &dest, cancel)
        })
        .await??
    } else {
        file.to_path_buf()
    };
    let root = run_dir.join("kexec");
    untar_owned(&tarball, &root, Compression::Xz).await?;
    let boot = kexec_boot(&root)?;
    if let Bootable::Kernel { kernel, .. } = &boot {
        let head = arch::head(kernel, 4096)
            .map_err(|e| HarnessError::io(format!("read {}", kernel.display()), e))?;
        match arch::kernel_arch(&head) {
            Some(a) if a != arch::HOST_ARCH => {
                return Err(crate::image::foreign_arch(
                    file,
                    &format!("its kernel is for {a}"),
                ))
            }
            _ => {}
        }
    }
    Ok(boot)
}

/// What a `kexec` command line in a script names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KexecCall {
    /// The kernel path as written.
    pub kernel: Option<String>,
    /// The `--initrd` path as written.
    pub initrd: Option<String>,
    /// The `--append`/`--command-line` value.
    pub cmdline: Option<String>,
}

/// Parses the `kexec --load` line of a kexec script (NixOS's `kexec_nixos` and the like).
pub fn parse_kexec_script(script: &str) -> KexecCall {
    let mut call = KexecCall::default();
    let script = script.replace("\\\n", " ");
    for line in script.lines() {
        let line = line
            .replace("${SCRIPT_DIR}/", "")
            .replace("$SCRIPT_DIR/", "");
        let Ok(words) = shell_words::split(&line) else {
            continue;
        };
        let Some(start) = words
            .iter()
            .position(|w| w == "kexec" || w.ends_with("/kexec"))
        else {
            continue;
        };
        let args = &words[start + 1..];
        if !args
            .iter()
            .any(|a| a == "-l" || a == "--load" || a.starts_with("--load="))
        {
            continue;
        }
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let next = args.get(i + 1).cloned();
            let value = |name: &str| -> Option<(String, bool)> {
                a.strip_prefix(&format!("{name}="))
                    .map(|v| (v.to_string(), false))
                    .or_else(|| {
                        (a == name)
                            .then(|| next.clone().map(|n| (n, true)))
                            .flatten()
                    })
            };
            if let Some((v, took)) = value("--initrd").or_else(|| value("--ramdisk")) {
                call.initrd = Some(v);
                i += usize::from(took);
            } else if let Some((v, took)) = value("--append").or_else(|| value("--command-line")) {
                call.cmdline = Some(v);
                i += usize::from(took);
            } else if let Some((v, took)) = value("--load").or_else(|| value("-l")) {
                call.kernel = Some(v);
                i += usize::from(took);
            } else if !a.starts_with('-') && call.kernel.is_none() {
                call.kernel = Some(a.clone());
            }
            i += 1;
        }
        break;
    }
    call
}

/// Finds kernel, initrd and command line in an unpacked kexec tarball. Every path the
/// tarball names is resolved inside it ([`confined::resolve_in`]): a symlink pointing out of
/// the tarball, or a chain of too many links, never hands a host file to QEMU.
pub fn kexec_boot(root: &Path) -> Result<Bootable, HarnessError> {
    let root = &std::fs::canonicalize(root)
        .map_err(|e| HarnessError::io(format!("open {}", root.display()), e))?;
    let bad = |detail: String| HarnessError::BadImage {
        path: root.to_path_buf(),
        detail,
    };
    let call = confined::resolve_in(root, Path::new("kexec_nixos"))
        .ok()
        .and_then(|script| std::fs::read_to_string(script).ok())
        .map(|s| parse_kexec_script(&s))
        .unwrap_or_default();
    // What the script names, resolved inside the tarball. A path that is not there (or is a
    // link out of it) is searched for by name instead, and named in the error if none is
    // found; a chain of too many links or a non-file is refused at once.
    let named = |p: &Option<String>, what: &str| -> Result<Result<PathBuf, String>, HarnessError> {
        match p.as_ref().map(|p| confined::resolve_in(root, Path::new(p))) {
            None => Ok(Err(format!("no {what} in the kexec tarball"))),
            Some(Ok(file)) => Ok(Ok(file)),
            Some(Err(e @ ConfinedError::Missing(_))) => {
                Ok(Err(format!("the kexec script's {what}: {e}")))
            }
            Some(Err(e)) => Err(bad(format!("the kexec script's {what}: {e}"))),
        }
    };
    let is_kernel = |n: &str| n == "bzImage" || n == "kernel" || n.starts_with("vmlinuz");
    let kernel = match named(&call.kernel, "kernel")? {
        Ok(k) => k,
        Err(why) => first_file(root, &is_kernel).ok_or_else(|| bad(why))?,
    };
    let beside = || {
        let rel = kernel.strip_prefix(root).ok()?;
        ["initrd", "initrd.gz", "initrd.zst"]
            .iter()
            .find_map(|n| confined::resolve_in(root, &rel.with_file_name(n)).ok())
    };
    let initrd = match named(&call.initrd, "initrd")? {
        Ok(i) => i,
        Err(why) => beside()
            .or_else(|| first_file(root, &|n| n.starts_with("initrd")))
            .ok_or_else(|| bad(why))?,
    };
    Ok(Bootable::Kernel {
        kernel,
        initrd,
        cmdline: call.cmdline.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nixos_generators_style_script() {
        let s = "#!/bin/sh\nset -e\ncat /nix/store/abc-image/initrd extra.gz > final.gz\n\
                 kexec -l /nix/store/abc-image/kernel --initrd=final.gz --append=\"init=/nix/store/def/init console=ttyS0,115200 panic=30\"\nkexec -e\n";
        let c = parse_kexec_script(s);
        assert_eq!(c.kernel.as_deref(), Some("/nix/store/abc-image/kernel"));
        assert_eq!(c.initrd.as_deref(), Some("final.gz"));
        assert_eq!(
            c.cmdline.as_deref(),
            Some("init=/nix/store/def/init console=ttyS0,115200 panic=30")
        );
    }

    #[test]
    fn parses_netboot_style_script() {
        let s = "kexec --load ${SCRIPT_DIR}/bzImage \\\n  --initrd=${SCRIPT_DIR}/initrd.gz --command-line \"init=/x/init loglevel=4\"\n";
        let c = parse_kexec_script(s);
        assert_eq!(c.kernel.as_deref(), Some("bzImage"));
        assert_eq!(c.initrd.as_deref(), Some("initrd.gz"));
        assert_eq!(c.cmdline.as_deref(), Some("init=/x/init loglevel=4"));
    }

    /// A tarball tree as the kexec builders make it: the kernel file `kernel` and `initrd` in
    /// `/nix/store/<image>`, `script` at `/nix/store/<script_name>`, and `/kexec_nixos` a link
    /// to it. Returns the tree and the image's directory.
    fn store_tree(
        image: &str,
        kernel: &str,
        script_name: &str,
        script: &str,
    ) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let img = root.join("nix/store").join(image);
        std::fs::create_dir_all(&img).unwrap();
        std::fs::write(img.join(kernel), b"k").unwrap();
        std::fs::write(img.join("initrd"), b"i").unwrap();
        std::fs::write(root.join("nix/store").join(script_name), script).unwrap();
        std::os::unix::fs::symlink(
            Path::new("/nix/store").join(script_name),
            root.join("kexec_nixos"),
        )
        .unwrap();
        (d, img)
    }

    /// The kernel, initrd and command line `kexec_boot` finds in `root`.
    fn booted(root: &Path) -> (PathBuf, PathBuf, String) {
        match kexec_boot(root).unwrap() {
            Bootable::Kernel {
                kernel,
                initrd,
                cmdline,
            } => (kernel, initrd, cmdline),
            b => panic!("unexpected {b:?}"),
        }
    }

    #[test]
    fn kexec_tree_with_store_symlinks() {
        let (d, img) = store_tree(
            "abc-image",
            "kernel",
            "script",
            "kexec -l /nix/store/abc-image/kernel --initrd=final.gz --append=\"a=b\"\n",
        );
        assert_eq!(
            booted(d.path()),
            (img.join("kernel"), img.join("initrd"), "a=b".into())
        );
    }

    /// The shape of formats/nix/kexec-builders.nix's tarball (and of the stand-in, which copies
    /// it): `--load` with a continuation line, `--initrd=initrd` naming a file of the script's
    /// temporary directory, a single-quoted `--command-line`; the initrd to boot is the one
    /// beside `bzImage`.
    #[test]
    fn kexec_tree_of_the_real_builder() {
        let script = "#!/bin/sh\nset -eu\nexport PATH=/nix/store/k-kexec-tools/bin:$PATH\n\
                      work=$(mktemp -d)\ncd \"$work\"\nmkdir extra\n\
                      (cd extra && find . -type f | cpio -o -H newc | gzip -9) > extra.gz\n\
                      cat /nix/store/abc-kexec-image/initrd extra.gz > initrd\n\
                      kexec --load /nix/store/abc-kexec-image/bzImage --initrd=initrd \\\n  \
                      --command-line='init=/nix/store/x/init console=ttyS0,115200 panic=30'\n\
                      sync\necho \"kexec_nixos: executing the new kernel\" >&2\nkexec -e\n";
        let (d, img) = store_tree("abc-kexec-image", "bzImage", "def-kexec-nixos", script);
        std::fs::write(img.join("cmdline"), b"init=/nix/store/x/init\n").unwrap();
        let call = parse_kexec_script(script);
        assert_eq!(call.initrd.as_deref(), Some("initrd"));
        assert_eq!(
            booted(d.path()),
            (
                img.join("bzImage"),
                img.join("initrd"),
                "init=/nix/store/x/init console=ttyS0,115200 panic=30".into()
            )
        );
    }

    /// A tarball tree whose kexec script names `kernel` and `initrd` links made by `link`.
    fn hostile_tree(link: impl Fn(&Path, &Path)) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host-secret");
        std::fs::write(&host, b"secret").unwrap();
        let root = d.path().join("kexec");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(
            root.join("kexec_nixos"),
            "kexec -l /boot/kernel --initrd=/boot/initrd --append=\"a=b\"\n",
        )
        .unwrap();
        std::fs::create_dir(root.join("boot")).unwrap();
        link(&host, &root.join("boot"));
        (d, host)
    }

    fn refused(root: &Path, host: &Path, what: &str) {
        match kexec_boot(root) {
            Err(HarnessError::BadImage { detail, .. }) => {
                assert!(detail.contains(what), "{detail}");
                assert!(!detail.contains(&*host.to_string_lossy()), "{detail}");
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn kexec_links_out_of_the_tarball_are_refused() {
        // Kernel and initrd both symlinks to a host file, absolute and relative.
        let (d, host) = hostile_tree(|host, boot| {
            std::os::unix::fs::symlink(host, boot.join("kernel")).unwrap();
            std::os::unix::fs::symlink("../../host-secret", boot.join("initrd")).unwrap();
        });
        refused(&d.path().join("kexec"), &host, "kernel");
        // A real kernel, but the initrd (named and beside it) leaves the tree.
        let (d, host) = hostile_tree(|host, boot| {
            std::fs::write(boot.join("kernel"), b"k").unwrap();
            std::os::unix::fs::symlink(host, boot.join("initrd")).unwrap();
        });
        refused(&d.path().join("kexec"), &host, "initrd");
    }

    #[test]
    fn kexec_chains_of_many_links_are_refused() {
        let (d, host) = hostile_tree(|host, boot| {
            std::fs::write(boot.join("initrd"), b"i").unwrap();
            std::os::unix::fs::symlink(host, boot.join("l50")).unwrap();
            for i in (0..50).rev() {
                let next = format!("l{}", i + 1);
                std::os::unix::fs::symlink(next, boot.join(format!("l{i}"))).unwrap();
            }
            std::os::unix::fs::symlink("l0", boot.join("kernel")).unwrap();
        });
        refused(&d.path().join("kexec"), &host, "too many symlinks");
    }

    #[test]
    fn bundle_archive_after_marker() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("bundle");
        std::fs::write(&b, b"#!/bin/sh\nexit 0\n__ARCHIVE_BELOW__\n\xfd7zXZ-data").unwrap();
        assert!(is_bundle(&b).unwrap());
        let out = extract_bundle(&b, &d.path().join("a.tar.xz")).unwrap();
        assert_eq!(std::fs::read(out).unwrap(), b"\xfd7zXZ-data");
    }

    #[test]
    fn bundle_archive_larger_than_the_script_window_is_copied_whole() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("bundle");
        let archive: Vec<u8> = (0..3 * SCRIPT_LIMIT).map(|i| (i % 251) as u8).collect();
        let mut bytes = b"#!/bin/sh\nexit 0\n__ARCHIVE_BELOW__\n".to_vec();
        bytes.extend_from_slice(&archive);
        std::fs::write(&b, &bytes).unwrap();
        let out = extract_bundle(&b, &d.path().join("a.tar.xz")).unwrap();
        assert!(std::fs::read(out).unwrap() == archive);
    }

    #[test]
    fn bundle_marker_past_the_script_window_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("bundle");
        let mut bytes = b"#!/bin/sh\n".to_vec();
        bytes.resize(SCRIPT_LIMIT as usize + 10, b'#');
        bytes.extend_from_slice(b"\n__ARCHIVE_BELOW__\ndata");
        std::fs::write(&b, &bytes).unwrap();
        let err = extract_bundle(&b, &d.path().join("a"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no __ARCHIVE_BELOW__ marker"), "{err}");
    }
}
