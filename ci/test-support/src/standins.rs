//! The stand-ins: Debian guests laid out like NixOS build results, built by `ci/standins/build`
//! into a cached directory whose `manifest.toml` lists them (`[[standin]]` tables). This is the
//! one reader of that directory and manifest.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde::Deserialize;

/// Why the stand-ins could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum StandinsError {
    /// `ci/standins/build` could not be started or failed.
    #[error("NIXGEN_STANDINS is unset and {command} failed: {detail}")]
    Build {
        /// The command, for the message.
        command: String,
        /// Exit status or I/O error.
        detail: String,
    },
    /// The manifest could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest does not parse.
    #[error("cannot parse {path}: {detail}")]
    Parse {
        /// The manifest file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
}

/// One entry of `STANDINS/manifest.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Standin {
    /// Subdirectory of the stand-ins directory, laid out like the format's build result.
    pub name: String,
    /// The registry format it imitates.
    pub format: String,
    /// `multi-user`, or the failure reason a test expects.
    pub expect: String,
    /// The systemd version inside.
    #[serde(default)]
    pub systemd: Option<u32>,
    /// One line.
    #[serde(default)]
    pub description: String,
}

impl Standin {
    /// Whether it is a good stand-in (one that reaches multi-user.target).
    pub fn is_good(&self) -> bool {
        self.expect == "multi-user"
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    standin: Vec<Standin>,
}

/// The stand-ins directory: `$NIXGEN_STANDINS`, else what `ci/standins/build` (under
/// `workspace`, the repository's top level) prints, building them if they are not cached.
pub fn standins_dir(workspace: &Path) -> Result<PathBuf, StandinsError> {
    if let Some(dir) = std::env::var_os("NIXGEN_STANDINS").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let script = workspace.join("ci/standins/build");
    let failed = |detail: String| StandinsError::Build {
        command: script.display().to_string(),
        detail,
    };
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(out.status.to_string()));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Every entry of a stand-ins directory's `manifest.toml`, good and broken.
pub fn read_manifest(dir: &Path) -> Result<Vec<Standin>, StandinsError> {
    let path = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| StandinsError::Read {
        path: path.clone(),
        source,
    })?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| StandinsError::Parse {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    Ok(manifest.standin)
}

/// The good stand-in of each format, as the matrix boots it: where several imitate the same
/// format, the first with the newest systemd.
pub fn good_per_format(all: &[Standin]) -> BTreeMap<&str, &Standin> {
    let mut chosen: BTreeMap<&str, &Standin> = BTreeMap::new();
    for s in all.iter().filter(|s| s.is_good()) {
        let newer = chosen.get(s.format.as_str()).map_or(true, |old| {
            s.systemd.unwrap_or(0) > old.systemd.unwrap_or(0)
        });
        if newer {
            chosen.insert(&s.format, s);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_per_format_prefers_the_newest_systemd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("manifest.toml"),
            r#"
[[standin]]
name = "raw-efi-bookworm"
format = "raw-efi"
expect = "multi-user"
systemd = 252
[[standin]]
name = "raw-efi"
format = "raw-efi"
expect = "multi-user"
systemd = 257
[[standin]]
name = "raw-efi-other"
format = "raw-efi"
expect = "multi-user"
systemd = 257
[[standin]]
name = "raw-panic"
format = "raw"
expect = "kernel-panic"
"#,
        )
        .unwrap();
        let all = read_manifest(dir.path()).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].systemd, None);
        let good = good_per_format(&all);
        assert_eq!(good.len(), 1);
        assert_eq!(good["raw-efi"].name, "raw-efi");
    }

    #[test]
    fn a_missing_manifest_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_manifest(dir.path()).unwrap_err().to_string();
        assert!(err.contains("manifest.toml"), "{err}");
    }
}
