//! Scenario `poweroff`: an ACPI power-off through QMP (`system_powerdown`) ends QEMU cleanly
//! within a bound.

use std::time::Duration;

use serde::Serialize;

use crate::guest::Guest;

/// How long the guest may take to power off under TCG.
pub const BOUND: Duration = Duration::from_secs(60);

/// The normalised facts of the poweroff scenario (no timings: they vary).
#[derive(Debug, Clone, Serialize)]
pub struct PoweroffFacts {
    /// QEMU exited after the ACPI power button.
    pub powered_off: bool,
    /// The bound it was held to, in seconds.
    pub bound_seconds: u64,
}

/// Presses the ACPI power button and waits for QEMU to exit within [`BOUND`].
pub async fn run<G: Guest>(guest: &mut G) -> Result<PoweroffFacts, String> {
    let took = guest
        .powerdown(BOUND)
        .await
        .map_err(|e| format!("ACPI power-off did not end QEMU within {BOUND:?}: {e}"))?;
    if took > BOUND {
        return Err(format!(
            "QEMU ended after {took:?}, over the bound of {BOUND:?}"
        ));
    }
    Ok(PoweroffFacts {
        powered_off: true,
        bound_seconds: BOUND.as_secs(),
    })
}
