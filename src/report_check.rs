//! What `--check` prints: live progress while the machines boot, then per failure the reason,
//! the serial tail and the kept run directory, and a summary table; or the verdicts as JSON.

use std::{path::Path, sync::Arc};

use harness::{Accel, KvmDropped, Outcome, ReadinessSource, Verdict};
use serde::Serialize;

use crate::{
    check::{CheckOutcome, Checked, ConsoleOutcome, EventSink},
    progress::{milestone_name, secs, Progress},
};

/// The one reporter of `--check`: progress while it runs, the results when it ends.
pub struct Reporter {
    progress: Arc<Progress>,
    json: bool,
}

impl Reporter {
    /// Progress lines or bars on stderr; with `json` the results are JSON on stdout.
    pub fn new(json: bool) -> Reporter {
        Reporter {
            progress: Arc::new(Progress::new(json)),
            json,
        }
    }

    /// What `check::check_all` hands each machine's events to.
    pub fn on_event(&self) -> EventSink {
        let progress = Arc::clone(&self.progress);
        Arc::new(move |format, event| progress.event(format, event))
    }

    /// Prints the results (see [`print`]).
    pub fn finish(&self, results: &[Checked]) {
        print(results, self.json);
    }
}

/// How many serial lines a failure shows.
const TAIL_LINES: usize = 30;

#[derive(Serialize)]
struct JsonVerdict<'a> {
    format: &'a str,
    /// Lossy: JSON strings are UTF-8, a path need not be.
    image: String,
    accelerator: Option<Accel>,
    kvm_dropped: Option<&'a KvmDropped>,
    readiness_source: Option<ReadinessSource>,
    transport: Option<String>,
    verdict: &'static str,
    reason: Option<String>,
    detail: Option<String>,
    elapsed_s: Option<f64>,
    milestones: Vec<JsonMilestone>,
    run_dir: Option<&'a Path>,
    console: Option<&'a scenarios::console::ConsoleFacts>,
}

#[derive(Serialize)]
struct JsonMilestone {
    milestone: &'static str,
    at_s: f64,
}

/// Prints the results: JSON on stdout with `json`, else failures and a table on stdout.
pub fn print(results: &[Checked], json: bool) {
    if json {
        let rows: Vec<JsonVerdict> = results.iter().map(json_row).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("plain data serialises")
        );
        return;
    }
    for c in results.iter().filter(|c| !c.passed()) {
        print_failure(c);
    }
    println!(
        "{:<16} {:<28} {:>8}  {:<5} {:<7}",
        "FORMAT", "RESULT", "TIME", "ACCEL", "SOURCE"
    );
    for c in results {
        let (result, time, accel, source) = match c.verdict() {
            Some(v) => (
                summary(c),
                secs(v.elapsed),
                // `tcg*`: restarted under TCG after KVM failed (footnote below the table).
                format!(
                    "{}{}",
                    v.accel,
                    if v.kvm_dropped.is_some() { "*" } else { "" }
                ),
                v.source.to_string(),
            ),
            None => (
                "could not start".to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
            ),
        };
        println!(
            "{:<16} {:<28} {:>8}  {:<5} {:<7}",
            c.format, result, time, accel, source
        );
    }
    if let Some(why) = results
        .iter()
        .find_map(|c| c.verdict()?.kvm_dropped.as_ref())
    {
        println!(
            "* KVM failed ({why}): the guest was started again under TCG, and so were later ones"
        );
    }
}

fn summary(c: &Checked) -> String {
    match &c.outcome {
        CheckOutcome::Booted { verdict, .. } if !verdict.is_ready() => {
            verdict.reason().map_or_else(String::new, |r| r.to_string())
        }
        CheckOutcome::Booted { console, .. } => match console {
            ConsoleOutcome::Failed(_) => "multi-user, console failed".into(),
            // `--check=console` ran and passed: say what the system said.
            ConsoleOutcome::Passed(facts) => format!("multi-user, console {}", facts.system_state),
            ConsoleOutcome::NotRun => "multi-user".into(),
        },
        CheckOutcome::NotStarted { .. } => "could not start".into(),
    }
}

fn print_failure(c: &Checked) {
    println!("== {}: {}", c.format, failure_line(c));
    if let Some(v) = c.verdict() {
        let tail = serial_tail(&v.evidence.serial_log);
        if !tail.is_empty() {
            println!("-- last {} serial lines --", tail.len());
            for line in tail {
                println!("   {line}");
            }
        }
    }
    if let Some(dir) = run_dir(c) {
        println!(
            "-- run directory kept: {} ({})",
            dir.display(),
            harness::rundir::evidence_list()
        );
    }
    println!();
}

fn failure_line(c: &Checked) -> String {
    match &c.outcome {
        CheckOutcome::NotStarted { error, .. } => format!("could not start: {error}"),
        CheckOutcome::Booted {
            console: ConsoleOutcome::Failed(f),
            ..
        } => format!("reached multi-user, but the console scenario failed: {f}"),
        CheckOutcome::Booted { verdict, .. } => {
            format!("did not boot: {}", outcome_line(&verdict.outcome))
        }
    }
}

/// The kept run directory, if any.
fn run_dir(c: &Checked) -> Option<&Path> {
    match &c.outcome {
        CheckOutcome::Booted { run_dir, .. } => run_dir.as_deref(),
        CheckOutcome::NotStarted { .. } => None,
    }
}

/// The last lines of the serial log, ANSI escapes removed.
fn serial_tail(log: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(log) else {
        return Vec::new();
    };
    let tail = scenarios::text::tail_lines(&String::from_utf8_lossy(&bytes), TAIL_LINES);
    tail.lines().map(str::to_string).collect()
}

/// One line for an outcome: `multi-user`, or the reason and its evidence.
fn outcome_line(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ready => "multi-user".into(),
        Outcome::Failed { reason, detail } => format!("{reason}: {detail}"),
    }
}

fn json_row(c: &Checked) -> JsonVerdict<'_> {
    let v = c.verdict();
    let (error, console_failure, console) = match &c.outcome {
        CheckOutcome::NotStarted { error, .. } => (Some(error), None, None),
        CheckOutcome::Booted { console, .. } => match console {
            ConsoleOutcome::Failed(f) => (None, Some(f), None),
            ConsoleOutcome::Passed(facts) => (None, None, Some(facts)),
            ConsoleOutcome::NotRun => (None, None, None),
        },
    };
    JsonVerdict {
        format: &c.format,
        image: c.image.to_string_lossy().into_owned(),
        accelerator: v.map(|v| v.accel),
        kvm_dropped: v.and_then(|v| v.kvm_dropped.as_ref()),
        readiness_source: v.map(|v| v.source),
        transport: v.map(Verdict::transport_line),
        verdict: if c.passed() { "multi-user" } else { "failed" },
        reason: match (v, console_failure, error) {
            (_, _, Some(_)) => Some("could-not-start".into()),
            (Some(v), _, _) if !v.is_ready() => v.reason().map(|r| r.to_string()),
            (_, Some(_), _) => Some("console-scenario".into()),
            _ => None,
        },
        detail: error.or(console_failure).cloned().or_else(|| {
            v.filter(|v| !v.is_ready())
                .map(|v| outcome_line(&v.outcome))
        }),
        elapsed_s: v.map(|v| v.elapsed.as_secs_f64()),
        milestones: v.map_or_else(Vec::new, |v| {
            v.milestones
                .iter()
                .map(|m| JsonMilestone {
                    milestone: milestone_name(m.kind),
                    at_s: m.at.as_secs_f64(),
                })
                .collect()
        }),
        run_dir: run_dir(c),
        console,
    }
}
