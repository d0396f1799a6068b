//! How many trials (each one QEMU guest) run at once: what the user asked for (`--test-threads`,
//! `RUST_TEST_THREADS`), else as many as cores and available memory allow. Not libtest's
//! default of one per core regardless of memory.

/// Each trial's guest memory in MiB (the matrix boots every guest with the harness default).
const GUEST_MIB: u32 = 1024;

/// The number of trial threads: `--test-threads`, else `RUST_TEST_THREADS`, else what
/// `harness::capacity` says fits this machine's cores and available memory.
pub fn choose(requested: Option<usize>) -> usize {
    let from_env = std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    requested
        .filter(|n| *n > 0)
        .or(from_env.filter(|n| *n > 0))
        .unwrap_or_else(|| {
            let cpus = harness::BootOptions::default().cpus_for(harness::Accel::Tcg);
            harness::capacity::guests_that_fit(GUEST_MIB, cpus)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_by_cores_and_memory() {
        use harness::capacity::cap;
        assert_eq!(cap(2, Some(22 * 1024), GUEST_MIB, 1), 2);
        assert_eq!(cap(16, Some(8 * 1024), GUEST_MIB, 1), 4);
        assert_eq!(cap(4, Some(1024), GUEST_MIB, 1), 1);
        assert_eq!(cap(8, None, GUEST_MIB, 1), 1);
        assert_eq!(choose(Some(3)), 3);
    }
}
