//! The format x scenario matrix: one libtest-mimic trial per pairing of the scenarios' pairing
//! table, named `format::scenario`, each booting its own guest.
//!
//! ```text
//! cargo test -p scenarios --test matrix                 # everything
//! cargo test -p scenarios --test matrix -- raw-efi      # one format
//! cargo test -p scenarios --test matrix -- --list
//! NIXGEN_IMAGE_SOURCE=standins|nixos   NIXGEN_STANDINS=DIR   INSTA_UPDATE=always
//! ```
//!
//! Formats the harness cannot boot are listed as ignored trials (`format::boot`) with the
//! reason; a pairing whose image source has no image for the format is ignored with that
//! reason; nothing is passed without running. At the end a summary table goes to stderr.

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
use scenarios::{
    scenarios_for,
    source::{Images, SourceKind},
    summary::{Status, Summary},
    threads, Scenario,
};

/// What the trials share: the image source (resolved once, by the first trial that runs) and
/// the summary.
struct Matrix {
    workspace: PathBuf,
    /// Bootable formats with at least one trial left after filtering (what a NixOS build makes).
    wanted: Vec<String>,
    images: OnceLock<Result<Images, String>>,
    summary: Summary,
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

fn run_trial(matrix: &Matrix, format: &Format, scenario: Scenario) -> Result<Completion, Failed> {
    let images = matrix.images()?;
    if let Some(reason) = cannot_run(format, images) {
        return Ok(Completion::ignored_with(reason));
    }
    let image = image_file(format, images)?;
    let facts = machine::run(format, scenario, &image, images)?;
    snapshot::assert(scenario, images.kind, &format.name, &facts);
    Ok(Completion::Completed)
}

fn trial(matrix: &Arc<Matrix>, format: &'static Format, scenario: Scenario) -> Trial {
    let matrix = Arc::clone(matrix);
    Trial::ignorable_test(trial_name(&format.name, scenario), move || {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_trial(&matrix, format, scenario)
        }));
        let status = match &result {
            Ok(Ok(Completion::Completed)) => Status::Pass,
            Ok(Ok(Completion::Ignored { .. })) => Status::Ignored,
            Ok(Err(_)) | Err(_) => Status::Fail,
        };
        matrix
            .summary
            .record(&format.name, scenario, status, started.elapsed());
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(threads::choose(args.test_threads));
    let registry = formats::registry();

    let wanted = registry
        .formats()
        .iter()
        .filter(|f| {
            scenarios_for(f)
                .iter()
                .any(|s| !args.is_filtered_out(&Trial::test(trial_name(&f.name, *s), || Ok(()))))
        })
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
        let paired = scenarios_for(format);
        if paired.is_empty() {
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
        }
        for &scenario in paired {
            trials.push(trial(&matrix, format, scenario));
        }
    }

    let started = Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(table) = matrix.summary.table(started.elapsed()) {
        eprintln!("\nmatrix summary (format x scenario):\n{table}");
    }
    conclusion.exit_code()
}
