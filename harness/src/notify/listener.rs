//! The host side of the notify socket: accept one connection per message, read it, close it,
//! and deliver the parsed message in arrival order.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_vsock::VsockListener;

use super::message::NotifyMessage;

/// Pause after a failed accept (e.g. out of descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Timeouts and limits for reading one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// How long to wait for the first byte of a new connection before closing it.
    pub first_byte: Duration,
    /// After the first bytes, the message is complete when no byte arrives for this long
    /// (vhost-device-vsock never passes the guest's end-of-message on as EOF). PID 1 blocks
    /// until the host closes, so every message delays the guest's boot by about this much:
    /// measured on TCG, gaps between consecutive messages were ~10 ms with 5 ms, ~45 ms with
    /// 30 ms and ~208 ms with 200 ms. A message is one small `sendmsg`, which arrives in one
    /// read, so a short window is enough.
    pub idle: Duration,
    /// Bytes kept per message; a longer message is cut (systemd's own limit is 4 KiB-ish).
    pub max_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            first_byte: Duration::from_secs(5),
            idle: Duration::from_millis(10),
            max_bytes: 64 * 1024,
        }
    }
}

/// Reads one message: until EOF, until `idle` passes without bytes after the first ones,
/// or until `max_bytes`. An empty result means the peer sent nothing in `first_byte`.
pub async fn read_message<R: AsyncRead + Unpin>(
    conn: &mut R,
    limits: ReadLimits,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let wait = if buf.is_empty() {
            limits.first_byte
        } else {
            limits.idle
        };
        match tokio::time::timeout(wait, conn.read(&mut chunk)).await {
            Err(_elapsed) => break,
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() >= limits.max_bytes {
                    buf.truncate(limits.max_bytes);
                    break;
                }
            }
            Ok(Err(e)) if buf.is_empty() => return Err(e),
            Ok(Err(_)) => break,
        }
    }
    Ok(buf)
}

/// Delivers one read message; false when the receiver is gone.
fn deliver(tx: &mpsc::Sender<NotifyMessage>, raw: &[u8], opened: Instant) -> bool {
    if raw.is_empty() {
        return true;
    }
    let now = Instant::now();
    let msg = NotifyMessage::parse(raw, now, now.saturating_duration_since(opened));
    // The channel is large; a full channel means nobody reads, so waiting is not an option
    // inside the accept loop (the guest blocks until we close). Drop the message then.
    !matches!(tx.try_send(msg), Err(mpsc::error::TrySendError::Closed(_)))
}

/// Serves a unix socket (transport 2: `RUN/vsock_<PORT>` behind vhost-device-vsock).
/// Connections are handled one at a time, in order: the guest's PID 1 waits for each close.
pub async fn serve_unix(
    listener: UnixListener,
    tx: mpsc::Sender<NotifyMessage>,
    limits: ReadLimits,
    opened: Instant,
) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_RETRY).await;
            continue;
        };
        let raw = read_message(&mut conn, limits).await.unwrap_or_default();
        drop(conn); // close from the host side: PID 1 waits for this
        if !deliver(&tx, &raw, opened) {
            return;
        }
    }
}

/// Serves an AF_VSOCK listener (transport 1), dropping connections from any CID but
/// `guest_cid` unread.
pub async fn serve_vsock(
    listener: VsockListener,
    guest_cid: u32,
    tx: mpsc::Sender<NotifyMessage>,
    limits: ReadLimits,
    opened: Instant,
) {
    loop {
        let Ok((mut conn, peer)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_RETRY).await;
            continue;
        };
        if peer.cid() != guest_cid {
            continue; // dropping closes it
        }
        let raw = read_message(&mut conn, limits).await.unwrap_or_default();
        drop(conn);
        if !deliver(&tx, &raw, opened) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn fast() -> ReadLimits {
        ReadLimits {
            first_byte: Duration::from_millis(300),
            idle: Duration::from_millis(50),
            max_bytes: 16,
        }
    }

    #[tokio::test]
    async fn completes_on_idle_without_eof() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"READY=1\n").await.unwrap();
        // `a` stays open: no EOF, like vhost-device-vsock.
        let raw = read_message(&mut b, fast()).await.unwrap();
        assert_eq!(raw, b"READY=1\n");
        drop(a);
    }

    #[tokio::test]
    async fn joins_pieces_within_idle_and_caps_size() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"STATUS=a").await.unwrap();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            a.write_all(b"bcdefghijklmnop").await.unwrap();
            a
        });
        let raw = read_message(&mut b, fast()).await.unwrap();
        assert_eq!(raw, b"STATUS=abcdefghi");
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn silent_connection_gives_nothing() {
        let (_a, mut b) = tokio::io::duplex(64);
        assert!(read_message(&mut b, fast()).await.unwrap().is_empty());
    }
}
