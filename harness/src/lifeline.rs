//! Children that die with the process that started them: QEMU and its helpers run in their own
//! process group (so Ctrl-C on the terminal reaches the harness, not the guest), which also
//! means nothing would stop them if the harness itself were killed (SIGKILL, a CI job's
//! timeout, a closed terminal). The kernel's parent-death signal covers that case.

#![allow(unsafe_code)] // pre_exec; see the SAFETY note below

use nix::sys::signal::Signal;
use tokio::process::Command;

/// Makes the child started by `cmd` receive SIGKILL when the thread that starts it exits (the
/// kernel's `PR_SET_PDEATHSIG`; Linux only). Start children from long-lived threads: a tokio
/// worker or the thread that owns the runtime, never a blocking-pool thread.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the child between fork and exec and only makes one system
    // call (prctl), which is async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        })
    }
}
