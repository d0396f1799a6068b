//! The accelerator contract through the command, with the harness's fake QEMU
//! (`harness/tests/fake-qemu`, via `NIXGEN_QEMU`; `-- -name fake:MODE` picks its failure):
//! `NIXGEN_ACCEL` sets `--accel`; an explicit KVM that fails is `accelerator-failure` (exit 3)
//! with QEMU's line; under `auto` the guest is restarted under TCG and the summary row, its
//! footnote and `--json` say so. Needs python3; the `auto` test needs /dev/kvm.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fake_qemu() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/tests/fake-qemu")
}

/// `nixos-generate -f raw --check --image DISK ARGS -- -name fake:MODE` with the fake QEMU.
fn check(tmp: &Path, mode: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let disk = tmp.join("disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[510..512].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(&disk, bytes).unwrap();
    let run = tmp.join("run");
    std::fs::create_dir_all(&run).unwrap();
    Command::new(env!("CARGO_BIN_EXE_nixos-generate"))
        .args(["-f", "raw", "--check", "--timeout", "30", "--image"])
        .arg(&disk)
        .args(args)
        .args(["--", "-name", &format!("fake:{mode}")])
        .env("NIXGEN_QEMU", fake_qemu())
        .env("TMPDIR", &run)
        .env_remove("NIXGEN_ACCEL")
        // A fake QEMU uses no core: it waits for no guest slot.
        .env_remove("NIXGEN_GUEST_SLOTS")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn nixgen_accel_kvm_never_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let out = check(
        tmp.path(),
        "internal-error",
        &["--json"],
        &[("NIXGEN_ACCEL", "kvm")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["accelerator"], "kvm");
    assert_eq!(row["reason"], "accelerator-failure");
    assert_eq!(row["kvm_dropped"], serde_json::Value::Null);
    assert_eq!(
        row["detail"],
        "accelerator-failure: KVM internal error. Suberror: 1 (emulation failure)"
    );
    std::fs::remove_dir_all(row["run_dir"].as_str().unwrap()).unwrap();
}

#[test]
fn nixgen_accel_tcg_is_honoured_and_the_flag_wins() {
    let tmp = tempfile::tempdir().unwrap();
    // The fake fails under KVM: a pass proves TCG was used.
    let out = check(tmp.path(), "msr", &["--json"], &[("NIXGEN_ACCEL", "tcg")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["accelerator"], "tcg");
    let out = check(
        tmp.path(),
        "msr",
        &["--json", "--accel", "kvm"],
        &[("NIXGEN_ACCEL", "tcg")],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["reason"], "accelerator-failure");
    std::fs::remove_dir_all(rows[0]["run_dir"].as_str().unwrap()).unwrap();
}

#[test]
fn a_bad_nixgen_accel_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = check(tmp.path(), "boot", &[], &[("NIXGEN_ACCEL", "hvf")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("hvf"), "{}", text(&out.stderr));
}

#[test]
fn auto_restarts_under_tcg_and_the_summary_says_so() {
    if !Path::new("/dev/kvm").exists() {
        eprintln!("SKIPPED auto_restarts_under_tcg_and_the_summary_says_so: no /dev/kvm, so `auto` never starts a guest under KVM");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = check(tmp.path(), "internal-error", &[], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let row = stdout.lines().find(|l| l.starts_with("raw ")).unwrap();
    assert!(
        row.contains("multi-user") && row.contains("tcg*"),
        "{stdout}"
    );
    assert!(
        stdout.contains("* KVM failed (KVM internal error. Suberror: 1 (emulation failure))"),
        "{stdout}"
    );
    assert!(
        stderr.contains("KVM failed (KVM internal error"),
        "progress names the restart: {stderr}"
    );
}
