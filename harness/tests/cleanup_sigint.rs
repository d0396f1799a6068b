//! Signals to a process running a check (the `check` example). SIGINT: QEMU, the vsock helper
//! and every other process of the run's process group are gone, and so is the run directory.
//! SIGKILL (which nothing can handle): QEMU and the helper still die with their parent.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{pgid_of, processes_in_group, processes_mentioning, standins_dir, GUEST_LOCK};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn example_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/check
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/check");
    assert!(
        bin.is_file(),
        "{} not built (cargo test builds examples)",
        bin.display()
    );
    bin
}

/// A running check example whose guest's kernel is up, its run directory, and the process
/// groups of the processes that mention that directory (QEMU, the vsock helper).
struct Running {
    child: std::process::Child,
    run_dir: PathBuf,
    needle: String,
    groups: Vec<i32>,
    /// Kept open: the example must be able to go on writing its events.
    _events: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

fn start_check_until_the_kernel_runs() -> Running {
    let image = standins_dir().join("raw-efi");
    let mut child = Command::new(example_binary())
        .arg("raw-efi")
        .arg(&image)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the check example");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    // Wait until the kernel runs, so QEMU (and the helper) are well underway.
    let mut run_dir = None;
    for line in lines.by_ref() {
        let line = line.expect("read the example's output");
        let ev: serde_json::Value = serde_json::from_str(&line).expect("JSON event");
        if ev["event"] == "started" {
            run_dir = ev["data"]["run_dir"].as_str().map(PathBuf::from);
        }
        if ev["event"] == "milestone" && ev["data"]["kind"] == "kernel" {
            break;
        }
        assert_ne!(
            ev["event"], "verdict",
            "the guest finished before the interrupt: {line}"
        );
    }
    let run_dir = run_dir.expect("a started event with the run dir");
    let needle = run_dir.to_string_lossy().into_owned();
    let procs = processes_mentioning(&needle);
    assert!(!procs.is_empty(), "no QEMU process mentions {needle}");
    let groups: Vec<i32> = procs.iter().filter_map(|p| pgid_of(*p)).collect();
    // The run's group is led by one of its own processes (the helper, or QEMU without one).
    assert!(
        !groups.is_empty() && groups.iter().all(|g| procs.contains(&(*g as u32))),
        "process groups {groups:?} are not led by the run's processes {procs:?}"
    );
    Running {
        child,
        run_dir,
        needle,
        groups,
        _events: lines,
    }
}

/// Waits up to `within` for the example to exit.
fn wait_exit(child: &mut std::process::Child, within: Duration, what: &str) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait for the example") {
            return s;
        }
        assert!(t0.elapsed() < within, "the example ignored {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that no process of the run is left, waiting up to `within` for the kernel to deliver
/// what it must.
fn assert_no_process_left(r: &Running, within: Duration) {
    let t0 = Instant::now();
    loop {
        let left: Vec<u32> = processes_mentioning(&r.needle)
            .into_iter()
            .chain(r.groups.iter().flat_map(|g| processes_in_group(*g)))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < within,
            "processes of the run left {within:?} after the runner ended: {left:?} (groups {:?})",
            r.groups
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn sigint_kills_the_process_group_and_removes_the_run_dir() {
    let _guest = GUEST_LOCK.lock().await;
    let mut r = start_check_until_the_kernel_runs();
    kill(Pid::from_raw(r.child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let status = wait_exit(&mut r.child, Duration::from_secs(15), "SIGINT");
    assert_eq!(status.code(), Some(130), "exit status after SIGINT");
    assert_no_process_left(&r, Duration::from_secs(1));
    assert!(
        !r.run_dir.exists(),
        "run directory {} left behind",
        r.run_dir.display()
    );
}

/// SIGKILL cannot be handled: the run directory stays (this test removes it), but the kernel
/// kills QEMU and the helper because their parent died (see the harness's lifeline module).
#[tokio::test]
async fn sigkill_of_the_runner_takes_qemu_and_the_helper_with_it() {
    let _guest = GUEST_LOCK.lock().await;
    let mut r = start_check_until_the_kernel_runs();
    kill(Pid::from_raw(r.child.id() as i32), Signal::SIGKILL).expect("send SIGKILL");
    wait_exit(&mut r.child, Duration::from_secs(5), "SIGKILL");
    let left = std::panic::catch_unwind(|| assert_no_process_left(&r, Duration::from_secs(5)));
    // Clean up what SIGKILL leaves by design, whatever the assertion said.
    for g in &r.groups {
        let _ = nix::sys::signal::killpg(Pid::from_raw(*g), Signal::SIGKILL);
    }
    let _ = std::fs::remove_dir_all(&r.run_dir);
    if let Err(e) = left {
        std::panic::resume_unwind(e);
    }
}
