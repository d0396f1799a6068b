//! One `sd_notify` message as systemd's PID 1 sends it to the VMM: newline-separated
//! `KEY=VALUE` lines, in the order sent, with the host-side receive time.

use std::fmt;
use std::time::{Duration, Instant};

/// One notify message (one guest connection), parsed into ordered `KEY=VALUE` fields.
///
/// Lines without `=` are kept with an empty value, so nothing the guest said is lost.
/// A key may occur more than once; the accessors return its first value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyMessage {
    /// The fields in the order the guest sent them.
    pub fields: Vec<(String, String)>,
    /// When the host finished reading the message.
    pub received: Instant,
    /// Time since the channel was opened (the caller opens it just before QEMU starts).
    pub at: Duration,
}

/// `READY` key: the manager finished its initial transaction (also after emergency.target).
pub const READY: &str = "READY";
/// `STATUS` key: free-form status text.
pub const STATUS: &str = "STATUS";
/// `X_SYSTEMD_UNIT_ACTIVE` key: a target just became active (systemd >= 256).
pub const UNIT_ACTIVE: &str = "X_SYSTEMD_UNIT_ACTIVE";
/// `X_SYSTEMD_UNIT_INACTIVE` key: a target stopped being active (systemd >= 256).
pub const UNIT_INACTIVE: &str = "X_SYSTEMD_UNIT_INACTIVE";
/// `X_SYSTEMD_SHUTDOWN` key: the guest is shutting down (`poweroff`, `reboot`, ...).
pub const SHUTDOWN: &str = "X_SYSTEMD_SHUTDOWN";
/// `X_SYSTEMD_HOSTNAME` key: the guest's hostname.
pub const HOSTNAME: &str = "X_SYSTEMD_HOSTNAME";
/// `X_SYSTEMD_MACHINE_ID` key: the guest's machine id.
pub const MACHINE_ID: &str = "X_SYSTEMD_MACHINE_ID";
/// `EXIT_STATUS` key: the exit status the guest reports before shutting down.
pub const EXIT_STATUS: &str = "EXIT_STATUS";

impl NotifyMessage {
    /// Parses the raw bytes of one message. Invalid UTF-8 is replaced, `\r` is dropped,
    /// empty lines are skipped. `at` is the time since the channel opened.
    pub fn parse(raw: &[u8], received: Instant, at: Duration) -> NotifyMessage {
        let text = String::from_utf8_lossy(raw);
        let fields = text
            .split(['\n', '\r'])
            .filter(|line| !line.is_empty())
            .map(|line| match line.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (line.to_string(), String::new()),
            })
            .collect();
        NotifyMessage {
            fields,
            received,
            at,
        }
    }

    /// The first value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when the message carries `READY=1`.
    pub fn is_ready(&self) -> bool {
        self.get(READY) == Some("1")
    }

    /// The `STATUS=` text.
    pub fn status(&self) -> Option<&str> {
        self.get(STATUS)
    }

    /// The unit named by `X_SYSTEMD_UNIT_ACTIVE=`.
    pub fn unit_active(&self) -> Option<&str> {
        self.get(UNIT_ACTIVE)
    }

    /// The unit named by `X_SYSTEMD_UNIT_INACTIVE=`.
    pub fn unit_inactive(&self) -> Option<&str> {
        self.get(UNIT_INACTIVE)
    }

    /// The hostname from `X_SYSTEMD_HOSTNAME=`.
    pub fn hostname(&self) -> Option<&str> {
        self.get(HOSTNAME)
    }

    /// The machine id from `X_SYSTEMD_MACHINE_ID=`.
    pub fn machine_id(&self) -> Option<&str> {
        self.get(MACHINE_ID)
    }

    /// `EXIT_STATUS=` as a number; `None` if absent or not a number.
    pub fn exit_status(&self) -> Option<i32> {
        self.get(EXIT_STATUS)?.trim().parse().ok()
    }
}

impl fmt::Display for NotifyMessage {
    /// The fields joined by a space, e.g. `READY=1 STATUS=Ready.` (one log line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(raw: &str) -> NotifyMessage {
        NotifyMessage::parse(raw.as_bytes(), Instant::now(), Duration::from_millis(5))
    }

    #[test]
    fn parses_ordered_fields_and_helpers() {
        let m = msg("READY=1\nSTATUS=Ready.");
        assert_eq!(
            m.fields,
            vec![
                ("READY".to_string(), "1".to_string()),
                ("STATUS".to_string(), "Ready.".to_string())
            ]
        );
        assert!(m.is_ready());
        assert_eq!(m.status(), Some("Ready."));
        assert_eq!(m.unit_active(), None);
        assert_eq!(m.to_string(), "READY=1 STATUS=Ready.");
    }

    #[test]
    fn parses_systemd_extensions() {
        assert_eq!(
            msg("X_SYSTEMD_UNIT_ACTIVE=multi-user.target\n").unit_active(),
            Some("multi-user.target")
        );
        assert_eq!(
            msg("X_SYSTEMD_HOSTNAME=standin").hostname(),
            Some("standin")
        );
        assert_eq!(
            msg("X_SYSTEMD_MACHINE_ID=0123abcd").machine_id(),
            Some("0123abcd")
        );
        assert_eq!(msg("EXIT_STATUS=123").exit_status(), Some(123));
        assert_eq!(msg("EXIT_STATUS=x").exit_status(), None);
    }

    #[test]
    fn keeps_odd_lines_and_values_with_equals() {
        let m = msg("STATUS=a=b\r\n\nGARBAGE\n");
        assert_eq!(m.status(), Some("a=b"));
        assert_eq!(m.fields[1], ("GARBAGE".to_string(), String::new()));
        assert_eq!(m.fields.len(), 2);
        assert!(!m.is_ready());
        assert!(!msg("READY=0").is_ready());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let m = NotifyMessage::parse(b"STATUS=\xff ok", Instant::now(), Duration::ZERO);
        assert_eq!(m.status(), Some("\u{fffd} ok"));
    }
}
