//! Ending a [`Machine`]'s run: the guest's power button (ACPI through QMP, SIGTERM for a
//! container), a screenshot of its display, and the stop of QEMU and every helper.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{wait_exit, Machine, PoweredOff};
use crate::{Accel, HarnessError};

impl Machine {
    /// Asks the guest to power off (ACPI) and waits for QEMU to exit; returns how long it took
    /// and how QEMU exited.
    pub async fn qmp_powerdown(&mut self, within: Duration) -> Result<PoweredOff, HarnessError> {
        // The ACPI power button is an edge: a guest whose button driver loads after the first
        // press (udev loads it late) only sees a later one, so press again every few seconds.
        const PRESS_AGAIN: Duration = Duration::from_secs(5);
        let t0 = Instant::now();
        let deadline = t0 + within;
        if self.accel == Accel::None {
            return self.container_poweroff(within).await;
        }
        loop {
            let qmp = self.qmp.as_mut().ok_or_else(|| HarnessError::Qmp {
                command: "system_powerdown".into(),
                detail: "no QMP session".into(),
            })?;
            let pressed = qmp.execute(&qapi::qmp::system_powerdown {}).await;
            // A press that races QEMU's own exit (the guest powered off since the last press)
            // finds the socket closed: what counts then is whether QEMU exits, so wait for that
            // until the deadline instead of pressing again.
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = if pressed.is_ok() {
                left.min(PRESS_AGAIN)
            } else {
                left
            };
            match tokio::time::timeout(wait, wait_exit(self.qemu.as_mut())).await {
                Ok(exit) => {
                    return Ok(PoweredOff {
                        took: t0.elapsed(),
                        exit_status: exit.code(),
                    })
                }
                Err(_) => {
                    pressed?;
                }
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::PowerdownTimeout { within });
            }
        }
    }

    /// A container's power button: SIGTERM to systemd-nspawn, which asks the container's
    /// systemd to power off (SIGRTMIN+3) and exits when it has.
    async fn container_poweroff(&mut self, within: Duration) -> Result<PoweredOff, HarnessError> {
        let t0 = Instant::now();
        let qemu = self
            .qemu
            .as_mut()
            .ok_or(HarnessError::PowerdownTimeout { within })?;
        qemu.terminate();
        match tokio::time::timeout(within, qemu.wait()).await {
            Ok(exit) => Ok(PoweredOff {
                took: t0.elapsed(),
                exit_status: exit.code(),
            }),
            Err(_) => Err(HarnessError::PowerdownTimeout { within }),
        }
    }

    /// Saves the guest's display as a PNG in the run directory.
    pub async fn screenshot(&mut self) -> Result<PathBuf, HarnessError> {
        let path = self.files().screenshot();
        let qmp = self.qmp.as_mut().ok_or_else(|| HarnessError::Qmp {
            command: "screendump".into(),
            detail: "no QMP session".into(),
        })?;
        qmp.screendump(&path).await
    }

    /// Stops QEMU and every helper, then keeps the run directory (returned) if the run failed
    /// or `keep` was asked, else removes it.
    pub async fn finish(mut self, success: bool) -> Option<PathBuf> {
        self.qmp = None;
        if let Some(q) = self.qemu.take() {
            q.stop().await;
        }
        if let Some(n) = self.notify.take() {
            n.close().await;
        }
        let dir = self.run_dir.take()?;
        if !success || self.opts.keep {
            Some(dir.keep())
        } else {
            dir.remove();
            None
        }
    }
}
