//! Every Nix file in the repository parses with `nix-instantiate --parse` (Debian's nix-bin,
//! installed by ci/test).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let kind = entry.file_type().unwrap();
        // formats/tests/eval/user-flake/nixpkgs/source links into nix-eval's chroot.
        if kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            nix_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nix") {
            out.push(path);
        }
    }
}

#[test]
fn every_nix_file_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    nix_files(root, &mut files);
    assert!(
        files.len() >= 33,
        "expected the format modules and entry files, found {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let out = Command::new("nix-instantiate")
            .arg("--parse")
            .arg(file)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run nix-instantiate ({e}): install Debian's nix-bin (ci/test does)")
            });
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "Nix files that do not parse:\n{}",
        failures.join("\n")
    );
}
