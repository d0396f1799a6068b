//! [`Machine`]: one running guest. It owns the run directory, the QEMU process group, the QMP
//! session and the notify channel; dropping it (Ctrl-C in a `select!`, an error, a panic)
//! kills every process of the run and removes the directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use formats::Format;
use tokio::sync::mpsc::{self, UnboundedReceiver};

use crate::accel;
use crate::detect::{Decision, FirmwareWatch, Judge, Signal};
use crate::image::{self, Bootable};
use crate::notify::NotifyChannel;
use crate::options::{AccelChoice, BootOptions};
use crate::progress::Progress;
use crate::qemu::{QemuExit, QemuProcess};
use crate::qmp::{Qmp, QmpEvent};
use crate::rundir::{RunDir, RunFiles};

mod late_disk;
mod start;
mod stop;
use crate::serial::LogTail;
use crate::{
    Accel, Event, Evidence, Firmware, HarnessError, KvmDropped, Outcome, ReadinessSource, Reason,
    TransportKind, Verdict,
};
use start::Launched;

/// How often the console log is read.
const POLL: Duration = Duration::from_millis(20);
/// How long QEMU may take to open its QMP socket.
const QMP_START: Duration = Duration::from_secs(30);
/// How long a fresh `auto` guest under KVM is watched for a KVM failure before it is handed out.
const KVM_SETTLE: Duration = Duration::from_millis(300);
/// How long `query-status` may take after an unrequested stop.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// One running guest.
#[derive(Debug)]
pub struct Machine {
    // Field order is drop order: QMP, then the process group, then helpers, then the files.
    qmp: Option<Qmp>,
    qemu: Option<QemuProcess>,
    notify: Option<NotifyChannel>,
    run_dir: Option<RunDir>,
    path: PathBuf,
    serial_sock: PathBuf,
    qmp_events: UnboundedReceiver<QmpEvent>,
    /// False once QEMU closed its QMP socket (then only its exit and the deadline decide).
    qmp_open: bool,
    /// A `STOP` seen while the guest settled under KVM, not (yet) decided on.
    stop_seen: bool,
    /// Console sources: SeaBIOS's debug console, the serial log, and QEMU's stdout (a run
    /// script may put the first serial port on stdio, e.g. `-nographic -serial mon:stdio`).
    consoles: [LogTail; 3],
    judge: Judge,
    started: Instant,
    accel: Accel,
    timeout: Duration,
    command_line: Vec<String>,
    firmware: Firmware,
    transport: TransportKind,
    serial_only_reason: Option<String>,
    progress: Progress,
    verdict: Option<Verdict>,
    screenshot: Option<PathBuf>,
    /// What a restart under TCG needs.
    bootable: Bootable,
    opts: BootOptions,
    kvm_dropped: Option<KvmDropped>,
    /// The vCPUs of the running launch.
    vcpus: u32,
    /// The `int3` oops line that ended a two-vCPU attempt under TCG (the guest then runs
    /// with one).
    vcpus_dropped: Option<String>,
    /// Such a line seen by the running launch, not yet acted on.
    int3_oops: Option<String>,
    /// The running launch's watch for a UEFI firmware that stalls after its banner.
    firmware_watch: FirmwareWatch,
    /// The stall that ended an earlier launch (the guest was then started again).
    firmware_restarted: Option<String>,
    /// A disk to add once the guest has named its root disk (Linode's swap disk).
    late_disk: Option<late_disk::LateDisk>,
    /// The guest slots held while QEMU runs ([`crate::slots`]), when a slot directory is set.
    slots: Option<crate::slots::Held>,
}

/// How an ACPI power-off ([`Machine::qmp_powerdown`]) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoweredOff {
    /// From the first press of the power button to QEMU's exit.
    pub took: Duration,
    /// QEMU's exit code (`None`: it was killed by a signal). A guest that powered itself off
    /// ends QEMU with 0.
    pub exit_status: Option<i32>,
}

impl Machine {
    /// Boots `image` (a file, or a build result directory searched with the format's output
    /// glob) as `format` says, and returns once QEMU answers on QMP. Under `--accel auto`, a
    /// QEMU that dies of KVM at start is started again under TCG at once.
    ///
    /// `progress` receives the machine's [`Event`]s (a sender of [`crate::progress::channel`];
    /// `None` when nobody reads them). Console lines are dropped when the receiver falls behind;
    /// milestones, starts and the verdict are not (see [`crate::progress`]).
    pub async fn start(
        format: &Format,
        image: &Path,
        opts: &BootOptions,
        progress: Option<mpsc::Sender<Event>>,
    ) -> Result<Machine, HarnessError> {
        if !format.profile.bootable() {
            return Err(HarnessError::NotBootable {
                format: format.name.clone(),
                profile: format.profile.to_string(),
                why: format.not_checked.clone().unwrap_or_default(),
            });
        }
        let file = image::resolve(format, image)?;
        let run_dir = RunDir::create()?;
        let dir = run_dir.path().to_path_buf();
        // The KVM probe (once per process) runs while the image is prepared. A container
        // emulates no machine.
        let container = format.profile.is_container();
        let system = opts.system.as_deref();
        let foreign_known = format.profile == formats::Profile::UbootBoard
            || system.is_some_and(|s| !s.starts_with("x86_64-"));
        let (accel, bootable) = tokio::join!(
            async {
                match (container, foreign_known) {
                    (true, _) => Accel::None,
                    // Another architecture: no KVM, no probe.
                    (false, true) => Accel::Tcg,
                    (false, false) => accel::resolve(opts.accel).await,
                }
            },
            image::prepare(format, &file, &dir, opts.pair.as_deref(), system)
        );
        let bootable = bootable?;
        let firmware = crate::launch::firmware_for(&bootable, opts, format.profile);
        let accel = match bootable.is_foreign() {
            true if opts.accel == AccelChoice::Kvm => {
                return Err(HarnessError::BadEnvironment(format!(
                    "--accel kvm cannot run {}, an aarch64 guest, on this {} host: use --accel auto or tcg",
                    file.display(),
                    crate::arch::HOST_ARCH
                )))
            }
            true => Accel::Tcg,
            false => accel,
        };
        let (_, qmp_events) = mpsc::unbounded_channel();
        let mut machine = Machine {
            qmp: None,
            qemu: None,
            notify: None,
            run_dir: Some(run_dir),
            serial_sock: RunFiles::of(&dir).serial_sock(),
            consoles: consoles(&dir),
            path: dir,
            qmp_events,
            qmp_open: false,
            stop_seen: false,
            judge: Judge::new(false),
            started: Instant::now(),
            accel,
            timeout: opts.timeout_for(accel),
            command_line: Vec::new(),
            firmware,
            transport: TransportKind::SerialOnly,
            serial_only_reason: None,
            progress: Progress::new(progress),
            verdict: None,
            screenshot: None,
            bootable,
            opts: opts.clone(),
            // A guest of this process died of KVM earlier: this one starts under TCG, and says why.
            kvm_dropped: accel::kvm_dropped()
                .filter(|_| opts.accel == AccelChoice::Auto && accel == Accel::Tcg)
                .map(|first| KvmDropped::EarlierGuest(Box::new(first.clone()))),
            vcpus: opts.cpus_for(accel),
            vcpus_dropped: None,
            int3_oops: None,
            firmware_watch: FirmwareWatch::new(opts.firmware_stall),
            firmware_restarted: None,
            late_disk: None,
            slots: None,
        };
        let launched = match machine.launch(accel).await? {
            Launched::Running if accel == Accel::Kvm && opts.accel == AccelChoice::Auto => {
                machine.settle_under_kvm().await
            }
            launched => launched,
        };
        if let Launched::KvmFailed(why) = launched {
            machine.restart_under_tcg(why).await?;
        }
        Ok(machine)
    }

    /// The QEMU chardev unix socket of the serial console (for expectrl or `--run`).
    pub fn serial_socket(&self) -> &Path {
        &self.serial_sock
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.path
    }

    /// The accelerator in use.
    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the guest reached multi-user.target or failed (each failure detected as it
    /// happens), or the deadline passed. Calling it again returns the same verdict.
    pub async fn wait_ready(&mut self) -> Verdict {
        if let Some(v) = &self.verdict {
            return v.clone();
        }
        let mut decision = self.decide().await;
        if let Outcome::Failed {
            reason: Reason::AcceleratorFailure,
            detail,
        } = &decision.outcome
        {
            if self.accel == Accel::Kvm && self.opts.accel == AccelChoice::Auto {
                decision = match self
                    .restart_under_tcg(KvmDropped::MidBoot(detail.clone()))
                    .await
                {
                    Ok(()) => self.decide().await,
                    Err(e) => restart_failed("restart under TCG", &e),
                };
            }
        }
        if let Some(line) = self
            .int3_oops
            .take()
            .filter(|_| decision.outcome != Outcome::Ready)
        {
            decision = match self.restart_with_one_vcpu(line).await {
                Ok(()) => self.decide().await,
                Err(e) => restart_failed("restart with one vCPU", &e),
            };
        }
        let first_stall = match &decision.outcome {
            Outcome::Failed {
                reason: Reason::FirmwareStalled,
                detail,
            } if self.firmware_restarted.is_none() => Some(detail.clone()),
            _ => None,
        };
        if let Some(detail) = first_stall {
            decision = match self.restart_after_firmware_stall(detail).await {
                Ok(()) => self.decide().await,
                Err(e) => restart_failed("restart after the firmware stalled", &e),
            };
        }
        let qemu_alive = self.qemu.as_mut().is_some_and(|q| q.try_exited().is_none());
        if decision.outcome != Outcome::Ready && qemu_alive && self.qmp.is_some() {
            if let Ok(Ok(p)) = tokio::time::timeout(Duration::from_secs(3), self.screenshot()).await
            {
                self.screenshot = Some(p);
            }
        }
        let notify = self.judge.notify_state().clone();
        let failed = decision.outcome != Outcome::Ready;
        let verdict = Verdict {
            outcome: decision.outcome,
            accel: self.accel,
            kvm_dropped: self.kvm_dropped.clone(),
            vcpus: (self.accel != Accel::None).then_some(self.vcpus),
            vcpus_dropped: self.vcpus_dropped.clone(),
            firmware_restarted: self.firmware_restarted.clone(),
            source: decision.source,
            firmware: self.firmware,
            transport: self.transport,
            serial_only_reason: self.serial_only_reason.clone(),
            milestones: self.judge.milestones(),
            targets: notify.targets,
            hostname: notify.hostname,
            machine_id: notify.machine_id,
            exit_status: notify.exit_status,
            elapsed: self.started.elapsed(),
            run_dir: (failed || self.opts.keep).then(|| self.path.clone()),
            evidence: Evidence {
                screenshot: self.screenshot.clone(),
                ..self.files().evidence()
            },
            qemu_args: self.command_line.clone(),
        };
        self.progress.send(Event::Verdict(verdict.clone())).await;
        self.verdict = Some(verdict.clone());
        verdict
    }

    /// Feeds every source into the judge until it decides.
    async fn decide(&mut self) -> Decision {
        let deadline = tokio::time::Instant::from_std(self.started + self.timeout);
        let mut last_partial: [String; 3] = Default::default();
        if std::mem::take(&mut self.stop_seen) {
            if let Some(d) = self.on_stop(self.started.elapsed()).await {
                return d;
            }
        }
        loop {
            let at = self.started.elapsed();
            let decision = tokio::select! {
                biased;
                ev = self.qmp_events.recv(), if self.qmp_open => match ev {
                    Some(ev) => match self.drain_console(&mut last_partial) {
                        Some(d) => Some(d),
                        None if ev.name == "STOP" => {
                            let _ = self.judge.feed(Signal::Qmp(&ev), at);
                            self.on_stop(at).await
                        }
                        None => self.judge.feed(Signal::Qmp(&ev), at),
                    },
                    // QEMU closed QMP (it is exiting): from now on its exit decides.
                    None => {
                        self.qmp_open = false;
                        None
                    }
                },
                exit = wait_exit(self.qemu.as_mut()) => {
                    let (accel_error, last_words) = (self.accel_error(), self.last_words());
                    self.drain_console(&mut last_partial).or_else(|| {
                        let signal = match self.accel {
                            Accel::None => Signal::ContainerExited { exit, last_words: last_words.as_deref() },
                            _ => Signal::QemuExited { exit, accel_error: accel_error.as_deref() },
                        };
                        self.judge.feed(signal, at)
                    })
                }
                msg = next_notify(self.notify.as_mut()) => match msg {
                    Some(msg) => {
                        self.progress.send(Event::Notify(msg.to_string())).await;
                        self.judge.feed(Signal::Notify(&msg), at)
                    }
                    None => {
                        self.notify = None;
                        None
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    self.drain_console(&mut last_partial).or_else(|| self.judge.feed(Signal::Deadline(self.timeout), at))
                }
                _ = tokio::time::sleep(POLL) => {
                    self.drain_console(&mut last_partial)
                        .or_else(|| self.judge.tick(self.started.elapsed()))
                        .or_else(|| self.firmware_stalled())
                }
            };
            let fresh = self.judge.take_fresh();
            for m in &fresh {
                self.progress.send(Event::Milestone(*m)).await;
            }
            if self.late_disk.is_some() {
                self.step_late_disk(&fresh).await;
            }
            if let Some(d) = decision {
                return d;
            }
        }
    }

    /// QEMU stopped the guest without being asked: its run state decides (an internal error
    /// of KVM, a panic, a disk error, a shutdown). `None` if QEMU no longer answers (then
    /// its exit decides) or it runs again.
    async fn on_stop(&mut self, at: Duration) -> Option<Decision> {
        let qmp = self.qmp.as_mut()?;
        let (_, status) = tokio::time::timeout(STATUS_TIMEOUT, qmp.status())
            .await
            .ok()?
            .ok()?;
        let accel_error = self.accel_error();
        self.judge.feed(
            Signal::Stopped {
                status: &status,
                accel_error: accel_error.as_deref(),
            },
            at,
        )
    }

    /// For a container, why systemd-nspawn gave up: its last line on stderr, else the
    /// console's last line (nspawn prints "Container ... failed with error code N." there).
    fn last_words(&self) -> Option<String> {
        if self.accel != Accel::None {
            return None;
        }
        [self.files().qemu_stderr(), self.files().serial_log()]
            .iter()
            .find_map(|path| {
                let bytes = std::fs::read(path).unwrap_or_default();
                let text = crate::detect::strip_ansi(&String::from_utf8_lossy(&bytes));
                let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
                Some(last.trim().to_string())
            })
    }

    /// The line of qemu.stderr naming an accelerator failure (under KVM only).
    fn accel_error(&self) -> Option<String> {
        if self.accel != Accel::Kvm {
            return None;
        }
        let stderr = std::fs::read_to_string(self.files().qemu_stderr()).unwrap_or_default();
        accel::accelerator_failure(&stderr)
    }

    /// The files of its run directory.
    fn files(&self) -> RunFiles<'_> {
        RunFiles::of(&self.path)
    }

    /// Reads the console and firmware logs and feeds what is new to the judge.
    fn drain_console(&mut self, last_partial: &mut [String; 3]) -> Option<Decision> {
        let at = self.started.elapsed();
        let smp_fallback = self.smp_fallback();
        let mut decision = None;
        for (console, last) in self.consoles.iter_mut().zip(last_partial.iter_mut()) {
            for line in console.read_lines() {
                if self.progress.wanted() {
                    self.progress.chatter(Event::Serial(line.clone()));
                }
                if self.int3_oops.is_none() && smp_fallback && crate::detect::int3_oops(&line) {
                    // Decided here: the guest is started again with one vCPU (wait_ready).
                    self.int3_oops = Some(line.trim().to_string());
                    decision = decision.or(Some(Decision {
                        outcome: Outcome::Failed {
                            reason: Reason::KernelPanic,
                            detail: format!("stale int3 under multi-threaded TCG: {}", line.trim()),
                        },
                        source: ReadinessSource::Serial,
                    }));
                }
                self.firmware_watch.text(&line, at);
                decision = decision.or_else(|| self.judge.feed(Signal::Line(&line), at));
            }
            let tail = console.partial();
            if !tail.trim().is_empty() && tail != *last {
                self.firmware_watch.text(&tail, at);
                decision = decision.or_else(|| self.judge.feed(Signal::Partial(&tail), at));
                *last = tail;
            }
        }
        decision
    }
}

/// The decision when starting a guest again failed: QEMU is gone, `what` says which restart.
fn restart_failed(what: &str, e: &HarnessError) -> Decision {
    Decision {
        outcome: Outcome::Failed {
            reason: Reason::QemuExited,
            detail: format!("{what} failed: {e}"),
        },
        source: ReadinessSource::None,
    }
}

fn consoles(dir: &Path) -> [LogTail; 3] {
    [
        LogTail::new(&RunFiles::of(dir).firmware_log()),
        LogTail::new(&RunFiles::of(dir).serial_log()),
        LogTail::new(&RunFiles::of(dir).qemu_stdout()),
    ]
}

async fn wait_exit(qemu: Option<&mut QemuProcess>) -> QemuExit {
    match qemu {
        Some(q) => q.wait().await,
        None => std::future::pending().await,
    }
}

async fn next_notify(notify: Option<&mut NotifyChannel>) -> Option<crate::notify::NotifyMessage> {
    match notify {
        Some(n) => n.next().await,
        None => std::future::pending().await,
    }
}
