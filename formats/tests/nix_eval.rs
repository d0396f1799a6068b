//! The Nix side evaluated for real against a mock nixpkgs (formats/tests/nix/run.sh): argument
//! plumbing of entry.nix (hostile paths, specialArgs, diskSize, flakes), every format module's
//! top level, and the flake covering exactly the registry's formats.

use std::{path::Path, process::Command};

#[test]
fn entry_and_modules_evaluate_against_mock_nixpkgs() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nix/run.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed (needs Debian's nix-bin; ci/test installs it):\n{stdout}\n{stderr}",
        script.display()
    );
    assert!(stdout.contains("all Nix checks passed"), "{stdout}");
}
