//! The verdict of one boot: [`Verdict`], its [`Outcome`], the failure [`Reason`]s and the timed
//! boot [`Milestone`]s. Everything serialises (JSON for `--json`, the matrix and the bench).
//!
//! Each enum has one spelling, kebab-case: serde's (JSON, snapshots) and strum's (`Display`,
//! `name()`) are derived from the same rule.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// The accelerator a guest ran with.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
    /// No machine is emulated: a container on the host's kernel.
    None,
}

impl Accel {
    /// The name QEMU uses (`kvm`, `tcg`).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Why a boot failed. The kebab-case names are the contract with the stand-in manifest and
/// the JSON output.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Reason {
    /// The kernel panicked ("Kernel panic - not syncing").
    KernelPanic,
    /// systemd reached emergency.target.
    EmergencyMode,
    /// systemd reached rescue.target.
    RescueMode,
    /// The initrd failed (NixOS stage 1 error, initramfs shell, root device never appeared).
    InitrdFailure,
    /// The boot loader or the firmware sits at its own prompt (`grub>`, OVMF `Shell>`).
    BootloaderStuck,
    /// The firmware found nothing to boot.
    NoBootableDevice,
    /// QMP reported GUEST_PANICKED (pvpanic) without a kernel panic message.
    GuestPanicked,
    /// QEMU exited before the guest was ready.
    QemuExited,
    /// systemd-nspawn ended before the container was ready (its init failed or exited).
    ContainerExited,
    /// The accelerator failed: QEMU aborted at start ("failed to set MSR") or stopped the guest
    /// with a KVM internal error (status `internal-error`).
    AcceleratorFailure,
    /// QEMU stopped the guest's CPUs for another reason (status `io-error`: the host could not
    /// write the run's overlay; `shutdown`, `watchdog`, ...).
    GuestStopped,
    /// The UEFI firmware printed its banner and then nothing, twice: the guest was started
    /// again after the first stall ([`crate::detect::firmware_stall`]).
    FirmwareStalled,
    /// No decision before the deadline.
    Timeout,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 13] = [
        Reason::KernelPanic,
        Reason::EmergencyMode,
        Reason::RescueMode,
        Reason::InitrdFailure,
        Reason::BootloaderStuck,
        Reason::NoBootableDevice,
        Reason::GuestPanicked,
        Reason::QemuExited,
        Reason::ContainerExited,
        Reason::AcceleratorFailure,
        Reason::GuestStopped,
        Reason::FirmwareStalled,
        Reason::Timeout,
    ];

    /// The kebab-case name (`kernel-panic`, ...).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Reason, String> {
        Reason::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown failure reason {s:?}"))
    }
}

/// How the boot ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// The guest reached multi-user.target.
    Ready,
    /// It did not.
    Failed {
        /// Why.
        reason: Reason,
        /// The evidence in one line (usually the console line that decided).
        detail: String,
    },
}

/// Which channel decided readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ReadinessSource {
    /// systemd's notify messages over vsock.
    Vsock,
    /// A container's systemd's notify messages on a datagram socket.
    NotifySocket,
    /// The serial console text.
    Serial,
    /// Neither (timeout, QEMU exit, QMP event).
    None,
}

/// The firmware that starts the guest, as the harness chose it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF (UEFI; AAVMF on aarch64).
    Uefi,
    /// U-Boot (an aarch64 board's boot loader, QEMU's `-bios`).
    UBoot,
    /// None: QEMU loads the kernel directly, or a container runs on the host's kernel.
    None,
}

/// How the guest's systemd reported its state: the kind of the notify transport of the run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum TransportKind {
    /// Kernel vhost-vsock.
    VhostVsock,
    /// User-space vhost-device-vsock.
    VhostDeviceVsock,
    /// A container's AF_UNIX datagram socket.
    UnixDatagram,
    /// No notify channel: the serial console only.
    SerialOnly,
}

/// A stage of the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MilestoneKind {
    /// The firmware's first output (or the first serial byte).
    Firmware,
    /// The boot loader (GRUB, ISOLINUX, systemd-boot).
    Bootloader,
    /// The kernel ("Linux version").
    Kernel,
    /// The initrd (NixOS stage 1, initramfs, systemd in the initrd).
    Initrd,
    /// systemd as PID 1 of the real system (NixOS stage 2).
    Systemd,
    /// multi-user.target reached.
    MultiUser,
}

/// A milestone and when it was seen, counted from QEMU's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Milestone {
    /// Which stage.
    pub kind: MilestoneKind,
    /// When, since QEMU started.
    #[serde(serialize_with = "secs")]
    pub at: Duration,
}

/// The files a run leaves as evidence (inside the run directory; gone unless it was kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The complete serial console, from QEMU's first byte.
    pub serial_log: PathBuf,
    /// QEMU's standard error.
    pub qemu_stderr: PathBuf,
    /// Every QMP command and event, timestamped.
    pub qmp_log: PathBuf,
    /// Every connection of the guest's systemd on the vsock notify channel, timestamped
    /// (absent when the channel was serial-only).
    pub notify_log: Option<PathBuf>,
    /// A screendump taken when the boot failed, if the guest has a display.
    pub screenshot: Option<PathBuf>,
}

/// Everything known about one boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Ready or why not.
    pub outcome: Outcome,
    /// The accelerator used.
    pub accel: Accel,
    /// Why KVM was dropped for this guest: it (or an earlier guest of this process) died of KVM
    /// under `--accel auto` and was restarted under TCG. In JSON the text of the reason.
    pub kvm_dropped: Option<KvmDropped>,
    /// The guest's vCPUs (`None` for a container).
    pub vcpus: Option<u32>,
    /// The kernel's oops line when a guest given two vCPUs under TCG oopsed on a stale `int3`
    /// and was started again with one ([`crate::BootOptions::idle_cores`]); that attempt's
    /// console is `smp-serial.log` in the run directory.
    pub vcpus_dropped: Option<String>,
    /// What stalled when the UEFI firmware printed its banner and then nothing for
    /// [`crate::BootOptions::firmware_stall`], and the guest was started again once; that
    /// attempt's console is `stalled-serial.log` in the run directory.
    pub firmware_restarted: Option<String>,
    /// The channel that decided.
    pub source: ReadinessSource,
    /// The firmware that started the guest.
    pub firmware: Firmware,
    /// The kind of notify transport.
    pub transport: TransportKind,
    /// Why the notify channel is serial-only, when it is.
    pub serial_only_reason: Option<String>,
    /// Boot stages in the order seen.
    pub milestones: Vec<Milestone>,
    /// The targets systemd reported active over vsock, in order, with their times.
    #[serde(serialize_with = "target_secs")]
    pub targets: Vec<(String, Duration)>,
    /// The guest's hostname (vsock).
    pub hostname: Option<String>,
    /// The guest's machine id (vsock).
    pub machine_id: Option<String>,
    /// EXIT_STATUS sent by the guest (vsock).
    pub exit_status: Option<i32>,
    /// Time from QEMU's start to the verdict.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// The run directory, if it is kept.
    pub run_dir: Option<PathBuf>,
    /// Logs and screenshot.
    pub evidence: Evidence,
    /// The command that ran (program first).
    pub qemu_args: Vec<String>,
}

impl Verdict {
    /// True when the guest reached multi-user.target.
    pub fn is_ready(&self) -> bool {
        self.outcome == Outcome::Ready
    }

    /// The failure reason, if it failed.
    pub fn reason(&self) -> Option<Reason> {
        match &self.outcome {
            Outcome::Ready => None,
            Outcome::Failed { reason, .. } => Some(*reason),
        }
    }

    /// The notify transport in one line: its kind, and for a serial-only channel why
    /// (`serial-only: <why>`); what `--json` prints as `transport`.
    pub fn transport_line(&self) -> String {
        match &self.serial_only_reason {
            Some(why) => format!("{}: {why}", self.transport),
            None => self.transport.to_string(),
        }
    }

    /// When a milestone was first reached.
    pub fn milestone(&self, kind: MilestoneKind) -> Option<Duration> {
        self.milestones
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.at)
    }
}

/// Progress of a run, sent as it happens (the library never prints).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "kebab-case")]
#[allow(clippy::large_enum_variant)] // the contract's shape; events are few
pub enum Event {
    /// The guest waits for a free slot of a slot directory shared with other processes
    /// ([`crate::slots`]); `Started` follows once it has one.
    WaitingForSlot {
        /// The slot directory.
        dir: PathBuf,
    },
    /// QEMU was started.
    Started {
        /// The command line (program first).
        qemu_args: Vec<String>,
        /// The accelerator.
        accel: Accel,
        /// The run directory.
        run_dir: PathBuf,
    },
    /// The guest died of KVM and QEMU was started again under TCG.
    Restarted {
        /// The accelerator now in use.
        accel: Accel,
        /// Why the first one was dropped.
        why: KvmDropped,
    },
    /// The kernel of a guest given two vCPUs under TCG oopsed on a stale `int3`, and QEMU was
    /// started again with one vCPU ([`crate::BootOptions::idle_cores`]).
    RestartedWithOneVcpu {
        /// The kernel's oops line.
        oops: String,
    },
    /// The UEFI firmware printed its banner and then nothing for
    /// [`crate::BootOptions::firmware_stall`], and QEMU was started again.
    RestartedAfterFirmwareStall {
        /// What stalled.
        detail: String,
    },
    /// A boot stage was reached.
    Milestone(Milestone),
    /// A vsock notify message (its fields, newline-separated).
    Notify(String),
    /// A serial console line (ANSI escapes removed).
    Serial(String),
    /// The verdict.
    Verdict(Verdict),
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

fn target_secs<S: Serializer>(v: &[(String, Duration)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (name, at) in v {
        seq.serialize_element(&(name, (at.as_secs_f64() * 1000.0).round() / 1000.0))?;
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_in_kebab_case() {
        for r in Reason::ALL {
            assert_eq!(r.name().parse::<Reason>().unwrap(), r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.name());
        }
        assert!("panic".parse::<Reason>().is_err());
    }

    #[test]
    fn names_and_serde_agree() {
        let name = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        for f in [Firmware::Bios, Firmware::Uefi, Firmware::None] {
            assert_eq!(name(serde_json::to_value(f).unwrap()), f.to_string());
        }
        assert_eq!(
            TransportKind::VhostDeviceVsock.to_string(),
            "vhost-device-vsock"
        );
        assert_eq!(ReadinessSource::NotifySocket.to_string(), "notify-socket");
        assert_eq!(Accel::Tcg.name(), "tcg");
    }

    #[test]
    fn outcome_serialises_with_status_tag() {
        let o = Outcome::Failed {
            reason: Reason::NoBootableDevice,
            detail: "x".into(),
        };
        let v = serde_json::to_value(o).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["reason"], "no-bootable-device");
    }
}

/// Why KVM was dropped for a guest under `--accel auto`, by when it failed. Each carries the
/// line of QEMU's stderr that said so (or what QEMU's status said); it serialises and displays
/// as that text alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmDropped {
    /// QEMU died of KVM before it answered on QMP (e.g. "failed to set MSR").
    AtStart(String),
    /// The fresh guest stopped with a KVM internal error while it was watched before being
    /// handed out.
    WhileSettling(String),
    /// The boot failed of the accelerator later, while the verdict was awaited.
    MidBoot(String),
    /// An earlier guest of this process dropped KVM: this one started under TCG at once.
    EarlierGuest(Box<KvmDropped>),
}

impl KvmDropped {
    /// The reason's text (for an earlier guest, that guest's).
    pub fn detail(&self) -> &str {
        match self {
            KvmDropped::AtStart(why)
            | KvmDropped::WhileSettling(why)
            | KvmDropped::MidBoot(why) => why,
            KvmDropped::EarlierGuest(first) => first.detail(),
        }
    }
}

impl std::fmt::Display for KvmDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail())
    }
}

impl Serialize for KvmDropped {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.detail())
    }
}
