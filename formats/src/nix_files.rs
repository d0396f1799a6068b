//! The Nix side of the command, embedded at build time and written out on demand.

use std::{
    collections::hash_map::DefaultHasher,
    fs,
    hash::{Hash, Hasher},
    io,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Where the embedded Nix files were written, ready for `nix build --file`.
#[derive(Debug, Clone)]
pub struct NixFiles {
    /// The directory holding `registry.toml`, `modules/` and `nix/`.
    pub root: PathBuf,
}

impl NixFiles {
    /// The entry expression `nix build --file` evaluates.
    pub fn entry(&self) -> PathBuf {
        self.root.join("nix/entry.nix")
    }

    /// The NixOS module of a built-in format.
    pub fn module(&self, format: &str) -> PathBuf {
        self.root.join("modules").join(format!("{format}.nix"))
    }
}

/// Writes the embedded files under `cache_dir/nix-<content hash>/` and returns where. The
/// directory name changes whenever any file changes. An existing copy is used only after it is
/// verified (`verified`): every file byte for byte, owned by this user and writable by no
/// one else. Anything else found there (half written, tampered with, planted by another
/// user) is replaced. A `cache_dir` every user may write to (without the sticky bit) is
/// refused.
pub fn install_nix_files(cache_dir: &Path) -> io::Result<NixFiles> {
    let mut hasher = DefaultHasher::new();
    FILES.hash(&mut hasher);
    let root = cache_dir.join(format!("nix-{:016x}", hasher.finish()));
    fs::create_dir_all(cache_dir)?;
    let meta = fs::metadata(cache_dir)?;
    if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(io::Error::other(format!(
            "{} is writable by every user",
            cache_dir.display()
        )));
    }
    if verified(&root) {
        return Ok(NixFiles { root });
    }
    let staging = cache_dir.join(format!(".staging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    for (rel, text) in FILES {
        let path = staging.join(rel);
        let dir = path.parent().expect("relative path has a parent");
        fs::create_dir_all(dir)?;
        fs::write(&path, text)?;
        // Whatever the umask: nobody else may write what Nix will evaluate.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        for d in dir.ancestors().take_while(|d| d.starts_with(&staging)) {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        }
    }
    if fs::symlink_metadata(&root).is_ok() {
        // Not verified: move it out of the way, then remove it.
        let aside = cache_dir.join(format!(".stale-{}", std::process::id()));
        let _ = fs::remove_dir_all(&aside);
        let _ = fs::rename(&root, &aside);
        let _ = fs::remove_dir_all(&aside).or_else(|_| fs::remove_file(&aside));
    }
    // Another process may install the same content at the same moment: theirs is as good.
    let renamed = fs::rename(&staging, &root);
    let _ = fs::remove_dir_all(&staging);
    if verified(&root) {
        return Ok(NixFiles { root });
    }
    Err(renamed.err().unwrap_or_else(|| {
        io::Error::other(format!(
            "{} does not hold the files just written",
            root.display()
        ))
    }))
}

/// Whether `root` holds every embedded file with its exact contents, in directories and files
/// that are no symlinks, belong to this user and are writable by nobody else.
pub fn verified(root: &Path) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    let private = |p: &Path, dir: bool| {
        fs::symlink_metadata(p).is_ok_and(|m| {
            m.uid() == me && m.mode() & 0o022 == 0 && if dir { m.is_dir() } else { m.is_file() }
        })
    };
    private(root, true)
        && FILES.iter().all(|(rel, text)| {
            let path = root.join(rel);
            path.ancestors()
                .skip(1)
                .take_while(|d| *d != root)
                .all(|d| private(d, true))
                && private(&path, false)
                && fs::read(&path).is_ok_and(|bytes| bytes == text.as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_every_file_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = install_nix_files(dir.path()).unwrap();
        let b = install_nix_files(dir.path()).unwrap();
        assert_eq!(a.root, b.root);
        for (rel, text) in FILES {
            assert_eq!(&fs::read_to_string(a.root.join(rel)).unwrap(), text);
        }
    }

    #[test]
    fn a_planted_or_tampered_copy_is_replaced_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let good = install_nix_files(dir.path()).unwrap();
        let entry = good.entry();
        // Tampered: a changed entry.nix, with the directory otherwise complete.
        fs::write(&entry, "builtins.abort \"planted\"").unwrap();
        fs::write(good.root.join(".complete"), "").unwrap();
        assert!(!verified(&good.root));
        let again = install_nix_files(dir.path()).unwrap();
        assert_eq!(again.root, good.root);
        assert!(verified(&again.root));
        assert!(!fs::read_to_string(again.entry())
            .unwrap()
            .contains("planted"));
        // Writable by others: not trusted either.
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!verified(&good.root));
        install_nix_files(dir.path()).unwrap();
        assert!(verified(&good.root));
        // A symlink in place of the directory: replaced, its target untouched.
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::remove_dir_all(&good.root).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &good.root).unwrap();
        install_nix_files(dir.path()).unwrap();
        assert!(verified(&good.root));
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn a_cache_dir_everyone_may_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = install_nix_files(dir.path()).unwrap_err();
        assert!(err.to_string().contains("writable by every user"), "{err}");
    }
}
