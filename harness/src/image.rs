//! The image under test: found in a build result through the registry's output glob, then
//! turned into what QEMU boots (packed disks and kexec tarballs unpacked into the run
//! directory; the image itself is never written).

use std::path::{Path, PathBuf};

use formats::{Format, Packing, Profile};
use tokio::process::Command;

use crate::arch;
use crate::confined::{self, ConfinedError};
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
    /// A NixOS VM run script.
    Runner(PathBuf),
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

/// Prepares the file found by [`resolve`] for booting, unpacking into `run_dir` as needed.
pub async fn prepare(
    format: &Format,
    file: &Path,
    run_dir: &Path,
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
        Profile::Iso => Ok(Bootable::Iso(qemu_path(file, run_dir)?)),
        Profile::BiosDisk | Profile::EfiDisk => {
            let driver = format.disk.clone().unwrap_or_else(|| "raw".to_string());
            let (path, snapshot) = match format.packing {
                None => (qemu_path(file, run_dir)?, true),
                Some(packing) => (unpack_disk(packing, file, run_dir).await?, false),
            };
            if driver == "qcow2" {
                crate::qcow2::check_self_contained(&path).map_err(|e| HarnessError::BadImage {
                    path: file.to_path_buf(),
                    detail: e.to_string(),
                })?;
            }
            Ok(Bootable::Disk {
                path,
                format: driver,
                snapshot,
            })
        }
        Profile::Kexec => {
            let tarball = if is_bundle(file)? {
                extract_bundle(file, &run_dir.join("kexec.tar.xz"))?
            } else {
                file.to_path_buf()
            };
            let root = run_dir.join("kexec");
            untar(&tarball, &root, "J").await?;
            let boot = kexec_boot(&root)?;
            if let Bootable::Kernel { kernel, .. } = &boot {
                let head = arch::head(kernel, 4096)
                    .map_err(|e| HarnessError::io(format!("read {}", kernel.display()), e))?;
                match arch::kernel_arch(&head) {
                    Some(a) if a != arch::HOST_ARCH => {
                        return Err(foreign_arch(file, &format!("its kernel is for {a}")))
                    }
                    _ => {}
                }
            }
            Ok(boot)
        }
        Profile::Container | Profile::CloudOnly | Profile::Board => {
            Err(HarnessError::NotBootable {
                format: format.name.clone(),
                profile: format.profile.to_string(),
            })
        }
    }
}

fn foreign_arch(file: &Path, why: &str) -> HarnessError {
    HarnessError::BadImage {
        path: file.to_path_buf(),
        detail: format!(
            "{why}, but --check and --run boot {} images only; check it on a machine of its architecture",
            arch::HOST_ARCH
        ),
    }
}

/// The path QEMU is given for the user's file: the file itself, or, when its path is not
/// UTF-8 (QEMU's options are text), a symlink to it in the run directory.
fn qemu_path(file: &Path, run_dir: &Path) -> Result<PathBuf, HarnessError> {
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

async fn untar(tarball: &Path, dest: &Path, compression: &str) -> Result<(), HarnessError> {
    std::fs::create_dir_all(dest).map_err(|e| HarnessError::io("create unpack directory", e))?;
    let mut cmd = Command::new("tar");
    cmd.arg(format!("-x{compression}f"))
        .arg(tarball)
        .arg("-C")
        .arg(dest)
        .arg("--no-same-owner")
        .stdout(std::process::Stdio::null());
    crate::lifeline::die_with_parent(&mut cmd);
    run(&mut cmd, "tar", tarball).await
}

async fn unpack_disk(
    packing: Packing,
    file: &Path,
    run_dir: &Path,
) -> Result<PathBuf, HarnessError> {
    match packing {
        Packing::Gzip => {
            let dest = run_dir.join("disk.img");
            let out =
                std::fs::File::create(&dest).map_err(|e| HarnessError::io("create disk.img", e))?;
            let mut cmd = Command::new("gzip");
            cmd.arg("-dc").arg(file).stdout(out);
            crate::lifeline::die_with_parent(&mut cmd);
            run(&mut cmd, "gzip -d", file).await?;
            Ok(dest)
        }
        Packing::TarGz => {
            let dir = run_dir.join("disk");
            untar(file, &dir, "z").await?;
            first_file(&dir, &|_| true).ok_or_else(|| HarnessError::BadImage {
                path: file.to_path_buf(),
                detail: "the tarball holds no file".into(),
            })
        }
    }
}

const BUNDLE_MARKER: &[u8] = b"\n__ARCHIVE_BELOW__";

fn is_bundle(file: &Path) -> Result<bool, HarnessError> {
    use std::io::Read;
    let mut head = [0u8; 2];
    let mut f = std::fs::File::open(file)
        .map_err(|e| HarnessError::io(format!("open {}", file.display()), e))?;
    let n = f
        .read(&mut head)
        .map_err(|e| HarnessError::io("read image", e))?;
    Ok(n == 2 && &head == b"#!")
}

/// Writes the archive that follows the `__ARCHIVE_BELOW__` line of a kexec bundle to `dest`.
pub fn extract_bundle(bundle: &Path, dest: &Path) -> Result<PathBuf, HarnessError> {
    let bytes = std::fs::read(bundle)
        .map_err(|e| HarnessError::io(format!("read {}", bundle.display()), e))?;
    let bad = |detail: &str| HarnessError::BadImage {
        path: bundle.to_path_buf(),
        detail: detail.to_string(),
    };
    let at = bytes
        .windows(BUNDLE_MARKER.len())
        .position(|w| w == BUNDLE_MARKER)
        .ok_or_else(|| bad("no __ARCHIVE_BELOW__ marker"))?;
    let rest = &bytes[at + BUNDLE_MARKER.len()..];
    let nl = rest
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| bad("nothing after the marker"))?;
    std::fs::write(dest, &rest[nl + 1..])
        .map_err(|e| HarnessError::io("write the bundle's archive", e))?;
    Ok(dest.to_path_buf())
}

fn first_file(dir: &Path, want: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let ty = e.file_type().ok()?;
            let path = e.path();
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() && e.file_name().to_str().is_some_and(want) {
                found.push(path);
            }
        }
    }
    found.sort();
    found.into_iter().next()
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

    #[test]
    fn kexec_tree_with_store_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let img = root.join("nix/store/abc-image");
        std::fs::create_dir_all(&img).unwrap();
        std::fs::write(img.join("kernel"), b"k").unwrap();
        std::fs::write(img.join("initrd"), b"i").unwrap();
        std::fs::write(
            root.join("nix/store/script"),
            "kexec -l /nix/store/abc-image/kernel --initrd=final.gz --append=\"a=b\"\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/nix/store/script", root.join("kexec_nixos")).unwrap();
        match kexec_boot(root).unwrap() {
            Bootable::Kernel {
                kernel,
                initrd,
                cmdline,
            } => {
                assert_eq!(kernel, img.join("kernel"));
                assert_eq!(initrd, img.join("initrd"));
                assert_eq!(cmdline, "a=b");
            }
            b => panic!("unexpected {b:?}"),
        }
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

    #[tokio::test]
    async fn packed_disks_are_unpacked_into_the_run_dir() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("nixos.raw");
        std::fs::write(&disk, b"disk bytes").unwrap();
        let run = d.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let gz = d.path().join("nixos.raw.gz");
        let out = std::process::Command::new("gzip")
            .arg("-kc")
            .arg(&disk)
            .output()
            .unwrap();
        std::fs::write(&gz, out.stdout).unwrap();
        let p = unpack_disk(Packing::Gzip, &gz, &run).await.unwrap();
        assert!(p.starts_with(&run));
        assert_eq!(std::fs::read(p).unwrap(), b"disk bytes");
        let tgz = d.path().join("nixos.raw.tar.gz");
        let st = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(d.path())
            .arg("nixos.raw")
            .status()
            .unwrap();
        assert!(st.success());
        let p = unpack_disk(Packing::TarGz, &tgz, &run).await.unwrap();
        assert_eq!(p, run.join("disk/nixos.raw"));
        assert_eq!(std::fs::read(p).unwrap(), b"disk bytes");
        let bad = unpack_disk(Packing::Gzip, &disk, &run).await.unwrap_err();
        assert!(matches!(bad, HarnessError::BadImage { .. }), "{bad}");
    }
}
