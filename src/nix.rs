//! Running the Nix plan and finding each format's image file in its build result.

use std::{
    io,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde::{Deserialize, Serialize};

use crate::{
    exit::Exit,
    plan::{NixPlan, CUSTOM_ATTR},
};

/// One built image: what `--json` prints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Built {
    /// The format name (or the custom module's file name).
    pub format: String,
    /// The image file.
    pub path: PathBuf,
    /// Its size.
    pub size_bytes: u64,
}

#[derive(Deserialize)]
struct NixBuildResult {
    outputs: std::collections::BTreeMap<String, PathBuf>,
}

/// Runs `nix build` (stderr stays on the terminal) and returns each format's build result
/// directory, in the plan's order.
pub fn run(plan: &NixPlan) -> Result<Vec<PathBuf>, Exit> {
    let output = Command::new(&plan.argv[0])
        .args(&plan.argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Exit::NixMissing,
            _ => Exit::BuildFailed(1),
        })?;
    if !output.status.success() {
        use std::os::unix::process::ExitStatusExt;
        let code = output
            .status
            .code()
            .or(output.status.signal().map(|s| 128 + s))
            .unwrap_or(1);
        return Err(Exit::BuildFailed(code));
    }
    let results: Vec<NixBuildResult> = serde_json::from_slice(&output.stdout).map_err(|e| {
        Exit::NoOutput(format!(
            "nix build printed JSON this version cannot read ({e}); please report it"
        ))
    })?;
    if results.len() != plan.labels.len() {
        return Err(Exit::NoOutput(format!(
            "nix build reported {} results for {} formats; please report it",
            results.len(),
            plan.labels.len()
        )));
    }
    results
        .into_iter()
        .zip(&plan.labels)
        .map(|(r, label)| {
            r.outputs.get("out").cloned().ok_or_else(|| {
                Exit::NoOutput(format!("format {label}: the build has no `out` output"))
            })
        })
        .collect()
}

/// Finds the image file of `label` in its build result, and its size.
pub fn image_of(label: &str, result: &Path, custom_name: &str) -> Result<Built, Exit> {
    let (format, pattern, path) = if label == CUSTOM_ATTR {
        (custom_name.to_string(), "*".to_string(), first_file(result))
    } else {
        let format = formats::registry()
            .get(label)
            .expect("labels come from the registry");
        (
            label.to_string(),
            format.output.clone(),
            format.locate(result),
        )
    };
    let path = path.ok_or_else(|| {
        Exit::NoOutput(format!(
            "format {format}: the build result {} holds no file matching {pattern:?}; the format module \
             builds something else than the registry expects (a bug worth reporting)",
            result.display()
        ))
    })?;
    let size_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Built {
        format,
        path,
        size_bytes,
    })
}

fn first_file(dir: &Path) -> Option<PathBuf> {
    // A file-shaped build result is the image itself.
    if dir.is_file() {
        return Some(dir.to_path_buf());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().next()
}

/// Warns on stderr when the temporary directory Nix builds in has under 2 GiB free.
pub fn warn_if_tmp_small() {
    let tmp = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp".into());
    if let Ok(stat) = nix::sys::statvfs::statvfs(&tmp) {
        // The field types differ between platforms (u32 on some 32-bit ones).
        #[allow(clippy::useless_conversion)]
        let free = u64::from(stat.blocks_available()) * u64::from(stat.fragment_size());
        if let Some(warning) = tmp_warning(&tmp, free) {
            eprintln!("{warning}");
        }
    }
}

/// The warning for `free` bytes in the temporary directory `tmp`, if that is under 2 GiB.
fn tmp_warning(tmp: &Path, free: u64) -> Option<String> {
    (free < 2 << 30).then(|| {
        format!(
            "warning: TMPDIR ({}) has only {} MiB free; image builds often need more (\"No space left \
             on device\"): point TMPDIR at a larger directory",
            tmp.display(),
            free >> 20
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_under_two_gib_and_names_tmpdir() {
        let w = tmp_warning(Path::new("/small"), 100 << 20).unwrap();
        assert!(w.contains("TMPDIR (/small) has only 100 MiB free"), "{w}");
        assert!(tmp_warning(Path::new("/big"), 3 << 30).is_none());
    }
}
