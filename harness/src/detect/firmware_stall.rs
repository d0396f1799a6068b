//! A UEFI firmware that stalls between its banner and booting its first boot option.
//!
//! AAVMF (UEFI on aarch64) prints `UEFI firmware (version ...)` as its DXE phase starts, and
//! its boot manager prints `BdsDxe: loading Boot0001 ...` about 6 s later under TCG here
//! (screen-clearing escapes come first). Once, in CI's `.ci/run` (on a machine of this kind),
//! AAVMF booting the aarch64 ISO stand-in printed its banner and the escapes, then nothing for
//! the 480 s deadline, with QEMU still answering QMP. Its variable store shows how far it got:
//! the CD-ROM registered as `Boot0001` and `BootOrder` written, `MemoryTypeInformation` (written
//! as a boot option is booted) not. The same stand-in boots in every other run, and about 120
//! firmware starts here, most beside two busy loops, did not stall. So the machine starts the
//! guest once more, and only a stall that repeats is the verdict
//! ([`crate::Reason::FirmwareStalled`]), at 180 s instead of a timeout at 480 s.
//!
//! Only a firmware that announced itself is watched, and only until it prints its next line
//! (escapes alone are no line):
//! x86_64 OVMF prints no banner (its first line is the boot manager's), and after the firmware
//! hands over, a console can be silent for long (a kernel without a serial console).

use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;

/// How long a UEFI firmware may stay silent after its banner by default: 15 times the 6 s
/// AAVMF takes under TCG here, for a loaded machine; a stall caught at once instead of at the
/// deadline (480 s for an aarch64 guest).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(90);

fn banner(line: &str) -> bool {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| Regex::new(r"^UEFI firmware \(version").expect("valid pattern"))
        .is_match(line.trim_start())
}

/// Watches one start of a guest for a firmware stall.
#[derive(Debug, Clone)]
pub struct FirmwareWatch {
    window: Duration,
    banner_at: Option<Duration>,
    moved_on: bool,
}

impl FirmwareWatch {
    /// A watch that calls the firmware stalled after `window` of silence past its banner.
    pub fn new(window: Duration) -> FirmwareWatch {
        FirmwareWatch {
            window,
            banner_at: None,
            moved_on: false,
        }
    }

    /// Console text seen `at` (since QEMU started): a complete line, or the unterminated end
    /// of the console. Blank text (a line of escapes only) is no progress.
    pub fn text(&mut self, text: &str, at: Duration) {
        if self.moved_on || text.trim().is_empty() {
            return;
        }
        match self.banner_at {
            None if banner(text) => self.banner_at = Some(at),
            // Text before any banner: not a firmware that announces itself; never watched.
            None => self.moved_on = true,
            Some(_) => self.moved_on = true,
        }
    }

    /// What stalled, when the firmware printed its banner and nothing after it for longer
    /// than the window, as of `now` (since QEMU started).
    pub fn stalled(&self, now: Duration) -> Option<String> {
        let at = self.banner_at.filter(|_| !self.moved_on)?;
        (now.saturating_sub(at) > self.window).then(|| {
            format!(
                "the UEFI firmware printed its banner at {:.1}s and nothing after it for {}s (its boot manager never ran)",
                at.as_secs_f64(),
                self.window.as_secs()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANNER: &str = "UEFI firmware (version  built at 13:10:49 on Nov  5 2024)";

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn silence_after_the_banner_past_the_window_is_a_stall() {
        let mut w = FirmwareWatch::new(secs(90));
        w.text(BANNER, secs(1));
        w.text("   ", secs(2));
        assert_eq!(w.stalled(secs(91)), None);
        let detail = w.stalled(secs(92)).expect("stalled");
        assert!(
            detail.contains("at 1.0s") && detail.contains("for 90s"),
            "{detail}"
        );
    }

    #[test]
    fn any_line_after_the_banner_ends_the_watch() {
        let mut w = FirmwareWatch::new(secs(90));
        w.text(BANNER, secs(1));
        w.text(
            "BdsDxe: loading Boot0001 \"UEFI QEMU QEMU CD-ROM \"",
            secs(7),
        );
        assert_eq!(w.stalled(secs(500)), None);
        // A prompt (the console's unterminated end) counts too.
        let mut w = FirmwareWatch::new(secs(90));
        w.text(BANNER, secs(1));
        w.text("Shell> ", secs(7));
        assert_eq!(w.stalled(secs(500)), None);
    }

    #[test]
    fn a_console_that_starts_otherwise_is_never_watched() {
        // x86_64 OVMF: the boot manager's line first, then a silent kernel.
        let mut w = FirmwareWatch::new(secs(90));
        w.text("BdsDxe: starting Boot0001", secs(4));
        w.text(BANNER, secs(5));
        assert_eq!(w.stalled(secs(500)), None);
        // No console at all.
        assert_eq!(FirmwareWatch::new(secs(90)).stalled(secs(500)), None);
    }

    #[test]
    fn an_endless_window_never_stalls() {
        let mut w = FirmwareWatch::new(Duration::MAX);
        w.text(BANNER, secs(1));
        assert_eq!(w.stalled(Duration::MAX), None);
    }
}
