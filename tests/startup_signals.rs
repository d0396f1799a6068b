//! Ctrl-C, SIGTERM and SIGHUP during the start-up of `--run` and `--check` (the KVM probe,
//! unpacking, waiting for QMP), each phase held open (by a fake program, or by a disk that takes
//! long to decompress): the command exits with the documented code, and neither the fake
//! program nor the run directory outlives it.

mod sandbox;

use std::{
    fs,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use sandbox::{text, Sandbox, SERIAL};

/// What `found` returns once it returns something, polled while the command runs; panics naming
/// `what` if the command ends first or 30 s pass.
fn wait_while_running<T>(child: &mut Child, what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = found() {
            return value;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the command ended ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid a fake program wrote into `file`, once it is there.
fn wait_for_pid(file: &Path, child: &mut Child) -> i32 {
    wait_while_running(child, "the fake program started", || {
        fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
}

/// Waits for the decompressed disk in the run directory under `tmp`, once decompressing began.
/// Its length is still 0 (the length is set when decompressing ends).
fn wait_for_unpacking(tmp: &Path, child: &mut Child) {
    let disk = wait_while_running(child, "it began decompressing", || {
        fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|run| run.path().join("disk.img"))
            .find(|disk| disk.exists())
    });
    let len = fs::metadata(&disk).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        len,
        0,
        "{} was decompressed before the signal",
        disk.display()
    );
}

fn gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if zombie || kill(Pid::from_raw(pid), None).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The start-up phases a signal can hit, each held open by a fake program that records its pid
/// in `files/pid` and sleeps.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// The KVM probe (`--accel auto`): a fake `qemu-system-x86_64` on PATH.
    Probe,
    /// Decompressing a `do` disk (gzip): 64 GiB of zeros, written sparse, longer than
    /// any bound here.
    Unpacking,
    /// Waiting for QEMU's QMP socket: a run script that never starts QEMU.
    QmpConnect,
}

/// Sends `signal` to `--run` (or `--check`) during `phase`: the command exits with `code` and
/// nothing of the run is left (the fake program, the run directory).
fn signal_during_start_up(phase: Phase, run: bool, signal: Signal, code: i32) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new();
    let pidfile = sb.path("files/pid");
    let hold = format!("echo $$ > '{}'\nexec sleep 300", pidfile.display());
    let (format, image, accel) = match phase {
        Phase::Probe => {
            sb.script("bin/qemu-system-x86_64", &hold);
            (
                "vm",
                sb.script("files/vm/bin/run-fake-vm", "exit 1"),
                "auto",
            )
        }
        Phase::Unpacking => ("do", sb.gzip_zeros("files/do.qcow2.gz", 64), "tcg"),
        Phase::QmpConnect => ("vm", sb.script("files/vm/bin/run-fake-vm", &hold), "tcg"),
    };
    let mut child = sb
        .command()
        .arg(if run { "--run" } else { "--check" })
        .args(["--accel", accel, "-f", format, "--image"])
        .arg(&image)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = match phase {
        Phase::Unpacking => {
            wait_for_unpacking(&sb.path("tmp"), &mut child);
            None
        }
        _ => Some(wait_for_pid(&pidfile, &mut child)),
    };
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let what = format!("{signal} during {phase:?}");
    // Unpacking runs in the command's own threads, stopped at their next read: a bound below
    // the 5 s its stop waits for a job that does not stop. Killing a program may take longer.
    let within = match phase {
        Phase::Unpacking => Duration::from_secs(2),
        _ => Duration::from_secs(10),
    };
    let took = started.elapsed();
    assert!(took < within, "{what}: slow exit ({took:?})");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: {}",
        text(&out.stderr)
    );
    if let Some(pid) = pid {
        assert!(
            gone(pid),
            "{what}: the fake program (pid {pid}) outlived the command"
        );
    }
    sb.assert_tmp_empty();
}

#[test]
fn run_stops_cleanly_on_signals_while_waiting_for_qmp() {
    signal_during_start_up(Phase::QmpConnect, true, Signal::SIGINT, 130);
    signal_during_start_up(Phase::QmpConnect, true, Signal::SIGTERM, 143);
    signal_during_start_up(Phase::QmpConnect, true, Signal::SIGHUP, 129);
}

#[test]
fn run_stops_cleanly_on_signals_while_unpacking() {
    signal_during_start_up(Phase::Unpacking, true, Signal::SIGINT, 130);
    signal_during_start_up(Phase::Unpacking, true, Signal::SIGTERM, 143);
    signal_during_start_up(Phase::Unpacking, true, Signal::SIGHUP, 129);
}

#[test]
fn run_stops_cleanly_on_signals_during_the_kvm_probe() {
    if !Path::new("/dev/kvm").exists() {
        eprintln!(
            "SKIPPED run_stops_cleanly_on_signals_during_the_kvm_probe: no /dev/kvm, so --accel auto runs no probe here"
        );
        return;
    }
    signal_during_start_up(Phase::Probe, true, Signal::SIGINT, 130);
    signal_during_start_up(Phase::Probe, true, Signal::SIGTERM, 143);
    signal_during_start_up(Phase::Probe, true, Signal::SIGHUP, 129);
}

#[test]
fn check_stops_cleanly_on_signals_during_start_up() {
    signal_during_start_up(Phase::QmpConnect, false, Signal::SIGTERM, 143);
    signal_during_start_up(Phase::Unpacking, false, Signal::SIGHUP, 129);
}
