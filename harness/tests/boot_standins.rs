//! Every stand-in boots under QEMU (TCG here; as many at once as `harness::capacity` allows)
//! and gets the manifest's verdict: multi-user for the good ones, the expected reason for each
//! broken one, detected within 5 s of the guest's own failure message (timed from outside by polling the logs). After every run no
//! process of the run is left, a success leaves no run directory, a failure keeps it (named in
//! the verdict; removed by the test when the failure was the expected one, otherwise left in
//! place with its serial log's tail in the test's message), and the disk images of raw-efi and
//! qcow are byte-for-byte unchanged.
//!
//! Stand-ins: `$NIXGEN_STANDINS`, else `ci/standins/build`; missing stand-ins fail the test.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    manifest, processes_mentioning, sha256, standins_dir, LineClock, Standin, GUEST_LOCK,
};
use harness::{BootOptions, Event, Reason, Verdict};

/// The deadline for the stand-in that hangs on purpose: past the 25-30 s in which its good
/// twin (raw-efi) reaches multi-user under TCG, so that a hang that resolves shows.
const HANG_TIMEOUT: Duration = Duration::from_secs(40);
/// How soon after the guest's failure message the verdict must come.
const DETECTION_BUDGET: Duration = Duration::from_secs(5);
/// Stand-ins whose image file is hashed before and after the run.
const HASHED: &[&str] = &["raw-efi", "qcow"];
/// Good stand-ins that tests/check.rs boots through the command, with the same checks of the
/// verdict and of what is left behind: not booted again here.
const BOOTED_BY_THE_COMMAND_TESTS: &[&str] = &["old-systemd"];
/// aarch64 stand-ins booted here: an emulated CPU, so never KVM, whatever `auto` finds.
const AARCH64_UEFI: &[&str] = &["raw-efi-aarch64", "qcow-efi-aarch64", "iso-aarch64"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_standin_gets_its_verdict() {
    let _guest = GUEST_LOCK.lock().await;
    let dir = standins_dir();
    let only = std::env::var("NIXGEN_STANDIN").ok();
    let all = manifest(&dir);
    let in_matrix = booted_by_the_matrix(&all);
    let selected: Vec<Standin> = all
        .iter()
        // Refused stand-ins never boot: tests/check_failures.rs checks their exit 2 and reason.
        .filter(|s| s.expect != "refused")
        .filter(|s| match only.as_deref() {
            Some(name) => name == s.name,
            // The matrix boots one good stand-in per format through this harness; here go the
            // failures, the images whose bytes are checked, and the good stand-ins it skips
            // (the aarch64 UEFI disks and ISO among them: AAVMF) but for the command's tests'.
            None => {
                (!in_matrix.contains(&s.name) || HASHED.contains(&s.name.as_str()))
                    && !BOOTED_BY_THE_COMMAND_TESTS.contains(&s.name.as_str())
            }
        })
        .cloned()
        .collect();
    let ran = selected.len();
    assert!(ran > 0, "no stand-in selected");
    // As many guests at once as the machine holds (harness::capacity), like the matrix.
    let defaults = BootOptions::default();
    let at_once = harness::capacity::guests_that_fit(
        defaults.memory_mib,
        defaults.cpus_for(harness::Accel::Tcg),
    );
    let permits = Arc::new(tokio::sync::Semaphore::new(at_once));
    eprintln!("{ran} stand-ins, {at_once} at a time");
    let mut tasks = tokio::task::JoinSet::new();
    for s in selected {
        let (dir, permits) = (dir.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let t0 = Instant::now();
            let result = boot_one(&dir, &s).await;
            match &result {
                Ok(summary) => eprintln!(
                    "ok   {:<14} {summary} ({:.1} s)",
                    s.name,
                    t0.elapsed().as_secs_f64()
                ),
                Err(problem) => eprintln!("FAIL {:<14} {problem}", s.name),
            }
            result.map_err(|problem| format!("{}: {problem}", s.name))
        });
    }
    let mut problems = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Err(problem) = joined.expect("a stand-in task panicked") {
            problems.push(problem);
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {ran} stand-ins wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The good stand-in the matrix boots for each format (the matrix's own choice).
fn booted_by_the_matrix(all: &[Standin]) -> Vec<String> {
    test_support::standins::good_per_format(all)
        .values()
        .map(|s| s.name.clone())
        .collect()
}

/// What the recorder saw: the run directory and when the verdict event arrived.
#[derive(Default)]
struct Seen {
    run_dir: Option<PathBuf>,
    verdict_at: Option<Instant>,
}

async fn boot_one(dir: &Path, s: &Standin) -> Result<String, String> {
    let format = formats::registry()
        .get(&s.format)
        .ok_or_else(|| format!("unknown format {}", s.format))?;
    let image = dir.join(&s.name);
    let expect: Option<Reason> = match s.expect.as_str() {
        "multi-user" => None,
        other => Some(other.parse().map_err(|e: String| e)?),
    };
    let mut opts = BootOptions {
        guest_slots: test_support::threads::guest_slots(),
        ..BootOptions::default()
    };
    if expect == Some(Reason::Timeout) {
        opts.timeout = Some(HANG_TIMEOUT);
    }
    let hash_file = HASHED
        .contains(&s.name.as_str())
        .then(|| format.locate(&image))
        .flatten();
    let before = hash_file.as_deref().map(sha256);

    let run_dir = Arc::new(Mutex::new(None));
    let clock = LineClock::start(
        run_dir.clone(),
        &["serial.log", "firmware.log", "qemu.stdout"],
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (tx, mut rx) = harness::progress::channel();
    let (seen2, run_dir2) = (seen.clone(), run_dir.clone());
    let recorder = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Started { run_dir, .. } => {
                    *run_dir2.lock().unwrap() = Some(run_dir.clone());
                    seen2.lock().unwrap().run_dir = Some(run_dir);
                }
                Event::Verdict(_) => seen2.lock().unwrap().verdict_at = Some(Instant::now()),
                _ => {}
            }
        }
    });
    let verdict = harness::check(format, &image, &opts, Some(tx))
        .await
        .map_err(|e| format!("harness error: {e}"))?;
    let _ = recorder.await;
    let (started_dir, verdict_at) = {
        let s = seen.lock().unwrap();
        (s.run_dir.clone(), s.verdict_at)
    };
    let started_dir = started_dir.ok_or("no Started event")?;

    let mut problems = Vec::new();
    match (expect, verdict.reason()) {
        (None, None) => {}
        (want, got) => {
            if want != got {
                problems.push(format!(
                    "expected {}, got {:?} ({})",
                    s.expect,
                    got.map(|r| r.name()),
                    detail(&verdict)
                ));
            }
        }
    }
    if AARCH64_UEFI.contains(&s.name.as_str()) && verdict.accel != harness::Accel::Tcg {
        problems.push(format!("an aarch64 guest ran under {}", verdict.accel));
    }
    if let (Some(reason), Some(at)) = (expect, verdict_at) {
        if let Some(p) = detection_latency(reason, &verdict, &clock, at) {
            problems.push(p);
        }
    }
    // Nothing of the run is left running.
    let left = processes_mentioning(&started_dir.to_string_lossy());
    if !left.is_empty() {
        problems.push(format!("processes left: {left:?}"));
    }
    let as_expected = problems.is_empty();
    match (&verdict.run_dir, verdict.is_ready()) {
        (None, true) if !started_dir.exists() => {}
        (Some(kept), false) if kept == &started_dir && kept.join("serial.log").exists() => {
            if as_expected {
                std::fs::remove_dir_all(kept).map_err(|e| e.to_string())?;
            } else {
                // An unexpected failure keeps its evidence, and the test output shows it.
                problems.push(format!(
                    "run dir kept: {}\n--- serial.log (last 40 lines) ---\n{}",
                    kept.display(),
                    harness::detect::tail_lines(
                        &String::from_utf8_lossy(
                            &std::fs::read(kept.join("serial.log")).unwrap_or_default()
                        ),
                        40
                    )
                ));
            }
        }
        (kept, ready) => problems.push(format!(
            "run dir {} (exists: {}) kept as {kept:?} after ready={ready}",
            started_dir.display(),
            started_dir.exists()
        )),
    }
    if let (Some(file), Some(before)) = (&hash_file, &before) {
        if &sha256(file) != before {
            problems.push(format!("{} changed during the run", file.display()));
        }
    }
    if problems.is_empty() {
        Ok(summary(&verdict))
    } else {
        Err(problems.join("; "))
    }
}

/// Checks that a failure was decided within [`DETECTION_BUDGET`] of the guest's message.
fn detection_latency(
    reason: Reason,
    v: &Verdict,
    clock: &LineClock,
    verdict_at: Instant,
) -> Option<String> {
    let needle = match reason {
        // No guest message: the deadline, QEMU's exit, a QMP event.
        Reason::Timeout | Reason::QemuExited | Reason::ContainerExited | Reason::GuestPanicked => {
            return None
        }
        // Decided over vsock, the serial console says the same thing at the same moment.
        Reason::EmergencyMode if v.source == harness::ReadinessSource::Vsock => {
            "mergency".to_string()
        }
        Reason::RescueMode if v.source == harness::ReadinessSource::Vsock => "escue".to_string(),
        _ => detail(v),
    };
    let Some(msg_at) = clock.first(&needle) else {
        return Some(format!(
            "the deciding text {needle:?} never appeared in the logs"
        ));
    };
    let latency = verdict_at.saturating_duration_since(msg_at);
    (latency > DETECTION_BUDGET)
        .then(|| format!("detected {latency:?} after the guest's message {needle:?}"))
}

fn detail(v: &Verdict) -> String {
    match &v.outcome {
        harness::Outcome::Ready => "ready".into(),
        harness::Outcome::Failed { detail, .. } => detail.clone(),
    }
}

fn summary(v: &Verdict) -> String {
    let what = v.reason().map_or("ready", |r| r.name());
    format!(
        "{what} via {:?} [{}] after {:.1} s, milestones {:?}",
        v.source,
        v.transport,
        v.elapsed.as_secs_f64(),
        v.milestones
            .iter()
            .map(|m| format!("{:?}@{:.1}", m.kind, m.at.as_secs_f64()))
            .collect::<Vec<_>>()
    )
}
