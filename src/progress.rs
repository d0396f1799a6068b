//! Live progress of boot checks: an indicatif line per machine on a terminal, plain timestamped
//! lines otherwise (or with --json, where stdout is for the result).

use std::{
    collections::HashMap,
    io::IsTerminal,
    sync::Mutex,
    time::{Duration, Instant},
};

use harness::{Event, MilestoneKind};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Shows each machine's progress; shared by the check tasks.
pub struct Progress {
    start: Instant,
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl Progress {
    /// Bars when stderr is a terminal and `plain` is false; lines otherwise.
    pub fn new(plain: bool) -> Progress {
        let bars = (!plain && std::io::stderr().is_terminal())
            .then(|| (MultiProgress::new(), Mutex::new(HashMap::new())));
        Progress {
            start: Instant::now(),
            bars,
        }
    }

    /// Records one event of the machine booting `format`.
    pub fn event(&self, format: &str, event: &Event) {
        let text = match event {
            Event::WaitingForSlot { dir } => {
                format!("waiting for a free guest slot in {}", dir.display())
            }
            Event::Started { accel, run_dir, .. } => match accel {
                harness::Accel::None => format!("container started in {}", run_dir.display()),
                _ => format!("started under {accel} in {}", run_dir.display()),
            },
            Event::Restarted { accel, why } => {
                format!("KVM failed ({why}); started again under {accel}")
            }
            Event::RestartedAfterFirmwareStall { detail } => {
                format!("{detail}; started again")
            }
            Event::RestartedWithOneVcpu { .. } => {
                "the kernel oopsed on a stale int3 with two vCPUs under TCG; started again with one"
                    .to_string()
            }
            Event::Milestone(m) => format!("{} at {}", milestone_name(m.kind), secs(m.at)),
            Event::Verdict(v) => match v.reason() {
                None => format!("reached multi-user after {}", secs(v.elapsed)),
                Some(reason) => format!("failed ({reason}) after {}", secs(v.elapsed)),
            },
            // Console lines and notify messages are evidence, not progress.
            _ => return,
        };
        match &self.bars {
            Some((multi, bars)) => {
                let mut bars = bars.lock().expect("progress lock");
                let bar = bars.entry(format.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:>14} [{elapsed:>3}] {msg}")
                            .expect("valid template"),
                    );
                    bar.set_prefix(format.to_string());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                if matches!(event, Event::Verdict(_)) {
                    bar.finish_with_message(text);
                } else {
                    bar.set_message(text);
                }
            }
            None => eprintln!("[{:>7}] {format}: {text}", secs(self.start.elapsed())),
        }
    }
}

/// A milestone's name for people.
pub fn milestone_name(kind: MilestoneKind) -> &'static str {
    match kind {
        MilestoneKind::Firmware => "firmware",
        MilestoneKind::Bootloader => "boot loader",
        MilestoneKind::Kernel => "kernel",
        MilestoneKind::Initrd => "initrd",
        MilestoneKind::Systemd => "systemd",
        MilestoneKind::MultiUser => "multi-user",
    }
}

/// Seconds with one decimal.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
