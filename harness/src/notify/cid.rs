//! Transport 1: reserve a free guest CID on `/dev/vhost-vsock` with the
//! `VHOST_VSOCK_SET_GUEST_CID` ioctl (the kernel answers `EADDRINUSE` for a CID in use).
//!
//! The reservation lives as long as the returned file descriptor, which is handed to QEMU
//! (`vhostfd=`), so there is no window between probing and QEMU start in which a parallel run
//! could take the same CID.
#![allow(unsafe_code)] // the one ioctl; see the SAFETY note below

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;

use super::error::NotifyError;

/// The vhost device node.
pub const VHOST_VSOCK_DEV: &str = "/dev/vhost-vsock";

// VHOST_VSOCK_SET_GUEST_CID = _IOW(VHOST_VIRTIO = 0xAF, 0x60, __u64) (linux/vhost.h).
nix::ioctl_write_ptr!(vhost_vsock_set_guest_cid, 0xAF, 0x60, u64);

/// How many candidate CIDs are tried before giving up.
const ATTEMPTS: u32 = 64;

/// Opens `dev` and reserves a free guest CID on it. Returns the CID and the descriptor that
/// holds the reservation.
pub fn reserve_cid(dev: &Path) -> Result<(u32, OwnedFd), NotifyError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| NotifyError::VhostVsock(format!("cannot open {}: {e}", dev.display())))?;
    let fd: OwnedFd = file.into();
    let mut seed = seed();
    for _ in 0..ATTEMPTS {
        seed = next(seed);
        let cid = candidate(seed);
        match set_guest_cid(&fd, cid) {
            Ok(()) => return Ok((cid, fd)),
            Err(Errno::EADDRINUSE) => continue,
            Err(e) => {
                return Err(NotifyError::VhostVsock(format!(
                    "VHOST_VSOCK_SET_GUEST_CID({cid}) on {}: {e}",
                    dev.display()
                )))
            }
        }
    }
    Err(NotifyError::VhostVsock(format!(
        "no free guest CID after {ATTEMPTS} attempts"
    )))
}

fn set_guest_cid(fd: &OwnedFd, cid: u32) -> Result<(), Errno> {
    let value = u64::from(cid);
    // SAFETY: the descriptor is open and owned for the duration of the call, and the kernel
    // reads exactly one u64 through the pointer, which points at a live local.
    unsafe { vhost_vsock_set_guest_cid(fd.as_raw_fd(), &value) }.map(|_| ())
}

/// A per-process, per-call seed: parallel runs start at different places.
fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// xorshift64*: enough to spread candidates, no dependency.
fn next(mut x: u64) -> u64 {
    if x == 0 {
        x = 0x9E37_79B9_7F4A_7C15;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Maps a random number to a usable guest CID: never 0 (hypervisor), 1 (local), 2 (host) nor
/// u32::MAX (any).
pub(crate) fn candidate(r: u64) -> u32 {
    const FIRST: u32 = 3;
    let span = u64::from(u32::MAX - FIRST); // FIRST..u32::MAX-1
    FIRST + (r % span) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_avoid_reserved_cids() {
        let mut x = 1;
        for _ in 0..10_000 {
            x = next(x);
            let c = candidate(x);
            assert!((3..u32::MAX).contains(&c), "{c}");
        }
        assert_eq!(candidate(0), 3);
        assert_eq!(candidate(u64::from(u32::MAX - 4)), u32::MAX - 1);
    }

    #[test]
    fn missing_device_is_a_vhost_vsock_error() {
        let err = reserve_cid(Path::new("/nonexistent/vhost-vsock")).unwrap_err();
        assert!(matches!(err, NotifyError::VhostVsock(_)), "{err}");
        assert!(err.to_string().contains("cannot open"), "{err}");
    }
}
