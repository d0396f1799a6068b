//! Helpers shared by the unit tests of several modules.

/// The values that follow `flag` in a QEMU argument list, in order (`-device` may repeat).
pub(crate) fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

/// The values after each of `flags`, one string a flag (a repeated flag's values joined by
/// ` | `, a missing one empty), for comparing several flags at once.
pub(crate) fn values(args: &[String], flags: &[&str]) -> Vec<String> {
    flags.iter().map(|f| after(args, f).join(" | ")).collect()
}

/// A firmware pair at fixed paths, for argument-list tests.
pub(crate) fn ovmf() -> crate::firmware::Ovmf {
    crate::firmware::Ovmf {
        code: "/fw/CODE.fd".into(),
        vars_template: "/fw/VARS.fd".into(),
    }
}
