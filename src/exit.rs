//! Why the command stops early, and the exit code each reason gets.

use thiserror::Error;

/// Exit code: the input was wrong (same as clap's usage errors).
pub const BAD_INPUT: i32 = 2;
/// Exit code: a checked image did not reach multi-user.target (or failed its scenario).
pub const DID_NOT_BOOT: i32 = 3;
/// Exit code: the machine could not be started at all (QEMU, firmware or helper missing).
pub const CANNOT_CHECK: i32 = 4;
/// Exit code: interrupted by Ctrl-C (as a shell reports SIGINT).
pub const INTERRUPTED: i32 = 130;
/// Exit code: `nix` is not on PATH (as a shell reports a missing command).
pub const NIX_MISSING: i32 = 127;

/// A reason to stop, carrying its exit code. Its message is one line naming the problem and the
/// fix.
#[derive(Debug, Error)]
pub enum Exit {
    /// Bad input: unknown format, missing file, malformed value.
    #[error("{0}")]
    BadInput(String),
    /// `nix` is not on PATH.
    #[error("`nix` is not on PATH: install Nix (or add it to PATH), or use --dry-run to see the command")]
    NixMissing,
    /// Nix failed; its stderr is already on the terminal. Carries Nix's exit code.
    #[error("nix build failed (exit code {0}); its messages are above")]
    BuildFailed(i32),
    /// At least one checked image did not boot.
    #[error("{0}")]
    DidNotBoot(String),
    /// The check could not run (QEMU, firmware, helper).
    #[error("{0}")]
    CannotCheck(String),
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// Stopped by another signal (name, number), e.g. SIGTERM when a CI job is cancelled.
    #[error("stopped by {0}")]
    Terminated(&'static str, i32),
    /// The build succeeded but a result holds no file matching the format's pattern.
    #[error("{0}")]
    NoOutput(String),
}

impl Exit {
    /// The process exit code for this reason.
    pub fn code(&self) -> i32 {
        match self {
            Exit::BadInput(_) => BAD_INPUT,
            Exit::NixMissing => NIX_MISSING,
            Exit::BuildFailed(code) => *code,
            Exit::NoOutput(_) => 1,
            Exit::DidNotBoot(_) => DID_NOT_BOOT,
            Exit::CannotCheck(_) => CANNOT_CHECK,
            Exit::Interrupted => INTERRUPTED,
            // As a shell reports a process ended by a signal.
            Exit::Terminated(_, number) => 128 + number,
        }
    }
}

/// Shorthand for a bad-input error.
pub fn bad_input(message: impl Into<String>) -> Exit {
    Exit::BadInput(message.into())
}
