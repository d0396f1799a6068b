//! Choosing the accelerator. KVM is used only where guests really run under it: on some hosts
//! /dev/kvm opens but QEMU aborts at start ("failed to set MSR"), on others a trivial guest runs
//! and every real guest stops at its first instructions ("KVM internal error ... emulation
//! failure", QEMU paused with status `internal-error`). So:
//!
//! 1. `--accel auto` first probes once per process: a guest with the harness's own machine
//!    arguments and, where installed, OVMF (real code that trips a broken KVM at once) must run
//!    for `PROBE_RUN` without QEMU stopping it.
//! 2. The probe can pass and real guests still die: a guest that dies of the accelerator under
//!    `auto` is restarted once under TCG by [`crate::Machine`], which calls [`drop_kvm`]; from
//!    then on every guest of the process, parallel ones too, starts under TCG.
//!
//! `--accel kvm` never falls back: such a guest fails with reason `accelerator-failure`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::OnceCell;

use crate::options::AccelChoice;
use crate::qmp::{ConnectFailure, Qmp};
use crate::rundir::RunFiles;
use crate::{firmware, profile, Accel, HarnessError, KvmDropped};

/// The QEMU system emulator the harness starts unless `NIXGEN_QEMU` names another.
pub const QEMU: &str = "qemu-system-x86_64";

/// How long the probe guest must keep running. A broken KVM stops OVMF within about 0.1 s
/// (measured); the restart under TCG covers what a short probe misses.
const PROBE_RUN: Duration = Duration::from_millis(500);

/// How long the probe may take to open its QMP socket.
const PROBE_START: Duration = Duration::from_secs(5);

static PROBED: OnceCell<Result<(), String>> = OnceCell::const_new();
static DROPPED: OnceLock<KvmDropped> = OnceLock::new();

/// The QEMU program: `$NIXGEN_QEMU` if set and not empty, else [`QEMU`] on PATH.
pub fn qemu_program() -> PathBuf {
    std::env::var_os("NIXGEN_QEMU")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(QEMU), PathBuf::from)
}

/// The accelerator for `choice`: forced ones as given; `Auto` is TCG once KVM was dropped in
/// this process, else KVM if the probe (run once per process) passed.
pub async fn resolve(choice: AccelChoice) -> Accel {
    match choice {
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Auto if kvm_dropped().is_some() => Accel::Tcg,
        AccelChoice::Auto => match PROBED.get_or_init(probe).await {
            Ok(()) if kvm_dropped().is_none() => Accel::Kvm,
            _ => Accel::Tcg,
        },
    }
}

/// Why the probe chose TCG (`None`: it chose KVM, or has not run).
pub fn probe_failure() -> Option<&'static str> {
    PROBED
        .get()
        .and_then(|r| r.as_ref().err())
        .map(String::as_str)
}

/// Records that a real guest died of KVM: every later `Auto` guest of this process uses TCG.
/// The first reason recorded is kept.
pub fn drop_kvm(why: &KvmDropped) {
    let _ = DROPPED.set(why.clone());
}

/// Why KVM was dropped in this process, if it was.
pub fn kvm_dropped() -> Option<&'static KvmDropped> {
    DROPPED.get()
}

/// The line of QEMU's stderr that says the accelerator failed, if one does: the MSR abort at
/// start, or a KVM internal error (with "emulation failure" appended when QEMU printed it).
pub fn accelerator_failure(stderr: &str) -> Option<String> {
    const MARKERS: [&str; 7] = [
        "KVM internal error",
        "failed to set MSR",
        "kvm_buf_set_msrs",
        "failed to initialize kvm",
        "failed to initialize KVM",
        "Could not access KVM kernel module",
        "KVM: entry failed",
    ];
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| MARKERS.iter().any(|m| l.contains(m)))
        .or_else(|| {
            stderr
                .lines()
                .map(str::trim)
                .find(|l| *l == "emulation failure")
        })?;
    let line = line.trim_start_matches("qemu-system-x86_64: ");
    if line.starts_with("KVM internal error")
        && stderr.lines().any(|l| l.trim() == "emulation failure")
    {
        return Some(format!("{line} (emulation failure)"));
    }
    Some(line.to_string())
}

/// Probes KVM: `Ok` when a guest under `-accel kvm` (the harness's machine, OVMF if found)
/// answers QMP, keeps running for `PROBE_RUN` and QEMU prints no accelerator failure.
async fn probe() -> Result<(), String> {
    if !Path::new("/dev/kvm").exists() {
        return Err("no /dev/kvm".into());
    }
    let dir = crate::rundir::RunDir::create().map_err(|e| e.to_string())?;
    let result = probe_in(dir.path()).await;
    dir.remove();
    result
}

fn probe_args(dir: &Path) -> Vec<String> {
    let mut args = profile::machine(Accel::Kvm, 256, 1);
    if let Ok(ovmf) = firmware::locate(None) {
        let vars = RunFiles::of(dir).vars_fd();
        if firmware::private_vars(&ovmf, &vars).is_ok() {
            args.extend(profile::uefi(&ovmf, &vars));
        }
    }
    args.extend(
        [
            "-display", "none", "-serial", "none", "-monitor", "none", "-qmp",
        ]
        .map(String::from),
    );
    args.push(format!(
        "unix:{},server=on,wait=off",
        RunFiles::of(dir)
            .qmp_sock()
            .to_string_lossy()
            .replace(',', ",,")
    ));
    args
}

async fn probe_in(dir: &Path) -> Result<(), String> {
    let stderr_path = dir.join("probe.stderr");
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|e| HarnessError::io("create probe.stderr", e).to_string())?;
    let mut probe = Command::new(qemu_program());
    crate::lifeline::die_with_parent(&mut probe);
    let mut child = probe
        .args(probe_args(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu_program().display()))?;
    let failure = || {
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        accelerator_failure(&text).unwrap_or_else(|| {
            let last = text.lines().rev().find(|l| !l.trim().is_empty());
            last.unwrap_or("QEMU stopped").trim().to_string()
        })
    };
    let started = Instant::now();
    let verdict = async {
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let mut qmp = Qmp::connect_when_ready(
            &RunFiles::of(dir).qmp_sock(),
            &RunFiles::of(dir).qmp_log(),
            started,
            tx,
            PROBE_START,
            || matches!(child.try_wait(), Ok(Some(_))).then(failure),
        )
        .await
        .map_err(|failure| match failure {
            ConnectFailure::Exited(how) => how,
            ConnectFailure::Timeout => "the probe guest did not answer on QMP".to_string(),
        })?;
        // A broken KVM pauses the guest (event STOP) or kills QEMU; either ends the wait.
        let until = tokio::time::Instant::now() + PROBE_RUN;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) if ev.name == "STOP" => break,
                    Some(_) => {}
                    None => break,
                },
                _ = child.wait() => return Err(failure()),
                _ = tokio::time::sleep_until(until) => break,
            }
        }
        let running = matches!(qmp.status().await, Ok((true, _)));
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        match (running, accelerator_failure(&text)) {
            (true, None) => Ok(()),
            (_, Some(line)) => Err(line),
            (false, None) => Err(failure()),
        }
    }
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forced_choices_are_not_probed() {
        assert_eq!(resolve(AccelChoice::Tcg).await, Accel::Tcg);
        assert_eq!(resolve(AccelChoice::Kvm).await, Accel::Kvm);
    }

    #[test]
    fn accelerator_failures_are_found_in_qemu_stderr() {
        let msr = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n\
                   qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: \
                   Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n";
        assert_eq!(
            accelerator_failure(msr).as_deref(),
            Some("error: failed to set MSR 0x10a to 0x69")
        );
        let internal = "qemu-system-x86_64: warning: host doesn't support requested feature\n\
                        KVM internal error. Suberror: 1\n\
                        extra data[0]: 0x0000000000000001\n\
                        emulation failure\n\
                        EAX=00000000 EBX=00807000\n";
        assert_eq!(
            accelerator_failure(internal).as_deref(),
            Some("KVM internal error. Suberror: 1 (emulation failure)")
        );
        assert_eq!(
            accelerator_failure("qemu-system-x86_64: -drive x: No such file\n"),
            None
        );
        assert_eq!(accelerator_failure(""), None);
    }

    #[test]
    fn dropping_kvm_makes_auto_choose_tcg() {
        drop_kvm(&KvmDropped::WhileSettling(
            "KVM internal error (test)".into(),
        ));
        drop_kvm(&KvmDropped::MidBoot("a later reason is not kept".into()));
        assert_eq!(
            kvm_dropped(),
            Some(&KvmDropped::WhileSettling(
                "KVM internal error (test)".into()
            ))
        );
        assert_eq!(
            serde_json::to_string(&KvmDropped::EarlierGuest(Box::new(
                kvm_dropped().unwrap().clone()
            )))
            .unwrap(),
            r#""KVM internal error (test)""#
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(resolve(AccelChoice::Auto)), Accel::Tcg);
        // An explicit choice is still honoured.
        assert_eq!(rt.block_on(resolve(AccelChoice::Kvm)), Accel::Kvm);
    }

    #[test]
    fn the_probe_uses_the_harness_machine_and_ovmf_when_found() {
        let d = tempfile::tempdir().unwrap();
        let args = probe_args(d.path());
        let machine = profile::machine(Accel::Kvm, 256, 1);
        assert!(args.starts_with(&machine), "{args:?}");
        if firmware::locate(None).is_ok() {
            assert!(args.iter().any(|a| a.contains("if=pflash")), "{args:?}");
            assert!(d.path().join("vars.fd").is_file());
        }
    }
}
