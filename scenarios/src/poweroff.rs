//! Scenario `poweroff`: on a booted guest whose console has a shell, a power-button press through
//! QMP (`system_powerdown`: ACPI's power button; on an aarch64 `virt` booted by U-Boot, a GPIO
//! key on its PL061) ends QEMU cleanly within a bound.
//!
//! The shell comes first ([`settle`]): CI saw a press that landed while the serial autologin was
//! starting the shell hold the shutdown up past the bound. The shutdown stopped at `Stopping
//! serial-getty@ttyS0.service`, the shell's prompt appeared after that stop began, and nothing
//! followed (systemd hides its "A stop job is running" lines while a unit on the console is
//! active). Most likely `login` did not pass the stop on to the shell it was just starting, so
//! the unit waits out its stop timeout (90 s). That is a race in the guest's login, not a test
//! of its power-off.

use std::{path::Path, time::Duration};

use serde::Serialize;

use crate::guest::{Guest, PowerOff};
use crate::serial::Console;

/// How long the guest may take to power off under TCG.
pub const BOUND: Duration = Duration::from_secs(60);

/// The normalised facts of the poweroff scenario (no timings: they vary).
#[derive(Debug, Clone, Serialize)]
pub struct PoweroffFacts {
    /// QEMU exited after the power button.
    pub powered_off: bool,
    /// QEMU's exit code (0: the guest powered itself off).
    pub qemu_exit_status: i32,
    /// The bound it was held to, in seconds.
    pub bound_seconds: u64,
}

/// Waits (blocking) until the serial console has a shell (autologin, else `root` typed), then
/// lets the console go.
pub fn settle(socket: &Path, within: Duration) -> Result<(), String> {
    let mut console = Console::connect(socket).map_err(|e| e.to_string())?;
    console.shell(within).map(drop).map_err(|e| {
        format!(
            "before the power-off: {e}\n--- console transcript (last 15 lines) ---\n{}",
            crate::text::tail_lines(&console.transcript, 15)
        )
    })
}

/// Presses the power button and waits for QEMU to exit, with status 0, within [`BOUND`].
pub async fn run<G: Guest>(guest: &mut G) -> Result<PoweroffFacts, String> {
    let off = guest.powerdown(BOUND).await.map_err(|e| {
        format!("the power button (system_powerdown) did not end QEMU within {BOUND:?}: {e}")
    })?;
    judge(off)
}

/// Whether a power-off was clean: within the bound, and QEMU exited by itself with 0.
fn judge(off: PowerOff) -> Result<PoweroffFacts, String> {
    if off.took > BOUND {
        return Err(format!(
            "QEMU ended after {:?}, over the bound of {BOUND:?}",
            off.took
        ));
    }
    match off.exit_status {
        Some(0) => Ok(PoweroffFacts {
            powered_off: true,
            qemu_exit_status: 0,
            bound_seconds: BOUND.as_secs(),
        }),
        Some(code) => Err(format!(
            "QEMU exited with status {code} after the power-off, not 0 (see qemu.stderr)"
        )),
        None => Err("QEMU was killed by a signal during the power-off".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(secs: u64, exit_status: Option<i32>) -> PowerOff {
        PowerOff {
            took: Duration::from_secs(secs),
            exit_status,
        }
    }

    #[test]
    fn only_a_timely_exit_with_zero_is_clean() {
        let facts = judge(off(12, Some(0))).unwrap();
        assert!(facts.powered_off);
        assert_eq!(facts.qemu_exit_status, 0);
        assert!(judge(off(12, Some(1))).unwrap_err().contains("status 1"));
        assert!(judge(off(12, None)).unwrap_err().contains("signal"));
        assert!(judge(off(61, Some(0)))
            .unwrap_err()
            .contains("over the bound"));
    }
}
