//! `--check=console`: the matrix's console scenario, run on a machine that reached multi-user.

use harness::Machine;
use scenarios::console::{Budget, ConsoleFacts};

/// Logs in on the serial console and checks that the system is running (see
/// `scenarios::console`); the facts, or why it failed.
pub async fn check(machine: &Machine) -> Result<ConsoleFacts, String> {
    let socket = machine.serial_socket().to_path_buf();
    tokio::task::spawn_blocking(move || scenarios::console::run(&socket, Budget::default()))
        .await
        .map_err(|e| format!("the console scenario stopped: {e}"))?
}
