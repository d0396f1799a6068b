//! Which way the guest's notify messages travel, how the caller chooses, and the QEMU
//! arguments each way needs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::listener::ReadLimits;

/// How the caller wants the notify channel set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NotifyChoice {
    /// Probe: vhost-vsock, then vhost-device-vsock, else serial only (never an error).
    #[default]
    Auto,
    /// No notify channel: serial only.
    Off,
    /// Transport 1 or an error.
    VhostVsock,
    /// Transport 2 or an error.
    VhostDeviceVsock,
}

/// The transport in use, as reported in the verdict (`Display`: `vhost-vsock`,
/// `vhost-device-vsock`, `serial-only: <why>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Transport 1: kernel vhost-vsock, guest CID `cid`, host AF_VSOCK port `port`.
    VhostVsock {
        /// The reserved guest CID.
        cid: u32,
        /// The host port the guest connects to (CID 2).
        port: u32,
    },
    /// Transport 2: user-space vhost-device-vsock; the host listens on `<uds>_<port>`.
    VhostDeviceVsock {
        /// The helper program that runs.
        helper: PathBuf,
        /// The unix socket the host listens on (`RUN/vsock_<port>`).
        listen: PathBuf,
        /// The vsock port the guest connects to (CID 2).
        port: u32,
    },
    /// A container's systemd sends datagrams to an AF_UNIX socket bound into it (the same
    /// `vmm.notify_socket` credential, given by systemd-nspawn).
    UnixDatagram {
        /// The socket on the host (`RUN/notify/notify.sock`).
        listen: PathBuf,
    },
    /// No vsock: readiness comes from the serial console only.
    SerialOnly {
        /// Why (all the probes that failed, or "notify disabled").
        reason: String,
    },
}

impl Transport {
    /// The host port the guest is told to connect to, if there is a vsock transport.
    pub fn port(&self) -> Option<u32> {
        match self {
            Transport::VhostVsock { port, .. } | Transport::VhostDeviceVsock { port, .. } => {
                Some(*port)
            }
            Transport::UnixDatagram { .. } | Transport::SerialOnly { .. } => None,
        }
    }

    /// True for the serial-only case.
    pub fn is_serial_only(&self) -> bool {
        matches!(self, Transport::SerialOnly { .. })
    }

    /// Its kind, as a verdict records it.
    pub fn kind(&self) -> crate::TransportKind {
        match self {
            Transport::VhostVsock { .. } => crate::TransportKind::VhostVsock,
            Transport::VhostDeviceVsock { .. } => crate::TransportKind::VhostDeviceVsock,
            Transport::UnixDatagram { .. } => crate::TransportKind::UnixDatagram,
            Transport::SerialOnly { .. } => crate::TransportKind::SerialOnly,
        }
    }

    /// Why it is serial-only, when it is.
    pub fn serial_only_reason(&self) -> Option<&str> {
        match self {
            Transport::SerialOnly { reason } => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.serial_only_reason() {
            Some(reason) => write!(f, "{}: {reason}", self.kind()),
            None => write!(f, "{}", self.kind()),
        }
    }
}

/// All the knobs of [`super::NotifyChannel::open_with`]. `Default` = auto probing, 1024 MiB,
/// x86_64, helper from PATH or ~/.cargo/bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOptions {
    /// Which transport(s) to try.
    pub choice: NotifyChoice,
    /// The guest's memory in MiB; transport 2's shared memory backend must be exactly this.
    pub memory_mib: u32,
    /// An explicit vhost-device-vsock program (else PATH, else ~/.cargo/bin).
    pub helper: Option<PathBuf>,
    /// The vhost device node for transport 1 (default `/dev/vhost-vsock`).
    pub vhost_device: PathBuf,
    /// The guest architecture as QEMU names it (`x86_64`, `aarch64`, ...): x86 guests get the
    /// credential by SMBIOS type 11, others by fw_cfg.
    pub guest_arch: String,
    /// Process group for the helper (`Some(0)`: a new group led by the helper; `None`: ours).
    pub helper_process_group: Option<i32>,
    /// Message reading limits.
    pub read_limits: ReadLimits,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            choice: NotifyChoice::Auto,
            memory_mib: 1024,
            helper: None,
            vhost_device: PathBuf::from(super::cid::VHOST_VSOCK_DEV),
            guest_arch: "x86_64".to_string(),
            helper_process_group: None,
            read_limits: ReadLimits::default(),
        }
    }
}

/// A reasonable grace period for [`super::NotifyState::is_silent`] under TCG, counted from the
/// serial console's first line of PID 1 (`systemd NNN running in system mode` or `Welcome to`):
/// systemd >= 256 sends X_SYSTEMD_HOSTNAME right after `Hostname set to`, measured 0.04-0.16 s
/// of guest time after that line on trixie stand-ins, even on a host with load 12.
pub const DEFAULT_SILENCE_GRACE: Duration = Duration::from_secs(15);

/// Where systemd reads fw_cfg credentials (`/sys/firmware/qemu_fw_cfg/by_name/<this>/<name>`).
const FW_CFG_CREDENTIALS: &str = "opt/io.systemd.credentials/";

/// The longest fw_cfg file name QEMU takes (56 bytes with the terminating NUL).
const FW_CFG_NAME_MAX: usize = 55;

/// A unit drop-in, given as a credential, that loads the virtio vsock transport before
/// `sysinit.target`. systemd (>= 256) loads `vmw_vsock_virtio_transport` early by itself only
/// when it finds the device under `/sys/devices/pci0000:00` (`kmod-setup.c`), which is where
/// ACPI puts the PCI root (x86, AAVMF). A guest booted with a device tree (U-Boot on the `virt`
/// board) has it under `/sys/devices/platform/<addr>.pcie/pci0000:00`, so the module waited
/// for udev's coldplug, which on a TCG aarch64 guest came after `multi-user.target`: every
/// message until then was lost (measured: the transport bound at 37-56 s, multi-user at
/// 39 s). systemd-debug-generator (>= 256) turns `systemd.unit-dropin.<unit>` credentials into
/// drop-ins; fw_cfg names are limited to 55 bytes, so the drop-in goes on `-.slice` (always in
/// the boot transaction, short enough), which then wants `modprobe@` of the transport. Older
/// systemd ignores it; a kernel without the module ends the `modprobe@` unit quietly.
pub const VSOCK_DROPIN_CREDENTIAL: &str = "systemd.unit-dropin.-.slice";
/// The drop-in itself (no comma: it goes into a QEMU option value as it is).
pub const VSOCK_DROPIN: &str = "[Unit]\nWants=modprobe@vmw_vsock_virtio_transport.service\n";

const _: () = assert!(FW_CFG_CREDENTIALS.len() + VSOCK_DROPIN_CREDENTIAL.len() <= FW_CFG_NAME_MAX);

/// The credential arguments that tell systemd (>= 254) where to send its notifications: on x86
/// by SMBIOS type 11, elsewhere by fw_cfg, there with `VSOCK_DROPIN` (see there why).
pub fn credential_args(guest_arch: &str, port: u32) -> Vec<String> {
    let address = format!("vsock-stream:2:{port}");
    if matches!(guest_arch, "x86_64" | "i386" | "i686" | "x86") {
        vec![
            "-smbios".to_string(),
            format!("type=11,value=io.systemd.credential:vmm.notify_socket={address}"),
        ]
    } else {
        vec![
            "-fw_cfg".to_string(),
            format!("name={FW_CFG_CREDENTIALS}vmm.notify_socket,string={address}"),
            "-fw_cfg".to_string(),
            format!("name={FW_CFG_CREDENTIALS}{VSOCK_DROPIN_CREDENTIAL},string={VSOCK_DROPIN}"),
        ]
    }
}

/// QEMU arguments of transport 1: the device with the reserved CID and the inherited vhost
/// descriptor that holds the reservation.
pub fn vhost_vsock_args(cid: u32, vhostfd: i32) -> Vec<String> {
    vec![
        "-device".to_string(),
        format!("vhost-vsock-pci,guest-cid={cid},vhostfd={vhostfd}"),
    ]
}

/// QEMU arguments of transport 2. Includes `-m <memory_mib>` so that, placed after any other
/// `-m` (a later `-m` wins, e.g. after the vm run script's own), the machine's memory equals
/// the shared backend's size.
pub fn vhost_user_args(memory_mib: u32, vhost_socket: &std::path::Path) -> Vec<String> {
    vec![
        "-m".to_string(),
        memory_mib.to_string(),
        "-object".to_string(),
        format!("memory-backend-memfd,id=mem,size={memory_mib}M,share=on"),
        "-machine".to_string(),
        "memory-backend=mem".to_string(),
        "-chardev".to_string(),
        format!("socket,id=vsk,path={}", vhost_socket.display()),
        "-device".to_string(),
        "vhost-user-vsock-pci,chardev=vsk".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn display_matches_the_verdict_strings() {
        let t1 = Transport::VhostVsock { cid: 7, port: 9 };
        assert_eq!(t1.to_string(), "vhost-vsock");
        let t2 = Transport::VhostDeviceVsock {
            helper: "/x".into(),
            listen: "/r/vsock_9".into(),
            port: 9,
        };
        assert_eq!(t2.to_string(), "vhost-device-vsock");
        assert_eq!(t2.port(), Some(9));
        let t3 = Transport::SerialOnly {
            reason: "notify disabled".into(),
        };
        assert_eq!(t3.to_string(), "serial-only: notify disabled");
        assert!(t3.is_serial_only() && t3.port().is_none());
    }

    #[test]
    fn credential_is_smbios_on_x86_and_fw_cfg_elsewhere() {
        assert_eq!(
            credential_args("x86_64", 5000),
            [
                "-smbios",
                "type=11,value=io.systemd.credential:vmm.notify_socket=vsock-stream:2:5000"
            ]
        );
        assert_eq!(
            credential_args("aarch64", 5000),
            [
                "-fw_cfg",
                "name=opt/io.systemd.credentials/vmm.notify_socket,string=vsock-stream:2:5000",
                "-fw_cfg",
                "name=opt/io.systemd.credentials/systemd.unit-dropin.-.slice,string=[Unit]\n\
                 Wants=modprobe@vmw_vsock_virtio_transport.service\n"
            ]
        );
        // QEMU refuses longer fw_cfg names; QEMU's option parser splits values at commas.
        for arg in credential_args("aarch64", 5000).iter().skip(1).step_by(2) {
            let name = arg.split(',').next().unwrap().trim_start_matches("name=");
            assert!(name.len() <= FW_CFG_NAME_MAX, "{name}");
            assert_eq!(arg.matches(',').count(), 1, "{arg}");
        }
    }

    #[test]
    fn vhost_user_backend_size_equals_memory() {
        let args = vhost_user_args(768, Path::new("/tmp/ng-x/vhost.sock"));
        assert_eq!(args[..2], ["-m", "768"]);
        assert!(args.contains(&"memory-backend-memfd,id=mem,size=768M,share=on".to_string()));
        assert!(args.contains(&"socket,id=vsk,path=/tmp/ng-x/vhost.sock".to_string()));
        assert_eq!(
            vhost_vsock_args(42, 5),
            ["-device", "vhost-vsock-pci,guest-cid=42,vhostfd=5"]
        );
    }
}
