//! [`HarnessError`]: why a guest could not be started or driven. A failed boot is not an
//! error: it is a [`crate::Verdict`] with [`crate::Outcome::Failed`].

use std::io;
use std::path::PathBuf;

/// Why the harness could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The format is not bootable by the harness (container, cloud-only, board).
    #[error("format {format} ({profile}) cannot be checked: {why}")]
    NotBootable {
        /// The format's name.
        format: String,
        /// Its profile.
        profile: String,
        /// Why (the registry's `not_checked`).
        why: String,
    },
    /// No image file matching the format's output pattern.
    #[error("no image for format {format} at {} (looked for {pattern})", path.display())]
    ImageNotFound {
        /// The format's name.
        format: String,
        /// The path given.
        path: PathBuf,
        /// The registry's output glob.
        pattern: String,
    },
    /// The image is there but cannot be used as given.
    #[error("bad image {}: {detail}", path.display())]
    BadImage {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The format is checked together with another image that was not given.
    #[error("format {format} is checked with its {pair} pair, which this command does not have: add -f {pair} (with its --image) to the same command")]
    NoPair {
        /// The format's name.
        format: String,
        /// The format of the image it needs.
        pair: String,
    },
    /// The environment cannot be used as it is (e.g. a relative `TMPDIR`); the message names
    /// the fix.
    #[error("{0}")]
    BadEnvironment(String),
    /// No usable OVMF firmware.
    #[error("{0}")]
    Firmware(String),
    /// A program the harness needs is missing.
    #[error("{program} not found on PATH (install {package})")]
    MissingProgram {
        /// The program.
        program: String,
        /// The Debian/Nix package that provides it.
        package: String,
    },
    /// QEMU (or the run script) could not be started or died while starting.
    #[error("QEMU did not start: {detail} (run directory kept: {})", run_dir.display())]
    QemuStart {
        /// What happened, with the tail of QEMU's stderr.
        detail: String,
        /// The kept run directory.
        run_dir: PathBuf,
    },
    /// A QMP command failed.
    #[error("QMP {command}: {detail}")]
    Qmp {
        /// The command.
        command: String,
        /// The error.
        detail: String,
    },
    /// The guest did not power off in time.
    #[error("guest did not power off within {within:?}")]
    PowerdownTimeout {
        /// The budget.
        within: std::time::Duration,
    },
    /// The notify channel could not be opened (only when a transport was forced).
    #[error("notify channel: {0}")]
    Notify(#[from] crate::notify::NotifyError),
    /// Any other I/O failure, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl HarnessError {
    /// Wraps an I/O error with a description.
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> HarnessError {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether the error is the input's fault (the image or how it was named), not the
    /// machine's: the command exits 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            HarnessError::NotBootable { .. }
                | HarnessError::ImageNotFound { .. }
                | HarnessError::BadImage { .. }
                | HarnessError::NoPair { .. }
                | HarnessError::BadEnvironment(_)
        )
    }

    /// The run directory this error kept, if any.
    pub fn run_dir(&self) -> Option<&std::path::Path> {
        match self {
            HarnessError::QemuStart { run_dir, .. } => Some(run_dir),
            _ => None,
        }
    }
}
