//! The channel through which the guest's systemd reports its own boot: systemd >= 254 reads
//! the credential `vmm.notify_socket=vsock-stream:2:<PORT>` and sends its `sd_notify`
//! messages (one connection each) to the host over vsock.
//!
//! # Use
//! ```no_run
//! # async fn demo(run_dir: &std::path::Path) -> Result<(), harness::notify::NotifyError> {
//! use harness::notify::{Decision, NotifyChannel, NotifyChoice, NotifyState};
//! let mut chan = NotifyChannel::open(run_dir, 1024, NotifyChoice::Auto).await?;
//! let args: Vec<String> = chan.qemu_args(); // append AFTER any other -m (see qemu_args)
//! println!("transport: {}", chan.transport()); // vhost-vsock | vhost-device-vsock | serial-only: why
//! // ... spawn QEMU with `args` (a child of this process: transport 1 passes a descriptor) ...
//! let mut state = NotifyState::new();
//! while let Some(msg) = chan.next().await {
//!     state.apply(&msg);
//!     match state.decision() {
//!         Decision::Undecided => continue,
//!         Decision::Ready | Decision::Failed(_) => break,
//!     }
//! }
//! # Ok(()) }
//! ```
//! Transports, probed in this order by [`NotifyChoice::Auto`]:
//! 1. `/dev/vhost-vsock` usable: a free guest CID is reserved with the
//!    `VHOST_VSOCK_SET_GUEST_CID` ioctl on an open descriptor, which QEMU inherits
//!    (`vhost-vsock-pci,guest-cid=N,vhostfd=FD`); the host listens on AF_VSOCK, port chosen by
//!    the kernel, and drops connections from other CIDs.
//! 2. `vhost-device-vsock` found: a helper process per run (`RUN/vhost.sock`,
//!    `RUN/vhost-device-vsock.log`), a shared memfd memory backend of the guest's size, the host
//!    listens on `RUN/vsock_<PORT>`.
//! 3. Neither: [`Transport::SerialOnly`] with the reasons.
//!
//! Every connection is recorded in `RUN/notify.log` ([`LOG_NAME`]).
//!
//! Each message is read until EOF or until the bytes stop for [`ReadLimits::idle`] (no EOF
//! arrives through vhost-device-vsock), then the host closes the connection: the guest's PID 1
//! waits for that close.
//!
//! A systemd older than 254 (bookworm: 252) sends nothing: use [`NotifyState::is_silent`] or
//! [`NotifyChannel::first_message_at`] to fall back to serial early.

mod cid;
mod error;
mod helper;
mod listener;
mod message;
mod state;
mod transport;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use cid::VHOST_VSOCK_DEV;
pub use error::NotifyError;
pub use helper::{find_helper, HELPER_GUEST_CID, HELPER_NAME};
pub use listener::{read_message, ReadLimits};
pub use message::{
    NotifyMessage, EXIT_STATUS, HOSTNAME, MACHINE_ID, READY, SHUTDOWN, STATUS, UNIT_ACTIVE,
    UNIT_INACTIVE,
};
pub use state::{Decision, FailureTarget, NotifyState, EMERGENCY, MULTI_USER, RESCUE};
pub use transport::{
    credential_args, NotifyChoice, NotifyOptions, Transport, DEFAULT_SILENCE_GRACE,
};

use helper::Helper;

use crate::rundir::RunFiles;

/// The vsock port the guest connects to with transport 2 (the helper is private to the run,
/// so a fixed port cannot collide).
pub const HELPER_PORT: u32 = 9876;
/// Where a container sees the run's notify socket directory.
pub const CONTAINER_NOTIFY_DIR: &str = "/run/nixgen-notify";
/// The file in the run directory that records every notify connection.
pub const LOG_NAME: &str = "notify.log";
/// Capacity of the message channel (a boot sends a few dozen).
const CHANNEL_CAPACITY: usize = 1024;
/// `VMADDR_PORT_ANY`: let the kernel choose the AF_VSOCK port.
const VMADDR_PORT_ANY: u32 = u32::MAX;

/// One run's notify channel: the listener, the helper (transport 2), the reserved CID
/// (transport 1) and the QEMU arguments that go with them. Dropping it stops the listener and
/// kills the helper.
#[derive(Debug)]
pub struct NotifyChannel {
    transport: Transport,
    qemu_args: Vec<String>,
    memory_mib: Option<u32>,
    rx: mpsc::Receiver<NotifyMessage>,
    /// Kept alive in serial-only mode so that `next()` pends instead of returning `None`.
    _idle_tx: Option<mpsc::Sender<NotifyMessage>>,
    task: Option<JoinHandle<()>>,
    helper: Option<Helper>,
    _vhost_fd: Option<OwnedFd>,
    opened: Instant,
    first_message_at: Option<Duration>,
}

impl NotifyChannel {
    /// Opens a channel with default options but the guest memory (`-m`, MiB) and the choice.
    /// Call it just before starting QEMU: message times count from here.
    pub async fn open(
        run_dir: &Path,
        memory_mib: u32,
        choice: NotifyChoice,
    ) -> Result<NotifyChannel, NotifyError> {
        let opts = NotifyOptions {
            choice,
            memory_mib,
            ..NotifyOptions::default()
        };
        NotifyChannel::open_with(run_dir, &opts).await
    }

    /// Opens a channel. With [`NotifyChoice::Auto`] every probe failure becomes part of the
    /// serial-only reason and this does not fail; a forced transport fails with its error.
    pub async fn open_with(
        run_dir: &Path,
        opts: &NotifyOptions,
    ) -> Result<NotifyChannel, NotifyError> {
        let opened = Instant::now();
        match opts.choice {
            NotifyChoice::Off => Ok(Self::serial_only("notify disabled".into(), opened)),
            NotifyChoice::VhostVsock => Self::open_vhost_vsock(run_dir, opts, opened),
            NotifyChoice::VhostDeviceVsock => Self::open_helper(run_dir, opts, opened).await,
            NotifyChoice::Auto => {
                let e1 = match Self::open_vhost_vsock(run_dir, opts, opened) {
                    Ok(chan) => return Ok(chan),
                    Err(e) => e,
                };
                let e2 = match Self::open_helper(run_dir, opts, opened).await {
                    Ok(chan) => return Ok(chan),
                    Err(e) => e,
                };
                Ok(Self::serial_only(format!("{e1}; {e2}"), opened))
            }
        }
    }

    /// Opens the channel of a container: a datagram socket in `RUN/notify/`, bound into the
    /// container at [`CONTAINER_NOTIFY_DIR`]. [`NotifyChannel::qemu_args`] then returns the
    /// systemd-nspawn arguments (the bind mount and the `vmm.notify_socket` credential).
    pub fn open_container(run_dir: &Path) -> Result<NotifyChannel, NotifyError> {
        let opened = Instant::now();
        let dir = run_dir.join("notify");
        std::fs::create_dir_all(&dir)
            .map_err(|e| NotifyError::io(format!("create {}", dir.display()), e))?;
        let listen = dir.join("notify.sock");
        remove_stale_socket(&listen)?;
        let socket = tokio::net::UnixDatagram::bind(&listen)
            .map_err(|e| NotifyError::io(format!("bind {}", listen.display()), e))?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(listener::serve_datagrams(
            socket,
            tx,
            opened,
            Some(open_log(&RunFiles::of(run_dir).notify_log())?),
        ));
        let qemu_args = vec![
            format!("--bind={}:{CONTAINER_NOTIFY_DIR}", dir.display()),
            format!("--set-credential=vmm.notify_socket:{CONTAINER_NOTIFY_DIR}/notify.sock"),
        ];
        Ok(NotifyChannel::listening(
            Transport::UnixDatagram { listen },
            qemu_args,
            rx,
            task,
            opened,
        ))
    }

    /// THE channel literal: one whose listener task (if any) is running; the other parts are
    /// for the callers to add.
    fn listening(
        transport: Transport,
        qemu_args: Vec<String>,
        rx: mpsc::Receiver<NotifyMessage>,
        task: impl Into<Option<JoinHandle<()>>>,
        opened: Instant,
    ) -> NotifyChannel {
        NotifyChannel {
            transport,
            qemu_args,
            memory_mib: None,
            rx,
            _idle_tx: None,
            task: task.into(),
            helper: None,
            _vhost_fd: None,
            opened,
            first_message_at: None,
        }
    }

    fn serial_only(reason: String, opened: Instant) -> NotifyChannel {
        let (tx, rx) = mpsc::channel(1);
        let transport = Transport::SerialOnly { reason };
        let mut chan = NotifyChannel::listening(transport, Vec::new(), rx, None, opened);
        chan._idle_tx = Some(tx);
        chan
    }

    fn open_vhost_vsock(
        run_dir: &Path,
        opts: &NotifyOptions,
        opened: Instant,
    ) -> Result<NotifyChannel, NotifyError> {
        let (cid, fd) = cid::reserve_cid(&opts.vhost_device)?;
        // QEMU inherits the descriptor, so it must survive exec.
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|e| NotifyError::VhostVsock(format!("clear FD_CLOEXEC: {e}")))?;
        let any = tokio_vsock::VsockAddr::new(tokio_vsock::VMADDR_CID_ANY, VMADDR_PORT_ANY);
        let listener = tokio_vsock::VsockListener::bind(any)
            .map_err(|e| NotifyError::VhostVsock(format!("bind an AF_VSOCK listener: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| NotifyError::VhostVsock(format!("AF_VSOCK local address: {e}")))?
            .port();
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(listener::serve(
            listener,
            Some(cid),
            tx,
            opts.read_limits,
            opened,
            Some(open_log(&RunFiles::of(run_dir).notify_log())?),
        ));
        let mut qemu_args = transport::vhost_vsock_args(cid, fd.as_raw_fd());
        qemu_args.extend(credential_args(&opts.guest_arch, port));
        let mut chan = NotifyChannel::listening(
            Transport::VhostVsock { cid, port },
            qemu_args,
            rx,
            task,
            opened,
        );
        chan._vhost_fd = Some(fd);
        Ok(chan)
    }

    async fn open_helper(
        run_dir: &Path,
        opts: &NotifyOptions,
        opened: Instant,
    ) -> Result<NotifyChannel, NotifyError> {
        let program = find_helper(opts.helper.as_deref())?;
        let vhost_socket = RunFiles::of(run_dir).vhost_sock();
        let uds = RunFiles::of(run_dir).vsock_uds();
        let listen = PathBuf::from(format!("{}_{HELPER_PORT}", uds.display()));
        for path in [&vhost_socket, &listen] {
            let len = path.as_os_str().len();
            if len > 107 {
                return Err(NotifyError::PathTooLong {
                    path: path.clone(),
                    len,
                });
            }
        }
        // A reused run directory may hold sockets of an earlier run: nobody listens there.
        for path in [&vhost_socket, &listen] {
            remove_stale_socket(path)?;
        }
        let listener = tokio::net::UnixListener::bind(&listen)
            .map_err(|e| NotifyError::io(format!("listen on {}", listen.display()), e))?;
        let helper = Helper::start(
            &program,
            &vhost_socket,
            &uds,
            &RunFiles::of(run_dir).helper_log(),
            opts.helper_process_group,
        )
        .await?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(listener::serve(
            listener,
            None,
            tx,
            opts.read_limits,
            opened,
            Some(open_log(&RunFiles::of(run_dir).notify_log())?),
        ));
        let mut qemu_args = transport::vhost_user_args(opts.memory_mib, &vhost_socket);
        qemu_args.extend(credential_args(&opts.guest_arch, HELPER_PORT));
        let mut chan = NotifyChannel::listening(
            Transport::VhostDeviceVsock {
                helper: program,
                listen,
                port: HELPER_PORT,
            },
            qemu_args,
            rx,
            task,
            opened,
        );
        chan.memory_mib = Some(opts.memory_mib);
        chan.helper = Some(helper);
        Ok(chan)
    }

    /// The QEMU arguments this channel needs (empty when serial-only): the device, the
    /// credential and, for transport 2, `-m M` plus the shared memory backend of size M.
    /// Put them AFTER every other `-m` (QEMU keeps the last one), e.g. at the end of the
    /// vm run script's argument list, so the machine's memory equals the backend's size.
    /// Transport 1's `vhostfd=` names a descriptor of this process: QEMU must be spawned as a
    /// child (directly or through an exec'ing script) while the channel is alive.
    pub fn qemu_args(&self) -> Vec<String> {
        self.qemu_args.clone()
    }

    /// The guest memory (MiB) that [`Self::qemu_args`] pins with `-m`, if any (transport 2).
    pub fn memory_mib(&self) -> Option<u32> {
        self.memory_mib
    }

    /// The transport in use; its `Display` is the verdict's transport string.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The receiver of parsed messages, in arrival order. In serial-only mode it never yields.
    /// Prefer [`Self::next`], which also records the first message's time.
    pub fn messages(&mut self) -> &mut mpsc::Receiver<NotifyMessage> {
        &mut self.rx
    }

    /// The next message. Pends forever in serial-only mode; `None` once the listener stopped.
    /// Cancel-safe (fine inside `tokio::select!`).
    pub async fn next(&mut self) -> Option<NotifyMessage> {
        let msg = self.rx.recv().await?;
        self.first_message_at.get_or_insert(msg.at);
        Some(msg)
    }

    /// When the channel was opened; message times ([`NotifyMessage::at`]) count from here.
    pub fn opened_at(&self) -> Instant {
        self.opened
    }

    /// Time (since open) of the first message received through [`Self::next`]; `None` while
    /// the guest has been silent. See also [`NotifyState::is_silent`].
    pub fn first_message_at(&self) -> Option<Duration> {
        self.first_message_at
    }

    /// True when nothing arrived and `grace` has passed since `since` (time since open, e.g.
    /// when serial showed systemd starting): the caller can stop waiting for vsock.
    pub fn is_silent(&self, since: Duration, grace: Duration) -> bool {
        self.first_message_at.is_none() && self.opened.elapsed().saturating_sub(since) >= grace
    }

    /// The helper's log file (transport 2).
    pub fn helper_log(&self) -> Option<&Path> {
        self.helper.as_ref().map(|h| h.log.as_path())
    }

    /// The helper's process id (transport 2), e.g. to put QEMU into its process group.
    pub fn helper_pid(&self) -> Option<u32> {
        self.helper.as_ref().and_then(|h| h.pid())
    }

    /// The helper's exit status if it died (transport 2): then no more messages can arrive,
    /// and its log ([`Self::helper_log`]) says why.
    pub fn helper_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.helper.as_mut().and_then(Helper::exited)
    }

    /// Stops the listener and kills and reaps the helper. Dropping does the same without
    /// waiting for the helper to be reaped.
    pub async fn close(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(helper) = self.helper.take() {
            helper.stop().await;
        }
    }
}

/// Creates the run's `notify.log` (see [`listener::log_line`] for its lines).
fn open_log(path: &Path) -> Result<std::fs::File, NotifyError> {
    std::fs::File::create(path)
        .map_err(|e| NotifyError::io(format!("create {}", path.display()), e))
}

/// Removes `path` if it is a unix socket (left by an earlier run); anything else is left alone
/// (binding then fails with a clear error).
fn remove_stale_socket(path: &Path) -> Result<(), NotifyError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)
            .map_err(|e| NotifyError::io(format!("remove stale {}", path.display()), e)),
        _ => Ok(()),
    }
}

impl Drop for NotifyChannel {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        // The helper (if any) is killed by its own Drop.
    }
}
