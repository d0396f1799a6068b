//! The Nix side evaluated for real against a mock nixpkgs (formats/tests/nix/run.sh): argument
//! plumbing of entry.nix (hostile paths, specialArgs, diskSize, flakes), every format module's
//! top level, and the flake covering exactly the registry's formats.
//!
//! Each case of the shell suite is a trial of its own, named as the suite names it
//! (`cargo test -p formats --test nix_eval -- diskSize`); a case the suite skips (the module
//! system checks without `NIXGEN_NIXPKGS_LIB`) is an ignored trial with the reason.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode, Output},
};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nix/run.sh")
}

fn suite(env: (&str, &str)) -> std::io::Result<Output> {
    Command::new("sh").arg(script()).env(env.0, env.1).output()
}

/// The suite's case names (`NIXGEN_NIX_LIST=1`).
fn cases() -> Result<Vec<String>, String> {
    let out = suite(("NIXGEN_NIX_LIST", "1"))
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("case: "))
        .map(str::to_owned)
        .collect();
    if !out.status.success() || names.is_empty() {
        return Err(format!(
            "{} --list found no cases ({}):\n{}",
            script().display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(names)
}

/// Runs the case `name` alone (`NIXGEN_NIX_CASE`).
fn run_case(name: &str) -> Result<Completion, Failed> {
    let out = suite(("NIXGEN_NIX_CASE", name))
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let skipped = format!("skipped: {name} ");
    if let Some(line) = stdout.lines().find(|l| l.starts_with(&skipped)) {
        let why = line[skipped.len()..].trim_start_matches('(');
        return Ok(Completion::ignored_with(why.trim_end_matches(')')));
    }
    if out.status.success() && stdout.lines().any(|l| l == format!("ok: {name}")) {
        return Ok(Completion::Completed);
    }
    Err(
        format!("case failed (needs Debian's nix-bin; ci/test installs it):\n{stdout}\n{stderr}")
            .into(),
    )
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let trials = match cases() {
        Ok(names) => names
            .into_iter()
            .map(|name| Trial::ignorable_test(name.clone(), move || run_case(&name)))
            .collect(),
        Err(why) => vec![Trial::test("list the suite's cases", move || {
            Err(why.into())
        })],
    };
    libtest_mimic::run(&args, trials).exit_code()
}
