//! What is checked on a booted machine, paired with each format.
//!
//! - [`pairing`]: THE table of which [`Scenario`]s run on which format.
//! - One module per scenario: [`boot`], [`console`], [`poweroff`], [`install_iso`].
//! - [`guest`]: what a scenario needs from a machine (a trait, so scenarios are testable
//!   without QEMU); [`serial`]: the expectrl shell on the serial console; [`text`]: console text
//!   handling; [`redact`]: normalisation for golden snapshots; [`source`]: where images come
//!   from (stand-ins or NixOS builds).
//!
//! The matrix test (`tests/matrix.rs`) runs every pairing as one libtest-mimic trial.

pub mod boot;
pub mod console;
pub mod guest;
pub mod install_iso;
pub mod pairing;
pub mod poweroff;
pub mod redact;
pub mod serial;
pub mod source;
pub mod summary;
pub mod text;
pub mod threads;

pub use pairing::{scenarios_for, Scenario};

use formats::Profile;

/// Runs `scenario` on a guest whose boot the harness reported as `record`; returns the
/// scenario's normalised facts (for its snapshot), or why it failed.
///
/// Every scenario first requires the boot verdict to be "reached multi-user".
pub async fn run_scenario<G: guest::Guest>(
    scenario: Scenario,
    profile: Profile,
    guest: &mut G,
    record: &boot::BootRecord,
    roots: &redact::Roots,
) -> Result<serde_json::Value, String> {
    let boot = boot::check(profile, record, roots)?;
    let facts = match scenario {
        Scenario::Boot => serde_json::to_value(boot),
        Scenario::Console => {
            let socket = guest.serial_socket();
            let facts = tokio::task::spawn_blocking(move || {
                console::run(&socket, console::Budget::default())
            })
            .await
            .map_err(|e| format!("console scenario panicked: {e}"))??;
            serde_json::to_value(facts)
        }
        Scenario::Poweroff => serde_json::to_value(poweroff::run(guest).await?),
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
