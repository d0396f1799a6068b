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
    /// Guest CPUs; `None` = the accelerator's default ([`default_cpus`]).
    pub cpus: Option<u32>,
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
    /// The image this one is checked with: for `lxc-metadata`, the `lxc` root file system
    /// tarball (or a build result holding it), which is booted once the metadata is found to
    /// describe it.
    pub pair: Option<PathBuf>,
    /// Extra kernel parameters, for the vm formats only (appended to the run script's
    /// `QEMU_KERNEL_PARAMS`); elsewhere the image's boot loader owns the command line.
    pub kernel_params: Vec<String>,
    /// The Nix system the image was built for (`--system`), when known: `aarch64-linux` boots
    /// a UEFI disk on qemu-system-aarch64 even where its bytes cannot be read here (a qcow2).
    pub system: Option<String>,
    /// A slot directory shared with other processes ([`crate::slots`]): the guest waits for
    /// a free slot per vCPU before it starts. `None`: only this process's own cap applies.
    pub guest_slots: Option<PathBuf>,
    /// This guest is the only one its process runs (`--check` of one image): under TCG, with
    /// no [`cpus`](Self::cpus) given and no [`guest_slots`](Self::guest_slots), an x86_64 guest
    /// gets two vCPUs when the machine has two cores idle ([`crate::capacity::idle_cores`]),
    /// and is started again with one if its kernel then oopses on a stale `int3`
    /// ([`default_cpus`] says why).
    pub idle_cores: bool,
    /// How long a UEFI firmware may print nothing after its banner before the guest is
    /// started again (once; a second stall is the verdict `firmware-stalled`):
    /// [`crate::detect::firmware_stall::DEFAULT_WINDOW`] unless set; `Duration::MAX`: never
    /// (`--run`, whose console a restart would close).
    pub firmware_stall: Duration,
}

impl Default for BootOptions {
    fn default() -> BootOptions {
        BootOptions {
            timeout: None,
            memory_mib: 1024,
            cpus: None,
            accel: AccelChoice::Auto,
            firmware: None,
            iso_firmware: IsoFirmware::Uefi,
            keep: false,
            notify: NotifyChoice::Auto,
            extra_qemu_args: Vec::new(),
            display: false,
            pair: None,
            kernel_params: Vec::new(),
            system: None,
            guest_slots: None,
            idle_cores: false,
            firmware_stall: crate::detect::firmware_stall::DEFAULT_WINDOW,
        }
    }
}

/// The default deadline for an accelerator: 120 s under KVM, 300 s under TCG, 60 s for a
/// container (no emulation: a container reaches multi-user in about a second here).
pub fn default_timeout(accel: crate::Accel) -> Duration {
    match accel {
        crate::Accel::Kvm => Duration::from_secs(120),
        crate::Accel::None => Duration::from_secs(60),
        crate::Accel::Tcg => Duration::from_secs(300),
    }
}

/// The default number of guest CPUs for an accelerator: 2 under KVM, 1 under TCG (a lone
/// guest may get two, [`BootOptions::idle_cores`]).
///
/// One under TCG because multi-threaded TCG (QEMU 7.2 here) crashed two-vCPU x86 guests at
/// random, most likely because a vCPU runs a stale `int3` that the kernel's live patching (`text_poke_bp`, which
/// a one-CPU kernel does not use) has just removed, "Oops: int3", then "Kernel panic - not
/// syncing: Fatal exception in interrupt". Seen twice on Debian trixie's 6.12 kernel in about ten
/// full test runs (a couple of dozen two-vCPU boots each), never with one vCPU; too rare to
/// reproduce on demand (none in the two-vCPU boots counted in the README's "Benchmarks"), so
/// not shown absent either. `-accel tcg,thread=single` avoids the race by design, but runs
/// every vCPU on one host thread, so it gains nothing over one vCPU. An explicit `cpus` is
/// honoured.
pub const fn default_cpus(accel: crate::Accel) -> u32 {
    match accel {
        crate::Accel::Kvm => 2,
        crate::Accel::Tcg | crate::Accel::None => 1,
    }
}

/// The default deadline for a guest of another architecture (aarch64, always TCG here): 480 s.
/// Measured on this project's machine kind (2 cores, QEMU 7.2, cortex-a57, one vCPU): the
/// sd-aarch64 stand-in (arm64 trixie through U-Boot, its 5 s extlinux menu included) reached
/// multi-user.target in 40.6 s at a load of about 3, and a bare QEMU boot of it took about
/// 2 min to its login prompt at a load of 5-6 (an mmdebstrap under qemu-user running beside it).
pub fn default_foreign_timeout() -> Duration {
    Duration::from_secs(480)
}

impl BootOptions {
    /// The deadline that applies to a guest of another architecture (emulated by TCG).
    pub fn timeout_for_foreign(&self) -> Duration {
        self.timeout.unwrap_or_else(default_foreign_timeout)
    }

    /// The number of guest CPUs that applies with this accelerator.
    pub fn cpus_for(&self, accel: crate::Accel) -> u32 {
        self.cpus.unwrap_or_else(|| default_cpus(accel))
    }

    /// The deadline that applies with this accelerator.
    pub fn timeout_for(&self, accel: crate::Accel) -> Duration {
        self.timeout.unwrap_or_else(|| default_timeout(accel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Accel;

    #[test]
    fn cpus_default_by_accelerator_unless_given() {
        let opts = BootOptions::default();
        assert_eq!(opts.cpus_for(Accel::Tcg), 1);
        assert_eq!(opts.cpus_for(Accel::Kvm), 2);
        let given = BootOptions {
            cpus: Some(4),
            ..BootOptions::default()
        };
        assert_eq!(given.cpus_for(Accel::Tcg), 4);
    }
}
