//! Transport 2: find and run the user-space `vhost-device-vsock` helper for one run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::error::NotifyError;

/// The helper's program name.
pub const HELPER_NAME: &str = "vhost-device-vsock";
/// The guest CID the helper gives the guest (the helper is private to one run).
pub const HELPER_GUEST_CID: u32 = 3;
/// How long to wait for the helper's vhost-user socket to appear.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Finds the helper: `explicit` if given (must exist), else `PATH`, else `~/.cargo/bin`.
pub fn find_helper(explicit: Option<&Path>) -> Result<PathBuf, NotifyError> {
    if let Some(path) = explicit {
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(NotifyError::HelperNotFound(format!(
                "{} is not an executable file",
                path.display()
            )))
        };
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.iter()
        .map(|d| d.join(HELPER_NAME))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            NotifyError::HelperNotFound(format!(
                "not on PATH nor in ~/.cargo/bin (install: cargo install {HELPER_NAME})"
            ))
        })
}

/// True when /proc/net/unix (`table`) shows a listening socket (flag `__SO_ACCEPTCON`,
/// 0x10000) bound to `path`.
fn is_listening(table: &str, path: &Path) -> bool {
    const SO_ACCEPTCON: u32 = 0x10000;
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() >= 8
            && Path::new(cols[7]) == path
            && u32::from_str_radix(cols[3], 16).is_ok_and(|f| f & SO_ACCEPTCON != 0)
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A running helper. Killed when dropped (and reaped by tokio).
#[derive(Debug)]
pub struct Helper {
    child: Child,
    /// The vhost-user socket QEMU connects to (`RUN/vhost.sock`).
    pub socket: PathBuf,
    /// The helper's log (stdout and stderr).
    pub log: PathBuf,
}

impl Helper {
    /// Starts `program --guest-cid 3 --socket <socket> --uds-path <uds>` with its output in
    /// `log`, optionally in process group `pgid` (0 = a new group led by the helper), and waits
    /// until `socket` exists.
    pub async fn start(
        program: &Path,
        socket: &Path,
        uds: &Path,
        log: &Path,
        pgid: Option<i32>,
    ) -> Result<Helper, NotifyError> {
        let out = File::create(log)
            .map_err(|e| NotifyError::io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| NotifyError::io("duplicate the helper log descriptor", e))?;
        let mut cmd = Command::new(program);
        cmd.arg("--guest-cid")
            .arg(HELPER_GUEST_CID.to_string())
            .arg("--socket")
            .arg(socket)
            .arg("--uds-path")
            .arg(uds)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        if let Some(pgid) = pgid {
            cmd.process_group(pgid);
        }
        crate::lifeline::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| NotifyError::io(format!("spawn {}", program.display()), e))?;
        let mut helper = Helper {
            child,
            socket: socket.to_path_buf(),
            log: log.to_path_buf(),
        };
        helper.wait_for_socket().await?;
        Ok(helper)
    }

    /// Waits until the helper listens on its socket. The file appears at bind(), a moment
    /// before listen(); QEMU connecting in between would be refused and exit, so the socket's
    /// listening state is read from /proc/net/unix (where that is readable). Read here, not
    /// through the procfs crate: its entries have no `Flags` column, and only that column's
    /// `__SO_ACCEPTCON` bit tells a listening socket from a bound one (both are "unconnected").
    async fn wait_for_socket(&mut self) -> Result<(), NotifyError> {
        let started = Instant::now();
        loop {
            if self.socket.exists() {
                match std::fs::read_to_string("/proc/net/unix") {
                    Ok(table) if is_listening(&table, &self.socket) => return Ok(()),
                    Ok(_) => {}
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return Ok(());
                    }
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_error(format!("exited with {status}")));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_error(format!(
                    "{} did not appear within {START_TIMEOUT:?}",
                    self.socket.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn start_error(&self, what: String) -> NotifyError {
        let last = std::fs::read_to_string(&self.log)
            .ok()
            .and_then(|t| t.lines().last().map(str::to_string))
            .unwrap_or_default();
        let detail = if last.is_empty() {
            what
        } else {
            format!("{what}; last log line: {last}")
        };
        NotifyError::HelperStart {
            detail,
            log: self.log.clone(),
        }
    }

    /// The helper's process id (for putting QEMU into the same process group, say).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The helper's exit status if it has exited (it should run as long as the guest does).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the helper and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_must_be_executable() {
        let err = find_helper(Some(Path::new("/nonexistent/helper"))).unwrap_err();
        assert!(matches!(err, NotifyError::HelperNotFound(_)), "{err}");
        assert_eq!(
            find_helper(Some(Path::new("/bin/sh"))).unwrap(),
            Path::new("/bin/sh")
        );
    }

    #[test]
    fn listening_state_comes_from_the_flags() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 101 /tmp/ng-a/vhost.sock\n\
            0000000000000000: 00000002 00000000 00000000 0001 01 102 /tmp/ng-b/vhost.sock\n";
        assert!(is_listening(table, Path::new("/tmp/ng-a/vhost.sock")));
        assert!(!is_listening(table, Path::new("/tmp/ng-b/vhost.sock")));
        assert!(!is_listening(table, Path::new("/tmp/ng-c/vhost.sock")));
    }

    #[tokio::test]
    async fn a_unix_listener_is_seen_listening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        let _l = tokio::net::UnixListener::bind(&path).unwrap();
        let table = std::fs::read_to_string("/proc/net/unix").unwrap();
        assert!(is_listening(&table, &path));
    }

    #[tokio::test]
    async fn a_helper_that_exits_reports_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("helper.log");
        // `false` ignores its arguments and exits 1 without creating the socket.
        let err = Helper::start(
            Path::new("/bin/false"),
            &dir.path().join("vhost.sock"),
            &dir.path().join("vsock"),
            &log,
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, NotifyError::HelperStart { .. }), "{err}");
        assert!(err.to_string().contains("exited"), "{err}");
    }
}
