//! QEMU faults decide at once, driven through the real [`Machine`] with a fake QEMU
//! (`tests/fake-qemu`, chosen with `NIXGEN_QEMU`; `-name fake:MODE` says how it fails):
//! a KVM internal error (QMP `STOP`, status `internal-error`) and the MSR abort at start end as
//! `accelerator-failure` when KVM was asked for, and restart the guest under TCG under `auto`
//! (every later `auto` guest then starts under TCG); a QEMU killed mid-boot is `qemu-exited`
//! within 2 s; a closed QMP socket does not make the harness spin, and the deadline still holds;
//! a lone guest given two vCPUs under TCG whose kernel oopses on a stale `int3` is started again
//! with one.
//! The fake needs python3; the `auto` test needs /dev/kvm (the probe's first check).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::processes_mentioning;
use harness::{
    Accel, AccelChoice, BootOptions, KvmDropped, Machine, NotifyChoice, Outcome, Reason, Verdict,
};

/// One test at a time: the CPU-time test measures this process.
static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fake_qemu() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-qemu")
}

/// A 1 MiB "disk" for the raw format (the fake never reads it).
fn disk(dir: &Path) -> PathBuf {
    let path = dir.join("disk.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[510] = 0x55;
    bytes[511] = 0xaa;
    std::fs::write(&path, bytes).unwrap();
    path
}

fn opts(mode: &str, accel: AccelChoice) -> BootOptions {
    // SAFETY of the global: every test of this binary sets the same value.
    std::env::set_var("NIXGEN_QEMU", fake_qemu());
    BootOptions {
        accel,
        notify: NotifyChoice::Off,
        timeout: Some(Duration::from_secs(30)),
        extra_qemu_args: vec!["-name".into(), format!("fake:{mode}")],
        ..BootOptions::default()
    }
}

/// Boots the fake with `opts`, returns the verdict and checks that nothing is left.
async fn boot(opts: &BootOptions) -> Verdict {
    let tmp = tempfile::tempdir().unwrap();
    let format = formats::registry().get("raw").unwrap();
    let mut machine = Machine::start(format, &disk(tmp.path()), opts, None)
        .await
        .expect("the fake QEMU starts");
    let run_dir = machine.run_dir().to_path_buf();
    let verdict = bounded(machine.wait_ready()).await;
    if let Some(kept) = machine.finish(verdict.is_ready()).await {
        std::fs::remove_dir_all(kept).unwrap();
    }
    let left = processes_mentioning(run_dir.to_str().unwrap());
    assert!(left.is_empty(), "processes left: {left:?}");
    verdict
}

/// A regression (a harness that never decides) fails the test instead of hanging it.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(40), f)
        .await
        .expect("no verdict within 40 s: the harness did not decide")
}

fn failure(v: &Verdict) -> (Reason, &str) {
    match &v.outcome {
        Outcome::Failed { reason, detail } => (*reason, detail.as_str()),
        Outcome::Ready => panic!("ready, expected a failure: {v:?}"),
    }
}

#[tokio::test]
async fn kvm_internal_error_is_an_accelerator_failure_at_once() {
    let _one = ONE.lock().await;
    let t0 = Instant::now();
    let v = boot(&opts("internal-error", AccelChoice::Kvm)).await;
    let (reason, detail) = failure(&v);
    assert_eq!(reason, Reason::AcceleratorFailure, "{detail}");
    assert_eq!(
        detail,
        "KVM internal error. Suberror: 1 (emulation failure)"
    );
    assert_eq!(v.accel, Accel::Kvm);
    assert_eq!(
        v.kvm_dropped, None,
        "an explicit --accel kvm never falls back"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

fn smp(v: &Verdict) -> &str {
    let at = v.qemu_args.iter().position(|a| a == "-smp").expect("-smp");
    &v.qemu_args[at + 1]
}

#[tokio::test]
async fn a_stale_int3_with_two_vcpus_restarts_the_guest_with_one() {
    let _one = ONE.lock().await;
    // Two idle cores, whatever else runs beside the test (no other test of this binary sets
    // `idle_cores`, so none reads it).
    std::env::set_var("NIXGEN_IDLE_CORES", "2");
    let lone = BootOptions {
        idle_cores: true,
        ..opts("int3", AccelChoice::Tcg)
    };
    let v = boot(&lone).await;
    assert!(v.is_ready(), "{:?}", v.outcome);
    assert_eq!(
        v.vcpus_dropped.as_deref(),
        Some("[    9.104526] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")
    );
    assert_eq!((smp(&v), v.vcpus), ("1", Some(1)));

    // Two vCPUs the caller asked for: the oops is the verdict.
    let v = boot(&BootOptions {
        cpus: Some(2),
        ..lone.clone()
    })
    .await;
    assert_eq!(failure(&v).0, Reason::KernelPanic);
    assert_eq!((v.vcpus_dropped.as_deref(), smp(&v)), (None, "2"));

    // Not idle: one vCPU from the start.
    std::env::set_var("NIXGEN_IDLE_CORES", "1");
    let v = boot(&lone).await;
    assert!(v.is_ready(), "{:?}", v.outcome);
    assert_eq!((v.vcpus_dropped.as_deref(), smp(&v)), (None, "1"));
}

#[tokio::test]
async fn kvm_abort_at_start_is_an_accelerator_failure() {
    let _one = ONE.lock().await;
    let v = boot(&opts("msr", AccelChoice::Kvm)).await;
    let (reason, detail) = failure(&v);
    assert_eq!(reason, Reason::AcceleratorFailure, "{detail}");
    assert!(
        detail.starts_with("error: failed to set MSR 0x10a") && detail.contains("SIGABRT"),
        "{detail}"
    );
}

#[tokio::test]
async fn auto_restarts_a_guest_that_dies_of_kvm_under_tcg() {
    let _one = ONE.lock().await;
    if !Path::new("/dev/kvm").exists() {
        eprintln!("SKIPPED auto_restarts_a_guest_that_dies_of_kvm_under_tcg: no /dev/kvm, so the KVM probe fails before it starts QEMU and no guest runs under KVM");
        return;
    }
    let v = boot(&opts("internal-error", AccelChoice::Auto)).await;
    assert!(v.is_ready(), "{:?}", v.outcome);
    assert_eq!(v.accel, Accel::Tcg);
    assert_eq!(
        v.kvm_dropped.as_ref().map(KvmDropped::detail),
        Some("KVM internal error. Suberror: 1 (emulation failure)")
    );
    assert!(
        matches!(v.kvm_dropped, Some(KvmDropped::WhileSettling(_))),
        "{:?}",
        v.kvm_dropped
    );
    // Every later auto guest starts under TCG at once, and says why.
    let later = boot(&opts("msr", AccelChoice::Auto)).await;
    assert!(later.is_ready(), "{:?}", later.outcome);
    assert_eq!(later.accel, Accel::Tcg);
    assert_eq!(
        later.kvm_dropped,
        v.kvm_dropped
            .clone()
            .map(|first| KvmDropped::EarlierGuest(Box::new(first)))
    );
    assert!(
        later.qemu_args.iter().any(|a| a == "tcg"),
        "{:?}",
        later.qemu_args
    );
}

#[tokio::test]
async fn qemu_killed_mid_boot_is_decided_within_two_seconds() {
    let _one = ONE.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let format = formats::registry().get("raw").unwrap();
    let opts = opts("hang", AccelChoice::Tcg);
    let mut machine = Machine::start(format, &disk(tmp.path()), &opts, None)
        .await
        .unwrap();
    let run_dir = machine.run_dir().to_path_buf();
    let killer = tokio::spawn(async move {
        let log = run_dir.join("serial.log");
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Linux version")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for pid in processes_mentioning(run_dir.to_str().unwrap()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            );
        }
        Instant::now()
    });
    let v = bounded(machine.wait_ready()).await;
    let killed = killer.await.unwrap();
    let (reason, detail) = failure(&v);
    assert_eq!(reason, Reason::QemuExited, "{detail}");
    assert_eq!(detail, "QEMU was killed by signal 9 (SIGKILL)");
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
    if let Some(kept) = machine.finish(false).await {
        std::fs::remove_dir_all(kept).unwrap();
    }
}

/// CPU time of this process so far (user + system, from /proc/self/stat, in clock ticks of
/// 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test]
async fn a_closed_qmp_socket_neither_spins_nor_outlives_the_deadline() {
    let _one = ONE.lock().await;
    let mut opts = opts("close-qmp", AccelChoice::Tcg);
    opts.timeout = Some(Duration::from_secs(3));
    let (t0, cpu0) = (Instant::now(), cpu_time());
    let v = boot(&opts).await;
    let (wall, cpu) = (t0.elapsed(), cpu_time() - cpu0);
    let (reason, detail) = failure(&v);
    assert_eq!(reason, Reason::Timeout, "{detail}");
    assert!(wall < Duration::from_secs(10), "{wall:?}");
    assert!(
        cpu < Duration::from_millis(1500),
        "the harness spun: {cpu:?} of CPU in {wall:?}"
    );
}
