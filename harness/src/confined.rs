//! Opening a path inside an unpacked, untrusted tree (a kexec tarball) as if that tree were `/`:
//! absolute symlinks and `..` stay inside it (the kernel's `openat2(RESOLVE_IN_ROOT)`), chains
//! of more than 40 links fail (`ELOOP`), and the answer is the real path of a regular file
//! inside the tree, with no symlink left in it for QEMU to follow out of the tree.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

/// Why a path did not resolve to a regular file inside the tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfinedError {
    /// Nothing there once symlinks are read inside the tree (a link leaving the tree lands
    /// here too: its target does not exist inside it).
    #[error("{0} does not exist inside the unpacked tree (a missing file, or a symlink pointing out of it)")]
    Missing(String),
    /// More symlinks than the kernel follows (40).
    #[error("{0} is a chain of too many symlinks")]
    Loop(String),
    /// It resolves to a directory, device or other non-file.
    #[error("{0} is not a regular file")]
    NotAFile(String),
    /// Any other failure of the resolution.
    #[error("{0}: {1}")]
    Other(String, Errno),
}

/// Resolves `path` (absolute paths mean the tree's root) inside `root` and returns the real
/// path of the regular file it names, which always lies inside `root`.
pub fn resolve_in(root: &Path, path: &Path) -> Result<PathBuf, ConfinedError> {
    let shown = path.display().to_string();
    let other = |e: Errno| ConfinedError::Other(shown.clone(), e);
    let dir = std::fs::File::open(root).map_err(|e| {
        other(Errno::from_raw(
            e.raw_os_error().unwrap_or(Errno::EIO as i32),
        ))
    })?;
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&dir, rel, how).map_err(|e| match e {
        Errno::ENOENT | Errno::ENOTDIR => ConfinedError::Missing(shown.clone()),
        Errno::ELOOP => ConfinedError::Loop(shown.clone()),
        e => other(e),
    })?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| other(Errno::EIO))?;
    let root_real = std::fs::canonicalize(root).map_err(|_| other(Errno::EIO))?;
    // RESOLVE_IN_ROOT guarantees this; a second look costs nothing.
    if !real.starts_with(&root_real) {
        return Err(ConfinedError::Missing(shown));
    }
    let meta = std::fs::symlink_metadata(&real).map_err(|_| other(Errno::EIO))?;
    if !meta.file_type().is_file() {
        return Err(ConfinedError::NotAFile(shown));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_and_dotdot_stay_inside_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("nix/store/a")).unwrap();
        std::fs::write(root.join("nix/store/a/kernel"), b"k").unwrap();
        symlink("/nix/store/a", root.join("img")).unwrap();
        symlink("../../../../../../nix/store/a/kernel", root.join("up")).unwrap();
        let want = std::fs::canonicalize(root.join("nix/store/a/kernel")).unwrap();
        assert_eq!(resolve_in(&root, Path::new("/img/kernel")).unwrap(), want);
        assert_eq!(resolve_in(&root, Path::new("up")).unwrap(), want);
    }

    /// An empty tree `root` and, beside it, a host file it must never reach: (keep-alive, root,
    /// host file).
    fn tree_beside_a_secret() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let host = d.path().join("host-secret");
        std::fs::write(&host, b"secret").unwrap();
        (d, root, host)
    }

    #[test]
    fn links_out_of_the_tree_never_reach_a_host_file() {
        let (_d, root, host) = tree_beside_a_secret();
        symlink(&host, root.join("abs")).unwrap();
        symlink("../host-secret", root.join("rel")).unwrap();
        symlink("/etc/passwd", root.join("passwd")).unwrap();
        for name in ["abs", "rel", "passwd"] {
            assert_eq!(
                resolve_in(&root, Path::new(name)),
                Err(ConfinedError::Missing(name.into())),
                "{name}"
            );
        }
    }

    #[test]
    fn long_chains_fail_instead_of_returning_a_link() {
        let (_d, root, host) = tree_beside_a_secret();
        symlink(&host, root.join("l45")).unwrap();
        for i in (0..45).rev() {
            symlink(format!("l{}", i + 1), root.join(format!("l{i}"))).unwrap();
        }
        assert_eq!(
            resolve_in(&root, Path::new("l0")),
            Err(ConfinedError::Loop("l0".into()))
        );
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in(&root, Path::new("loop")),
            Err(ConfinedError::Loop("loop".into()))
        );
    }

    #[test]
    fn directories_are_not_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("kernel")).unwrap();
        assert_eq!(
            resolve_in(d.path(), Path::new("kernel")),
            Err(ConfinedError::NotAFile("kernel".into()))
        );
    }
}
