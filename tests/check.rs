//! `--check` and `--run` as a user runs them, on the stand-in images (real QEMU boots under
//! TCG): every good stand-in passes, every broken one fails with its reason, Ctrl-C leaves
//! nothing behind, and `--run` can be driven from a terminal (expectrl).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use test_support::{read_manifest, standins_dir, Standin};

/// One guest-heavy test at a time in this binary (each check may itself run two guests).
static SERIAL: Mutex<()> = Mutex::new(());

/// The stand-ins directory (`$NIXGEN_STANDINS`, else `ci/standins/build`) and its manifest.
fn standins() -> (PathBuf, Vec<Standin>) {
    let dir = standins_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("the boot tests need stand-ins: {e}"));
    let manifest = read_manifest(&dir).unwrap_or_else(|e| panic!("{e}"));
    (dir, manifest)
}

/// The stand-in called `name`.
fn standin<'a>(all: &'a [Standin], name: &str) -> &'a Standin {
    all.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stand-in called {name}"))
}

/// The boot profile of a stand-in's format.
fn profile_of(s: &Standin) -> formats::Profile {
    formats::registry()
        .get(&s.format)
        .unwrap_or_else(|| panic!("unknown format {}", s.format))
        .profile
}

fn nixos_generate(tmp: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nixos-generate"));
    c.env("TMPDIR", tmp).stdin(Stdio::null());
    c
}

/// `-f F --image I` for each stand-in, in order.
fn image_args(dir: &Path, standins: &[&Standin]) -> Vec<String> {
    standins
        .iter()
        .flat_map(|s| {
            [
                "-f".into(),
                s.format.clone(),
                "--image".into(),
                dir.join(&s.name).display().to_string(),
            ]
        })
        .collect()
}

fn json_rows(out: &Output) -> Vec<serde_json::Value> {
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json printed no JSON ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Nothing of a run is left: no QEMU or helper process, no run directory.
fn assert_nothing_left(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
    let needle = tmp.to_str().unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains(needle), "process left running: {cmdline}");
    }
}

#[test]
fn a_good_standin_of_every_boot_profile_passes_check_in_one_parallel_call() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    // One good stand-in per boot profile and systemd version: the command's paths. The matrix
    // boots every format's stand-in through the harness.
    let mut seen = std::collections::HashSet::new();
    let good: Vec<&Standin> = all
        .iter()
        .filter(|s| s.expect == "multi-user")
        .filter(|s| seen.insert((profile_of(s), s.systemd)))
        .collect();
    assert!(
        good.len() >= 9,
        "expected a good stand-in of every boot profile: {good:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = nixos_generate(tmp.path())
        .arg("--check")
        .arg("--json")
        .args(image_args(&dir, &good))
        .output()
        .unwrap();
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
        let expected_source = match (profile_of(standin), standin.systemd.unwrap_or(0) >= 254) {
            (p, _) if p.is_container() => "notify-socket",
            (_, true) => "vsock",
            (_, false) => "serial",
        };
        assert_eq!(
            row["readiness_source"], expected_source,
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
    let out = nixos_generate(tmp.path())
        .arg("--check=console")
        .args(image_args(&dir, &[vm]))
        .output()
        .unwrap();
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

/// aarch64 UEFI disks and ISOs boot on qemu-system-aarch64 through AAVMF, found from the image
/// itself: a raw disk's or an ISO's ESP holds only BOOTAA64.EFI; a qcow2's head is read through
/// qemu-img. One at a time (each is an emulated aarch64 guest).
#[test]
fn aarch64_uefi_disks_boot_through_aavmf() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    for name in ["raw-efi-aarch64", "qcow-efi-aarch64", "iso-aarch64"] {
        let s = standin(&all, name);
        let tmp = tempfile::tempdir().unwrap();
        let out = nixos_generate(tmp.path())
            .args(["--check", "--json"])
            .args(image_args(&dir, &[s]))
            .output()
            .unwrap();
        let rows = json_rows(&out);
        assert_eq!(rows[0]["verdict"], "multi-user", "{name}: {:#}", rows[0]);
        assert_eq!(rows[0]["accelerator"], "tcg", "{name}");
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_nothing_left(tmp.path());
    }
}

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
    let tmp = tempfile::tempdir().unwrap();
    let out = nixos_generate(tmp.path())
        .args(["--check", "--json", "--timeout", "90"])
        .args(image_args(&dir, &broken))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "did not boot = 3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (row, standin) in json_rows(&out).iter().zip(&broken) {
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
    assert_nothing_left(tmp.path());
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
        let out = nixos_generate(tmp.path())
            .args(["--check", "--json", "--timeout", "120"])
            .args(image_args(&dir, &images))
            .output()
            .unwrap();
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
    let out = nixos_generate(tmp.path())
        .arg("--check")
        .args(image_args(&dir, &[meta]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("format lxc-metadata is checked with its lxc pair")
            && err.contains("add -f lxc"),
        "{err}"
    );
    assert_nothing_left(tmp.path());
}

#[test]
fn a_failed_check_prints_the_reason_serial_tail_and_run_dir() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, all) = standins();
    let emergency = all
        .iter()
        .find(|s| s.expect == "emergency-mode")
        .expect("an emergency stand-in");
    let tmp = tempfile::tempdir().unwrap();
    let out = nixos_generate(tmp.path())
        .arg("--check")
        .args(image_args(&dir, &[emergency]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("did not boot: emergency-mode"), "{stdout}");
    assert!(stdout.contains("serial lines --"), "{stdout}");
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("-- run directory kept: "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no kept run directory in {stdout}"));
    assert!(Path::new(kept).join("serial.log").is_file());
    std::fs::remove_dir_all(kept).unwrap();
}

/// Waits until a guest runs under `tmp` (a run directory there holds a non-empty serial log).
fn wait_until_a_guest_runs_in(tmp: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
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
    let mut child = nixos_generate(tmp.path())
        .arg("--check")
        .args(image_args(&dir, &[raw_efi]))
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
    let child = nixos_generate(tmp.path())
        .args(["--check", "--json", "--accel", "tcg"])
        .args(image_args(&dir, &[raw_efi]))
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
    let child = nixos_generate(tmp.path())
        .arg("--run")
        .args(image_args(&dir, &[vm]))
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
