//! What `--check` prints: live progress while the machines boot, then per failure the reason,
//! the serial tail and the kept run directory, and a summary table; or the verdicts as JSON.

use std::{path::Path, sync::Arc};

use comfy_table::{CellAlignment, Table};
use harness::{Milestone, Verdict};
use serde::{ser::SerializeStruct, Serialize, Serializer};

use crate::{
    check::{outcome_line, CheckOutcome, Checked, ConsoleOutcome, EventSink},
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

    /// Prints the results (see [`print()`]).
    pub fn finish(&self, results: &[Checked]) {
        print(results, self.json);
    }
}

/// `table` drawn with no lines, its columns two spaces apart, trailing spaces trimmed (`--list`
/// and the summary of `--check`).
pub fn plain(mut table: Table) -> String {
    table.load_preset(comfy_table::presets::NOTHING);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

/// How many serial lines a failure shows.
const TAIL_LINES: usize = 30;

/// A check as a row of `--json`, serialised from the check and its verdict themselves:
/// `format`, `image` (lossy: JSON strings are UTF-8, a path need not be), `accelerator`,
/// `kvm_dropped`, `vcpus`, `vcpus_dropped`, `firmware_restarted`, `readiness_source`, `transport`, `verdict`, `reason`, `detail`, `elapsed_s`,
/// `milestones`, `run_dir`, `console`; what the machine never had is `null`.
struct JsonRow<'a>(&'a Checked);

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let v = c.verdict();
        let console = match &c.outcome {
            CheckOutcome::Booted {
                console: ConsoleOutcome::Passed(facts),
                ..
            } => Some(facts),
            _ => None,
        };
        let mut row = s.serialize_struct("Checked", 16)?;
        row.serialize_field("format", &c.format)?;
        row.serialize_field("image", &c.image.to_string_lossy())?;
        row.serialize_field("accelerator", &v.map(|v| v.accel))?;
        row.serialize_field("kvm_dropped", &v.and_then(|v| v.kvm_dropped.as_ref()))?;
        row.serialize_field("vcpus", &v.and_then(|v| v.vcpus))?;
        row.serialize_field("vcpus_dropped", &v.and_then(|v| v.vcpus_dropped.as_ref()))?;
        row.serialize_field(
            "firmware_restarted",
            &v.and_then(|v| v.firmware_restarted.as_ref()),
        )?;
        row.serialize_field("readiness_source", &v.map(|v| v.source))?;
        row.serialize_field("transport", &v.map(Verdict::transport_line))?;
        row.serialize_field("verdict", if c.passed() { "multi-user" } else { "failed" })?;
        row.serialize_field("reason", &c.failure())?;
        row.serialize_field("detail", &c.failure_detail())?;
        row.serialize_field("elapsed_s", &v.map(|v| v.elapsed.as_secs_f64()))?;
        row.serialize_field(
            "milestones",
            &JsonMilestones(v.map_or(&[], |v| &v.milestones)),
        )?;
        row.serialize_field("run_dir", &run_dir(c))?;
        row.serialize_field("console", &console)?;
        row.end()
    }
}

/// The milestones as `--json` spells them: `{"milestone": "boot loader", "at_s": 1.25}`, the
/// names of the progress lines, the time unrounded.
struct JsonMilestones<'a>(&'a [Milestone]);

impl Serialize for JsonMilestones<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a Milestone);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_struct("Milestone", 2)?;
                m.serialize_field("milestone", milestone_name(self.0.kind))?;
                m.serialize_field("at_s", &self.0.at.as_secs_f64())?;
                m.end()
            }
        }
        s.collect_seq(self.0.iter().map(One))
    }
}

/// The results as `--json` prints them.
fn json_rows(results: &[Checked]) -> String {
    let rows: Vec<JsonRow> = results.iter().map(JsonRow).collect();
    serde_json::to_string_pretty(&rows).expect("plain data serialises")
}

/// Prints the results: JSON on stdout with `json`, else failures and a table on stdout.
pub fn print(results: &[Checked], json: bool) {
    if json {
        println!("{}", json_rows(results));
        return;
    }
    for c in results.iter().filter(|c| !c.passed()) {
        print_failure(c);
    }
    let mut table = Table::new();
    table.set_header(["FORMAT", "RESULT", "TIME", "ACCEL", "SOURCE"]);
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
        table.add_row([c.format.clone(), result, time, accel, source]);
    }
    if let Some(time) = table.column_mut(2) {
        time.set_cell_alignment(CellAlignment::Right);
    }
    println!("{}", plain(table));
    if let Some(why) = results
        .iter()
        .find_map(|c| c.verdict()?.kvm_dropped.as_ref())
    {
        println!(
            "* KVM failed ({why}): the guest was started again under TCG, and so were later ones"
        );
    }
    for c in results {
        if let Some(oops) = c.verdict().and_then(|v| v.vcpus_dropped.as_ref()) {
            println!(
                "{}: with two vCPUs under TCG the kernel oopsed on a stale int3 ({oops}); the guest was started again with one",
                c.format
            );
        }
        if let Some(stall) = c.verdict().and_then(|v| v.firmware_restarted.as_ref()) {
            println!("{}: {stall}; the guest was started again", c.format);
        }
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

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;
    use std::time::Duration;

    use harness::{
        rundir::RunFiles, Accel, Firmware, KvmDropped, Milestone, MilestoneKind, Outcome,
        ReadinessSource, Reason, TransportKind, Verdict,
    };
    use scenarios::console::ConsoleFacts;

    use super::*;

    fn verdict(outcome: Outcome, kvm_dropped: Option<KvmDropped>) -> Box<Verdict> {
        Box::new(Verdict {
            outcome,
            accel: Accel::Tcg,
            kvm_dropped,
            vcpus: Some(1),
            vcpus_dropped: None,
            firmware_restarted: None,
            source: ReadinessSource::Vsock,
            firmware: Firmware::Uefi,
            transport: TransportKind::SerialOnly,
            serial_only_reason: Some("no vhost-device-vsock".into()),
            milestones: vec![
                Milestone {
                    kind: MilestoneKind::Bootloader,
                    at: Duration::from_millis(1234),
                },
                Milestone {
                    kind: MilestoneKind::MultiUser,
                    at: Duration::from_micros(20_000_123),
                },
            ],
            targets: vec![("multi-user.target".into(), Duration::from_secs(2))],
            hostname: Some("standin".into()),
            machine_id: None,
            exit_status: None,
            elapsed: Duration::from_micros(21_500_001),
            run_dir: None,
            evidence: RunFiles::of(Path::new("/tmp/ng-x1")).evidence(),
            qemu_args: vec!["qemu-system-x86_64".into()],
        })
    }

    fn checked(format: &str, outcome: CheckOutcome) -> Checked {
        Checked {
            format: format.into(),
            image: std::ffi::OsStr::from_bytes(b"/i/\xffimage.img").into(),
            outcome,
        }
    }

    /// A check that booted; a failed boot keeps its run directory.
    fn booted(format: &str, verdict: Box<Verdict>, console: ConsoleOutcome) -> Checked {
        let run_dir = (!verdict.is_ready()).then(|| "/tmp/ng-x1".into());
        checked(
            format,
            CheckOutcome::Booted {
                verdict,
                console,
                run_dir,
            },
        )
    }

    /// Each row of `--json` (compact here; `--json` pretty-prints the same), byte for byte as the
    /// hand-built rows printed it before they were serialised from the check itself.
    const EXPECTED: [&str; 4] = [
        r#"{"format":"raw","image":"/i/�image.img","accelerator":null,"kvm_dropped":null,"vcpus":null,"vcpus_dropped":null,"firmware_restarted":null,"readiness_source":null,"transport":null,"verdict":"failed","reason":"could-not-start","detail":"no image","elapsed_s":null,"milestones":[],"run_dir":null,"console":null}"#,
        r#"{"format":"iso","image":"/i/�image.img","accelerator":"tcg","kvm_dropped":"KVM internal error","vcpus":1,"vcpus_dropped":null,"firmware_restarted":null,"readiness_source":"vsock","transport":"serial-only: no vhost-device-vsock","verdict":"failed","reason":"kernel-panic","detail":"kernel-panic: VFS","elapsed_s":21.500001,"milestones":[{"milestone":"boot loader","at_s":1.234},{"milestone":"multi-user","at_s":20.000123}],"run_dir":"/tmp/ng-x1","console":null}"#,
        r#"{"format":"qcow","image":"/i/�image.img","accelerator":"tcg","kvm_dropped":null,"vcpus":1,"vcpus_dropped":null,"firmware_restarted":null,"readiness_source":"vsock","transport":"serial-only: no vhost-device-vsock","verdict":"failed","reason":"console-scenario","detail":"no prompt","elapsed_s":21.500001,"milestones":[{"milestone":"boot loader","at_s":1.234},{"milestone":"multi-user","at_s":20.000123}],"run_dir":null,"console":null}"#,
        r#"{"format":"vm","image":"/i/�image.img","accelerator":"tcg","kvm_dropped":null,"vcpus":1,"vcpus_dropped":null,"firmware_restarted":null,"readiness_source":"vsock","transport":"serial-only: no vhost-device-vsock","verdict":"multi-user","reason":null,"detail":null,"elapsed_s":21.500001,"milestones":[{"milestone":"boot loader","at_s":1.234},{"milestone":"multi-user","at_s":20.000123}],"run_dir":null,"console":{"login":"autologin","system_state":"running","failed_units":[],"os_release":{"ID":"nixos"},"cmdline":"console=ttyS0"}}"#,
    ];

    /// `--json` of every shape of result, spelt as it always was.
    #[test]
    fn json_rows_of_every_outcome() {
        let facts = ConsoleFacts {
            login: scenarios::serial::Login::Autologin,
            system_state: "running".into(),
            failed_units: vec![],
            os_release: [("ID".to_string(), "nixos".to_string())].into(),
            cmdline: "console=ttyS0".into(),
        };
        let results = [
            checked(
                "raw",
                CheckOutcome::NotStarted {
                    error: "no image".into(),
                    bad_input: true,
                },
            ),
            booted(
                "iso",
                verdict(
                    Outcome::Failed {
                        reason: Reason::KernelPanic,
                        detail: "VFS".into(),
                    },
                    Some(KvmDropped::MidBoot("KVM internal error".into())),
                ),
                ConsoleOutcome::NotRun,
            ),
            booted(
                "qcow",
                verdict(Outcome::Ready, None),
                ConsoleOutcome::Failed("no prompt".into()),
            ),
            booted(
                "vm",
                verdict(Outcome::Ready, None),
                ConsoleOutcome::Passed(facts),
            ),
        ];
        for (c, want) in results.iter().zip(EXPECTED) {
            assert_eq!(serde_json::to_string(&JsonRow(c)).unwrap(), want);
        }
        let pretty: serde_json::Value = serde_json::from_str(&json_rows(&results)).unwrap();
        assert_eq!(pretty.as_array().map(Vec::len), Some(EXPECTED.len()));
    }
}
