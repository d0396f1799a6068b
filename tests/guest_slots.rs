//! `NIXGEN_GUEST_SLOTS` (`--guest-slots`) through the command, with the harness's fake QEMU
//! (`harness/tests/fake-qemu`, via `NIXGEN_QEMU`): while other processes hold every slot of
//! the directory, a `--check` starts no guest and says why; once a slot is free it boots.
//! Needs python3 (the fake QEMU).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fake_qemu() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/tests/fake-qemu")
}

/// Takes every slot of `dir` (one per core) through the harness, as another process's guests
/// would: flocks on other open file descriptions of the same files, so the command cannot
/// take them.
fn hold_every_slot(dir: &Path) -> harness::slots::Held {
    let all = u32::try_from(harness::slots::total()).unwrap();
    harness::slots::try_acquire(dir, all)
        .unwrap()
        .expect("a fresh slot directory has every slot free")
}

#[test]
fn a_check_waits_while_every_slot_is_held_and_boots_once_one_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[510..512].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(&disk, bytes).unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let slots = tmp.path().join("slots");
    let held = hold_every_slot(&slots);

    let mut child = Command::new(env!("CARGO_BIN_EXE_nixos-generate"))
        .args(["-f", "raw", "--check", "--accel", "tcg", "--image"])
        .arg(&disk)
        .args(["--", "-name", "fake:boot"])
        .env("NIXGEN_QEMU", fake_qemu())
        .env("NIXGEN_GUEST_SLOTS", &slots)
        .env("TMPDIR", &run)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The fake guest reaches multi-user in well under a second once started: still running
    // after two seconds, with no QEMU started in its run directory, the command is waiting.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "did not wait for a slot"
    );
    let started_qemu = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .any(|e| e.path().join("qemu.stderr").exists());
    assert!(!started_qemu, "QEMU started while every slot was held");

    drop(held);
    let freed = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        freed.elapsed() < Duration::from_secs(20),
        "{:?}",
        freed.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "waiting for a free guest slot in {}",
            slots.display()
        )),
        "{stderr}"
    );
}
