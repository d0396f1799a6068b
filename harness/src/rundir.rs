//! [`RunDir`]: the private, short-path directory of one run (sockets, logs, overlay, vars).

use std::path::{Path, PathBuf};

use crate::HarnessError;

/// Unix socket paths must stay under 108 bytes; a base longer than this falls back to /tmp.
const MAX_BASE_LEN: usize = 48;

/// A 0700 directory like `/tmp/ng-XXXXXX`, removed on drop unless kept.
#[derive(Debug)]
pub struct RunDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory under `$TMPDIR` (or /tmp when that path is long).
    pub fn create() -> Result<RunDir, HarnessError> {
        let mut base = std::env::temp_dir();
        if base.as_os_str().len() > MAX_BASE_LEN {
            base = PathBuf::from("/tmp");
        }
        let dir = tempfile::Builder::new()
            .prefix("ng-")
            .tempdir_in(&base)
            .map_err(|e| {
                HarnessError::io(format!("create a run directory in {}", base.display()), e)
            })?;
        // tempfile creates directories 0700 on unix; say so explicitly.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| HarnessError::io("chmod 0700 the run directory", e))?;
        let path = dir.path().to_path_buf();
        Ok(RunDir {
            dir: Some(dir),
            path,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Keeps the directory on disk and returns its path.
    pub fn keep(mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.path.clone()
    }

    /// Removes the directory now (also done on drop).
    pub fn remove(mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_short_and_removed_unless_kept() {
        let a = RunDir::create().unwrap();
        let b = RunDir::create().unwrap();
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(a.join("serial.sock").as_os_str().len() < 100);
        let pa = a.path().to_path_buf();
        drop(a);
        assert!(!pa.exists());
        let kept = b.keep();
        assert!(kept.is_dir());
        std::fs::remove_dir_all(kept).unwrap();
    }
}
