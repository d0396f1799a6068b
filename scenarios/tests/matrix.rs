//! The format x scenario matrix: one libtest-mimic trial per format, named
//! `format::scenario+scenario+...` after the pairings it runs, which boots ONE guest and runs
//! those scenarios on it in the pairing table's order (`poweroff`, which ends the guest, last).
//! Formats run in parallel, as many as `harness::capacity` allows.
//!
//! ```text
//! cargo test -p scenarios --test matrix                 # everything
//! cargo test -p scenarios --test matrix -- raw-efi      # one format
//! cargo test -p scenarios --test matrix -- raw-efi::console   # one pairing (still one boot)
//! cargo test -p scenarios --test matrix -- --skip poweroff
//! cargo test -p scenarios --test matrix -- --list
//! NIXGEN_IMAGE_SOURCE=standins|nixos   NIXGEN_STANDINS=DIR   INSTA_UPDATE=always
//! ```
//!
//! Filters (`FILTER`, `--skip`, `--exact`) select pairings by their `format::scenario` name; a
//! format's trial runs the pairings left. Formats the harness cannot boot are listed as ignored
//! trials (`format::boot`) with the reason; a format whose image source has no image is ignored
//! with that reason; nothing is passed without running. At the end a summary table (format x
//! scenario, the first scenario's time includes the boot) goes to stderr.

#[path = "matrix/machine.rs"]
mod machine;
#[path = "matrix/snapshot.rs"]
mod snapshot;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, OnceLock},
    time::Instant,
};

use formats::{Format, System};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use scenarios::{scenarios_for, Scenario};
use test_support::{
    source::{Images, SourceKind},
    summary::{Status, Summary},
    threads,
};

/// Each trial's guest memory in MiB (the matrix boots every guest with the harness default).
const GUEST_MIB: u32 = 1024;

/// What the trials share: the image source (resolved once, by the first trial that runs) and
/// the summary.
struct Matrix {
    workspace: PathBuf,
    /// Bootable formats with at least one trial left after filtering (what a NixOS build makes).
    wanted: Vec<String>,
    images: OnceLock<Result<Images, String>>,
    summary: Summary<Scenario>,
}

impl Matrix {
    /// The images, found or built on first use.
    fn images(&self) -> Result<&Images, String> {
        self.images
            .get_or_init(|| {
                let kind = SourceKind::from_env().map_err(|e| e.to_string())?;
                eprintln!("matrix: image source `{}`", kind.name());
                let wanted: Vec<&str> = self.wanted.iter().map(String::as_str).collect();
                let images = match kind {
                    SourceKind::Standins => Images::standins(&self.workspace),
                    SourceKind::Nixos => Images::build_nixos(&self.workspace, &wanted),
                }
                .map_err(|e| format!("image source `{}`: {e}", kind.name()))?;
                if let Some(root) = &images.root {
                    eprintln!("matrix: images in {}", root.display());
                }
                Ok(images)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn trial_name(format: &str, scenario: Scenario) -> String {
    format!("{format}::{}", scenario.name())
}

/// Why a pairing cannot run on this machine with these images, if it cannot.
fn cannot_run(format: &Format, images: &Images) -> Option<String> {
    if images.get(&format.name).is_none() {
        return Some(format!(
            "no {} image in the `{}` image source",
            format.name,
            images.kind.name()
        ));
    }
    if format.system == System::Aarch64Linux && which::which("qemu-system-aarch64").is_err() {
        return Some("no aarch64 QEMU (qemu-system-aarch64) on this machine".into());
    }
    None
}

/// The image file of `format`: the source's entry itself, or (for a stand-in, laid out like a
/// build result) the file the registry's output glob selects in it.
fn image_file(format: &Format, images: &Images) -> Result<PathBuf, String> {
    let entry = images.get(&format.name).expect("checked by cannot_run");
    if entry.is_dir() {
        format.locate(entry).ok_or_else(|| {
            format!(
                "{} has no file matching {} (the format's output glob)",
                entry.display(),
                format.output
            )
        })
    } else {
        Ok(entry.to_owned())
    }
}

/// Runs `scenarios` of `format` on one boot; records each in the summary.
fn run_trial(
    matrix: &Matrix,
    format: &Format,
    scenarios: &[Scenario],
) -> Result<Completion, Failed> {
    let record_all = |status, took| {
        for &s in scenarios {
            matrix.summary.record(&format.name, s, status, took);
        }
    };
    let started = Instant::now();
    let images = matrix
        .images()
        .inspect_err(|_| record_all(Status::Fail, started.elapsed()))?;
    if let Some(reason) = cannot_run(format, images) {
        record_all(Status::Ignored, std::time::Duration::ZERO);
        return Ok(Completion::ignored_with(reason));
    }
    let image =
        image_file(format, images).inspect_err(|_| record_all(Status::Fail, started.elapsed()))?;
    let mut failures = Vec::new();
    for run in machine::run(format, scenarios, &image, images) {
        let name = trial_name(&format.name, run.scenario);
        let outcome = run.result.and_then(|facts| {
            // insta panics on a mismatch: catch it, so the other scenarios are still reported.
            std::panic::catch_unwind(|| {
                snapshot::assert(run.scenario, images.kind, &format.name, &facts)
            })
            .map_err(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                format!("snapshot mismatch: {what}")
            })
        });
        let status = if outcome.is_ok() {
            Status::Pass
        } else {
            Status::Fail
        };
        matrix
            .summary
            .record(&format.name, run.scenario, status, run.took);
        if let Err(message) = outcome {
            eprintln!("{name}: FAILED");
            failures.push(format!("=== {name} ===\n{message}"));
        }
    }
    if failures.is_empty() {
        Ok(Completion::Completed)
    } else {
        Err(failures.join("\n\n").into())
    }
}

/// The trial of `format` running `scenarios` (the pairings the filters left) on one boot.
fn trial(matrix: &Arc<Matrix>, format: &'static Format, scenarios: Vec<Scenario>) -> Trial {
    let matrix = Arc::clone(matrix);
    let name = format!(
        "{}::{}",
        format.name,
        scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join("+")
    );
    Trial::ignorable_test(name, move || run_trial(&matrix, format, &scenarios))
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(threads::choose(args.test_threads, || {
        let cpus = harness::BootOptions::default().cpus_for(harness::Accel::Tcg);
        harness::capacity::guests_that_fit(GUEST_MIB, cpus)
    }));
    let registry = formats::registry();
    // Filters select pairings (`format::scenario`); a trial then runs the pairings left of its
    // format, so libtest-mimic itself filters nothing more.
    let wanted_pair = |format: &Format, scenario: Scenario| {
        !args.is_filtered_out(&Trial::test(trial_name(&format.name, scenario), || Ok(())))
    };
    let selected = |format: &'static Format| -> Vec<Scenario> {
        scenarios_for(format)
            .iter()
            .copied()
            .filter(|s| wanted_pair(format, *s))
            .collect()
    };

    let wanted = registry
        .formats()
        .iter()
        .filter(|f| !selected(f).is_empty())
        .map(|f| f.name.clone())
        .collect();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("scenarios/ sits in the workspace")
        .to_owned();
    let matrix = Arc::new(Matrix {
        workspace,
        wanted,
        images: OnceLock::new(),
        summary: Summary::default(),
    });

    let mut trials = Vec::new();
    for format in registry.formats() {
        if scenarios_for(format).is_empty() {
            if !wanted_pair(format, Scenario::Boot) {
                continue;
            }
            let reason = format!("not bootable here: {}", format.profile);
            let matrix = Arc::clone(&matrix);
            trials.push(Trial::ignorable_test(
                trial_name(&format.name, Scenario::Boot),
                move || {
                    let zero = std::time::Duration::ZERO;
                    matrix
                        .summary
                        .record(&format.name, Scenario::Boot, Status::Ignored, zero);
                    Ok(Completion::ignored_with(reason))
                },
            ));
            continue;
        }
        let scenarios = selected(format);
        if !scenarios.is_empty() {
            trials.push(trial(&matrix, format, scenarios));
        }
    }
    args.filter = None;
    args.skip.clear();
    args.exact = false;

    let started = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    let columns = Scenario::ALL.map(|s| (s, s.name()));
    if let Some(table) = matrix.summary.table(&columns, started.elapsed()) {
        eprintln!("\nmatrix summary (format x scenario):\n{table}");
    }
    conclusion.exit_code()
}
