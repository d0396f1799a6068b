//! The swap disk of a Linode (`kernel-from-disk`) guest, added while it runs.
//!
//! Linux names SCSI disks in the order their asynchronous `sd` probes run, not by target, so two
//! disks present at boot are now and then named the other way round, and the image, which mounts
//! `/dev/sda`, finds its swap disk there. The machine starts with the root disk alone
//! (`disk0`), notes how often the guest has read it when the kernel or initrd shows up, and
//! adds the swap disk ([`crate::profile::late_scsi_disk`]) as soon as the guest has read
//! `disk0` again: the kernel reads a disk only after naming it, so `sda` is taken and the swap
//! disk becomes `sdb`. NixOS's stage 1 looks for resume devices among the swap devices, and
//! waits for them, so the disk is added well before stage 2; at the latest when stage 2 starts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Machine;
use crate::{HarnessError, Milestone, MilestoneKind};

/// How often the guest's reads of its root disk are asked for while waiting.
const READS_POLL: Duration = Duration::from_millis(100);

/// A disk to add once the guest has named its root disk.
#[derive(Debug)]
pub(super) struct LateDisk {
    path: PathBuf,
    /// The root disk's reads when the kernel or initrd showed up.
    baseline: Option<u64>,
    last_poll: Option<Instant>,
}

impl LateDisk {
    pub(super) fn new(path: PathBuf) -> LateDisk {
        LateDisk {
            path,
            baseline: None,
            last_poll: None,
        }
    }
}

impl Machine {
    /// One step of the late disk (called after every pass of the decision loop with the
    /// milestones it brought): takes the baseline, polls the reads, adds the disk when due.
    pub(super) async fn step_late_disk(&mut self, fresh: &[Milestone]) {
        let Some(late) = self.late_disk.as_ref() else {
            return;
        };
        let kinds: Vec<MilestoneKind> = fresh.iter().map(|m| m.kind).collect();
        let due = if kinds.contains(&MilestoneKind::Systemd) {
            true
        } else if late.baseline.is_none() {
            if kinds.contains(&MilestoneKind::Kernel) || kinds.contains(&MilestoneKind::Initrd) {
                let reads = self.root_reads().await.unwrap_or(0);
                if let Some(late) = self.late_disk.as_mut() {
                    late.baseline = Some(reads);
                }
            }
            false
        } else if late.last_poll.is_some_and(|t| t.elapsed() < READS_POLL) {
            false
        } else {
            let baseline = late.baseline;
            let reads = self.root_reads().await.ok();
            if let Some(late) = self.late_disk.as_mut() {
                late.last_poll = Some(Instant::now());
            }
            reads.is_some_and(|r| Some(r) > baseline)
        };
        if due {
            if let Some(late) = self.late_disk.take() {
                // A failure is in qmp.log; the guest then boots without its swap disk, and its
                // console says what that costs.
                let _ = self.add_disk(&late.path).await;
            }
        }
    }

    /// How many reads the guest has made of its root disk (HMP `info blockstats`, whose text
    /// has not changed across QEMU versions, unlike QMP's typed answer).
    async fn root_reads(&mut self) -> Result<u64, HarnessError> {
        let text = self.hmp("info blockstats").await?;
        rd_operations(&text, crate::profile::SCSI_ROOT_DRIVE).ok_or_else(|| HarnessError::Qmp {
            command: "info blockstats".into(),
            detail: format!("no reads of {} in: {text}", crate::profile::SCSI_ROOT_DRIVE),
        })
    }

    /// Adds the disk at `path` to the running guest.
    async fn add_disk(&mut self, path: &std::path::Path) -> Result<(), HarnessError> {
        for command in crate::profile::late_scsi_disk(path) {
            let out = self.hmp(&command).await?;
            let out = out.trim();
            if !(out.is_empty() || out == "OK") {
                return Err(HarnessError::Qmp {
                    command,
                    detail: out.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn hmp(&mut self, command: &str) -> Result<String, HarnessError> {
        let qmp = self.qmp.as_mut().ok_or_else(|| HarnessError::Qmp {
            command: command.to_string(),
            detail: "no QMP connection".into(),
        })?;
        qmp.execute(&qapi::qmp::human_monitor_command {
            command_line: command.to_string(),
            cpu_index: None,
        })
        .await
    }
}

/// `rd_operations` of `drive` in HMP's `info blockstats` text
/// (`disk0: rd_bytes=512 wr_bytes=0 rd_operations=1 ...`).
fn rd_operations(text: &str, drive: &str) -> Option<u64> {
    let line = text.lines().find(|l| {
        l.trim_start()
            .strip_prefix(drive)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("rd_operations="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::rd_operations;

    #[test]
    fn reads_of_one_drive() {
        let text = "disk0: rd_bytes=1024 wr_bytes=0 rd_operations=2 wr_operations=0 \
                    flush_operations=0\r\ndisk10: rd_bytes=0 rd_operations=7\r\n";
        assert_eq!(rd_operations(text, "disk0"), Some(2));
        assert_eq!(rd_operations(text, "disk10"), Some(7));
        assert_eq!(rd_operations(text, "disk1"), None);
        assert_eq!(rd_operations("", "disk0"), None);
    }
}
