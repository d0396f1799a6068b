//! What a scenario needs from a booted machine, as a trait: the harness's `Machine` provides it
//! in the matrix, and a fake provides it in unit tests.

use std::{future::Future, path::PathBuf, time::Duration};

/// A booted guest as the scenarios see it.
pub trait Guest: Send {
    /// The QEMU serial chardev's unix socket.
    fn serial_socket(&self) -> PathBuf;
    /// The file QEMU records the serial console into from the first byte.
    fn serial_log(&self) -> PathBuf;
    /// Presses the power button through QMP and waits up to `within` for QEMU to exit.
    fn powerdown(
        &mut self,
        within: Duration,
    ) -> impl Future<Output = Result<PowerOff, String>> + Send;
}

/// How a power-off ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerOff {
    /// From the power button to QEMU's exit.
    pub took: Duration,
    /// QEMU's exit code; `None` if a signal ended it.
    pub exit_status: Option<i32>,
}
