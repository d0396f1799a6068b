//! How many trials (each one QEMU guest) run at once: what the user asked for (`--test-threads`,
//! `RUST_TEST_THREADS`), else as many as cores and available memory allow. Not libtest's
//! default of one per core regardless of memory.

/// Memory one guest needs: its RAM plus QEMU's own overhead, in MiB.
const PER_GUEST_MIB: u64 = 1024 + 512;
/// Memory left to the rest of the machine, in MiB.
const RESERVE_MIB: u64 = 2048;

/// The number of trial threads.
pub fn choose(requested: Option<usize>) -> usize {
    if let Some(n) = requested.filter(|n| *n > 0) {
        return n;
    }
    if let Some(n) = std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let by_memory = available_mib().map_or(1, |m| {
        usize::try_from(m.saturating_sub(RESERVE_MIB) / PER_GUEST_MIB).unwrap_or(usize::MAX)
    });
    cores.min(by_memory).max(1)
}

/// `MemAvailable` from /proc/meminfo, in MiB.
fn available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
