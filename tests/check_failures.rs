//! `--check` on the stand-ins that must not pass: every broken one fails with its reason
//! (exit 3), every refused one exits 2 with its one-line reason before anything boots, and a
//! failed check prints its reason, the serial tail and the kept run directory.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod standins;
use standins::*;

#[test]
fn every_broken_standin_fails_with_its_reason() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let broken: Vec<&Standin> = all
        .iter()
        .filter(|s| s.expect != "multi-user" && s.expect != "refused")
        .collect();
    assert!(
        broken.len() >= 5,
        "expected the broken stand-ins: {broken:?}"
    );
    // The stand-in that hangs on purpose is ended by a short deadline in a check of its own,
    // which also shows what a person reads (no --json); every other one must fail by itself, so
    // it gets the default deadline (a ceiling, not a timing: emergency mode, the slowest, takes
    // 20-30 s under TCG on an idle machine and more than 45 s beside the matrix on a slow one).
    // The two checks run side by side.
    let (hang, by_themselves): (Vec<&Standin>, Vec<&Standin>) =
        broken.iter().partition(|s| s.expect == "timeout");
    assert_eq!(hang.len(), 1, "expected one hanging stand-in: {broken:?}");
    let tmp = tempfile::tempdir().unwrap();
    let spawn = |args: &[&str], standins: &[&Standin]| {
        command_on(tmp.path(), args, &dir, standins)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let hanging = spawn(&["--check", "--timeout", "45"], &hang);
    let failing = spawn(&["--check", "--json"], &by_themselves);
    // Both end before either is judged: a failed assertion leaves no check running.
    let (hanging, failing) = (
        hanging.wait_with_output().unwrap(),
        failing.wait_with_output().unwrap(),
    );
    assert_failed_check_is_readable(&hanging, "timeout");
    assert_failed_with_reasons(&failing, &by_themselves);
    assert_nothing_left(tmp.path());
}

/// A failed check, as a person reads it: exit 3, the reason, the serial tail and the kept run
/// directory with its serial log (removed here).
fn assert_failed_check_is_readable(out: &Output, reason: &str) {
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("did not boot: {reason}")),
        "{stdout}"
    );
    assert!(stdout.contains("serial lines --"), "{stdout}");
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("-- run directory kept: "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no kept run directory in {stdout}"));
    assert!(Path::new(kept).join("serial.log").is_file());
    std::fs::remove_dir_all(kept).unwrap();
}

/// Every row of a check of broken stand-ins failed with its stand-in's reason and kept its
/// run directory with the serial log (removed here).
fn assert_failed_with_reasons(out: &Output, broken: &[&Standin]) {
    assert_eq!(
        out.status.code(),
        Some(3),
        "did not boot = 3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_rows(out);
    assert_eq!(rows.len(), broken.len(), "one row per image: {rows:#?}");
    for (row, standin) in rows.iter().zip(broken) {
        assert_eq!(row["verdict"], "failed", "{}: {row:#}", standin.name);
        assert_eq!(
            row["reason"],
            standin.expect.as_str(),
            "{}: {row:#}",
            standin.name
        );
        let kept = PathBuf::from(
            row["run_dir"]
                .as_str()
                .expect("a failed run keeps its directory"),
        );
        assert!(
            kept.join("serial.log").is_file(),
            "{}: {row:#}",
            standin.name
        );
        std::fs::remove_dir_all(&kept).unwrap();
    }
}

/// What a refused stand-in's one-line error must say.
fn refusal(name: &str) -> &'static str {
    match name {
        "proxmox-truncated" => "the archive is truncated (extent",
        "lxc-metadata-mismatch" => {
            "metadata.yaml says architecture aarch64 but the lxc root file system is x86_64"
        }
        other => panic!("no expected refusal for stand-in {other}"),
    }
}

#[test]
fn every_refused_standin_exits_2_with_its_reason_and_nothing_boots_it() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let refused: Vec<&Standin> = all.iter().filter(|s| s.expect == "refused").collect();
    assert!(
        refused.len() >= 2,
        "expected refused stand-ins: {refused:?}"
    );
    let lxc = standin(&all, "lxc");
    for s in refused {
        let tmp = tempfile::tempdir().unwrap();
        // Metadata is checked with its lxc pair, which then boots on its own row.
        let mut images = vec![s];
        if profile_of(s) == formats::Profile::ContainerMetadata {
            images.push(lxc);
        }
        let out = check_images(
            tmp.path(),
            &["--check", "--json", "--timeout", "120"],
            &dir,
            &images,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", s.name);
        assert!(err.contains(refusal(&s.name)), "{}: {err}", s.name);
        let rows = json_rows(&out);
        assert_eq!(rows[0]["reason"], "could-not-start", "{}", s.name);
        assert_eq!(
            rows[0]["elapsed_s"],
            serde_json::Value::Null,
            "never booted"
        );
        assert_nothing_left(tmp.path());
    }
}

#[test]
fn lxc_metadata_without_its_lxc_pair_is_refused() {
    let (dir, all) = standins();
    let meta = standin(&all, "lxc-metadata");
    let tmp = tempfile::tempdir().unwrap();
    let out = check_images(tmp.path(), &["--check"], &dir, &[meta]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("format lxc-metadata is checked with its lxc pair")
            && err.contains("add -f lxc"),
        "{err}"
    );
    assert_nothing_left(tmp.path());
}
