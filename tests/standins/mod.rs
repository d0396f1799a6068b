//! What the `--check` tests share: the stand-ins and their manifest, the command with a private
//! TMPDIR, `--json` rows, and the proof that nothing of a run is left.

#![allow(dead_code)] // each test binary uses a part

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Mutex,
};

pub use test_support::Standin;
use test_support::{read_manifest, standins_dir};

/// One guest-heavy test at a time in this binary (each check may itself run two guests).
pub static SERIAL: Mutex<()> = Mutex::new(());

/// The stand-ins directory (`$NIXGEN_STANDINS`, else `ci/standins/build`) and its manifest.
pub fn standins() -> (PathBuf, Vec<Standin>) {
    let dir = standins_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("the boot tests need stand-ins: {e}"));
    let manifest = read_manifest(&dir).unwrap_or_else(|e| panic!("{e}"));
    (dir, manifest)
}

/// The stand-in called `name`.
pub fn standin<'a>(all: &'a [Standin], name: &str) -> &'a Standin {
    all.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stand-in called {name}"))
}

/// The boot profile of a stand-in's format.
pub fn profile_of(s: &Standin) -> formats::Profile {
    formats::registry()
        .get(&s.format)
        .unwrap_or_else(|| panic!("unknown format {}", s.format))
        .profile
}

pub fn nixos_generate(tmp: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nixos-generate"));
    c.env("TMPDIR", tmp).stdin(Stdio::null());
    c
}

/// The command with `args` on `standins` (see [`image_args`]), not started.
pub fn command_on(tmp: &Path, args: &[&str], dir: &Path, standins: &[&Standin]) -> Command {
    let mut c = nixos_generate(tmp);
    c.args(args).args(image_args(dir, standins));
    c
}

/// The command with `args` on `standins` (see [`image_args`]), run to its end.
pub fn check_images(tmp: &Path, args: &[&str], dir: &Path, standins: &[&Standin]) -> Output {
    command_on(tmp, args, dir, standins).output().unwrap()
}

/// `-f F --image I` for each stand-in, in order.
pub fn image_args(dir: &Path, standins: &[&Standin]) -> Vec<String> {
    standins
        .iter()
        .flat_map(|s| {
            [
                "-f".into(),
                s.format.clone(),
                "--image".into(),
                dir.join(&s.name).display().to_string(),
            ]
        })
        .collect()
}

pub fn json_rows(out: &Output) -> Vec<serde_json::Value> {
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json printed no JSON ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Nothing of a run is left: no QEMU or helper process, no run directory.
pub fn assert_nothing_left(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
    let needle = tmp.to_str().unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains(needle), "process left running: {cmdline}");
    }
}
