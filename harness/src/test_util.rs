//! Helpers shared by the unit tests of several modules.

/// The values that follow `flag` in a QEMU argument list, in order (`-device` may repeat).
pub(crate) fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}
