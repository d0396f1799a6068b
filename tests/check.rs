//! `--check` and `--run` as a user runs them, on the stand-in images (real QEMU boots under
//! TCG): a good stand-in of every readiness path passes in one parallel call, `--check=console`
//! reports the system state, Ctrl-C and SIGTERM leave nothing behind, a killed QEMU is reported
//! at once, and `--run` can be driven from a terminal (expectrl). The broken stand-ins are
//! tests/check_failures.rs's; every other good stand-in boots in the matrix (scenarios/tests)
//! or in the harness's boot_standins (the aarch64 UEFI disks and ISO among them).

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod standins;
use standins::*;

/// How a good stand-in's readiness reaches the harness: systemd's notify socket from a container,
/// vsock from systemd >= 254 in a VM, else the serial console.
fn readiness_path(s: &Standin) -> &'static str {
    match (profile_of(s), s.systemd.unwrap_or(0) >= 254) {
        (p, _) if p.is_container() => "notify-socket",
        (_, true) => "vsock",
        (_, false) => "serial",
    }
}

#[test]
fn a_good_standin_of_every_readiness_path_passes_check_in_one_parallel_call() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    // One good stand-in per readiness path, machines and a container in one call. Every boot
    // profile's stand-in goes through this same command in the matrix (scenarios/tests), so
    // booting each again here would only repeat those boots.
    let mut seen = std::collections::HashSet::new();
    let good: Vec<&Standin> = all
        .iter()
        .filter(|s| s.expect == "multi-user")
        .filter(|s| seen.insert(readiness_path(s)))
        .collect();
    assert_eq!(
        good.len(),
        3,
        "expected a good stand-in of every readiness path: {good:?}"
    );
    // harness/tests/boot_standins.rs leaves old-systemd to this test.
    assert!(
        good.iter().any(|s| s.name == "old-systemd"),
        "the serial path's stand-in is not old-systemd: {good:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = check_images(tmp.path(), &["--check", "--json"], &dir, &good);
    let rows = json_rows(&out);
    assert_eq!(rows.len(), good.len());
    for (row, standin) in rows.iter().zip(&good) {
        assert_eq!(row["verdict"], "multi-user", "{}: {row:#}", standin.name);
        assert_eq!(row["format"], standin.format.as_str());
        let milestones = row["milestones"].as_array().unwrap();
        assert_eq!(
            milestones.last().unwrap()["milestone"],
            "multi-user",
            "{}: {row:#}",
            standin.name
        );
        assert_eq!(
            row["readiness_source"],
            readiness_path(standin),
            "{}: {row:#}",
            standin.name
        );
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_nothing_left(tmp.path());
}

/// `--check=console` logs in on the serial console after the boot: the table says what the
/// system said, and `--json` carries the console facts.
#[test]
fn check_console_logs_in_and_reports_the_system_state() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let vm = standin(&all, "vm");
    let tmp = tempfile::tempdir().unwrap();
    let out = check_images(tmp.path(), &["--check=console"], &dir, &[vm]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("vm "))
        .unwrap_or_else(|| panic!("no table row for vm: {text}"));
    assert!(
        row.contains("multi-user, console running"),
        "the row names the console's state: {row}"
    );
    assert_nothing_left(tmp.path());
}

/// Waits until a guest runs under `tmp` (a run directory there holds a non-empty serial log).
/// Generous: under `ci/test` the guest may first wait for a slot that other test binaries'
/// guests hold (`NIXGEN_GUEST_SLOTS`).
fn wait_until_a_guest_runs_in(tmp: &Path) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let started = std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .any(|e| std::fs::metadata(e.path().join("serial.log")).is_ok_and(|m| m.len() > 0));
        if started {
            return;
        }
        assert!(Instant::now() < deadline, "the guest never started");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `signal` to a `--check` once its guest runs: the command exits with `code` and
/// leaves no process or directory behind.
fn signal_during_a_check_leaves_nothing_behind(signal: nix::sys::signal::Signal, code: i32) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let raw_efi = standin(&all, "raw-efi");
    let tmp = tempfile::tempdir().unwrap();
    let mut child = command_on(tmp.path(), &["--check"], &dir, &[raw_efi])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_a_guest_runs_in(tmp.path());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code), "exit status after {signal}");
    assert_nothing_left(tmp.path());
}

#[test]
fn ctrl_c_during_a_check_leaves_nothing_behind() {
    signal_during_a_check_leaves_nothing_behind(nix::sys::signal::SIGINT, 130);
}

/// What a CI system sends when it cancels a job.
#[test]
fn sigterm_during_a_check_leaves_nothing_behind() {
    signal_during_a_check_leaves_nothing_behind(nix::sys::signal::SIGTERM, 143);
}

/// QEMU killed outright mid-boot (the OOM killer, a crash): `--check` decides at once with
/// reason `qemu-exited` and the signal, exits 3 and keeps the run directory as evidence.
#[test]
fn qemu_killed_mid_boot_is_reported_within_seconds() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let raw_efi = standin(&all, "raw-efi");
    let tmp = tempfile::tempdir().unwrap();
    let child = command_on(
        tmp.path(),
        &["--check", "--json", "--accel", "tcg"],
        &dir,
        &[raw_efi],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_until_a_guest_runs_in(tmp.path());
    let qemu: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("qemu-system") && cmdline.contains(tmp.path().to_str().unwrap())
        })
        .collect();
    assert_eq!(qemu.len(), 1, "one QEMU of the check: {qemu:?}");
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(qemu[0]),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = killed.elapsed();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(5),
        "decided {took:?} after the kill"
    );
    let rows = json_rows(&out);
    assert_eq!(rows[0]["reason"], "qemu-exited", "{rows:?}");
    assert_eq!(
        rows[0]["detail"],
        "qemu-exited: QEMU was killed by signal 9 (SIGKILL)"
    );
    let kept = rows[0]["run_dir"]
        .as_str()
        .expect("the run directory is kept");
    assert!(Path::new(kept).join("serial.log").is_file());
    std::fs::remove_dir_all(kept).unwrap();
    assert_nothing_left(tmp.path());
}

/// SIGTERM to `--run` (its console attached) stops the guest and removes the run directory.
#[test]
fn sigterm_during_run_leaves_nothing_behind() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let vm = standin(&all, "vm");
    let tmp = tempfile::tempdir().unwrap();
    let child = command_on(tmp.path(), &["--run"], &dir, &[vm])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_a_guest_runs_in(tmp.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert_nothing_left(tmp.path());
}

#[test]
fn run_is_interactive_from_a_terminal() {
    use expectrl::{ControlCode, Expect, Session};

    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let vm = standin(&all, "vm");
    let tmp = tempfile::tempdir().unwrap();
    let status_file = tmp.path().join("status");
    // On a pseudo-terminal of expectrl's, through a shell that records the exit status.
    let command = shell_words::join([
        "env".to_string(),
        format!("TMPDIR={}", tmp.path().join("run").display()),
        env!("CARGO_BIN_EXE_nixos-generate").to_string(),
        "--run".into(),
        "-f".into(),
        "vm".into(),
        "--image".into(),
        dir.join(&vm.name).display().to_string(),
    ]) + &format!(
        "; echo $? > {}",
        shell_words::quote(status_file.to_str().unwrap())
    );
    std::fs::create_dir(tmp.path().join("run")).unwrap();
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(&command);
    let mut term = Session::spawn(shell).expect("spawn on a pseudo-terminal");
    term.get_process_mut()
        .set_window_size(160, 50)
        .expect("set the terminal size");
    let wait_for = |term: &mut expectrl::session::OsSession, needle: &str, within: Duration| {
        term.set_expect_timeout(Some(within));
        if let Err(e) = term.expect(needle) {
            panic!("{needle:?} never appeared on the terminal: {e}");
        }
    };
    wait_for(&mut term, "root@standin", Duration::from_secs(300));
    term.send_line("echo answer-$((6*7))").unwrap();
    wait_for(&mut term, "answer-42", Duration::from_secs(60));
    term.send(ControlCode::GroupSeparator).unwrap(); // Ctrl-]
    let deadline = Instant::now() + Duration::from_secs(90);
    while !status_file.exists() {
        assert!(Instant::now() < deadline, "--run did not end after Ctrl-]");
        // Keep reading the terminal, so that nothing blocks on a full one.
        let _ = term.check("\n");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(std::fs::read_to_string(&status_file).unwrap().trim(), "0");
    std::fs::remove_file(&status_file).unwrap();
    assert_nothing_left(&tmp.path().join("run"));
}
