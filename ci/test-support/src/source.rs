//! Where the matrix's images come from: the stand-ins (Debian guests laid out like NixOS build
//! results, built by `ci/standins/build`) or real NixOS builds made by `nixos-generate` from
//! `scenarios/test-configuration.nix`. Chosen by `NIXGEN_IMAGE_SOURCE=standins|nixos`; the
//! default is `nixos` where `nix-instantiate --find-file nixpkgs` succeeds, else `standins`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde::Deserialize;

use crate::standins::{good_per_format, read_manifest, standins_dir, StandinsError};

/// Which kind of image source the matrix uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// The stand-in images of `ci/standins/`.
    Standins,
    /// NixOS images built by `nixos-generate` from the test configuration.
    Nixos,
}

impl SourceKind {
    /// The name used in `NIXGEN_IMAGE_SOURCE` and in snapshot names.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Standins => "standins",
            SourceKind::Nixos => "nixos",
        }
    }

    /// Parses a `NIXGEN_IMAGE_SOURCE` value.
    pub fn parse(value: &str) -> Result<SourceKind, SourceError> {
        match value {
            "standins" => Ok(SourceKind::Standins),
            "nixos" => Ok(SourceKind::Nixos),
            other => Err(SourceError::UnknownKind(other.to_owned())),
        }
    }

    /// The source chosen by the environment (see the module documentation).
    pub fn from_env() -> Result<SourceKind, SourceError> {
        match std::env::var("NIXGEN_IMAGE_SOURCE") {
            Ok(v) if !v.is_empty() => SourceKind::parse(&v),
            _ => Ok(if nixpkgs_available() {
                SourceKind::Nixos
            } else {
                SourceKind::Standins
            }),
        }
    }
}

/// Whether `nix-instantiate --find-file nixpkgs` finds a nixpkgs.
fn nixpkgs_available() -> bool {
    Command::new("nix-instantiate")
        .args(["--find-file", "nixpkgs"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why the images could not be found or built.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `NIXGEN_IMAGE_SOURCE` holds something else.
    #[error("NIXGEN_IMAGE_SOURCE={0:?}: expected `standins` or `nixos`")]
    UnknownKind(String),
    /// A helper command could not be started or failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command, for the message.
        command: String,
        /// Exit status or I/O error.
        detail: String,
    },
    /// The stand-ins could not be found or read.
    #[error(transparent)]
    Standins(#[from] StandinsError),
    /// The build's JSON does not parse.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// Which document.
        what: String,
        /// The parser's message.
        detail: String,
    },
}

/// The images of one source: format name -> image (a file or a build result directory).
#[derive(Debug, Clone)]
pub struct Images {
    /// Which source they come from.
    pub kind: SourceKind,
    /// The stand-ins directory, if the source is the stand-ins (redacted in snapshots).
    pub root: Option<PathBuf>,
    by_format: BTreeMap<String, PathBuf>,
}

impl Images {
    /// The image for `format`, if this source has one.
    pub fn get(&self, format: &str) -> Option<&Path> {
        self.by_format.get(format).map(PathBuf::as_path)
    }

    /// The formats this source has images for.
    pub fn formats(&self) -> impl Iterator<Item = &str> {
        self.by_format.keys().map(String::as_str)
    }

    /// Reads a stand-ins directory's manifest: the good stand-in (`expect = "multi-user"`) of
    /// each format, preferring the newest systemd where several imitate the same format.
    pub fn from_standins(dir: &Path) -> Result<Images, SourceError> {
        let manifest = read_manifest(dir)?;
        Ok(Images {
            kind: SourceKind::Standins,
            root: Some(dir.to_owned()),
            by_format: good_per_format(&manifest)
                .into_iter()
                .map(|(format, s)| (format.to_owned(), dir.join(&s.name)))
                .collect(),
        })
    }

    /// Finds the stand-ins ([`standins_dir`]) and reads their manifest.
    pub fn standins(workspace: &Path) -> Result<Images, SourceError> {
        Images::from_standins(&standins_dir(workspace)?)
    }

    /// Builds every format in `formats` once with `nixos-generate` (built first with cargo)
    /// from `scenarios/test-configuration.nix`.
    pub fn build_nixos(workspace: &Path, formats: &[&str]) -> Result<Images, SourceError> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "-p", "nixos-generate"])
            .current_dir(workspace);
        run_for_stdout(build)?;
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"));
        let mut command = Command::new(target.join("debug/nixos-generate"));
        for f in formats {
            command.args(["-f", f]);
        }
        command
            .arg("-c")
            .arg(workspace.join("scenarios/test-configuration.nix"))
            .arg("--json");
        let stdout = run_for_stdout(command)?;
        Images::from_build_json(&stdout)
    }

    /// Reads `nixos-generate --json`'s output: `[{"format", "path", "size_bytes"}]`.
    pub fn from_build_json(json: &str) -> Result<Images, SourceError> {
        #[derive(Deserialize)]
        struct Built {
            format: String,
            path: PathBuf,
        }
        let built: Vec<Built> = serde_json::from_str(json).map_err(|e| SourceError::Parse {
            what: "nixos-generate --json output".into(),
            detail: e.to_string(),
        })?;
        Ok(Images {
            kind: SourceKind::Nixos,
            root: None,
            by_format: built.into_iter().map(|b| (b.format, b.path)).collect(),
        })
    }
}

/// Runs a command with stderr passed through and returns its stdout.
fn run_for_stdout(mut command: Command) -> Result<String, SourceError> {
    let shown = format!("{command:?}");
    let out = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| SourceError::Command {
            command: shown.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(SourceError::Command {
            command: shown,
            detail: out.status.to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standins_map_each_format_to_its_directory() {
        // The choice among several stand-ins of a format is `standins::good_per_format`'s.
        let dir = tempfile::tempdir().unwrap();
        let entry =
            "[[standin]]\nname = \"raw-efi-x\"\nformat = \"raw-efi\"\nexpect = \"multi-user\"\n";
        std::fs::write(dir.path().join("manifest.toml"), entry).unwrap();
        let images = Images::from_standins(dir.path()).unwrap();
        let expected = dir.path().join("raw-efi-x");
        assert_eq!(images.get("raw-efi"), Some(expected.as_path()));
        assert_eq!(images.formats().collect::<Vec<_>>(), ["raw-efi"]);
    }

    #[test]
    fn build_json_maps_formats_to_files() {
        let images = Images::from_build_json(
            r#"[{"format":"iso","path":"/nix/store/x-iso/iso/a.iso","size_bytes":1}]"#,
        )
        .unwrap();
        assert_eq!(images.kind, SourceKind::Nixos);
        assert_eq!(
            images.get("iso"),
            Some(Path::new("/nix/store/x-iso/iso/a.iso"))
        );
        assert!(Images::from_build_json("nope").is_err());
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(SourceKind::parse("nixos").unwrap(), SourceKind::Nixos);
        assert!(SourceKind::parse("debian").is_err());
    }
}
