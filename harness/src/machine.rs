//! [`Machine`]: one running guest. It owns the run directory, the QEMU process group, the QMP
//! session and the notify channel; dropping it (Ctrl-C in a `select!`, an error, a panic)
//! kills every process of the run and removes the directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use formats::Format;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::accel;
use crate::detect::{Decision, Judge, Signal};
use crate::image;
use crate::launch::launch_for;
use crate::notify::{NotifyChannel, NotifyOptions};
use crate::options::BootOptions;
use crate::qemu::{tail, QemuProcess};
use crate::qmp::{Qmp, QmpEvent};
use crate::rundir::RunDir;
use crate::serial::LogTail;
use crate::{Accel, Event, Evidence, HarnessError, Outcome, Reason, Verdict};

/// How often the console log is read.
const POLL: Duration = Duration::from_millis(20);
/// How long QEMU may take to open its QMP socket.
const QMP_START: Duration = Duration::from_secs(30);

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
    /// Console sources: SeaBIOS's debug console, the serial log, and QEMU's stdout (a run
    /// script may put the first serial port on stdio, e.g. `-nographic -serial mon:stdio`).
    consoles: [LogTail; 3],
    judge: Judge,
    started: Instant,
    accel: Accel,
    timeout: Duration,
    keep: bool,
    command_line: Vec<String>,
    transport: String,
    progress: UnboundedSender<Event>,
    verdict: Option<Verdict>,
    screenshot: Option<PathBuf>,
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
    /// glob) as `format` says, and returns once QEMU answers on QMP.
    pub async fn start(
        format: &Format,
        image: &Path,
        opts: &BootOptions,
        progress: UnboundedSender<Event>,
    ) -> Result<Machine, HarnessError> {
        if !format.profile.bootable() {
            return Err(HarnessError::NotBootable {
                format: format.name.clone(),
                profile: format.profile.to_string(),
            });
        }
        let file = image::resolve(format, image)?;
        let run_dir = RunDir::create()?;
        let dir = run_dir.path().to_path_buf();
        let accel = accel::resolve(opts.accel).await;
        let bootable = image::prepare(format, &file, &dir).await?;
        let mut launch = launch_for(&bootable, format, opts, accel, &dir)?;

        let notify_opts = NotifyOptions {
            choice: opts.notify.clone(),
            memory_mib: opts.memory_mib,
            helper_process_group: Some(0),
            ..NotifyOptions::default()
        };
        let notify = NotifyChannel::open_with(&dir, &notify_opts).await?;
        launch.args.extend(notify.qemu_args());
        let transport = notify.transport().to_string();
        let group = notify.helper_pid().map(|p| p as i32);

        let (qmp_tx, qmp_events) = mpsc::unbounded_channel();
        let started = Instant::now();
        let mut qemu = QemuProcess::spawn(&launch, &dir, group)?;
        let qmp = match connect_qmp(&mut qemu, &dir, started, qmp_tx).await {
            Ok(q) => q,
            Err(detail) => {
                qemu.stop().await;
                drop(notify);
                let stderr = tail(&dir.join("qemu.stderr"), 3);
                return Err(HarnessError::QemuStart {
                    detail: format!("{detail}; stderr: {stderr}"),
                    run_dir: run_dir.keep(),
                });
            }
        };
        let command_line = launch.command_line();
        let _ = progress.send(Event::Started {
            qemu_args: command_line.clone(),
            accel,
            run_dir: dir.clone(),
        });
        Ok(Machine {
            qmp: Some(qmp),
            qemu: Some(qemu),
            judge: Judge::new(!notify.transport().is_serial_only()),
            notify: Some(notify),
            consoles: [
                LogTail::new(&dir.join("firmware.log")),
                LogTail::new(&dir.join("serial.log")),
                LogTail::new(&dir.join("qemu.stdout")),
            ],
            run_dir: Some(run_dir),
            serial_sock: dir.join("serial.sock"),
            path: dir,
            qmp_events,
            started,
            accel,
            timeout: opts.timeout_for(accel),
            keep: opts.keep,
            command_line,
            transport,
            progress,
            verdict: None,
            screenshot: None,
        })
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
        let decision = self.decide().await;
        if matches!(&decision.outcome, Outcome::Failed { reason, .. } if *reason != Reason::QemuExited)
        {
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
            source: decision.source,
            transport: self.transport.clone(),
            milestones: self.judge.milestones(),
            targets: notify.targets,
            hostname: notify.hostname,
            machine_id: notify.machine_id,
            exit_status: notify.exit_status,
            elapsed: self.started.elapsed(),
            run_dir: (failed || self.keep).then(|| self.path.clone()),
            evidence: Evidence {
                serial_log: self.path.join("serial.log"),
                qemu_stderr: self.path.join("qemu.stderr"),
                qmp_log: self.path.join("qmp.log"),
                notify_log: Some(self.path.join(crate::notify::LOG_NAME)).filter(|p| p.exists()),
                screenshot: self.screenshot.clone(),
            },
            qemu_args: self.command_line.clone(),
        };
        let _ = self.progress.send(Event::Verdict(verdict.clone()));
        self.verdict = Some(verdict.clone());
        verdict
    }

    /// Feeds every source into the judge until it decides.
    async fn decide(&mut self) -> Decision {
        let deadline = tokio::time::Instant::from_std(self.started + self.timeout);
        let mut last_partial: [String; 3] = Default::default();
        loop {
            let at = self.started.elapsed();
            let decision = tokio::select! {
                biased;
                ev = self.qmp_events.recv(), if self.qmp.is_some() => match ev {
                    Some(ev) => self.drain_console(&mut last_partial).or_else(|| self.judge.feed(Signal::Qmp(&ev), at)),
                    None => None,
                },
                code = wait_exit(self.qemu.as_mut()) => {
                    self.drain_console(&mut last_partial).or_else(|| self.judge.feed(Signal::QemuExited(code), at))
                }
                msg = next_notify(self.notify.as_mut()) => match msg {
                    Some(msg) => {
                        let _ = self.progress.send(Event::Notify(msg.to_string()));
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
                    self.drain_console(&mut last_partial).or_else(|| self.judge.tick(self.started.elapsed()))
                }
            };
            for m in self.judge.take_fresh() {
                let _ = self.progress.send(Event::Milestone(m));
            }
            if let Some(d) = decision {
                return d;
            }
        }
    }

    /// Reads the console and firmware logs and feeds what is new to the judge.
    fn drain_console(&mut self, last_partial: &mut [String; 3]) -> Option<Decision> {
        let at = self.started.elapsed();
        let mut decision = None;
        for (console, last) in self.consoles.iter_mut().zip(last_partial.iter_mut()) {
            for line in console.read_lines() {
                let _ = self.progress.send(Event::Serial(line.clone()));
                decision = decision.or_else(|| self.judge.feed(Signal::Line(&line), at));
            }
            let tail = console.partial();
            if !tail.trim().is_empty() && tail != *last {
                decision = decision.or_else(|| self.judge.feed(Signal::Partial(&tail), at));
                *last = tail;
            }
        }
        decision
    }

    /// Asks the guest to power off (ACPI) and waits for QEMU to exit; returns how long it took
    /// and how QEMU exited.
    pub async fn qmp_powerdown(&mut self, within: Duration) -> Result<PoweredOff, HarnessError> {
        // The ACPI power button is an edge: a guest whose button driver loads after the first
        // press (udev loads it late) only sees a later one, so press again every few seconds.
        const PRESS_AGAIN: Duration = Duration::from_secs(5);
        let t0 = Instant::now();
        let deadline = t0 + within;
        loop {
            let qmp = self.qmp.as_mut().ok_or_else(|| HarnessError::Qmp {
                command: "system_powerdown".into(),
                detail: "no QMP session".into(),
            })?;
            let pressed = qmp.execute(&qapi::qmp::system_powerdown {}).await;
            // A press that races QEMU's own exit (the guest powered off since the last press)
            // finds the socket closed: what counts then is whether QEMU exits, so wait for that
            // until the deadline instead of pressing again.
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = if pressed.is_ok() {
                left.min(PRESS_AGAIN)
            } else {
                left
            };
            match tokio::time::timeout(wait, wait_exit(self.qemu.as_mut())).await {
                Ok(exit_status) => {
                    return Ok(PoweredOff {
                        took: t0.elapsed(),
                        exit_status,
                    })
                }
                Err(_) => {
                    pressed?;
                }
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::PowerdownTimeout { within });
            }
        }
    }

    /// Saves the guest's display as a PNG in the run directory.
    pub async fn screenshot(&mut self) -> Result<PathBuf, HarnessError> {
        let path = self.path.join("screenshot.png");
        let qmp = self.qmp.as_mut().ok_or_else(|| HarnessError::Qmp {
            command: "screendump".into(),
            detail: "no QMP session".into(),
        })?;
        qmp.screendump(&path).await
    }

    /// Stops QEMU and every helper, then keeps the run directory (returned) if the run failed
    /// or `keep` was asked, else removes it.
    pub async fn finish(mut self, success: bool) -> Option<PathBuf> {
        self.qmp = None;
        if let Some(q) = self.qemu.take() {
            q.stop().await;
        }
        if let Some(n) = self.notify.take() {
            n.close().await;
        }
        let dir = self.run_dir.take()?;
        if !success || self.keep {
            Some(dir.keep())
        } else {
            dir.remove();
            None
        }
    }
}

async fn wait_exit(qemu: Option<&mut QemuProcess>) -> Option<i32> {
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

async fn connect_qmp(
    qemu: &mut QemuProcess,
    dir: &Path,
    started: Instant,
    tx: UnboundedSender<QmpEvent>,
) -> Result<Qmp, String> {
    let sock = dir.join("qmp.sock");
    loop {
        if let Some(code) = qemu.try_exited() {
            return Err(match code {
                Some(c) => format!("exited with status {c}"),
                None => "killed by a signal".to_string(),
            });
        }
        if sock.exists() {
            if let Ok(q) = Qmp::connect(&sock, &dir.join("qmp.log"), started, tx.clone()).await {
                return Ok(q);
            }
        }
        if started.elapsed() > QMP_START {
            return Err(format!("no QMP socket within {}s", QMP_START.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
