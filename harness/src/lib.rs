//! Boots an image of a nixos-generate format under QEMU and returns a verdict with evidence.
//!
//! ```no_run
//! # async fn demo() -> Result<(), harness::HarnessError> {
//! let format = formats::registry().get("raw-efi").expect("known format");
//! // No progress events wanted; pass `Some(tx)` of `harness::progress::channel()` to get them.
//! let verdict = harness::check(format, "result".as_ref(), &Default::default(), None).await?;
//! println!("{:?} in {:?}", verdict.outcome, verdict.elapsed);
//! # Ok(()) }
//! ```
//!
//! Sources of evidence are typed signals folded by [`detect::Judge`]: serial console lines
//! (tailed from QEMU's own log file), QMP events, QEMU's exit, the vsock notify channel
//! ([`notify`]) and the deadline.

pub mod aarch64;
pub mod accel;
pub mod arch;
mod blocking;
pub mod bootcfg;
pub mod capacity;
pub mod cloud;
pub mod confined;
pub mod container;
pub mod detect;
pub mod diskboot;
mod error;
pub mod esp;
pub mod firmware;
pub mod image;
mod kexec;
mod launch;
mod lifeline;
pub mod lxcmeta;
mod machine;
pub mod notify;
pub mod options;
pub mod profile;
pub mod progress;
mod pty;
pub mod qcow2;
pub mod qemu;
pub mod qmp;
pub mod rundir;
pub mod serial;
pub mod slots;
#[cfg(test)]
mod test_util;
mod unpack;
mod verdict;
pub mod vma;
mod zstd_disk;

use std::path::Path;

pub use error::HarnessError;
pub use machine::{Machine, PoweredOff};
pub use options::{AccelChoice, BootOptions, IsoFirmware, NotifyChoice};
pub use verdict::{
    Accel, Event, Evidence, Firmware, KvmDropped, Milestone, MilestoneKind, Outcome,
    ReadinessSource, Reason, TransportKind, Verdict,
};

/// Boots, waits for the verdict, then stops QEMU at once and cleans up; the run directory is
/// kept on failure or `opts.keep` and named in [`Verdict::run_dir`].
///
/// No power-off after the verdict: the guest runs on a snapshot overlay (or a copy) in the run
/// directory, so nothing it could still write matters, and a graceful power-off would only add
/// its seconds to the wall time. The `poweroff` scenario tests power-off where it is the point.
pub async fn check(
    format: &formats::Format,
    image: &Path,
    opts: &BootOptions,
    progress: Option<tokio::sync::mpsc::Sender<Event>>,
) -> Result<Verdict, HarnessError> {
    let mut machine = Machine::start(format, image, opts, progress).await?;
    let mut verdict = machine.wait_ready().await;
    verdict.run_dir = machine.finish(verdict.is_ready()).await;
    Ok(verdict)
}
