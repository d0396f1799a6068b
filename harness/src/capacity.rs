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

/// How many of this machine's cores nothing else wants now: [`cores`] less the threads that are
/// runnable beside the caller (`/proc/loadavg`'s fourth field; the lowest of five readings 2 ms
/// apart, so that a thread that only woke for a moment is not counted, while a busy one, such
/// as another guest's vCPU, is in every reading). 0 when /proc cannot be read.
/// `NIXGEN_IDLE_CORES=N` says N instead (a runner that knows better; the tests).
pub fn idle_cores() -> usize {
    if let Some(n) = std::env::var("NIXGEN_IDLE_CORES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    let mut readings = Vec::with_capacity(5);
    for i in 0..5 {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        match std::fs::read_to_string("/proc/loadavg")
            .ok()
            .as_deref()
            .and_then(runnable)
        {
            Some(n) => readings.push(n),
            None => return 0,
        }
    }
    idle_of(cores(), &readings)
}

/// The runnable threads in a `/proc/loadavg` line (`0.52 0.58 0.59 3/467 12345`: 3).
fn runnable(loadavg: &str) -> Option<usize> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Idle cores for `cores` and readings of the runnable threads, the caller among them.
fn idle_of(cores: usize, readings: &[usize]) -> usize {
    let others = readings.iter().min().map_or(cores, |n| n.saturating_sub(1));
    cores.saturating_sub(others)
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
    fn idle_cores_are_the_cores_less_what_stays_runnable() {
        assert_eq!(runnable("0.52 0.58 0.59 3/467 12345\n"), Some(3));
        assert_eq!(runnable("garbage"), None);
        // Only the caller runs: every core is idle.
        assert_eq!(idle_of(2, &[1, 1, 1, 1, 1]), 2);
        // Another guest's vCPU runs in every reading; a thread woke once.
        assert_eq!(idle_of(2, &[2, 3, 2, 2, 2]), 1);
        // Busier than the cores.
        assert_eq!(idle_of(2, &[5, 4, 6, 4, 4]), 0);
        assert_eq!(idle_of(4, &[]), 0);
        // The reading works here (the test itself runs).
        assert!(idle_cores() <= cores());
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
