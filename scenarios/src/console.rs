//! Scenario `console`: a root shell on the serial console (autologin, else `root` with an empty
//! password), `systemctl is-system-running --wait` says `running` (`degraded` fails, naming the
//! failed units), and the facts record os-release and the kernel command line.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Serialize;

use crate::{
    redact::redact,
    serial::{Console, Login},
};

/// Time budgets of the console scenario (TCG is slow; these are bounds, not expectations).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// To get a shell.
    pub shell: Duration,
    /// For `systemctl is-system-running --wait`.
    pub settle: Duration,
    /// For each quick command.
    pub command: Duration,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            shell: Duration::from_secs(120),
            settle: Duration::from_secs(180),
            command: Duration::from_secs(20),
        }
    }
}

/// The os-release fields the snapshots record.
pub const OS_RELEASE_FIELDS: [&str; 4] = ["ID", "VERSION_ID", "PRETTY_NAME", "VARIANT"];

/// The normalised facts of the console scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleFacts {
    /// How the shell was obtained.
    pub login: Login,
    /// What `systemctl is-system-running --wait` printed.
    pub system_state: String,
    /// Failed units (only when degraded).
    pub failed_units: Vec<String>,
    /// The recorded os-release fields that are set.
    pub os_release: BTreeMap<String, String>,
    /// `/proc/cmdline`, redacted.
    pub cmdline: String,
}

/// Parses `/etc/os-release` text, keeping [`OS_RELEASE_FIELDS`].
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| OS_RELEASE_FIELDS.contains(&k.trim()))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// What a profile's console facts can say: a container shares the host's kernel, so its
/// `/proc/cmdline` is the host's (different on every machine) and is replaced by a placeholder.
pub fn for_profile(mut facts: ConsoleFacts, profile: formats::Profile) -> ConsoleFacts {
    if profile.is_container() {
        facts.cmdline = "<host kernel command line>".into();
    }
    facts
}

/// Runs the scenario over the serial socket at `socket` (blocking).
pub fn run(socket: &Path, budget: Budget) -> Result<ConsoleFacts, String> {
    let mut console = Console::connect(socket).map_err(|e| e.to_string())?;
    let result = drive(&mut console, budget);
    result.map_err(|e| {
        format!(
            "{e}\n--- console transcript (last 15 lines) ---\n{}",
            crate::text::tail_lines(&console.transcript, 15)
        )
    })
}

fn drive(console: &mut Console, budget: Budget) -> Result<ConsoleFacts, String> {
    let login = console.shell(budget.shell).map_err(|e| e.to_string())?;
    let state = console
        .run("systemctl is-system-running --wait", budget.settle)
        .map_err(|e| e.to_string())?;
    let system_state = state
        .output
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut failed_units = Vec::new();
    if system_state == "degraded" {
        let failed = console
            .run(
                "systemctl --failed --plain --no-legend --no-pager",
                budget.command,
            )
            .map_err(|e| e.to_string())?;
        failed_units = failed
            .output
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
    }
    if system_state != "running" {
        return Err(format!(
            "systemctl is-system-running --wait: {system_state:?} (exit {}), failed units: [{}]",
            state.code,
            failed_units.join(", ")
        ));
    }
    let os = console
        .run("cat /etc/os-release", budget.command)
        .map_err(|e| e.to_string())?;
    if os.code != 0 {
        return Err(format!("cat /etc/os-release exited {}", os.code));
    }
    let cmdline = console
        .run("cat /proc/cmdline", budget.command)
        .map_err(|e| e.to_string())?;
    Ok(ConsoleFacts {
        login,
        system_state,
        failed_units,
        os_release: parse_os_release(&os.output),
        cmdline: redact(cmdline.output.trim()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_keeps_named_fields_unquoted() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian\"\nVERSION_ID=\"13\"\nID=debian\nVARIANT='stand-in'\n";
        let parsed = parse_os_release(text);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed["PRETTY_NAME"], "Debian GNU/Linux 13 (trixie)");
        assert_eq!(parsed["ID"], "debian");
        assert_eq!(parsed["VARIANT"], "stand-in");
        assert!(!parsed.contains_key("NAME"));
    }
}
