//! Every format through every route (formats/tests/eval/routes.nix), evaluated against a real
//! nixpkgs by `../shared/nixpkgs-eval/nix-eval` (beside the clone): one named trial per route.
//! Each group of routes is one Nix process (an attribute set of derivation paths, `--strict`);
//! groups run two at a time. A failing route is evaluated again alone, so its trial shows Nix's
//! own error. Besides "it evaluates", a trial checks that the file nixpkgs says the build will
//! produce matches the registry's `output` glob, and (routes disk-size/F) that `--disk-size`
//! changes the derivation exactly for the formats whose registry entry says `disk_size = true`.
//!
//! Without the evaluator (a user's clone has no `../shared`) every trial is ignored, naming it.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    sync::Mutex,
    time::Instant,
};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde::Deserialize;

/// What routes.nix reports for one route.
#[derive(Debug, Clone, Deserialize)]
struct Outcome {
    /// Absent when the route was evaluated alone (then it did evaluate).
    #[serde(default = "yes")]
    ok: bool,
    drv: Option<String>,
    file: Option<String>,
    /// Routes disk-size/F: whether `--disk-size` changed the derivation.
    changed: Option<bool>,
}

fn yes() -> bool {
    true
}

/// Whether this process runs as root (`id -u`), which the evaluator needs.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Where things are.
struct Paths {
    workspace: PathBuf,
    evaluator: PathBuf,
    routes: PathBuf,
    /// `-I nixpkgs-overlays=` for every Nix process (see the file).
    overlay: PathBuf,
}

impl Paths {
    fn new() -> Paths {
        let formats = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = formats
            .parent()
            .expect("formats/ is in the workspace")
            .to_path_buf();
        Paths {
            evaluator: workspace.join("../shared/nixpkgs-eval/nix-eval"),
            routes: formats.join("tests/eval/routes.nix"),
            overlay: formats.join("tests/eval/user-flake/nixpkgs/small-path.nix"),
            workspace,
        }
    }

    /// Runs `nix-instantiate --eval --strict --json routes.nix ARGS` through the evaluator, from
    /// the workspace (which the evaluator mounts into its chroot). Ok(stdout) or Err(stderr).
    fn eval(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(&self.evaluator);
        // Nix's garbage collector starts with a small heap and collects again and again while
        // a group's NixOS systems are evaluated; starting at 4 GiB (the resident size a group
        // reaches anyway) took a quarter less CPU here (lib-4: 8.6 s user against 11.4-13.5 s).
        if std::env::var_os("GC_INITIAL_HEAP_SIZE").is_none() {
            command.env("GC_INITIAL_HEAP_SIZE", "4G");
        }
        let out = command
            .current_dir(&self.workspace)
            .args([
                "nix-instantiate",
                "--read-write-mode",
                "--eval",
                "--strict",
                "--json",
                "-I",
            ])
            .arg(format!("nixpkgs-overlays={}", self.overlay.display()))
            .arg(&self.routes)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.evaluator.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(without_lock_notice(&String::from_utf8_lossy(&out.stderr)))
        }
    }
}

/// Nix's stderr without its notice about the test flake's unwritten lock file (the test flake
/// has none on purpose: its nixpkgs input is a local directory).
fn without_lock_notice(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| {
            !(l.starts_with("warning: not writing modified lock file")
                || l.starts_with("\u{2022} Added input")
                || l.trim() == "'path:./nixpkgs'")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The route names of every group (cheap: nothing is evaluated but names).
fn route_names(paths: &Paths) -> Result<BTreeMap<String, Vec<String>>, String> {
    let json = paths.eval(&["--arg", "names", "true"])?;
    serde_json::from_str(&json).map_err(|e| format!("routes.nix names: {e}: {json}"))
}

/// Evaluates the groups, `jobs` Nix processes at a time.
fn evaluate_groups(
    paths: &Paths,
    groups: Vec<String>,
    jobs: usize,
) -> BTreeMap<String, Result<BTreeMap<String, Outcome>, String>> {
    let queue = Mutex::new(groups);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let Some(group) = queue.lock().unwrap().pop() else {
                    return;
                };
                let start = Instant::now();
                let result = paths.eval(&["--argstr", "group", &group]).and_then(|json| {
                    serde_json::from_str(&json).map_err(|e| format!("group {group}: {e}"))
                });
                eprintln!(
                    "nixpkgs-eval: group {group} evaluated in {:.0} s",
                    start.elapsed().as_secs_f64()
                );
                results.lock().unwrap().insert(group, result);
            });
        }
    });
    results.into_inner().unwrap()
}

/// Evaluates `route` alone, without tryEval: its outcome, or Nix's own error message.
fn alone(paths: &Paths, route: &str) -> Result<Outcome, Failed> {
    match paths.eval(&["--argstr", "only", route]) {
        Ok(json) => serde_json::from_str(&json)
            .map_err(|e| format!("{route}: unreadable result {json}: {e}").into()),
        Err(err) => Err(format!("{route} does not evaluate:\n{err}").into()),
    }
}

/// The checks of one route, given its outcome in its group's evaluation (None: the group as a
/// whole failed, e.g. on an error tryEval cannot catch).
fn check(paths: &Paths, route: &str, outcome: Option<&Outcome>) -> Result<(), Failed> {
    let outcome = match outcome {
        Some(o) if o.ok => o.clone(),
        _ => alone(paths, route)?,
    };
    let drv = outcome.drv.as_deref().unwrap_or_default();
    if !(drv.starts_with("/nix/store/") && drv.ends_with(".drv")) {
        return Err(format!("{route}: not a derivation path: {drv:?}").into());
    }
    let format = route
        .rsplit('/')
        .next()
        .and_then(|n| formats::registry().get(n));
    if let (Some(format), Some(file)) = (format, &outcome.file) {
        if !format.matches(Path::new(file)) {
            return Err(format!(
                "{route}: nixpkgs builds {file:?}, which the registry's output {:?} does not select",
                format.output
            )
            .into());
        }
    }
    if let (Some(format), Some(changed)) = (format, outcome.changed) {
        if changed != format.disk_size {
            return Err(format!(
                "{route}: the registry says disk_size = {}, but --disk-size {} the derivation",
                format.disk_size,
                if changed {
                    "changes"
                } else {
                    "does not change"
                }
            )
            .into());
        }
    }
    Ok(())
}

/// What the snapshot lacks and stands in for nothing: nixpkgs' generated Haskell package set. The
/// flake's `formatter` is nixfmt, a Haskell package, so its routes cannot evaluate here; they are
/// reported ignored with this reason when (and only when) Nix names that missing file. Against a
/// full nixpkgs (the GitHub workflow) they evaluate like any other route.
const SNAPSHOT_GAP: (&str, &str) = (
    "outputs/formatter.",
    "haskell-modules/hackage-packages.nix' does not exist",
);

/// Routes that fail against the snapshot and are not fixed yet: each is reported as ignored with
/// its error; a listed route that evaluates fails its trial, so this list only shrinks. Empty
/// since issue 12's cloud, hypervisor and board formats built from a host (`all-formats`,
/// `--flake`) evaluate (formats/nix/image-media.nix).
const KNOWN_FAILING: &[&str] = &[];

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let paths = Paths::new();
    let skip = if !paths.evaluator.exists() {
        Some(format!(
            "{} is absent: real nixpkgs evaluation skipped (it sits beside this project's CI clone)",
            paths.evaluator.display()
        ))
    } else if !is_root() {
        Some(format!(
            "{} needs root (a chroot): real nixpkgs evaluation skipped",
            paths.evaluator.display()
        ))
    } else {
        None
    };
    if let Some(reason) = skip {
        eprintln!("nixpkgs-eval: SKIPPED: {reason}");
        let trial =
            Trial::ignorable_test("nixpkgs-eval", move || Ok(Completion::ignored_with(reason)));
        return libtest_mimic::run(&args, vec![trial]).exit_code();
    }
    let names = match route_names(&paths) {
        Ok(names) => names,
        Err(err) => {
            let trial = Trial::test("nixpkgs-eval/routes", move || Err(err.into()));
            return libtest_mimic::run(&args, vec![trial]).exit_code();
        }
    };
    let named = |route: &str| Trial::test(route, || Ok(()));
    // Only the groups holding a selected route are evaluated (and none for --list).
    let wanted: Vec<String> = names
        .iter()
        .filter(|(_, routes)| !args.list && routes.iter().any(|r| !args.is_filtered_out(&named(r))))
        .map(|(group, _)| group.clone())
        .collect();
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let results = std::sync::Arc::new(evaluate_groups(&paths, wanted, jobs));
    let paths = std::sync::Arc::new(paths);
    let trials = names
        .into_iter()
        .flat_map(|(group, routes)| routes.into_iter().map(move |r| (group.clone(), r)))
        .map(|(group, route)| {
            let (results, paths) = (results.clone(), paths.clone());
            Trial::ignorable_test(route.clone(), move || {
                let outcome = match results.get(&group) {
                    Some(Ok(outcomes)) => outcomes.get(&route),
                    Some(Err(err)) => {
                        eprintln!("nixpkgs-eval: group {group} failed as a whole: {err}");
                        None
                    }
                    None => None,
                };
                let result = check(&paths, &route, outcome);
                let (gap_prefix, gap_error) = SNAPSHOT_GAP;
                if let Err(failed) = &result {
                    let message = failed.message().unwrap_or("");
                    if route.starts_with(gap_prefix) && message.contains(gap_error) {
                        return Ok(Completion::ignored_with(
                            "not evaluable here: the nixpkgs snapshot lacks \
                             pkgs/development/haskell-modules/hackage-packages.nix \
                             (nixfmt is a Haskell package)"
                                .to_string(),
                        ));
                    }
                }
                match (KNOWN_FAILING.contains(&route.as_str()), result) {
                    (false, result) => result.map(|()| Completion::Completed),
                    (true, Err(failed)) => {
                        let why = failed
                            .message()
                            .unwrap_or("failed")
                            .lines()
                            .last()
                            .unwrap_or("");
                        Ok(Completion::ignored_with(format!(
                            "known failure (issue 12, KNOWN_FAILING): {}",
                            why.trim()
                        )))
                    }
                    (true, Ok(())) => {
                        Err(format!("{route} evaluates now: remove it from KNOWN_FAILING").into())
                    }
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
