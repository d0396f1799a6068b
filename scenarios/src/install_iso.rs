//! Scenario `install-iso`: the installer reaches its login prompt on the serial console, and
//! the installer tools (`nixos-install`, `nixos-generate-config`) are in the shell's PATH.

use std::{collections::BTreeMap, path::Path};

use regex::Regex;
use serde::Serialize;

use crate::{
    console::Budget,
    redact::redact,
    serial::{Console, Login},
    text::strip_ansi,
};

/// The tools an installer must provide.
pub const TOOLS: [&str; 2] = ["nixos-install", "nixos-generate-config"];

/// The normalised facts of the install-iso scenario.
#[derive(Debug, Clone, Serialize)]
pub struct InstallIsoFacts {
    /// The getty's prompt line as the serial log shows it (e.g. `nixos login: nixos (automatic login)`).
    pub login_prompt: String,
    /// How the shell was obtained.
    pub login: Login,
    /// Each tool and where `command -v` found it (store hashes redacted).
    pub tools: BTreeMap<String, String>,
}

/// The getty login prompt line in console text, if there is one.
pub fn login_prompt(serial_text: &str) -> Option<String> {
    let re = Regex::new(r"(?m)^.*\blogin: .*$|^.*\blogin:\s*$").expect("static regex");
    re.find(&strip_ansi(serial_text))
        .map(|m| m.as_str().trim().to_owned())
}

/// Runs the scenario: a shell over the serial socket, `command -v` for each tool, and the
/// login prompt from the serial log (read after the shell is up, so it has been printed).
pub fn run(socket: &Path, serial_log: &Path, budget: Budget) -> Result<InstallIsoFacts, String> {
    let mut console = Console::connect(socket).map_err(|e| e.to_string())?;
    let login = console.shell(budget.shell).map_err(|e| e.to_string())?;
    let log = std::fs::read(serial_log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let login_prompt = login_prompt(&log)
        .or_else(|| login_prompt(&console.transcript))
        .ok_or("no getty login prompt on the serial console")?;
    let mut tools = BTreeMap::new();
    for tool in TOOLS {
        let found = console
            .run(&format!("command -v {tool}"), budget.command)
            .map_err(|e| e.to_string())?;
        if found.code != 0 {
            return Err(format!("{tool} is not in PATH on the installer"));
        }
        tools.insert(tool.to_owned(), redact(found.output.trim()));
    }
    Ok(InstallIsoFacts {
        login_prompt: redact(&login_prompt),
        login,
        tools,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_getty_prompt() {
        let log = "[  OK  ] Reached target \x1b[1mMulti-User System\x1b[0m.\r\n\r\nnixos login: nixos (automatic login)\r\n\r\n";
        assert_eq!(
            login_prompt(log).as_deref(),
            Some("nixos login: nixos (automatic login)")
        );
        assert_eq!(
            login_prompt("standin login:").as_deref(),
            Some("standin login:")
        );
        assert_eq!(login_prompt("Reached target multi-user"), None);
    }
}
