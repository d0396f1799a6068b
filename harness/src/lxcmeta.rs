//! LXC image metadata checked against the root file system it ships with: nixpkgs'
//! `lxc-image-metadata.nix` writes `metadata.yaml` (through `lib.generators.toYAML`, which
//! writes JSON, itself YAML) with the build's `architecture` and a `templates` map
//! (`target path -> { when, template, properties }`), and puts each template at
//! `/templates/<name>.tpl`. LXC and Incus refuse an image whose architecture the host cannot
//! run and render each template into the container at `target` on the events in `when`.
//!
//! Checked: `metadata.yaml` is there and parses; its architecture is the root file system's
//! (read from the ELF header of the program that runs `/sbin/init`: NixOS's init is a script,
//! so its `#!` interpreter is followed, inside the tree); every template names a file the
//! tarball holds, an absolute target and known events.

use std::path::Path;

use crate::confined;

/// Why a metadata tarball does not describe the root file system it is paired with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LxcMetaError {
    /// No `metadata.yaml` at the top of the metadata tarball.
    #[error("the metadata tarball has no metadata.yaml at its top: pass the lxc-metadata build's tarball")]
    NoMetadata,
    /// `metadata.yaml` does not parse.
    #[error(
        "metadata.yaml does not parse ({0}); nixpkgs writes it as JSON (lib.generators.toYAML)"
    )]
    Unparsable(String),
    /// No `architecture` string.
    #[error("metadata.yaml has no architecture: LXC needs it to accept the image")]
    NoArchitecture,
    /// The root file system's architecture cannot be told.
    #[error("the lxc root file system's architecture cannot be read ({0}): pass the lxc tarball built with this metadata")]
    RootArch(String),
    /// The architectures differ.
    #[error("metadata.yaml says architecture {meta} but the lxc root file system is {rootfs}: pair the metadata and root file system of the same build")]
    ArchMismatch {
        /// What metadata.yaml says (as written).
        meta: String,
        /// What the root file system's programs are built for.
        rootfs: String,
    },
    /// A template entry is wrong.
    #[error("metadata.yaml's template for {target}: {problem}")]
    Template {
        /// The template's target path.
        target: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// LXC's architecture names, with the Debian and Go aliases LXC and Incus also accept, as
/// the kernel's (uname -m) name.
pub fn canonical_arch(name: &str) -> &str {
    match name {
        "amd64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" => "aarch64",
        "armhf" | "armel" | "armv7l" | "armv7" => "armv7l",
        "i386" | "i686" | "x86" => "i686",
        "riscv64" => "riscv64",
        "ppc64el" | "ppc64le" => "ppc64le",
        other => other,
    }
}

/// The architecture of an ELF file from its header (`e_machine`).
pub fn elf_arch(head: &[u8]) -> Option<&'static str> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let machine = match head[5] {
        1 => u16::from_le_bytes([head[18], head[19]]),
        _ => u16::from_be_bytes([head[18], head[19]]),
    };
    Some(match machine {
        0x3E => "x86_64",
        0xB7 => "aarch64",
        0x28 => "armv7l",
        0x03 => "i686",
        0xF3 => "riscv64",
        0x15 => "ppc64le",
        _ => return None,
    })
}

/// The architecture of the unpacked root file system `root`: the ELF file `/sbin/init` is,
/// or runs through its `#!` line (at most four scripts deep), every path resolved inside it.
pub fn rootfs_arch(root: &Path) -> Result<&'static str, LxcMetaError> {
    let mut path = String::from("/sbin/init");
    for _ in 0..5 {
        let file = confined::resolve_in(root, Path::new(&path))
            .map_err(|e| LxcMetaError::RootArch(e.to_string()))?;
        let head = crate::arch::head(&file, 256)
            .map_err(|e| LxcMetaError::RootArch(format!("{path}: {e}")))?;
        if let Some(arch) = elf_arch(&head) {
            return Ok(arch);
        }
        let line = head
            .strip_prefix(b"#!")
            .map(|rest| {
                String::from_utf8_lossy(rest.split(|b| *b == b'\n').next().unwrap_or(&[]))
                    .into_owned()
            })
            .ok_or_else(|| LxcMetaError::RootArch(format!("{path} is neither ELF nor a script")))?;
        path = line
            .split_whitespace()
            .next()
            .ok_or_else(|| LxcMetaError::RootArch(format!("{path} has an empty #! line")))?
            .to_string();
    }
    Err(LxcMetaError::RootArch(
        "/sbin/init runs through too many scripts".into(),
    ))
}

/// Checks the unpacked metadata tarball `meta` against the unpacked root file system `root`.
pub fn check_pair(meta: &Path, root: &Path) -> Result<(), LxcMetaError> {
    let file = confined::resolve_in(meta, Path::new("metadata.yaml"))
        .map_err(|_| LxcMetaError::NoMetadata)?;
    let text =
        std::fs::read_to_string(file).map_err(|e| LxcMetaError::Unparsable(e.to_string()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| LxcMetaError::Unparsable(e.to_string()))?;
    let arch = doc
        .get("architecture")
        .and_then(|a| a.as_str())
        .ok_or(LxcMetaError::NoArchitecture)?;
    let rootfs = rootfs_arch(root)?;
    if canonical_arch(arch) != rootfs {
        return Err(LxcMetaError::ArchMismatch {
            meta: arch.to_string(),
            rootfs: rootfs.to_string(),
        });
    }
    let templates = match doc.get("templates") {
        None | Some(serde_json::Value::Null) => return Ok(()),
        Some(serde_json::Value::Object(map)) => map,
        Some(_) => {
            return Err(LxcMetaError::Unparsable(
                "templates is not a map of target paths".into(),
            ))
        }
    };
    for (target, entry) in templates {
        let problem = |problem: String| LxcMetaError::Template {
            target: target.clone(),
            problem,
        };
        if !target.starts_with('/') {
            return Err(problem("the target is not an absolute path".into()));
        }
        let name = entry
            .get("template")
            .and_then(|t| t.as_str())
            .ok_or_else(|| problem("no template file named".into()))?;
        if name.contains('/')
            || confined::resolve_in(meta, &Path::new("templates").join(name)).is_err()
        {
            return Err(problem(format!(
                "its template {name:?} is not a file under templates/ in the metadata tarball"
            )));
        }
        let when = entry
            .get("when")
            .and_then(|w| w.as_array())
            .ok_or_else(|| problem("no `when` list".into()))?;
        for w in when {
            match w.as_str() {
                Some("create" | "copy" | "start") => {}
                other => {
                    return Err(problem(format!(
                        "unknown event {other:?} in `when` (create, copy, start)"
                    )))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    /// A root whose /sbin/init is a NixOS-like script run by an ELF shell, and a metadata tree.
    fn pair(machine: u16, metadata: &str, template: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::fs::create_dir_all(root.join("nix/store/b-bash/bin")).unwrap();
        std::fs::write(root.join("nix/store/b-bash/bin/bash"), elf(machine)).unwrap();
        std::fs::write(
            root.join("nix/store/init"),
            "#! /nix/store/b-bash/bin/bash\necho stage 2\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/nix/store/init", root.join("sbin/init")).unwrap();
        let meta = d.path().join("meta");
        std::fs::create_dir_all(meta.join("templates")).unwrap();
        std::fs::write(meta.join("metadata.yaml"), metadata).unwrap();
        if let Some(t) = template {
            std::fs::write(meta.join("templates").join(t), "{{ container.name }}").unwrap();
        }
        d
    }

    const NIXOS: &str = r#"{"architecture":"x86_64","creation_date":1,"properties":{"description":"NixOS","os":"nixos","release":"x"},"templates":{"/etc/hostname":{"properties":{},"template":"hostname.tpl","when":["create"]}}}"#;

    fn check(d: &tempfile::TempDir) -> Result<(), LxcMetaError> {
        check_pair(&d.path().join("meta"), &d.path().join("root"))
    }

    #[test]
    fn a_matching_pair_passes() {
        assert_eq!(check(&pair(0x3E, NIXOS, Some("hostname.tpl"))), Ok(()));
        let none = r#"{"architecture":"amd64","templates":{}}"#;
        assert_eq!(check(&pair(0x3E, none, None)), Ok(()));
    }

    #[test]
    fn a_mismatched_pair_fails_with_its_reason() {
        let err = check(&pair(0xB7, NIXOS, Some("hostname.tpl"))).unwrap_err();
        assert_eq!(
            err,
            LxcMetaError::ArchMismatch {
                meta: "x86_64".into(),
                rootfs: "aarch64".into()
            }
        );
        assert!(err.to_string().contains("same build"), "{err}");
        let err = check(&pair(0x3E, NIXOS, None)).unwrap_err();
        assert!(err.to_string().contains("hostname.tpl"), "{err}");
        let bad_when = NIXOS.replace("\"create\"", "\"boot\"");
        let err = check(&pair(0x3E, &bad_when, Some("hostname.tpl"))).unwrap_err();
        assert!(err.to_string().contains("unknown event"), "{err}");
        let err = check(&pair(0x3E, "architecture: [", None)).unwrap_err();
        assert!(matches!(err, LxcMetaError::Unparsable(_)), "{err}");
        let err = check(&pair(0x3E, r#"{"templates":{}}"#, None)).unwrap_err();
        assert_eq!(err, LxcMetaError::NoArchitecture);
    }

    #[test]
    fn init_links_never_leave_the_tree() {
        let d = pair(0x3E, NIXOS, Some("hostname.tpl"));
        let root = d.path().join("root");
        std::fs::remove_file(root.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("/bin/sh", root.join("sbin/init")).unwrap();
        assert!(matches!(rootfs_arch(&root), Err(LxcMetaError::RootArch(_))));
    }
}
