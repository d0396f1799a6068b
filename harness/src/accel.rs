//! Choosing the accelerator: KVM only if a tiny guest really runs under it (on some hosts
//! /dev/kvm opens but every guest aborts), else TCG. The probe runs once per process.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::OnceCell;

use crate::options::AccelChoice;
use crate::qmp::Qmp;
use crate::{Accel, HarnessError};

/// The QEMU system emulator the harness starts.
pub const QEMU: &str = "qemu-system-x86_64";

/// How long the probe guest must keep running.
const PROBE_RUN: Duration = Duration::from_millis(1500);

static PROBED: OnceCell<Accel> = OnceCell::const_new();

/// The accelerator for `choice`: forced ones as given, `Auto` probed once per process.
pub async fn resolve(choice: AccelChoice) -> Accel {
    match choice {
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Auto => {
            *PROBED
                .get_or_init(|| async { probe().await.unwrap_or(Accel::Tcg) })
                .await
        }
    }
}

/// Probes KVM: `Some(Accel::Kvm)` when a diskless guest under `-accel kvm` survives its QMP
/// handshake, reports `running` and prints no "KVM internal error".
async fn probe() -> Option<Accel> {
    if !Path::new("/dev/kvm").exists() {
        return None;
    }
    let dir = crate::rundir::RunDir::create().ok()?;
    let ok = probe_in(dir.path()).await.unwrap_or(false);
    ok.then_some(Accel::Kvm)
}

async fn probe_in(dir: &Path) -> Result<bool, HarnessError> {
    let qmp_sock = dir.join("qmp.sock");
    let stderr = std::fs::File::create(dir.join("probe.stderr"))
        .map_err(|e| HarnessError::io("create probe.stderr", e))?;
    let mut probe = Command::new(QEMU);
    crate::lifeline::die_with_parent(&mut probe);
    let mut child = probe
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-machine",
            "q35",
            "-m",
            "64",
            "-nodefaults",
        ])
        .args(["-display", "none", "-serial", "none", "-monitor", "none"])
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp_sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HarnessError::io("start the KVM probe", e))?;
    let started = Instant::now();
    let verdict = async {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut qmp = loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(false);
            }
            if started.elapsed() > Duration::from_secs(5) {
                return Ok(false);
            }
            if qmp_sock.exists() {
                if let Ok(q) =
                    Qmp::connect(&qmp_sock, &dir.join("qmp.log"), started, tx.clone()).await
                {
                    break q;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::time::sleep(PROBE_RUN).await;
        let (running, _) = qmp.status().await?;
        let alive = matches!(child.try_wait(), Ok(None));
        let err = std::fs::read_to_string(dir.join("probe.stderr")).unwrap_or_default();
        Ok::<bool, HarnessError>(running && alive && !err.contains("KVM internal error"))
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
}
