//! A guest that ignores the ACPI power button and prints nothing: while `qmp_powerdown` waits,
//! the silent serial console gets a carriage return every press interval, which reaches the
//! guest's tty (the autologin shell answers with a fresh prompt), and the timeout says so.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{standins_dir, GUEST_LOCK};
use harness::{BootOptions, HarnessError, Machine};

/// Stops logind (which acts on the power key) and keeps it from coming back, through the
/// console; returns once the shell printed the marker that follows the command.
fn ignore_the_power_button(socket: &std::path::Path) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("serial socket: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let command =
        b"\rsystemctl mask --runtime --now systemd-logind.service; echo LOGIND-$((40+2))\r";
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        stream.write_all(command).map_err(|e| e.to_string())?;
        let round = Instant::now() + Duration::from_secs(15);
        while Instant::now() < round {
            match stream.read(&mut buf) {
                Ok(0) => return Err("QEMU closed the serial socket".into()),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if String::from_utf8_lossy(&seen).contains("LOGIND-42") {
                return Ok(());
            }
        }
    }
    Err(format!(
        "no LOGIND-42 on the console: {:?}",
        String::from_utf8_lossy(&seen)
    ))
}

/// How many shell prompts the serial log holds.
fn prompts(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("root@standin")
        .count()
}

#[tokio::test]
async fn a_silent_console_is_nudged_while_waiting_for_the_power_off() {
    let _guest = GUEST_LOCK.lock().await;
    let format = formats::registry().get("vm").expect("vm in the registry");
    let image = standins_dir().join("vm");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut machine = Machine::start(format, &image, &BootOptions::default(), tx)
        .await
        .expect("start the vm stand-in");
    let verdict = machine.wait_ready().await;
    assert!(
        verdict.is_ready(),
        "the vm stand-in did not boot: {verdict:?}"
    );
    let log = machine.run_dir().join("serial.log");

    let socket = machine.serial_socket().to_owned();
    tokio::task::spawn_blocking(move || ignore_the_power_button(&socket))
        .await
        .expect("console task")
        .unwrap_or_else(|e| panic!("{e}"));
    // Let the console settle (the prompt after the marker) before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = prompts(&log);

    let result = machine.qmp_powerdown(Duration::from_secs(16)).await;
    let after = prompts(&log);
    let kept = machine.finish(true).await;
    assert!(kept.is_none());
    match result {
        Err(HarnessError::PowerdownTimeout { console_nudges, .. }) => {
            assert!(console_nudges >= 1, "never nudged");
            assert!(
                after > before,
                "the carriage returns did not reach the shell ({before} prompts before, {after} after)"
            );
        }
        other => panic!("a guest without logind must not power off, got {other:?}"),
    }
}
