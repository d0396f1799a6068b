//! The Nix side of the command, embedded at build time and written out on demand.

use std::{
    collections::hash_map::DefaultHasher,
    fs,
    hash::{Hash, Hasher},
    io,
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

/// Writes the embedded files under `cache_dir/nix-<content hash>/` (once per content) and
/// returns where. The directory name changes whenever any file changes, so a stale copy is
/// never used, and an unchanged copy is reused.
pub fn install_nix_files(cache_dir: &Path) -> io::Result<NixFiles> {
    let mut hasher = DefaultHasher::new();
    FILES.hash(&mut hasher);
    let root = cache_dir.join(format!("nix-{:016x}", hasher.finish()));
    if !root.join(".complete").exists() {
        let staging = cache_dir.join(format!(".staging-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        for (rel, text) in FILES {
            let path = staging.join(rel);
            fs::create_dir_all(path.parent().expect("relative path has a parent"))?;
            fs::write(path, text)?;
        }
        fs::write(staging.join(".complete"), "")?;
        match fs::rename(&staging, &root) {
            Ok(()) => {}
            // Another process installed the same content first: theirs is identical.
            Err(_) if root.join(".complete").exists() => {
                let _ = fs::remove_dir_all(&staging);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(NixFiles { root })
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
}
