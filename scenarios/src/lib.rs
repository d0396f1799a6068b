//! What is checked on a booted machine, paired with each format.
//!
//! - [`pairing`]: THE table of which [`Scenario`]s run on which format.
//! - One module per scenario: [`boot`], [`console`], [`poweroff`], [`install_iso`].
//! - [`guest`]: what a scenario needs from a machine (a trait, so scenarios are testable
//!   without QEMU); [`serial`]: the expectrl shell on the serial console; [`text`]: console text
//!   handling; [`redact`]: the normalisation of scenario facts (run-to-run values become
//!   placeholders; the command prints the console facts so normalised, the matrix snapshots them).
//!
//! The matrix test (`tests/matrix.rs`) runs every pairing as one libtest-mimic trial; its
//! machinery (image sources, summary table, thread count) is the `test-support` crate's, which
//! the command never links.

pub mod boot;
pub mod console;
pub mod guest;
pub mod install_iso;
pub mod pairing;
pub mod poweroff;
pub mod redact;
pub mod serial;
pub mod text;

pub use pairing::{scenarios_for, Scenario};

use formats::Profile;

/// Runs `scenario` on a guest whose boot the harness decided with `verdict`; returns the
/// scenario's normalised facts (for its snapshot), or why it failed.
///
/// Every scenario first requires the boot verdict to be "reached multi-user".
pub async fn run_scenario<G: guest::Guest>(
    scenario: Scenario,
    profile: Profile,
    guest: &mut G,
    verdict: &harness::Verdict,
    roots: &redact::Roots,
) -> Result<serde_json::Value, String> {
    let boot = boot::check(profile, verdict, roots)?;
    if matches!(
        scenario,
        Scenario::Console | Scenario::InstallIso | Scenario::Poweroff
    ) {
        console_is_on_the_socket(&guest.serial_log())?;
    }
    let facts = match scenario {
        Scenario::Boot => serde_json::to_value(boot),
        Scenario::Console => {
            let socket = guest.serial_socket();
            let facts = tokio::task::spawn_blocking(move || {
                console::run(&socket, console::Budget::default())
            })
            .await
            .map_err(|e| format!("console scenario panicked: {e}"))??;
            serde_json::to_value(console::for_profile(facts, profile))
        }
        Scenario::Poweroff => {
            let socket = guest.serial_socket();
            let shell = console::Budget::default().shell;
            tokio::task::spawn_blocking(move || poweroff::settle(&socket, shell))
                .await
                .map_err(|e| format!("poweroff scenario panicked: {e}"))??;
            serde_json::to_value(poweroff::run(guest).await?)
        }
        Scenario::InstallIso => {
            let (socket, log) = (guest.serial_socket(), guest.serial_log());
            let facts = tokio::task::spawn_blocking(move || {
                install_iso::run(&socket, &log, console::Budget::default())
            })
            .await
            .map_err(|e| format!("install-iso scenario panicked: {e}"))??;
            serde_json::to_value(facts)
        }
    };
    facts.map_err(|e| format!("facts do not serialise: {e}"))
}

/// Fails fast when the serial chardev recorded nothing although the guest booted: its console
/// is then elsewhere (a run script's own `-serial mon:stdio` takes ttyS0, say) and no shell can
/// be had on the harness's serial socket.
fn console_is_on_the_socket(serial_log: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(serial_log) {
        Ok(m) if m.len() == 0 => Err(format!(
            "the serial socket carries no console: {} is empty although the guest booted \
             (is ttyS0 on another QEMU serial port, e.g. the run script's `-serial mon:stdio`?)",
            serial_log.display()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_serial_log_means_no_console_on_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serial.log");
        std::fs::write(&log, "").unwrap();
        let err = console_is_on_the_socket(&log).unwrap_err();
        assert!(err.contains("carries no console"), "{err}");
        std::fs::write(&log, "Linux version 6.12").unwrap();
        assert!(console_is_on_the_socket(&log).is_ok());
    }
}
