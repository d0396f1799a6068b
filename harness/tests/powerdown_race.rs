//! A power-off press that races the guest's own power-off: the guest (the `vm` stand-in) is told
//! on its serial console to power off, QEMU exits and closes its QMP socket, and only then does
//! `qmp_powerdown` press the button. The press finds the socket closed; since QEMU has exited,
//! that is a successful power-off, not an error (CI once failed a matrix trial on exactly this).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{processes_mentioning, standins_dir, GUEST_LOCK};
use harness::{BootOptions, Machine};

/// How long the guest may take to act on `poweroff` typed on its console.
const POWEROFF_BOUND: Duration = Duration::from_secs(120);

/// Types `poweroff` on the console (again every few seconds, in case the autologin shell was
/// not there yet) until the socket reaches end of file: QEMU has exited.
fn power_off_from_the_console(socket: &std::path::Path) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("serial socket: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + POWEROFF_BOUND;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        // A write may fail once QEMU is gone; the read below then sees the end.
        let _ = stream.write_all(b"\rpoweroff\r");
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(format!("serial socket: {e}")),
            }
        }
    }
    Err(format!(
        "the guest did not power off within {POWEROFF_BOUND:?} of `poweroff` on its console"
    ))
}

#[tokio::test]
async fn a_press_after_qemu_exited_is_a_power_off() {
    let _guest = GUEST_LOCK.lock().await;
    let format = formats::registry().get("vm").expect("vm in the registry");
    let image = standins_dir().join("vm");
    let opts = BootOptions {
        guest_slots: test_support::threads::guest_slots(),
        ..BootOptions::default()
    };
    let mut machine = Machine::start(format, &image, &opts, None)
        .await
        .expect("start the vm stand-in");
    let verdict = machine.wait_ready().await;
    assert!(
        verdict.is_ready(),
        "the vm stand-in did not boot: {verdict:?}"
    );
    let run_dir = machine.run_dir().to_owned();

    let socket = machine.serial_socket().to_owned();
    tokio::task::spawn_blocking(move || power_off_from_the_console(&socket))
        .await
        .expect("console task")
        .unwrap_or_else(|e| panic!("{e}"));

    let took = machine.qmp_powerdown(Duration::from_secs(10)).await;
    let kept = machine.finish(took.is_ok()).await;
    assert!(
        took.is_ok(),
        "a press after QEMU exited must count as powered off, got {took:?}; run dir {kept:?}"
    );
    assert!(
        kept.is_none() && !run_dir.exists(),
        "run dir left: {run_dir:?}"
    );
    let left = processes_mentioning(&run_dir.to_string_lossy());
    assert!(left.is_empty(), "processes left: {left:?}");
}
