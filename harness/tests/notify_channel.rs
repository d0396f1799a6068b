//! The notify channel without a guest: a fake guest connects to the host's unix socket
//! (`RUN/vsock_<PORT>`, where vhost-device-vsock delivers guest connections) the way systemd's
//! PID 1 does through vhost-device-vsock: one connection per message and no EOF. Needs
//! `vhost-device-vsock` (installed by ci/test).

use std::path::PathBuf;
use std::time::Duration;

use harness::notify::{
    Decision, NotifyChannel, NotifyChoice, NotifyError, NotifyOptions, NotifyState, ReadLimits,
    Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn run_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ng-c-")
        .tempdir_in("/tmp")
        .unwrap()
}

async fn open(dir: &tempfile::TempDir, limits: ReadLimits) -> NotifyChannel {
    let opts = NotifyOptions {
        choice: NotifyChoice::VhostDeviceVsock,
        memory_mib: 512,
        read_limits: limits,
        ..NotifyOptions::default()
    };
    NotifyChannel::open_with(dir.path(), &opts)
        .await
        .expect("transport 2 needs vhost-device-vsock (ci/test installs it)")
}

fn listen_path(chan: &NotifyChannel) -> PathBuf {
    match chan.transport() {
        Transport::VhostDeviceVsock { listen, .. } => listen.clone(),
        other => panic!("unexpected transport {other}"),
    }
}

/// Sends `text` like PID 1 (no shutdown of our side) and waits for the host to close.
async fn send_like_pid1(path: &PathBuf, text: &str) -> Duration {
    let mut conn = UnixStream::connect(path).await.unwrap();
    conn.write_all(text.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), conn.read_to_end(&mut rest))
        .await
        .expect("the host must close the connection without our EOF")
        .unwrap();
    assert!(rest.is_empty(), "the host sends nothing back");
    started.elapsed()
}

#[tokio::test]
async fn host_closes_each_message_and_delivers_in_order() {
    let dir = run_dir();
    let mut chan = open(&dir, ReadLimits::default()).await;
    let args = chan.qemu_args();
    assert_eq!(chan.memory_mib(), Some(512));
    assert!(args.contains(&"memory-backend-memfd,id=mem,size=512M,share=on".to_string()));
    assert!(args
        .iter()
        .any(|a| a.ends_with("vmm.notify_socket=vsock-stream:2:9876")));
    assert!(chan.helper_log().unwrap().exists());
    let path = listen_path(&chan);

    let sent = [
        "X_SYSTEMD_HOSTNAME=fake",
        "X_SYSTEMD_MACHINE_ID=00112233445566778899aabbccddeeff",
        "X_SYSTEMD_UNIT_ACTIVE=basic.target",
        "X_SYSTEMD_UNIT_ACTIVE=multi-user.target",
        "READY=1\nSTATUS=Ready.",
    ];
    for text in sent {
        let closed_after = send_like_pid1(&path, text).await;
        assert!(closed_after < Duration::from_secs(1), "{closed_after:?}");
    }
    let mut state = NotifyState::new();
    for text in sent {
        let msg = tokio::time::timeout(Duration::from_secs(2), chan.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.to_string(), text.replace('\n', " "));
        state.apply(&msg);
    }
    assert_eq!(state.decision(), Decision::Ready);
    assert_eq!(state.hostname.as_deref(), Some("fake"));
    assert!(chan.first_message_at().is_some());
    assert!(!chan.is_silent(Duration::ZERO, Duration::ZERO));
    // Every connection is in the run's notify.log, one line each, in order.
    let log = std::fs::read_to_string(dir.path().join(harness::notify::LOG_NAME)).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), sent.len(), "{log}");
    assert!(
        lines[0].ends_with("bytes  X_SYSTEMD_HOSTNAME=fake"),
        "{log}"
    );
    assert!(lines[4].ends_with("bytes  READY=1 STATUS=Ready."), "{log}");
    chan.close().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_yields_nothing() {
    let dir = run_dir();
    let limits = ReadLimits {
        first_byte: Duration::from_millis(200),
        ..ReadLimits::default()
    };
    let mut chan = open(&dir, limits).await;
    let path = listen_path(&chan);
    let mut conn = UnixStream::connect(&path).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), conn.read_to_end(&mut rest))
        .await
        .expect("the host gives up on a silent connection")
        .unwrap();
    let none = tokio::time::timeout(Duration::from_millis(300), chan.next()).await;
    assert!(none.is_err(), "no message for a silent connection");
    assert!(chan.first_message_at().is_none());
    assert!(chan.is_silent(Duration::ZERO, Duration::from_millis(100)));
    assert!(!chan.is_silent(Duration::ZERO, Duration::from_secs(3600)));
}

#[tokio::test]
async fn a_reused_run_directory_works() {
    let dir = run_dir();
    let first = open(&dir, ReadLimits::default()).await;
    first.close().await;
    // The sockets of the first channel are still there; a second channel replaces them.
    let mut second = open(&dir, ReadLimits::default()).await;
    let path = listen_path(&second);
    send_like_pid1(&path, "X_SYSTEMD_HOSTNAME=again").await;
    let msg = tokio::time::timeout(Duration::from_secs(2), second.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.hostname(), Some("again"));
}

#[tokio::test]
async fn dropping_the_channel_kills_the_helper() {
    let dir = run_dir();
    let mut chan = open(&dir, ReadLimits::default()).await;
    assert_eq!(chan.helper_exited(), None);
    let pid = chan.helper_pid().expect("a helper runs");
    let proc = PathBuf::from(format!("/proc/{pid}/stat"));
    assert!(proc.exists());
    drop(chan);
    let mut gone = false;
    for _ in 0..100 {
        // Gone, or a zombie waiting for tokio's reaper: either way no longer running.
        match std::fs::read_to_string(&proc) {
            Err(_) => gone = true,
            Ok(stat) => gone = stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')),
        }
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "helper {pid} still running after drop");
}

#[tokio::test]
async fn errors_and_fallbacks_are_reported() {
    let long = PathBuf::from(format!("/tmp/{}", "x".repeat(110)));
    std::fs::create_dir_all(&long).unwrap();
    let err = NotifyChannel::open(&long, 1024, NotifyChoice::VhostDeviceVsock)
        .await
        .unwrap_err();
    std::fs::remove_dir_all(&long).unwrap();
    assert!(matches!(err, NotifyError::PathTooLong { .. }), "{err}");

    let dir = run_dir();
    let opts = NotifyOptions {
        helper: Some(PathBuf::from("/nonexistent/vhost-device-vsock")),
        vhost_device: PathBuf::from("/nonexistent/vhost-vsock"),
        ..NotifyOptions::default()
    };
    let chan = NotifyChannel::open_with(dir.path(), &opts).await.unwrap();
    let shown = chan.transport().to_string();
    assert!(shown.starts_with("serial-only: "), "{shown}");
    assert!(shown.contains("/nonexistent/vhost-vsock"), "{shown}");
    assert!(shown.contains("/nonexistent/vhost-device-vsock"), "{shown}");
    assert!(chan.qemu_args().is_empty());
    let forced = NotifyChannel::open_with(
        dir.path(),
        &NotifyOptions {
            choice: NotifyChoice::VhostVsock,
            ..opts
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(forced, NotifyError::VhostVsock(_)), "{forced}");
}
