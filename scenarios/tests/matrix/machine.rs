//! One trial on a real guest: the harness boots the image once, the format's scenarios run on
//! the booted `Machine` one after the other, the harness stops it (keeping the run directory
//! when a scenario failed).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use formats::Format;
use harness::{BootOptions, Machine};
use scenarios::{
    guest::{Guest, PowerOff},
    redact::Roots,
    text::tail_lines,
    Scenario,
};
use test_support::source::Images;

/// Lines of serial log a failure message shows.
const TAIL: usize = 30;
/// How many notify connections a failure message shows.
const NOTIFY_TAIL: usize = 8;

/// The harness's `Machine` as the scenarios see it.
struct MachineGuest<'a> {
    machine: &'a mut Machine,
    serial_log: PathBuf,
}

impl Guest for MachineGuest<'_> {
    fn serial_socket(&self) -> PathBuf {
        self.machine.serial_socket().to_owned()
    }

    fn serial_log(&self) -> PathBuf {
        self.serial_log.clone()
    }

    async fn powerdown(&mut self, within: Duration) -> Result<PowerOff, String> {
        self.machine
            .qmp_powerdown(within)
            .await
            .map(|off| PowerOff {
                took: off.took,
                exit_status: off.exit_status,
            })
            .map_err(|e| e.to_string())
    }
}

/// The last lines of a serial log (read before the run directory may go away); when it is
/// empty, of QEMU's stdout beside it (where a run script's `-serial mon:stdio` sends ttyS0).
fn serial_tail(serial_log: &Path) -> String {
    let read = |p: &Path| std::fs::read(p).ok().filter(|b| !b.is_empty());
    let stdout = serial_log.with_file_name("qemu.stdout");
    match (read(serial_log), read(&stdout)) {
        (Some(b), _) => tail_lines(&String::from_utf8_lossy(&b), TAIL),
        (None, Some(b)) => format!(
            "(serial log empty; from {})\n{}",
            stdout.display(),
            tail_lines(&String::from_utf8_lossy(&b), TAIL)
        ),
        (None, None) => format!("(no serial output in {})", serial_log.display()),
    }
}

/// A failed run's evidence tails: the serial log's (see [`serial_tail`]), then the last
/// connections of the vsock notify channel beside it, if any (what the guest's systemd reported
/// last, and whether the host closed it: systemd waits for that).
fn evidence_tail(serial_log: &Path) -> String {
    serial_tail(serial_log) + &notify_tail(serial_log)
}

fn notify_tail(serial_log: &Path) -> String {
    let log = serial_log.with_file_name(harness::notify::LOG_NAME);
    match std::fs::read_to_string(&log) {
        Ok(text) if !text.is_empty() => format!(
            "\n--- {}, last {NOTIFY_TAIL} connections ---\n{}",
            harness::notify::LOG_NAME,
            tail_lines(&text, NOTIFY_TAIL)
        ),
        _ => String::new(),
    }
}

/// The failure message: the reason, the serial log's tail and the kept run directory.
fn failure(reason: &str, tail: &str, kept: Option<&Path>) -> String {
    let kept = kept.map_or("(not kept)".into(), |p| p.display().to_string());
    format!("{reason}\n--- serial log, last {TAIL} lines ---\n{tail}\n--- run directory: {kept}")
}

/// The options every matrix guest boots with: one vCPU (as many guests as the capacity rule
/// allows share the cores, one per core), the harness's defaults otherwise; an lxc-metadata
/// image is paired with the source's lxc image.
fn options(format: &Format, images: &Images) -> BootOptions {
    let pair = (format.profile == formats::Profile::ContainerMetadata)
        .then(|| {
            images
                .get(harness::container::METADATA_PAIR)
                .map(Path::to_path_buf)
        })
        .flatten();
    BootOptions {
        cpus: Some(1),
        pair,
        guest_slots: test_support::threads::guest_slots(),
        ..BootOptions::default()
    }
}

/// One scenario's result on the shared guest: its facts or why it failed, and how long it took
/// (the boot included for the first).
pub struct ScenarioRun {
    /// The scenario.
    pub scenario: Scenario,
    /// Its facts, or the failure message (reason, serial tail, kept run directory).
    pub result: Result<serde_json::Value, String>,
    /// Time from the scenario's start (the boot's, for the first) to its end.
    pub took: Duration,
}

/// Boots `image` once, runs `scenarios` on that guest in order (a scenario that ends the guest,
/// `poweroff`, must come last), stops the guest; returns each scenario's result.
pub fn run(
    format: &Format,
    scenarios: &[Scenario],
    image: &Path,
    images: &Images,
) -> Vec<ScenarioRun> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return scenarios
                .iter()
                .map(|&scenario| ScenarioRun {
                    scenario,
                    result: Err(format!("tokio runtime: {e}")),
                    took: Duration::ZERO,
                })
                .collect()
        }
    };
    runtime.block_on(run_async(format, scenarios, image, images))
}

async fn run_async(
    format: &Format,
    scenarios: &[Scenario],
    image: &Path,
    images: &Images,
) -> Vec<ScenarioRun> {
    debug_assert!(
        !scenarios[..scenarios.len().saturating_sub(1)].contains(&Scenario::Poweroff),
        "poweroff ends the guest: it must be the last scenario"
    );
    let mut clock = Instant::now();
    // Progress events are not needed: the verdict carries everything the scenarios use.
    let mut machine = match Machine::start(format, image, &options(format, images), None).await {
        Ok(m) => m,
        Err(e) => {
            let tail = e.run_dir().map_or("(no run directory)".into(), |d| {
                evidence_tail(&d.join("serial.log"))
            });
            let message = failure(
                &format!("the harness could not start QEMU: {e}"),
                &tail,
                e.run_dir(),
            );
            let took = clock.elapsed();
            return scenarios
                .iter()
                .map(|&scenario| ScenarioRun {
                    scenario,
                    result: Err(message.clone()),
                    took,
                })
                .collect();
        }
    };
    let verdict = machine.wait_ready().await;
    let serial_log = verdict.evidence.serial_log.clone();
    let roots = Roots {
        run_dir: Some(machine.run_dir().to_owned()),
        images: images.root.clone(),
    };
    let mut runs = Vec::with_capacity(scenarios.len());
    for &scenario in scenarios {
        let mut guest = MachineGuest {
            machine: &mut machine,
            serial_log: serial_log.clone(),
        };
        let result =
            scenarios::run_scenario(scenario, format.profile, &mut guest, &verdict, &roots).await;
        // The tail now: the run directory may go away with the guest.
        let result = result.map_err(|reason| (reason, evidence_tail(&serial_log)));
        runs.push((scenario, result, clock.elapsed()));
        clock = Instant::now();
    }
    let failed = runs.iter().any(|(_, r, _)| r.is_err());
    let kept = machine.finish(!failed).await;
    runs.into_iter()
        .map(|(scenario, result, took)| ScenarioRun {
            scenario,
            result: result.map_err(|(reason, tail)| failure(&reason, &tail, kept.as_deref())),
            took,
        })
        .collect()
}
