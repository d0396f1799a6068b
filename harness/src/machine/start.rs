//! Starting QEMU for a [`Machine`]: one launch (QEMU, notify channel, QMP), the watch of a
//! fresh `auto` guest under KVM, and the restarts: under TCG of a guest that died of KVM, with
//! one vCPU after a stale `int3`, and after a UEFI firmware stalled.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, UnboundedSender};

use super::{consoles, wait_exit, Machine, KVM_SETTLE, QMP_START, STATUS_TIMEOUT};
use crate::accel;
use crate::detect::{Decision, FirmwareWatch, Judge, Signal};
use crate::image::Bootable;
use crate::launch::launch_for;
use crate::notify::{NotifyChannel, NotifyOptions};
use crate::options::{AccelChoice, BootOptions, NotifyChoice};
use crate::qemu::{tail, QemuProcess};
use crate::qmp::{ConnectFailure, Qmp, QmpEvent};
use crate::rundir::RunDir;
use crate::rundir::RunFiles;
use crate::{Accel, Event, Firmware, HarnessError, KvmDropped, Outcome, ReadinessSource, Reason};

/// How a launch of QEMU went.
pub(super) enum Launched {
    /// QEMU answers on QMP (or, under a forced accelerator, died of it: the verdict says so).
    Running,
    /// QEMU died of KVM before answering, under `--accel auto`: restart under TCG.
    KvmFailed(KvmDropped),
}

impl Machine {
    /// Watches a fresh `auto` guest under KVM for [`KVM_SETTLE`]: a broken KVM stops real
    /// code at once (QMP `STOP`, status `internal-error`) or kills QEMU, and then the guest is
    /// restarted under TCG before anyone (`--run`'s console) attaches to it.
    pub(super) async fn settle_under_kvm(&mut self) -> Launched {
        let until = tokio::time::Instant::now() + KVM_SETTLE;
        loop {
            tokio::select! {
                ev = self.qmp_events.recv(), if self.qmp_open => match ev {
                    Some(ev) if ev.name == "STOP" => break,
                    Some(ev) => {
                        let _ = self.judge.feed(Signal::Qmp(&ev), Duration::ZERO);
                    }
                    None => self.qmp_open = false,
                },
                _ = wait_exit(self.qemu.as_mut()) => break,
                _ = tokio::time::sleep_until(until) => return Launched::Running,
            }
        }
        let stopped = match self.qmp.as_mut() {
            Some(qmp) => matches!(
                tokio::time::timeout(STATUS_TIMEOUT, qmp.status()).await,
                Ok(Ok((_, ref status))) if status == "internal-error"
            ),
            None => false,
        };
        match self.accel_error() {
            Some(line) => Launched::KvmFailed(KvmDropped::WhileSettling(line)),
            None if stopped => Launched::KvmFailed(KvmDropped::WhileSettling(
                "QEMU stopped the guest with an internal error".into(),
            )),
            // Stopped or exited for another reason: the verdict will say which.
            None => {
                self.stop_seen = true;
                Launched::Running
            }
        }
    }

    /// Waits for this guest's slots when a slot directory is set (once: a restart under TCG
    /// keeps them).
    async fn take_slots(&mut self, accel: Accel) -> Result<(), HarnessError> {
        let Some(dir) = self.opts.guest_slots.clone() else {
            return Ok(());
        };
        if self.slots.is_some() {
            return Ok(());
        }
        let cpus = self.opts.cpus_for(accel);
        let held = match crate::slots::try_acquire(&dir, cpus)? {
            Some(held) => held,
            None => {
                self.progress
                    .send(Event::WaitingForSlot { dir: dir.clone() })
                    .await;
                crate::slots::acquire(&dir, cpus).await?
            }
        };
        self.slots = Some(held);
        Ok(())
    }

    /// Starts QEMU (and the notify channel) under `accel` and connects QMP.
    pub(super) async fn launch(&mut self, accel: Accel) -> Result<Launched, HarnessError> {
        let dir = self.path.clone();
        let files = RunFiles::of(&dir);
        self.vcpus = self.vcpus_for(accel);
        let opts = BootOptions {
            cpus: Some(self.vcpus),
            ..self.opts.clone()
        };
        let mut launch = launch_for(&self.bootable, &opts, accel, &dir)?;
        self.take_slots(accel).await?;
        append_kernel_params(&mut launch.env, &self.opts.kernel_params);
        let notify_opts = NotifyOptions {
            choice: self.opts.notify.clone(),
            memory_mib: self.opts.memory_mib,
            helper_process_group: Some(0),
            guest_arch: match self.bootable.is_foreign() {
                true => "aarch64".to_string(),
                false => "x86_64".to_string(),
            },
            ..NotifyOptions::default()
        };
        let notify = match &self.bootable {
            Bootable::Container { .. } if self.opts.notify != NotifyChoice::Off => {
                NotifyChannel::open_container(&dir)?
            }
            _ => NotifyChannel::open_with(&dir, &notify_opts).await?,
        };
        launch.args.extend(notify.qemu_args());
        let group = notify.helper_pid().map(|p| p as i32);

        let (qmp_tx, qmp_events) = mpsc::unbounded_channel();
        let started = Instant::now();
        let mut qemu = QemuProcess::spawn(&launch, &dir, group)?;
        // A container has no QMP: its console, its notify socket and nspawn's exit decide.
        let connected = match launch.pty {
            true => Ok(None),
            false => connect_qmp(&mut qemu, &dir, started, qmp_tx)
                .await
                .map(Some),
        };
        let qmp = match connected {
            Ok(q) => q,
            Err(detail) => {
                let stderr = std::fs::read_to_string(files.qemu_stderr()).unwrap_or_default();
                match accel::accelerator_failure(&stderr) {
                    Some(line) if accel == Accel::Kvm && self.opts.accel == AccelChoice::Auto => {
                        qemu.stop().await;
                        notify.close().await;
                        return Ok(Launched::KvmFailed(KvmDropped::AtStart(line)));
                    }
                    // KVM was asked for: the verdict reports the failure.
                    Some(_) if accel == Accel::Kvm => None,
                    _ => {
                        qemu.stop().await;
                        drop(notify);
                        return Err(HarnessError::QemuStart {
                            detail: format!("{detail}; stderr: {}", tail(&files.qemu_stderr(), 3)),
                            run_dir: self.run_dir.take().map_or(dir, RunDir::keep),
                        });
                    }
                }
            }
        };
        self.late_disk = match &self.bootable {
            Bootable::DiskKernel {
                swap: Some(swap), ..
            } => Some(super::late_disk::LateDisk::new(swap.clone())),
            _ => None,
        };
        self.qmp_open = qmp.is_some();
        self.qmp = qmp;
        self.qemu = Some(qemu);
        let notify_live = !notify.transport().is_serial_only();
        self.judge = match launch.pty {
            true => Judge::for_container(notify_live),
            false => Judge::new(notify_live),
        };
        self.transport = notify.transport().kind();
        self.serial_only_reason = notify.transport().serial_only_reason().map(str::to_owned);
        self.notify = Some(notify);
        self.qmp_events = qmp_events;
        self.consoles = consoles(&dir);
        self.firmware_watch = FirmwareWatch::new(self.opts.firmware_stall);
        self.started = started;
        self.accel = accel;
        self.timeout = match self.bootable.is_foreign() {
            true => self.opts.timeout_for_foreign(),
            false => self.opts.timeout_for(accel),
        };
        self.command_line = launch.command_line();
        self.progress
            .send(Event::Started {
                qemu_args: self.command_line.clone(),
                accel,
                run_dir: dir,
            })
            .await;
        Ok(Launched::Running)
    }

    /// Stops the guest that died of KVM, keeps its stderr and QMP log as `kvm.stderr` and
    /// `kvm-qmp.log`, makes every later `auto` guest of this process use TCG, and starts this
    /// one again under TCG (QEMU's snapshot overlay is new with each start).
    pub(super) async fn restart_under_tcg(&mut self, why: KvmDropped) -> Result<(), HarnessError> {
        accel::drop_kvm(&why);
        self.kvm_dropped = Some(why.clone());
        let files = RunFiles::of(&self.path);
        let keep = [
            (files.qemu_stderr(), files.kvm_stderr()),
            (files.qmp_log(), files.kvm_qmp_log()),
        ];
        let event = Event::Restarted {
            accel: Accel::Tcg,
            why,
        };
        self.restart(&keep, event).await
    }

    /// Stops QEMU and the notify channel of the running launch, renames each of `keep`'s files
    /// (from, to) so that the next launch does not overwrite them, sends `event`, and launches
    /// again under TCG.
    async fn restart(
        &mut self,
        keep: &[(PathBuf, PathBuf)],
        event: Event,
    ) -> Result<(), HarnessError> {
        self.qmp = None;
        if let Some(q) = self.qemu.take() {
            q.stop().await;
        }
        if let Some(n) = self.notify.take() {
            n.close().await;
        }
        for (from, to) in keep {
            let _ = std::fs::rename(from, to);
        }
        self.progress.send(event).await;
        match self.launch(Accel::Tcg).await? {
            Launched::Running => Ok(()),
            Launched::KvmFailed(_) => unreachable!("only a KVM launch can fail of KVM"),
        }
    }
}

impl Machine {
    /// The vCPUs of a launch under `accel`: the options' ([`BootOptions::cpus_for`]), or two
    /// for a lone x86_64 guest under TCG on a machine with two idle cores
    /// ([`BootOptions::idle_cores`]) that has not yet oopsed on a stale `int3`.
    fn vcpus_for(&self, accel: Accel) -> u32 {
        let spare = accel == Accel::Tcg
            && self.opts.idle_cores
            && self.opts.cpus.is_none()
            && self.opts.guest_slots.is_none()
            && !self.bootable.is_foreign()
            && self.vcpus_dropped.is_none();
        match spare && crate::capacity::idle_cores() >= 2 {
            true => 2,
            false => self.opts.cpus_for(accel),
        }
    }

    /// Whether an `int3` oops on the console restarts the guest with one vCPU: it runs under
    /// TCG with more than one that the harness chose, not the caller.
    pub(super) fn smp_fallback(&self) -> bool {
        self.accel == Accel::Tcg && self.vcpus > 1 && self.opts.cpus.is_none()
    }

    /// Stops the guest whose kernel oopsed on a stale `int3` with two vCPUs under TCG, keeps its
    /// console as `smp-serial.log`, and starts it again with one vCPU (a new snapshot overlay;
    /// its slots, if any, are kept).
    pub(super) async fn restart_with_one_vcpu(&mut self, oops: String) -> Result<(), HarnessError> {
        self.vcpus_dropped = Some(oops.clone());
        let files = RunFiles::of(&self.path);
        let keep = [(files.serial_log(), files.smp_serial_log())];
        self.restart(&keep, Event::RestartedWithOneVcpu { oops })
            .await
    }

    /// The decision when the running launch's UEFI firmware printed its banner and then
    /// nothing for the window ([`crate::detect::firmware_stall`]): the first such decision
    /// makes [`Machine::wait_ready`] start the guest once more; `None` while it has not.
    pub(super) fn firmware_stalled(&self) -> Option<Decision> {
        if self.firmware != Firmware::Uefi {
            return None;
        }
        let mut detail = self.firmware_watch.stalled(self.started.elapsed())?;
        if self.firmware_restarted.is_some() {
            detail.push_str(", again after a restart");
        }
        Some(Decision {
            outcome: Outcome::Failed {
                reason: Reason::FirmwareStalled,
                detail,
            },
            source: ReadinessSource::Serial,
        })
    }

    /// Stops the guest whose UEFI firmware stalled after its banner, keeps its console as
    /// `stalled-serial.log`, and starts it again (a new variable store and snapshot overlay).
    pub(super) async fn restart_after_firmware_stall(
        &mut self,
        detail: String,
    ) -> Result<(), HarnessError> {
        self.firmware_restarted = Some(detail.clone());
        let files = RunFiles::of(&self.path);
        let keep = [(files.serial_log(), files.stalled_serial_log())];
        self.restart(&keep, Event::RestartedAfterFirmwareStall { detail })
            .await
    }
}

async fn connect_qmp(
    qemu: &mut QemuProcess,
    dir: &Path,
    started: Instant,
    tx: UnboundedSender<QmpEvent>,
) -> Result<Qmp, String> {
    Qmp::connect_when_ready(
        &RunFiles::of(dir).qmp_sock(),
        &RunFiles::of(dir).qmp_log(),
        started,
        tx,
        QMP_START,
        || qemu.try_exited().map(|exit| exit.to_string()),
    )
    .await
    .map_err(|failure| match failure {
        ConnectFailure::Exited(how) => how,
        ConnectFailure::Timeout => format!("no QMP socket within {}s", QMP_START.as_secs()),
    })
}

/// Appends `params` to a run script's `QEMU_KERNEL_PARAMS` (only a vm format's launch has it).
fn append_kernel_params(env: &mut [(String, String)], params: &[String]) {
    if params.is_empty() {
        return;
    }
    if let Some((_, value)) = env.iter_mut().find(|(k, _)| k == "QEMU_KERNEL_PARAMS") {
        for param in params {
            value.push(' ');
            value.push_str(param);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::append_kernel_params;

    #[test]
    fn kernel_params_extend_a_run_scripts_params_only() {
        let mut env = vec![(
            "QEMU_KERNEL_PARAMS".to_string(),
            "console=ttyS0".to_string(),
        )];
        append_kernel_params(&mut env, &["systemd.unit=emergency.target".into()]);
        assert_eq!(env[0].1, "console=ttyS0 systemd.unit=emergency.target");
        let mut other = vec![("TMPDIR".to_string(), "/tmp".to_string())];
        append_kernel_params(&mut other, &["x".into()]);
        assert_eq!(other[0].1, "/tmp");
    }
}
