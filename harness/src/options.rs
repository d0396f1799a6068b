//! [`BootOptions`]: how to boot one guest.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::notify::NotifyChoice;

/// Which accelerator to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM if a probe guest actually runs, else TCG.
    #[default]
    Auto,
    /// KVM, without probing.
    Kvm,
    /// TCG.
    Tcg,
}

/// How an ISO boots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IsoFirmware {
    /// Through OVMF.
    #[default]
    Uefi,
    /// Through SeaBIOS.
    Bios,
}

/// Options for one boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    /// Deadline for the verdict; `None` = the accelerator's default ([`default_timeout`]).
    pub timeout: Option<Duration>,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Guest CPUs.
    pub cpus: u32,
    /// Accelerator.
    pub accel: AccelChoice,
    /// OVMF code file to use instead of the one QEMU's firmware descriptors name.
    pub firmware: Option<PathBuf>,
    /// UEFI or BIOS for ISO images.
    pub iso_firmware: IsoFirmware,
    /// Keep the run directory after a success too.
    pub keep: bool,
    /// The vsock notify channel.
    pub notify: NotifyChoice,
    /// Extra QEMU arguments, appended last but for the notify channel's.
    pub extra_qemu_args: Vec<String>,
    /// Show a display window (default: headless).
    pub display: bool,
}

impl Default for BootOptions {
    fn default() -> BootOptions {
        BootOptions {
            timeout: None,
            memory_mib: 1024,
            cpus: 2,
            accel: AccelChoice::Auto,
            firmware: None,
            iso_firmware: IsoFirmware::Uefi,
            keep: false,
            notify: NotifyChoice::Auto,
            extra_qemu_args: Vec::new(),
            display: false,
        }
    }
}

/// The default deadline for an accelerator: 120 s under KVM, 300 s under TCG.
pub fn default_timeout(accel: crate::Accel) -> Duration {
    match accel {
        crate::Accel::Kvm => Duration::from_secs(120),
        crate::Accel::Tcg => Duration::from_secs(300),
    }
}

impl BootOptions {
    /// The deadline that applies with this accelerator.
    pub fn timeout_for(&self, accel: crate::Accel) -> Duration {
        self.timeout.unwrap_or_else(|| default_timeout(accel))
    }
}
