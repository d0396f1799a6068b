//! What `--check` prints: per failure the reason, the serial tail and the kept run directory;
//! a summary table; or the verdicts as JSON.

use std::path::Path;

use harness::{Outcome, ReadinessSource};
use serde::Serialize;

use crate::{
    check::Checked,
    progress::{milestone_name, secs},
};

/// How many serial lines a failure shows.
const TAIL_LINES: usize = 30;

#[derive(Serialize)]
struct JsonVerdict<'a> {
    format: &'a str,
    /// Lossy: JSON strings are UTF-8, a path need not be.
    image: String,
    accelerator: Option<String>,
    kvm_dropped: Option<&'a str>,
    readiness_source: Option<String>,
    transport: Option<&'a str>,
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
        let (result, time, accel, source) = match &c.verdict {
            Some(v) => (
                summary(c),
                secs(v.elapsed),
                // `tcg*`: restarted under TCG after KVM failed (footnote below the table).
                format!(
                    "{}{}",
                    v.accel,
                    if v.kvm_dropped.is_some() { "*" } else { "" }
                ),
                source_name(v.source).to_string(),
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
        .find_map(|c| c.verdict.as_ref()?.kvm_dropped.as_deref())
    {
        println!(
            "* KVM failed ({why}): the guest was started again under TCG, and so were later ones"
        );
    }
}

fn summary(c: &Checked) -> String {
    match (&c.verdict, &c.console_failure) {
        (Some(v), _) if !v.is_ready() => v.reason().map_or_else(String::new, |r| r.to_string()),
        (Some(_), Some(_)) => "multi-user, console failed".into(),
        (Some(_), None) => match &c.console {
            // `--check=console` ran and passed: say what the system said.
            Some(facts) => format!("multi-user, console {}", facts.system_state),
            None => "multi-user".into(),
        },
        (None, _) => "could not start".into(),
    }
}

fn print_failure(c: &Checked) {
    println!("== {}: {}", c.format, failure_line(c));
    if let Some(v) = &c.verdict {
        let tail = serial_tail(&v.evidence.serial_log);
        if !tail.is_empty() {
            println!("-- last {} serial lines --", tail.len());
            for line in tail {
                println!("   {line}");
            }
        }
    }
    if let Some(dir) = &c.run_dir {
        println!(
            "-- run directory kept: {} (serial.log, qemu.stderr, qmp.log, notify.log, screenshot if any)",
            dir.display()
        );
    }
    println!();
}

fn failure_line(c: &Checked) -> String {
    if let Some(e) = &c.error {
        return format!("could not start: {e}");
    }
    if let Some(f) = &c.console_failure {
        return format!("reached multi-user, but the console scenario failed: {f}");
    }
    c.verdict.as_ref().map_or_else(String::new, |v| {
        format!("did not boot: {}", outcome_line(&v.outcome))
    })
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

fn source_name(source: ReadinessSource) -> &'static str {
    match source {
        ReadinessSource::Vsock => "vsock",
        ReadinessSource::NotifySocket => "notify-socket",
        ReadinessSource::Serial => "serial",
        ReadinessSource::None => "none",
    }
}

fn json_row(c: &Checked) -> JsonVerdict<'_> {
    let v = c.verdict.as_ref();
    JsonVerdict {
        format: &c.format,
        image: c.image.to_string_lossy().into_owned(),
        accelerator: v.map(|v| v.accel.to_string()),
        kvm_dropped: v.and_then(|v| v.kvm_dropped.as_deref()),
        readiness_source: v.map(|v| source_name(v.source).to_string()),
        transport: v.map(|v| v.transport.as_str()),
        verdict: if c.passed() { "multi-user" } else { "failed" },
        reason: match (v, &c.console_failure, &c.error) {
            (_, _, Some(_)) => Some("could-not-start".into()),
            (Some(v), _, _) if !v.is_ready() => v.reason().map(|r| r.to_string()),
            (_, Some(_), _) => Some("console-scenario".into()),
            _ => None,
        },
        detail: c
            .error
            .clone()
            .or_else(|| c.console_failure.clone())
            .or_else(|| {
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
        run_dir: c.run_dir.as_deref(),
        console: c.console.as_ref(),
    }
}
