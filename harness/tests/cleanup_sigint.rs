//! SIGINT to a process running a check (the `check` example): QEMU, the vsock helper and
//! every other process of the run's process group are gone, and so is the run directory.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
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

#[tokio::test]
async fn sigint_kills_the_process_group_and_removes_the_run_dir() {
    let _guest = GUEST_LOCK.lock().await;
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

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the example") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the example ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the reparented children be reaped by init.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status.code(), Some(130), "exit status after SIGINT");
    assert!(
        !run_dir.exists(),
        "run directory {} left behind",
        run_dir.display()
    );
    let left = processes_mentioning(&needle);
    assert!(left.is_empty(), "processes left: {left:?}");
    for g in groups {
        let left = processes_in_group(g);
        assert!(left.is_empty(), "process group {g} still has {left:?}");
    }
}
