//! Starting QEMU (or a VM run script that execs it) in its own process group, and stopping
//! the whole group: on [`QemuProcess::stop`], and on drop (Ctrl-C, errors, panics). Drop never
//! blocks the caller (often a tokio worker): it sends SIGKILL to the group at once and leaves
//! the reaping to a short-lived thread of its own.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::HarnessError;

/// The only variables of our environment QEMU and run scripts see, besides [`Launch::env`]:
/// what finds programs, names the user and locale, and reaches a display. Everything else
/// (`QEMU_OPTS`, `QEMU_NET_OPTS`, `NIX_DISK_IMAGE`, `NIX_EFI_VARS`, `TMPDIR`, ...) would change
/// how a run script boots, where it writes, or which host ports it opens.
pub const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
];

/// What to start: program, arguments, extra environment, working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// QEMU, or a run script.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment, besides the [`KEPT_ENV`] variables of ours.
    pub env: Vec<(String, String)>,
    /// Working directory (the run directory).
    pub cwd: PathBuf,
    /// Run it on a pseudo-terminal bridged to `serial.log` and `serial.sock` in the run
    /// directory (a container's console), instead of stdin from /dev/null and stdout to
    /// `qemu.stdout`.
    pub pty: bool,
}

impl Launch {
    /// The command line, program first, with `NAME=value` environment entries in front.
    pub fn command_line(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .chain(std::iter::once(self.program.to_string_lossy().into_owned()))
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// How QEMU ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuExit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it (SIGKILL from the OOM killer or a user, SIGABRT from an assertion).
    Signal(i32),
}

impl QemuExit {
    fn from_status(status: ExitStatus) -> QemuExit {
        match (status.code(), status.signal()) {
            (Some(code), _) => QemuExit::Code(code),
            (None, Some(sig)) => QemuExit::Signal(sig),
            (None, None) => QemuExit::Code(-1),
        }
    }

    /// The exit code (`None` when a signal killed it).
    pub fn code(self) -> Option<i32> {
        match self {
            QemuExit::Code(c) => Some(c),
            QemuExit::Signal(_) => None,
        }
    }
}

impl fmt::Display for QemuExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QemuExit::Code(c) => write!(f, "exited with status {c}"),
            QemuExit::Signal(sig) => match Signal::try_from(sig) {
                Ok(name) => write!(f, "was killed by signal {sig} ({name})"),
                Err(_) => write!(f, "was killed by signal {sig}"),
            },
        }
    }
}

/// A running QEMU and its process group.
#[derive(Debug)]
pub struct QemuProcess {
    /// `None` only after drop handed it to the reaper thread.
    child: Option<Child>,
    pgid: i32,
    status: Option<QemuExit>,
    /// The console bridge of a program on a pseudo-terminal.
    console: Option<tokio::task::JoinHandle<()>>,
}

impl QemuProcess {
    /// Starts `launch` with stdin from /dev/null, stdout and stderr into `run_dir`
    /// (`qemu.stdout`, `qemu.stderr`), in process group `group` (a new one if `None`).
    pub fn spawn(
        launch: &Launch,
        run_dir: &Path,
        group: Option<i32>,
    ) -> Result<QemuProcess, HarnessError> {
        let files = crate::rundir::RunFiles::of(run_dir);
        let file = |path: PathBuf| {
            std::fs::File::create(&path).map_err(|e| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                HarnessError::io(format!("create {name}"), e)
            })
        };
        let mut cmd = Command::new(&launch.program);
        cmd.args(&launch.args)
            .env_clear()
            .envs(
                KEPT_ENV
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.cwd)
            .stderr(file(files.qemu_stderr())?)
            .process_group(group.unwrap_or(0));
        let console = if launch.pty {
            let (master, slave) = crate::pty::open()?;
            let input = slave
                .try_clone()
                .map_err(|e| HarnessError::io("duplicate the terminal", e))?;
            cmd.stdin(Stdio::from(input)).stdout(Stdio::from(slave));
            Some(master)
        } else {
            cmd.stdin(Stdio::null()).stdout(file(files.qemu_stdout())?);
            None
        };
        crate::lifeline::die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                let program = launch.program.to_string_lossy().into_owned();
                let package = if program.ends_with(crate::container::UNSHARE) {
                    "util-linux"
                } else if program.ends_with("aarch64") {
                    crate::aarch64::QEMU_PACKAGE
                } else {
                    "qemu-system-x86"
                };
                HarnessError::MissingProgram {
                    program,
                    package: package.into(),
                }
            } else {
                HarnessError::io(format!("start {}", launch.program.display()), e)
            }
        })?;
        // The parent's copy of the terminal's slave end is closed with `cmd`, so the bridge
        // sees the end of the console when the program exits.
        drop(cmd);
        let console = console
            .map(|master| crate::pty::bridge(master, &files.serial_log(), &files.serial_sock()))
            .transpose()?;
        let pid = child.id().map_or(0, |p| p as i32);
        Ok(QemuProcess {
            child: Some(child),
            pgid: group.unwrap_or(pid),
            status: None,
            console,
        })
    }

    /// The process id of QEMU (or of the run script that execs it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The process group of the run.
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// Waits for the exit. Cancel-safe.
    pub async fn wait(&mut self) -> QemuExit {
        if let Some(s) = self.status {
            return s;
        }
        let exit = match self.child.as_mut().map(Child::wait) {
            Some(wait) => match wait.await {
                Ok(status) => QemuExit::from_status(status),
                // Only if the child was already reaped elsewhere; never happens for ours.
                Err(_) => QemuExit::Code(-1),
            },
            None => QemuExit::Code(-1),
        };
        self.status = Some(exit);
        exit
    }

    /// `Some(exit)` if it has exited.
    pub fn try_exited(&mut self) -> Option<QemuExit> {
        if self.status.is_none() {
            if let Some(Ok(Some(s))) = self.child.as_mut().map(Child::try_wait) {
                self.status = Some(QemuExit::from_status(s));
            }
        }
        self.status
    }

    /// Sends SIGTERM to the process group: a container's nspawn powers it off (the namespace's
    /// `sh` init and `unshare` ignore it).
    pub fn terminate(&self) {
        if self.pgid > 0 {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGTERM);
        }
    }

    fn kill_group(&self) {
        if self.pgid > 0 {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
    }

    /// Kills the whole process group and reaps QEMU.
    pub async fn stop(mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.wait()).await;
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill_group();
        if let Some(console) = self.console.take() {
            console.abort();
        }
        // SIGKILL ends every process of the group at once; what may take a moment is the
        // kernel tearing QEMU's memory down before it can be reaped. Reap on a thread of our
        // own, so a tokio worker dropping a machine (Ctrl-C in a `select!`) never waits.
        if self.status.is_some() {
            return;
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let reaper = std::thread::Builder::new()
            .name("qemu-reaper".into())
            .spawn(move || reap(&mut child, REAP_FOR));
        // No thread to be had: the child goes to tokio's own best-effort orphan reaping.
        drop(reaper);
    }
}

/// How long the reaper thread of a dropped [`QemuProcess`] waits for its killed QEMU.
const REAP_FOR: Duration = Duration::from_secs(10);

/// Polls `child` until it is reaped or `within` has passed (blocking: only on a thread of its
/// own). A process that ends sooner leaves its killed child to init (exiting reparents it).
fn reap(child: &mut Child, within: Duration) {
    let until = Instant::now() + within;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Ok(Some(_)) | Err(_) => return,
        }
    }
}

/// The last `lines` lines of a text file (for error messages).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_name_their_code_or_signal() {
        assert_eq!(QemuExit::Code(1).to_string(), "exited with status 1");
        assert_eq!(
            QemuExit::Signal(9).to_string(),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(QemuExit::Signal(9).code(), None);
        assert_eq!(
            QemuExit::from_status(ExitStatus::from_raw(6)),
            QemuExit::Signal(6)
        );
        assert_eq!(
            QemuExit::from_status(ExitStatus::from_raw(3 << 8)),
            QemuExit::Code(3)
        );
    }
}
