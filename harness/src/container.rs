//! Containers: a root file system tarball (docker, lxc, proxmox-lxc) is unpacked into the run
//! directory and booted with systemd-nspawn, its console on a pseudo-terminal (see
//! `crate::pty`) and its systemd's notify messages on a datagram socket bound into it
//! ([`crate::notify::NotifyChannel::open_container`]).
//!
//! A container never touches the host beyond its run: no network (`--private-network`), no
//! machine registration (`--register=no`), no scope of its own (`--keep-unit`: it stays in the
//! caller's cgroup), no journal link, and the host's resolv.conf and time zone are not copied
//! in. The tarball is only read.
//!
//! No container outlives its run: nspawn runs inside a PID namespace of its own
//! (`unshare --pid --fork --kill-child=SIGKILL --mount-proc`) whose init is a `sh` waiting for
//! it. Killing `unshare` (the harness's stop, or its parent-death signal when the harness is
//! killed) kills that init, and with it every process of the namespace, the container's
//! nested one included; killing nspawn alone would leave the container running. The same
//! unshare gives nspawn a private mount namespace with a tmpfs at `/run/systemd/nspawn`, so its
//! lock and propagation files stay off the host (where `/run` may not be a tmpfs, nspawn's
//! clean-up refuses to delete them and it exits 1). SIGTERM to the process group powers the
//! container off: the `sh` init ignores it, nspawn asks the container's systemd to power off
//! (`--kill-signal=SIGRTMIN+4`) and exits 0 when it has.

use std::path::{Path, PathBuf};

use formats::{Format, Profile};

use crate::blocking::{self, Cancel};
use crate::image::Bootable;
use crate::HarnessError;

/// The program that boots containers.
pub const NSPAWN: &str = "systemd-nspawn";
/// The program that gives it a PID and mount namespace of its own (util-linux).
pub const UNSHARE: &str = "unshare";
/// The namespace's init: a private /run/systemd/nspawn, then nspawn as its child (`"$@"` is
/// nspawn's argv, never parsed by the shell).
const INIT: &str =
    "mkdir -p /run/systemd/nspawn && mount -t tmpfs -o mode=0755 nixgen-nspawn /run/systemd/nspawn && \"$@\"";

/// The environment systemd-nspawn needs: on a host with a hybrid cgroup hierarchy (Debian 12),
/// a systemd >= 256 inside refuses to boot unless nspawn gives it the unified hierarchy.
pub fn nspawn_env() -> Vec<(String, String)> {
    vec![(
        "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY".to_string(),
        "1".to_string(),
    )]
}

/// The arguments of [`UNSHARE`] that boot the root file system at `root` with nspawn (its
/// init, found at `/sbin/init` or systemd's own path), the console on nspawn's terminal. More
/// nspawn options may follow.
pub fn nspawn_args(root: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "--mount",
        "--propagation",
        "private",
        "--mount-proc",
        "sh",
        "-c",
        INIT,
        "sh",
        NSPAWN,
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--directory={}", root.display()));
    args.extend(
        [
            "--boot",
            "--console=interactive",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--link-journal=no",
            "--resolv-conf=off",
            "--timezone=off",
            "--kill-signal=SIGRTMIN+4",
            "--machine=nixgen",
        ]
        .map(String::from),
    );
    args
}

/// Unpacks the xz-compressed tarball `tarball` into `root` (created), streamed, keeping owners
/// and modes (root needs them; `crate::unpack::untar`). Entries that would land outside
/// `root` (`..`, through a symlink) are refused; device nodes and FIFOs are skipped (the
/// container gets its own /dev from nspawn). Returns how many entries were skipped.
pub fn unpack(tarball: &Path, root: &Path) -> Result<usize, HarnessError> {
    unpack_until(tarball, root, &Cancel::never())
}

/// [`unpack`], stopping with an error at the next read once `cancel` is set.
fn unpack_until(tarball: &Path, root: &Path, cancel: &Cancel) -> Result<usize, HarnessError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(HarnessError::BadImage {
            path: tarball.to_path_buf(),
            detail:
                "a container is booted with systemd-nspawn, which needs root: run the check as root"
                    .into(),
        });
    }
    crate::unpack::untar(
        tarball,
        root,
        crate::unpack::Compression::Xz,
        true,
        "the root file system",
        cancel,
    )
}

/// The init a booting nspawn would run, if the tree has one (`/sbin/init` as the NixOS
/// tarballs have it, or systemd at its own path).
pub fn find_init(root: &Path) -> Option<PathBuf> {
    [
        "sbin/init",
        "usr/lib/systemd/systemd",
        "lib/systemd/systemd",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.symlink_metadata().is_ok())
}

/// Prepares a container (`container`) or a metadata tarball checked with its pair
/// (`container-metadata`): the root file system tarball is unpacked into `run_dir/root` and
/// must have an init; a metadata tarball must describe it ([`crate::lxcmeta::check_pair`]).
pub(crate) async fn prepare(
    format: &Format,
    file: &Path,
    run_dir: &Path,
    pair: Option<&Path>,
) -> Result<Bootable, HarnessError> {
    let rootfs = match format.profile {
        Profile::ContainerMetadata => rootfs_of_pair(format, pair)?,
        _ => file.to_path_buf(),
    };
    which::which(NSPAWN).map_err(|_| HarnessError::MissingProgram {
        program: NSPAWN.into(),
        package: "systemd-container".into(),
    })?;
    let (tarball, root) = (rootfs, run_dir.join("root"));
    let unpacked = root.clone();
    blocking::run("unpack the container", move |cancel| {
        unpack_until(&tarball, &unpacked, cancel)
    })
    .await??;
    if find_init(&root).is_none() {
        return Err(HarnessError::BadImage {
            path: tarball_path(format, file, pair),
            detail: "the tarball has no init (/sbin/init, as NixOS's container tarballs have)"
                .into(),
        });
    }
    if format.profile == Profile::ContainerMetadata {
        let (metadata, meta) = (file.to_path_buf(), run_dir.join("metadata"));
        let unpacked = meta.clone();
        blocking::run("unpack the metadata", move |cancel| {
            unpack_until(&metadata, &unpacked, cancel)
        })
        .await??;
        crate::lxcmeta::check_pair(&meta, &root).map_err(|e| HarnessError::BadImage {
            path: file.to_path_buf(),
            detail: e.to_string(),
        })?;
    }
    Ok(Bootable::Container { root })
}

/// The format whose image a `container-metadata` image is checked with.
pub const METADATA_PAIR: &str = "lxc";

/// The root file system tarball paired with a metadata tarball: `pair` resolved as an image
/// of the [`METADATA_PAIR`] format.
fn rootfs_of_pair(format: &Format, pair: Option<&Path>) -> Result<PathBuf, HarnessError> {
    let pair = pair.ok_or_else(|| HarnessError::NoPair {
        format: format.name.clone(),
        pair: METADATA_PAIR.into(),
    })?;
    let lxc = formats::registry()
        .get(METADATA_PAIR)
        .expect("the registry has lxc");
    crate::image::resolve(lxc, pair)
}

/// The tarball a container boots: the image itself, or a metadata image's pair.
fn tarball_path(format: &Format, file: &Path, pair: Option<&Path>) -> PathBuf {
    match (format.profile, pair) {
        (Profile::ContainerMetadata, Some(p)) => p.to_path_buf(),
        _ => file.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use tar::EntryType;

    fn tarball(dir: &Path, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let raw = b.into_inner().unwrap();
        let path = dir.join("t.tar.xz");
        let mut xz = liblzma::write::XzEncoder::new(File::create(&path).unwrap(), 1);
        std::io::Write::write_all(&mut xz, &raw).unwrap();
        xz.finish().unwrap();
        path
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: EntryType, body: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(body.len() as u64);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        // set_path refuses `..`; write the name bytes as a hostile archive would.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, body).unwrap();
    }

    #[test]
    fn nspawn_never_touches_the_host() {
        let args = nspawn_args(Path::new("/run/x/root"));
        for flag in [
            "--private-network",
            "--register=no",
            "--keep-unit",
            "--link-journal=no",
            "--boot",
        ] {
            assert!(args.iter().any(|a| a == flag), "{flag} missing: {args:?}");
        }
        assert!(
            args.iter().any(|a| a == "--directory=/run/x/root"),
            "{args:?}"
        );
        // nspawn's argv follows the script; nothing of it is inside the script.
        let at = args.iter().position(|a| a == NSPAWN).unwrap();
        assert_eq!(&args[at - 2..at], [INIT, "sh"]);
        assert!(!INIT.contains("/run/x"));
    }

    /// A temporary directory for a test that unpacks as root (unpacking keeps owners), or
    /// `None` (the test skipped, said on stderr) when not root.
    fn as_root(test: &str) -> Option<tempfile::TempDir> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED {test}: not root (unpacking keeps owners)");
            return None;
        }
        Some(tempfile::tempdir().unwrap())
    }

    #[test]
    fn unpacks_a_root_file_system_and_skips_devices() {
        let Some(d) = as_root("unpacks_a_root_file_system_and_skips_devices") else {
            return;
        };
        let t = tarball(d.path(), |b| {
            file(b, "sbin/init", EntryType::Regular, b"#!/bin/sh\n");
            file(b, "dev/sda", EntryType::Block, b"");
        });
        let root = d.path().join("root");
        assert_eq!(unpack(&t, &root).unwrap(), 1);
        assert_eq!(find_init(&root), Some(root.join("sbin/init")));
        assert!(!root.join("dev/sda").exists());
    }

    #[test]
    fn entries_outside_the_root_are_refused() {
        let Some(d) = as_root("entries_outside_the_root_are_refused") else {
            return;
        };
        let t = tarball(d.path(), |b| {
            file(b, "../escaped", EntryType::Regular, b"x")
        });
        let root = d.path().join("root");
        let err = unpack(&t, &root).unwrap_err().to_string();
        assert!(!d.path().join("escaped").exists());
        assert!(err.contains("outside") || err.contains("escaped"), "{err}");
    }

    #[test]
    fn a_tree_without_init_has_none() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(find_init(d.path()), None);
    }
}
