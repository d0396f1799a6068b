//! [`NotifyError`]: why a notify channel could not be opened.

use std::io;
use std::path::PathBuf;

/// Why a notify channel could not be opened. With [`super::NotifyChoice::Auto`] these become
/// the reason text of a serial-only transport instead of an error.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `/dev/vhost-vsock` cannot be used (absent, no permission, or no free CID).
    #[error("transport vhost-vsock unavailable: {0}")]
    VhostVsock(String),
    /// The `vhost-device-vsock` program was not found.
    #[error("vhost-device-vsock not found: {0}")]
    HelperNotFound(String),
    /// `vhost-device-vsock` was found but did not come up.
    #[error("vhost-device-vsock did not start: {detail} (its log: {})", log.display())]
    HelperStart {
        /// What went wrong (exit status, timeout, last log line).
        detail: String,
        /// The helper's log file in the run directory.
        log: PathBuf,
    },
    /// A unix socket path in the run directory is too long (limit 107 bytes).
    #[error("socket path too long ({len} bytes, limit 107): {}", path.display())]
    PathTooLong {
        /// The offending path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// Any other I/O failure, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl NotifyError {
    /// Wraps an I/O error with a description of the operation.
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> NotifyError {
        NotifyError::Io {
            what: what.into(),
            source,
        }
    }
}
