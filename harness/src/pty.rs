//! A console on a pseudo-terminal, shaped like QEMU's serial chardev
//! (`socket,server=on,wait=off,logfile=`): everything the program writes to its terminal is
//! appended to a log file from the first byte, and one client at a time may connect to a unix
//! socket to read and type (the console scenario, `--run`). Used for systemd-nspawn, whose
//! container console is its own terminal (with a pipe instead, the container's systemd prints
//! nothing).

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::HarnessError;

/// A new pseudo-terminal: (master, slave). The slave becomes the program's stdin and stdout.
pub fn open() -> Result<(OwnedFd, OwnedFd), HarnessError> {
    let pty = nix::pty::openpty(None, None)
        .map_err(|e| HarnessError::io("open a pseudo-terminal", e.into()))?;
    Ok((pty.master, pty.slave))
}

/// Starts copying between `master`, the log file `log` and clients of the unix socket `sock`
/// (created now, so a client may connect as soon as this returns). Ends when the program
/// closes its terminal; aborting the task closes everything.
pub fn bridge(master: OwnedFd, log: &Path, sock: &Path) -> Result<JoinHandle<()>, HarnessError> {
    nix::fcntl::fcntl(
        master.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| HarnessError::io("make the terminal non-blocking", e.into()))?;
    // Deprecated because a borrowed descriptor could be closed under the reactor; this one is
    // an OwnedFd that the AsyncFd owns, and its replacement `register` is `unsafe`.
    #[allow(deprecated)]
    let master = AsyncFd::with_interest(
        master,
        tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
    )
    .map_err(|e| HarnessError::io("watch the pseudo-terminal", e))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| HarnessError::io(format!("open {}", log.display()), e))?;
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock)
        .map_err(|e| HarnessError::io(format!("listen on {}", sock.display()), e))?;
    Ok(tokio::spawn(run(master, log, listener)))
}

async fn run(master: AsyncFd<OwnedFd>, mut log: std::fs::File, listener: UnixListener) {
    let mut client: Option<UnixStream> = None;
    let (mut from_pty, mut from_client) = ([0u8; 4096], [0u8; 1024]);
    loop {
        tokio::select! {
            ready = master.readable() => {
                let Ok(mut guard) = ready else { return };
                match guard.try_io(|fd| {
                    nix::unistd::read(fd.get_ref(), &mut from_pty).map_err(std::io::Error::from)
                }) {
                    Err(_would_block) => continue,
                    // EIO or end of file: the program closed its terminal.
                    Ok(Err(_)) | Ok(Ok(0)) => return,
                    Ok(Ok(n)) => {
                        let _ = log.write_all(&from_pty[..n]);
                        if let Some(c) = client.as_mut() {
                            if c.write_all(&from_pty[..n]).await.is_err() {
                                client = None;
                            }
                        }
                    }
                }
            }
            accepted = listener.accept() => {
                // One client at a time, as QEMU's chardev: the newest wins.
                if let Ok((c, _)) = accepted {
                    client = Some(c);
                }
            }
            n = read_client(client.as_mut(), &mut from_client) => match n {
                0 => client = None,
                n => {
                    if write_all(&master, &from_client[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// Reads from the client, if there is one (pends forever without). 0: it went away.
async fn read_client(client: Option<&mut UnixStream>, buf: &mut [u8]) -> usize {
    match client {
        Some(c) => c.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

async fn write_all(master: &AsyncFd<OwnedFd>, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let mut guard = master.writable().await?;
        match guard
            .try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(std::io::Error::from))
        {
            Err(_would_block) => continue,
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A program on the terminal's far end (here: the test writing to the slave) shows up in
    /// the log and at the client; the client's typing reaches the program.
    #[tokio::test]
    async fn terminal_output_is_logged_and_served_and_input_reaches_it() {
        let d = tempfile::tempdir().unwrap();
        let (master, slave) = open().unwrap();
        // Raw mode: no echo, no line discipline between the two ends.
        let mut t = nix::sys::termios::tcgetattr(&slave).unwrap();
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
        let (log, sock) = (d.path().join("serial.log"), d.path().join("serial.sock"));
        let task = bridge(master, &log, &sock).unwrap();
        let mut slave = std::fs::File::from(slave);
        slave.write_all(b"before anyone connects\n").unwrap();
        // Only what comes after the client connected reaches it: wait until the bridge has
        // logged the first line.
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .ends_with("connects\n")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut client = UnixStream::connect(&sock).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        slave.write_all(b"login: ").unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"login: ");
        client.write_all(b"root\n").await.unwrap();
        let mut typed = [0u8; 5];
        let read = tokio::task::spawn_blocking(move || {
            std::io::Read::read_exact(&mut slave, &mut typed).map(|_| typed)
        });
        let typed = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&typed, b"root\n");
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text, "before anyone connects\nlogin: ");
        task.abort();
    }
}
