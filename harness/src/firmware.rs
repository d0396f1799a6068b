//! OVMF (UEFI) firmware: chosen from QEMU's firmware descriptors
//! (`/usr/share/qemu/firmware/*.json`) or given explicitly, with a private copy of the
//! variable store per run.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::HarnessError;

/// Where QEMU's firmware descriptors live, in the order they are searched.
pub const DESCRIPTOR_DIRS: &[&str] = &["/etc/qemu/firmware", "/usr/share/qemu/firmware"];

/// Descriptor features that need more than a plain `-drive if=pflash` (SMM, enrolled keys).
const UNWANTED_FEATURES: &[&str] = &[
    "secure-boot",
    "requires-smm",
    "enrolled-keys",
    "amd-sev-es",
    "intel-tdx",
];

/// An OVMF build: its code (read-only) and its variable store template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ovmf {
    /// The code flash image.
    pub code: PathBuf,
    /// The variable store template, copied per run.
    pub vars_template: PathBuf,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "interface-types", default)]
    interface_types: Vec<String>,
    mapping: Mapping,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Deserialize)]
struct Mapping {
    device: String,
    executable: Option<FileRef>,
    #[serde(rename = "nvram-template")]
    nvram_template: Option<FileRef>,
}

#[derive(Deserialize)]
struct FileRef {
    filename: PathBuf,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    architecture: String,
}

/// Parses one descriptor: `Some` if it is a plain (no secure boot, no SMM) x86_64 UEFI flash
/// firmware in raw format.
pub fn parse_descriptor(json: &str) -> Option<Ovmf> {
    parse_descriptor_for(json, "x86_64")
}

/// Parses one descriptor: `Some` if it is a plain (no secure boot, no SMM) UEFI flash firmware
/// in raw format for `arch` (QEMU's name: `x86_64`, `aarch64`).
pub fn parse_descriptor_for(json: &str, arch: &str) -> Option<Ovmf> {
    let d: Descriptor = serde_json::from_str(json).ok()?;
    let uefi = d.interface_types.iter().any(|t| t == "uefi");
    let for_arch = d.targets.iter().any(|t| t.architecture == arch);
    let plain = !d
        .features
        .iter()
        .any(|f| UNWANTED_FEATURES.contains(&f.as_str()));
    if !(uefi && for_arch && plain && d.mapping.device == "flash") {
        return None;
    }
    let code = d.mapping.executable?;
    let vars = d.mapping.nvram_template?;
    let raw = |f: &FileRef| f.format.as_deref().map_or(true, |x| x == "raw");
    if !raw(&code) || !raw(&vars) {
        return None;
    }
    Some(Ovmf {
        code: code.filename,
        vars_template: vars.filename,
    })
}

/// The first usable OVMF named by the descriptors in `dirs` (files sorted by name, as QEMU's
/// priority prefixes intend), whose files exist.
pub fn from_descriptors(dirs: &[&Path]) -> Option<Ovmf> {
    from_descriptors_for(dirs, "x86_64")
}

/// [`from_descriptors`] for the UEFI firmware of another architecture (`aarch64`: AAVMF).
pub fn from_descriptors_for(dirs: &[&Path], arch: &str) -> Option<Ovmf> {
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|text| parse_descriptor_for(&text, arch))
        .find(|o| o.code.is_file() && o.vars_template.is_file())
}

/// The variable template that goes with an explicit code file: `*CODE*` -> `*VARS*` beside it.
pub fn vars_for_code(code: &Path) -> Option<PathBuf> {
    let name = code.file_name()?.to_str()?;
    let vars = name.replace("CODE", "VARS").replace("code", "vars");
    let path = code.with_file_name(vars);
    (path != code && path.is_file()).then_some(path)
}

/// The environment variable naming an OVMF code file when no override is given (the Nix
/// package's wrapper sets it: QEMU's descriptors there live in the store, not in /usr/share).
pub const OVMF_CODE_ENV: &str = "NIXGEN_OVMF_CODE";

/// The descriptor directories to search: the system's, then the one beside the QEMU binary on
/// PATH (`<prefix>/bin/qemu-system-x86_64` -> `<prefix>/share/qemu/firmware`).
pub(crate) fn descriptor_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = DESCRIPTOR_DIRS.iter().map(PathBuf::from).collect();
    if let Some(qemu) = which_qemu() {
        if let Some(prefix) = qemu.parent().and_then(Path::parent) {
            dirs.push(prefix.join("share/qemu/firmware"));
        }
    }
    dirs
}

fn which_qemu() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("qemu-system-x86_64"))
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

/// Finds OVMF: the override if given (its vars template beside it), else `$NIXGEN_OVMF_CODE`,
/// else QEMU's firmware descriptors. Missing firmware is a one-line error naming the package.
pub fn locate(override_code: Option<&Path>) -> Result<Ovmf, HarnessError> {
    let from_env = std::env::var_os(OVMF_CODE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(code) = override_code.map(Path::to_path_buf).or(from_env) {
        let code = code.as_path();
        if !code.is_file() {
            return Err(HarnessError::Firmware(format!(
                "UEFI firmware {} not found",
                code.display()
            )));
        }
        let vars_template = vars_for_code(code).ok_or_else(|| {
            HarnessError::Firmware(format!(
                "no UEFI variable store template (*VARS*) beside {}",
                code.display()
            ))
        })?;
        return Ok(Ovmf {
            code: code.to_path_buf(),
            vars_template,
        });
    }
    let dirs = descriptor_dirs();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    from_descriptors(&dirs).ok_or_else(|| {
        HarnessError::Firmware(
            "no UEFI firmware (OVMF) found in /usr/share/qemu/firmware: install the `ovmf` package (Nix: OVMF.fd)"
                .to_string(),
        )
    })
}

/// Copies the variable template to `dest` (writable, private to the run).
pub fn private_vars(ovmf: &Ovmf, dest: &Path) -> Result<(), HarnessError> {
    std::fs::copy(&ovmf.vars_template, dest)
        .map_err(|e| HarnessError::io(format!("copy {}", ovmf.vars_template.display()), e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| HarnessError::io("chmod the UEFI variables", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = r#"{
        "description": "UEFI firmware for x86_64",
        "interface-types": ["uefi"],
        "mapping": {"device": "flash",
            "executable": {"filename": "/fw/OVMF_CODE_4M.fd", "format": "raw"},
            "nvram-template": {"filename": "/fw/OVMF_VARS_4M.fd", "format": "raw"}},
        "targets": [{"architecture": "x86_64", "machines": ["pc-q35-*"]}],
        "features": ["acpi-s3", "amd-sev", "verbose-dynamic"], "tags": []
    }"#;

    #[test]
    fn plain_descriptor_is_used() {
        let o = parse_descriptor(PLAIN).unwrap();
        assert_eq!(o.code, PathBuf::from("/fw/OVMF_CODE_4M.fd"));
        assert_eq!(o.vars_template, PathBuf::from("/fw/OVMF_VARS_4M.fd"));
    }

    #[test]
    fn secure_boot_other_arch_and_garbage_are_skipped() {
        let secure = PLAIN.replace("\"acpi-s3\"", "\"secure-boot\", \"requires-smm\"");
        assert_eq!(parse_descriptor(&secure), None);
        assert_eq!(
            parse_descriptor(&PLAIN.replace("x86_64\"", "aarch64\"")),
            None
        );
        assert_eq!(
            parse_descriptor(&PLAIN.replace("\"uefi\"", "\"bios\"")),
            None
        );
        assert_eq!(
            parse_descriptor(&PLAIN.replace("\"raw\"", "\"qcow2\"")),
            None
        );
        assert_eq!(parse_descriptor("{not json"), None);
        let arm = PLAIN.replace("x86_64\"", "aarch64\"");
        assert_eq!(
            parse_descriptor_for(&arm, "aarch64").map(|o| o.code),
            Some(PathBuf::from("/fw/OVMF_CODE_4M.fd"))
        );
    }

    #[test]
    fn descriptors_sorted_by_priority_and_files_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let fw = dir.path();
        std::fs::write(fw.join("CODE.fd"), b"c").unwrap();
        std::fs::write(fw.join("VARS.fd"), b"v").unwrap();
        let good = PLAIN
            .replace("/fw/OVMF_CODE_4M.fd", fw.join("CODE.fd").to_str().unwrap())
            .replace("/fw/OVMF_VARS_4M.fd", fw.join("VARS.fd").to_str().unwrap());
        std::fs::write(fw.join("60-good.json"), &good).unwrap();
        std::fs::write(fw.join("10-missing-files.json"), PLAIN).unwrap();
        let o = from_descriptors(&[fw]).unwrap();
        assert_eq!(o.code, fw.join("CODE.fd"));
        assert_eq!(vars_for_code(&fw.join("CODE.fd")), Some(fw.join("VARS.fd")));
        assert_eq!(from_descriptors(&[&fw.join("nope")]), None);
    }

    #[test]
    fn missing_override_is_one_line() {
        let e = locate(Some(Path::new("/nonexistent/OVMF_CODE.fd"))).unwrap_err();
        assert!(!e.to_string().contains('\n'));
    }
}
