//! How many guests this machine runs at once: no more vCPUs than cores, and as many as the
//! available memory holds (each guest's memory plus QEMU's own overhead, after a reserve for the
//! rest of the machine); at least one.

/// QEMU's own memory beside the guest's, in MiB.
const QEMU_OVERHEAD_MIB: u64 = 512;
/// Memory left to the rest of the machine, in MiB.
const RESERVE_MIB: u64 = 2048;

/// The number of guests of `memory_mib` and `cpus` vCPUs each that fit on this machine now.
pub fn guests_that_fit(memory_mib: u32, cpus: u32) -> usize {
    cap(cores(), available_mib(), memory_mib, cpus)
}

/// This machine's cores (at least one).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// [`guests_that_fit`] for given cores and available memory (MiB, if known).
pub fn cap(cores: usize, available_mib: Option<u64>, memory_mib: u32, cpus: u32) -> usize {
    let per_guest = u64::from(memory_mib) + QEMU_OVERHEAD_MIB;
    let by_memory = available_mib.map_or(1, |m| {
        usize::try_from(m.saturating_sub(RESERVE_MIB) / per_guest).unwrap_or(usize::MAX)
    });
    let by_cores = cores / usize::try_from(cpus.max(1)).unwrap_or(usize::MAX);
    by_cores.min(by_memory).max(1)
}

/// `MemAvailable` from /proc/meminfo (read by the procfs crate, in bytes), in MiB.
fn available_mib() -> Option<u64> {
    use procfs::Current;
    let bytes = procfs::Meminfo::current().ok()?.mem_available?;
    Some(bytes / (1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read() {
        let mib = available_mib().expect("MemAvailable in /proc/meminfo");
        assert!(mib > 0 && mib < 1 << 30, "{mib} MiB");
    }

    #[test]
    fn capped_by_cores_and_memory() {
        assert_eq!(cap(2, Some(22 * 1024), 1024, 1), 2);
        assert_eq!(cap(16, Some(8 * 1024), 1024, 1), 4);
        assert_eq!(cap(16, Some(8 * 1024), 4096, 1), 1);
        assert_eq!(cap(4, Some(1024), 1024, 1), 1);
        assert_eq!(cap(8, None, 1024, 1), 1);
    }

    #[test]
    fn vcpus_count_against_the_cores() {
        // Two cores: one guest of two vCPUs at a time, not two.
        assert_eq!(cap(2, Some(22 * 1024), 1024, 2), 1);
        assert_eq!(cap(8, Some(64 * 1024), 1024, 2), 4);
        assert_eq!(cap(8, Some(64 * 1024), 1024, 3), 2);
        // More vCPUs than cores still runs one guest.
        assert_eq!(cap(2, Some(22 * 1024), 1024, 8), 1);
        assert_eq!(cap(4, Some(22 * 1024), 1024, 0), 4);
    }
}
