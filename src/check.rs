//! `--check`: boot each image headless, wait for multi-user through the harness, optionally run
//! the console scenario, and stop QEMU at once (no power-off: the guest runs on an overlay).
//! It returns what happened; `report_check` prints it.

use std::{path::PathBuf, sync::Arc};

use harness::{BootOptions, Event, Machine, Outcome, Reason, Verdict};
use scenarios::console::ConsoleFacts;
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    cli::CheckScenario,
    exit::{bad_input, Exit},
    targets::Target,
};

/// Where `check_all` hands each machine's events, with the machine's format name.
pub type EventSink = Arc<dyn Fn(&str, &Event) + Send + Sync>;

/// The check of one target.
#[derive(Debug)]
pub struct Checked {
    /// The format name.
    pub format: String,
    /// The image file or build result booted.
    pub image: PathBuf,
    /// How it ended.
    pub outcome: CheckOutcome,
}

/// How the check of one target ended.
#[derive(Debug)]
pub enum CheckOutcome {
    /// The machine could not be started or checked.
    NotStarted {
        /// Why.
        error: String,
        /// It was the input's fault (a refused image, an unusable TMPDIR): exit 2.
        bad_input: bool,
    },
    /// The harness decided.
    Booted {
        /// Its verdict (boxed: it is large, and the other variant is small).
        verdict: Box<Verdict>,
        /// The console scenario, if it ran.
        console: ConsoleOutcome,
        /// The kept run directory (failure, or --keep).
        run_dir: Option<PathBuf>,
    },
}

/// The console scenario of `--check=console` on a machine that reached multi-user.
#[derive(Debug)]
pub enum ConsoleOutcome {
    /// Not asked for, or the machine did not reach multi-user.
    NotRun,
    /// It passed with these facts.
    Passed(ConsoleFacts),
    /// It failed, for this reason.
    Failed(String),
}

impl Checked {
    /// The harness's verdict, when the machine started.
    pub fn verdict(&self) -> Option<&Verdict> {
        match &self.outcome {
            CheckOutcome::Booted { verdict, .. } => Some(verdict),
            CheckOutcome::NotStarted { .. } => None,
        }
    }

    /// Reached multi-user (and passed the console scenario if it ran).
    pub fn passed(&self) -> bool {
        self.failure().is_none()
    }

    /// Why it failed, if it did.
    pub fn failure(&self) -> Option<CheckFailure> {
        match &self.outcome {
            CheckOutcome::NotStarted { .. } => Some(CheckFailure::CouldNotStart),
            CheckOutcome::Booted { verdict, .. } if !verdict.is_ready() => {
                verdict.reason().map(CheckFailure::Boot)
            }
            CheckOutcome::Booted {
                console: ConsoleOutcome::Failed(_),
                ..
            } => Some(CheckFailure::ConsoleScenario),
            CheckOutcome::Booted { .. } => None,
        }
    }

    /// What went wrong, in words: the error that kept it from starting, the console scenario's
    /// failure, or the boot's reason and its evidence.
    pub fn failure_detail(&self) -> Option<String> {
        match &self.outcome {
            CheckOutcome::NotStarted { error, .. } => Some(error.clone()),
            CheckOutcome::Booted {
                console: ConsoleOutcome::Failed(f),
                ..
            } => Some(f.clone()),
            CheckOutcome::Booted { verdict, .. } => match &verdict.outcome {
                Outcome::Ready => None,
                outcome => Some(outcome_line(outcome)),
            },
        }
    }
}

/// Why the check of one target failed; serialises as its kebab-case name (a boot's reason as
/// the harness spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFailure {
    /// The machine could not be started or checked.
    CouldNotStart,
    /// The boot failed.
    Boot(Reason),
    /// The boot reached multi-user, the console scenario failed.
    ConsoleScenario,
}

impl CheckFailure {
    /// The kebab-case name (`could-not-start`, `kernel-panic`, `console-scenario`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CheckFailure::CouldNotStart => "could-not-start",
            CheckFailure::Boot(reason) => reason.name(),
            CheckFailure::ConsoleScenario => "console-scenario",
        }
    }
}

impl serde::Serialize for CheckFailure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One line for an outcome: `multi-user`, or the reason and its evidence.
pub fn outcome_line(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ready => "multi-user".into(),
        Outcome::Failed { reason, detail } => format!("{reason}: {detail}"),
    }
}

/// Checks every target, in parallel within the machine's capacity, handing each machine's
/// events to `on_event` (with its format name); the results in the order of `targets`.
/// Ctrl-C, SIGTERM or SIGHUP stops every machine (their drop kills QEMU and helpers and
/// removes run directories) and is returned as exit 130, 143 or 129.
pub async fn check_all(
    targets: Vec<Target>,
    opts: BootOptions,
    scenario: CheckScenario,
    on_event: EventSink,
) -> Result<Vec<Checked>, Exit> {
    // Before any guest starts: from here on a signal stops them all and cleans up.
    let mut stop = crate::signals::Stop::install();
    // Under TCG every vCPU is a host thread busy all the time: count them against the cores.
    let permits = Arc::new(Semaphore::new(harness::capacity::guests_that_fit(
        opts.memory_mib,
        opts.cpus_for(harness::Accel::Tcg),
    )));
    // A lone guest may take a second vCPU under TCG where two cores are idle.
    let opts = Arc::new(BootOptions {
        idle_cores: targets.len() == 1,
        ..opts
    });
    let mut tasks = JoinSet::new();
    for (index, target) in targets.into_iter().enumerate() {
        let (on_event, permits, opts) = (on_event.clone(), permits.clone(), opts.clone());
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            (index, check_one(target, &opts, scenario, &*on_event).await)
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
    Ok(results.into_iter().map(|(_, c)| c).collect())
}

/// The command's exit for these results: success when every check passed; else bad input (2)
/// when an image was refused, did-not-boot (3) when any machine started, could-not-check (4).
pub fn exit_for(results: &[Checked]) -> Result<(), Exit> {
    if results.iter().all(Checked::passed) {
        return Ok(());
    }
    let errors = |bad: Option<bool>| {
        results
            .iter()
            .filter_map(|c| match &c.outcome {
                CheckOutcome::NotStarted { error, bad_input }
                    if bad.map_or(true, |b| b == *bad_input) =>
                {
                    Some(error.clone())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let refused = results.iter().any(|c| {
        matches!(
            c.outcome,
            CheckOutcome::NotStarted {
                bad_input: true,
                ..
            }
        )
    });
    if refused {
        Err(bad_input(errors(Some(true))))
    } else if results.iter().any(|c| c.verdict().is_some()) {
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
        Err(Exit::CannotCheck(errors(None)))
    }
}

async fn check_one(
    target: Target,
    opts: &BootOptions,
    scenario: CheckScenario,
    on_event: &(dyn Fn(&str, &Event) + Send + Sync),
) -> Checked {
    let name = target.format.name.clone();
    let (tx, mut rx) = harness::progress::channel();
    let opts = &BootOptions {
        pair: target.pair.clone(),
        ..opts.clone()
    };
    let boot = async {
        let mut machine = Machine::start(target.format, &target.image, opts, Some(tx)).await?;
        let verdict = machine.wait_ready().await;
        let mut console = ConsoleOutcome::NotRun;
        if verdict.is_ready() && scenario == CheckScenario::Console {
            console = match crate::console::check(&machine).await {
                Ok(facts) => ConsoleOutcome::Passed(facts),
                Err(failure) => ConsoleOutcome::Failed(failure),
            };
        }
        // No power-off: the guest runs on a snapshot overlay, so QEMU stops at once (finish).
        let passed = verdict.is_ready() && !matches!(console, ConsoleOutcome::Failed(_));
        let run_dir = machine.finish(passed).await;
        Ok::<_, harness::HarnessError>(CheckOutcome::Booted {
            verdict: Box::new(verdict),
            console,
            run_dir,
        })
    };
    tokio::pin!(boot);
    let outcome = loop {
        tokio::select! {
            Some(event) = rx.recv() => on_event(&name, &event),
            outcome = &mut boot => break outcome,
        }
    };
    while let Ok(event) = rx.try_recv() {
        on_event(&name, &event);
    }
    Checked {
        format: name,
        image: target.image.clone(),
        outcome: outcome.unwrap_or_else(|e| CheckOutcome::NotStarted {
            bad_input: e.is_bad_input(),
            error: e.to_string(),
        }),
    }
}
