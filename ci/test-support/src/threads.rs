//! How many trials (each one QEMU guest) run at once: what the user asked for (`--test-threads`,
//! `RUST_TEST_THREADS`), else as many as cores and available memory allow. Not libtest's
//! default of one per core regardless of memory.

/// The number of trial threads: `--test-threads`, else `RUST_TEST_THREADS`, else `fit()`, what
/// fits this machine's cores and available memory (the matrix passes `harness::capacity`'s
/// answer; this crate depends on no crate of the workspace).
pub fn choose(requested: Option<usize>, fit: impl FnOnce() -> usize) -> usize {
    let from_env = std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    requested
        .filter(|n| *n > 0)
        .or(from_env.filter(|n| *n > 0))
        .unwrap_or_else(fit)
}

/// The guest slot directory the test run shares between its test binaries
/// (`NIXGEN_GUEST_SLOTS`, set by `ci/test`; see `harness::slots`), for the `BootOptions` of
/// tests that boot guests through the library. The command reads the variable itself.
pub fn guest_slots() -> Option<std::path::PathBuf> {
    std::env::var_os("NIXGEN_GUEST_SLOTS")
        .filter(|v| !v.is_empty())
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_wins_over_the_machine() {
        assert_eq!(choose(Some(3), || 1), 3);
    }
}
