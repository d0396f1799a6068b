//! The host side of the notify socket: accept one connection per message, read it, close it,
//! and deliver the parsed message in arrival order. Every connection is also written to the
//! run's `notify.log` (when it opened, how long the host held it, what it carried): the guest's
//! PID 1 blocks until the host closes, so this is the evidence when a guest stalls.

use std::future::Future;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_vsock::{VsockListener, VsockStream};

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

/// A source of guest connections, with the peer's CID where the transport tells it.
pub trait Acceptor: Send + 'static {
    /// One accepted connection.
    type Conn: AsyncRead + Unpin + Send;
    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Conn, Option<u32>)>> + Send;
}

impl Acceptor for UnixListener {
    type Conn = UnixStream;
    async fn accept(&mut self) -> io::Result<(UnixStream, Option<u32>)> {
        let (conn, _) = UnixListener::accept(self).await?;
        Ok((conn, None))
    }
}

impl Acceptor for VsockListener {
    type Conn = VsockStream;
    async fn accept(&mut self) -> io::Result<(VsockStream, Option<u32>)> {
        let (conn, peer) = VsockListener::accept(self).await?;
        Ok((conn, Some(peer.cid())))
    }
}

/// One line of `notify.log`: seconds since the channel opened when the connection was
/// accepted, how long the host held it, the bytes read, and the message on one line.
pub fn log_line(accepted: Duration, held: Duration, raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let fields: Vec<&str> = text.split(['\n', '\r']).filter(|l| !l.is_empty()).collect();
    let what = if raw.is_empty() {
        "(nothing sent)".to_owned()
    } else {
        fields.join(" ")
    };
    format!(
        "{:9.3} held {:6.3}s {:5} bytes  {what}\n",
        accepted.as_secs_f64(),
        held.as_secs_f64(),
        raw.len()
    )
}

/// Serves the notify socket: one connection per message, handled one at a time and in order
/// (the guest's PID 1 waits for each close). With `only_cid`, connections from any other CID
/// (or of unknown CID) are closed unread. Each connection is appended to `log`, if given.
/// Ends when the receiver is dropped.
pub async fn serve<A: Acceptor>(
    mut acceptor: A,
    only_cid: Option<u32>,
    tx: mpsc::Sender<NotifyMessage>,
    limits: ReadLimits,
    opened: Instant,
    mut log: Option<std::fs::File>,
) {
    loop {
        let Ok((mut conn, peer)) = acceptor.accept().await else {
            tokio::time::sleep(ACCEPT_RETRY).await;
            continue;
        };
        if only_cid.is_some() && peer != only_cid {
            continue; // dropping closes it
        }
        let accepted = Instant::now();
        let raw = read_message(&mut conn, limits).await.unwrap_or_default();
        drop(conn); // close from the host side: PID 1 waits for this
        if let Some(file) = log.as_mut() {
            let line = log_line(
                accepted.saturating_duration_since(opened),
                accepted.elapsed(),
                &raw,
            );
            // Evidence only: a full disk must not stop the channel.
            let _ = file.write_all(line.as_bytes());
        }
        if !deliver(&tx, &raw, opened) {
            return;
        }
    }
}

/// Serves a datagram notify socket (a container's systemd sends `sd_notify` datagrams to an
/// AF_UNIX socket): one message per datagram, each logged (held time 0: nothing waits for the
/// host). Ends when the receiver is dropped.
pub async fn serve_datagrams(
    socket: tokio::net::UnixDatagram,
    tx: mpsc::Sender<NotifyMessage>,
    opened: Instant,
    mut log: Option<std::fs::File>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok(n) = socket.recv(&mut buf).await else {
            tokio::time::sleep(ACCEPT_RETRY).await;
            continue;
        };
        let raw = &buf[..n];
        if let Some(file) = log.as_mut() {
            let at = Instant::now().saturating_duration_since(opened);
            let _ = file.write_all(log_line(at, Duration::ZERO, raw).as_bytes());
        }
        if !deliver(&tx, raw, opened) {
            return;
        }
    }
}

/// The largest notify datagram read (systemd's own limit for a notify message is 4 KiB of
/// text; fds are not passed here).
const MAX_DATAGRAM: usize = 64 * 1024;

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
        // The second piece comes 10 ms after the first; the idle limit is far longer, so a
        // loaded machine that runs this test late cannot end the message between the two (the
        // size cap ends it, not the idle time).
        let limits = ReadLimits {
            idle: Duration::from_secs(10),
            ..fast()
        };
        let raw = read_message(&mut b, limits).await.unwrap();
        assert_eq!(raw, b"STATUS=abcdefghi");
        drop(writer.await.unwrap());
    }

    /// Hands out prepared connections, then waits forever.
    struct Fake(Vec<(tokio::io::DuplexStream, Option<u32>)>);

    impl Acceptor for Fake {
        type Conn = tokio::io::DuplexStream;
        async fn accept(&mut self) -> io::Result<(Self::Conn, Option<u32>)> {
            match self.0.pop() {
                Some(c) => Ok(c),
                None => std::future::pending().await,
            }
        }
    }

    #[tokio::test]
    async fn only_the_guest_cid_is_heard_and_every_connection_closed() {
        let mut guests = Vec::new();
        let mut conns = Vec::new();
        for (cid, text) in [
            (Some(8), "READY=1"),
            (Some(7), "STATUS=a"),
            (None, "STATUS=b"),
        ] {
            let (mut guest, host) = tokio::io::duplex(256);
            guest.write_all(text.as_bytes()).await.unwrap();
            guests.push(guest);
            conns.push((host, cid));
        }
        conns.reverse(); // Fake pops from the end
        let (tx, mut rx) = mpsc::channel(8);
        let log = tempfile::tempfile().unwrap();
        let task = tokio::spawn(serve(
            Fake(conns),
            Some(7),
            tx,
            fast(),
            Instant::now(),
            Some(log.try_clone().unwrap()),
        ));
        let msg = rx.recv().await.unwrap();
        assert_eq!(msg.to_string(), "STATUS=a");
        for mut guest in guests {
            let mut rest = Vec::new();
            // EOF for every guest: the host closed each connection, heard or not.
            guest.read_to_end(&mut rest).await.unwrap();
        }
        assert!(rx.try_recv().is_err(), "other CIDs are not heard");
        task.abort();
        let mut logged = String::new();
        let mut log = log;
        use std::io::{Read, Seek};
        log.rewind().unwrap();
        log.read_to_string(&mut logged).unwrap();
        assert_eq!(
            logged.lines().count(),
            1,
            "only the heard connection: {logged}"
        );
        assert!(logged.contains("8 bytes  STATUS=a"), "{logged}");
    }

    #[test]
    fn log_lines_put_a_message_on_one_line() {
        let line = log_line(
            Duration::from_millis(12_345),
            Duration::from_millis(11),
            b"STOPPING=1\nSTATUS=Shutting down\n",
        );
        assert_eq!(
            line,
            "   12.345 held  0.011s    32 bytes  STOPPING=1 STATUS=Shutting down\n"
        );
        assert!(log_line(Duration::ZERO, Duration::from_secs(5), b"").contains("(nothing sent)"));
    }

    #[tokio::test]
    async fn every_datagram_is_a_message_and_a_log_line() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify.sock");
        let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
        let log = d.path().join("notify.log");
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(serve_datagrams(
            socket,
            tx,
            Instant::now(),
            Some(std::fs::File::create(&log).unwrap()),
        ));
        let client = tokio::net::UnixDatagram::unbound().unwrap();
        for m in [
            "X_SYSTEMD_UNIT_ACTIVE=basic.target",
            "READY=1\nSTATUS=Ready.",
        ] {
            client.send_to(m.as_bytes(), &path).await.unwrap();
        }
        assert_eq!(
            rx.recv().await.unwrap().get("X_SYSTEMD_UNIT_ACTIVE"),
            Some("basic.target")
        );
        assert_eq!(rx.recv().await.unwrap().get("READY"), Some("1"));
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .ends_with("READY=1 STATUS=Ready."),
            "{text}"
        );
        task.abort();
    }

    #[tokio::test]
    async fn silent_connection_gives_nothing() {
        let (_a, mut b) = tokio::io::duplex(64);
        assert!(read_message(&mut b, fast()).await.unwrap().is_empty());
    }
}
