//! `--check`: boot each image headless, wait for multi-user through the harness, optionally run
//! the console scenario, stop QEMU at once (no power-off: the guest runs on an overlay), and
//! report.

use std::{path::PathBuf, sync::Arc};

use harness::{BootOptions, Event, Machine, Verdict};
use serde::Serialize;
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    cli::CheckScenario,
    exit::{bad_input, Exit},
    progress::Progress,
    report_check,
    targets::Target,
};

/// The outcome of checking one target.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// The format name.
    pub format: String,
    /// The image file or build result booted.
    pub image: PathBuf,
    /// The harness verdict, when the machine started.
    pub verdict: Option<Verdict>,
    /// Why the machine could not be started or checked, when it could not.
    pub error: Option<String>,
    /// The console scenario's facts, when it ran and passed.
    pub console: Option<scenarios::console::ConsoleFacts>,
    /// The console scenario's failure, when it ran and failed.
    pub console_failure: Option<String>,
    /// The kept run directory (failure, or --keep).
    pub run_dir: Option<PathBuf>,
    /// The error was the input's fault (a refused image, an unusable TMPDIR): exit 2.
    #[serde(skip)]
    pub bad_input: bool,
}

impl Checked {
    /// Reached multi-user (and passed the console scenario if it ran).
    pub fn passed(&self) -> bool {
        self.verdict.as_ref().is_some_and(Verdict::is_ready) && self.console_failure.is_none()
    }
}

/// Checks every target, in parallel within the machine's capacity. Ctrl-C, SIGTERM or SIGHUP
/// stops every machine (their drop kills QEMU and helpers and removes run directories) and
/// exits 130, 143 or 129.
pub async fn check_all(
    targets: Vec<Target>,
    opts: BootOptions,
    scenario: CheckScenario,
    json: bool,
) -> Result<(), Exit> {
    // Before any guest starts: from here on a signal stops them all and cleans up.
    let mut stop = crate::signals::Stop::install();
    let progress = Arc::new(Progress::new(json));
    // Under TCG every vCPU is a host thread busy all the time: count them against the cores.
    let permits = Arc::new(Semaphore::new(harness::capacity::guests_that_fit(
        opts.memory_mib,
        opts.cpus_for(harness::Accel::Tcg),
    )));
    let opts = Arc::new(opts);
    let mut tasks = JoinSet::new();
    for (index, target) in targets.into_iter().enumerate() {
        let (progress, permits, opts) = (progress.clone(), permits.clone(), opts.clone());
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            (index, check_one(target, &opts, scenario, &progress).await)
        });
    }
    let mut results = Vec::new();
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok(result)) => results.push(result),
                Some(Err(e)) => return Err(Exit::CannotCheck(format!("a check task failed: {e}"))),
                None => break,
            },
            why = stop.requested() => {
                // Aborting drops each task's Machine: QEMU and helpers stopped, run dirs removed.
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Err(why);
            }
        }
    }
    results.sort_by_key(|(index, _)| *index);
    let results: Vec<Checked> = results.into_iter().map(|(_, c)| c).collect();
    report_check::print(&results, json);
    if results.iter().all(Checked::passed) {
        Ok(())
    } else if results.iter().any(|c| c.bad_input) {
        Err(bad_input(
            results
                .iter()
                .filter(|c| c.bad_input)
                .filter_map(|c| c.error.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ))
    } else if results.iter().any(|c| c.verdict.is_some()) {
        let failed: Vec<&str> = results
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.format.as_str())
            .collect();
        Err(Exit::DidNotBoot(format!(
            "did not pass: {}",
            failed.join(", ")
        )))
    } else {
        Err(Exit::CannotCheck(
            results
                .iter()
                .filter_map(|c| c.error.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

async fn check_one(
    target: Target,
    opts: &BootOptions,
    scenario: CheckScenario,
    progress: &Progress,
) -> Checked {
    let name = target.format.name.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let mut checked = Checked {
        format: name.clone(),
        image: target.image.clone(),
        verdict: None,
        error: None,
        console: None,
        console_failure: None,
        run_dir: None,
        bad_input: false,
    };
    let opts = &BootOptions {
        pair: target.pair.clone(),
        ..opts.clone()
    };
    let boot = async {
        let mut machine = Machine::start(target.format, &target.image, opts, tx).await?;
        let verdict = machine.wait_ready().await;
        let mut console = None;
        if verdict.is_ready() && scenario == CheckScenario::Console {
            console = Some(crate::console::check(&machine).await);
        }
        // No power-off: the guest runs on a snapshot overlay, so QEMU stops at once (finish).
        let passed = verdict.is_ready() && !matches!(console, Some(Err(_)));
        let kept = machine.finish(passed).await;
        Ok::<_, harness::HarnessError>((verdict, console, kept))
    };
    tokio::pin!(boot);
    let outcome = loop {
        tokio::select! {
            Some(event) = rx.recv() => progress.event(&name, &event),
            outcome = &mut boot => break outcome,
        }
    };
    while let Ok(event) = rx.try_recv() {
        progress.event(&name, &event);
    }
    match outcome {
        Ok((verdict, console, kept)) => {
            checked.verdict = Some(verdict);
            match console {
                Some(Ok(facts)) => checked.console = Some(facts),
                Some(Err(failure)) => checked.console_failure = Some(failure),
                None => {}
            }
            checked.run_dir = kept;
        }
        Err(e) => {
            checked.bad_input = e.is_bad_input();
            checked.error = Some(e.to_string());
        }
    }
    checked
}
