//! `--run`: boot the image with its serial console on this terminal. Ctrl-] detaches and powers
//! the machine off; the image itself is never written (the harness boots an overlay).

use std::{io::IsTerminal, os::fd::AsFd, time::Duration};

use harness::{BootOptions, Machine};
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{exit::Exit, targets::Target};

/// The byte that detaches: Ctrl-], as telnet and virsh console use.
const DETACH: u8 = 0x1d;
/// How long ACPI power-off may take after detaching before QEMU is stopped.
const POWERDOWN_WITHIN: Duration = Duration::from_secs(30);

/// Puts the terminal in raw mode and restores it on drop.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enable() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode(None);
        }
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Boots `target` and connects its serial console to this terminal until Ctrl-] or until the
/// machine stops. SIGINT, SIGTERM or SIGHUP at any point, start-up included (the KVM probe,
/// unpacking, waiting for QMP), stops every process of the run and removes its directory.
pub async fn run(target: Target, mut opts: BootOptions) -> Result<(), Exit> {
    // A person watches the console: a stalled firmware is theirs to see and leave (Ctrl-]), not
    // restarted under them, which would close the console they are attached to.
    opts.firmware_stall = Duration::MAX;
    let mut stop = crate::signals::Stop::install();
    // Progress events are not shown while the console is attached: none are asked for.
    let start = Machine::start(target.format, &target.image, &opts, None);
    let mut machine = tokio::select! {
        started = start => started.map_err(|e| {
            if e.is_bad_input() {
                Exit::BadInput(e.to_string())
            } else {
                Exit::CannotCheck(e.to_string())
            }
        })?,
        // Dropping the start future kills what it started and removes the run directory.
        why = stop.requested() => {
            eprintln!("nixos-generate: {why} while starting; stopped");
            return Err(why);
        }
    };
    let mut serial = tokio::net::UnixStream::connect(machine.serial_socket())
        .await
        .map_err(|e| Exit::CannotCheck(format!("cannot attach to the serial console: {e}")))?;
    eprintln!(
        "nixos-generate: {} is booting; its serial console follows. Press Ctrl-] to detach and power off.\r",
        target.format.name
    );
    let end = {
        let _raw = RawMode::enable();
        // The machine is watched while the console is attached, as a check watches it: that
        // is what adds a Linode guest's swap disk once its root disk is named. Its verdict is
        // not shown; the guest runs on after it.
        let watch = async {
            machine.wait_ready().await;
            std::future::pending::<()>().await
        };
        tokio::select! {
            end = pump(&mut serial, &mut stop) => end,
            () = watch => unreachable!("the watch never ends"),
        }
    };
    let why = match end {
        End::Detached => "detached",
        End::Closed => "the console closed",
        End::Stopped(exit) => {
            // Asked to stop: no waiting for the guest, just a clean end of QEMU and the run dir.
            eprintln!("\r\nnixos-generate: {exit}; stopping the machine\r");
            machine.finish(true).await;
            return Err(exit);
        }
    };
    eprintln!("\r\nnixos-generate: {why}; powering off\r");
    let _ = machine.qmp_powerdown(POWERDOWN_WITHIN).await;
    if let Some(dir) = machine.finish(true).await {
        eprintln!("nixos-generate: run directory kept: {}", dir.display());
    }
    Ok(())
}

/// Why the console was let go.
enum End {
    /// Ctrl-] on the terminal.
    Detached,
    /// The machine stopped (its console socket closed).
    Closed,
    /// SIGINT, SIGTERM or SIGHUP to the command.
    Stopped(Exit),
}

/// Copies terminal to console and console to terminal until Ctrl-], until the console closes
/// because the machine stopped, or until a signal asks the command to stop.
async fn pump(serial: &mut tokio::net::UnixStream, stop: &mut crate::signals::Stop) -> End {
    let (mut from_guest, mut to_guest) = serial.split();
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let (mut inbuf, mut outbuf) = ([0u8; 1024], [0u8; 4096]);
    // Without input (stdin at end of file) the console is only watched until the machine stops.
    let mut stdin_open = true;
    loop {
        tokio::select! {
            why = stop.requested() => return End::Stopped(why),
            n = stdin.read(&mut inbuf), if stdin_open => {
                let n = n.unwrap_or(0);
                if n == 0 {
                    stdin_open = false;
                    continue;
                }
                let input = &inbuf[..n];
                let (keep, detach) = match input.iter().position(|b| *b == DETACH) {
                    Some(i) => (&input[..i], true),
                    None => (input, false),
                };
                if detach {
                    let _ = to_guest.write_all(keep).await;
                    return End::Detached;
                }
                if to_guest.write_all(keep).await.is_err() {
                    return End::Closed;
                }
            }
            n = from_guest.read(&mut outbuf) => {
                match n {
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(n) => {
                        let _ = stdout.write_all(&outbuf[..n]).await;
                        let _ = stdout.flush().await;
                    }
                }
            }
        }
    }
}
