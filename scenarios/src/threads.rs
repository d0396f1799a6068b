//! How many trials (each one QEMU guest) run at once: what the user asked for (`--test-threads`,
//! `RUST_TEST_THREADS`), else as many as cores and available memory allow. Not libtest's
//! default of one per core regardless of memory.

/// Memory one guest needs: its RAM plus QEMU's own overhead, in MiB.
const PER_GUEST_MIB: u64 = 1024 + 512;
/// Memory left to the rest of the machine, in MiB.
const RESERVE_MIB: u64 = 2048;

/// The number of trial threads: `--test-threads`, else `RUST_TEST_THREADS`, else [`cap`] of
/// this machine's cores and available memory.
pub fn choose(requested: Option<usize>) -> usize {
    let from_env = std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    requested
        .filter(|n| *n > 0)
        .or(from_env.filter(|n| *n > 0))
        .unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            cap(cores, available_mib())
        })
}

/// How many guests fit: at most one per core, and as many as the available memory (MiB, if
/// known) holds after a reserve; at least one.
pub fn cap(cores: usize, available_mib: Option<u64>) -> usize {
    let by_memory = available_mib.map_or(1, |m| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_by_cores_and_memory() {
        assert_eq!(cap(2, Some(22 * 1024)), 2);
        assert_eq!(cap(16, Some(8 * 1024)), 4);
        assert_eq!(cap(4, Some(1024)), 1);
        assert_eq!(cap(8, None), 1);
        assert_eq!(choose(Some(3)), 3);
    }
}
