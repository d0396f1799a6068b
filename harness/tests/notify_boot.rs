//! Real boots under TCG that check the vsock notify channel end to end, through [`Machine`]
//! (the harness's one boot loop): a trixie guest (systemd 257) must report multi-user.target
//! through vsock, an emergency boot must fail as emergency mode with systemd's own report of
//! emergency.target, a guest that ignores the credential is decided by its console, and
//! transport 1 runs where /dev/vhost-vsock works.
//!
//! Guests come from the stand-ins: `$NIXGEN_STANDINS`, else the output of
//! `ci/standins/build`; the good `vm-nogui` stand-in with systemd >= 256 is booted as the
//! `vm-nogui` format, extra kernel parameters through [`BootOptions::kernel_params`]. One guest
//! at a time (a process-wide lock).

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::notify::{NotifyChannel, NotifyChoice, NotifyError, MULTI_USER};
use harness::{
    AccelChoice, BootOptions, Event, Machine, MilestoneKind, ReadinessSource, Reason, Verdict,
};

const MEMORY_MIB: u32 = 1024;
const BOOT_TIMEOUT: Duration = Duration::from_secs(360);

/// One guest at a time in this test binary.
static GUEST_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The build result directory of the good vm-nogui stand-in with systemd >= 256.
fn vm_standin() -> PathBuf {
    let find = || -> Result<PathBuf, String> {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = test_support::standins_dir(&workspace).map_err(|e| e.to_string())?;
        let all = test_support::read_manifest(&dir).map_err(|e| e.to_string())?;
        all.iter()
            .filter(|s| s.format == "vm-nogui" && s.is_good() && s.systemd.unwrap_or(0) >= 256)
            .map(|s| dir.join(&s.name))
            .find(|result| result.join("bin/run-standin-vm").exists())
            .ok_or_else(|| {
                format!(
                    "{}: no vm-nogui stand-in with expect = \"multi-user\" and systemd >= 256",
                    dir.join("manifest.toml").display()
                )
            })
    };
    find().unwrap_or_else(|why| {
        panic!(
            "no guest for the notify boot tests: {why}. Build the stand-ins \
             (ci/standins/build, or set NIXGEN_STANDINS)"
        )
    })
}

/// What one boot showed.
struct Boot {
    verdict: Verdict,
    /// Notify messages in arrival order, as text (from the machine's progress events).
    log: Vec<String>,
}

impl Boot {
    /// Messages and the verdict, for assertion messages.
    fn evidence(&self) -> String {
        format!(
            "notify messages: {:#?}\nverdict: {:#?}",
            self.log, self.verdict
        )
    }

    /// When the console showed multi-user.target, if it did.
    fn serial_multi_user(&self) -> Option<Duration> {
        self.verdict
            .milestones
            .iter()
            .find(|m| m.kind == MilestoneKind::MultiUser)
            .map(|m| m.at)
    }
}

/// Boots the stand-in with `notify` and `kernel_params` through [`Machine`] until its verdict;
/// `Err` when the machine could not start (e.g. the transport is not available). The run
/// directory is kept (and named) when the verdict's reason is not `expect`.
async fn boot(
    notify: NotifyChoice,
    kernel_params: &[&str],
    expect: Option<Reason>,
) -> Result<Boot, harness::HarnessError> {
    let format = formats::registry()
        .get("vm-nogui")
        .expect("registry format");
    let opts = BootOptions {
        accel: AccelChoice::Tcg,
        memory_mib: MEMORY_MIB,
        timeout: Some(BOOT_TIMEOUT),
        notify,
        kernel_params: kernel_params.iter().map(|p| p.to_string()).collect(),
        guest_slots: test_support::threads::guest_slots(),
        ..BootOptions::default()
    };
    let (tx, mut rx) = harness::progress::channel();
    let log = tokio::spawn(async move {
        let mut log = Vec::new();
        while let Some(event) = rx.recv().await {
            if let Event::Notify(msg) = event {
                eprintln!("notify  {msg}");
                log.push(msg);
            }
        }
        log
    });
    let mut machine = Machine::start(format, &vm_standin(), &opts, Some(tx)).await?;
    let verdict = machine.wait_ready().await;
    if let Some(dir) = machine.finish(verdict.reason() == expect).await {
        eprintln!("run directory kept: {}", dir.display());
    }
    let log = log.await.expect("the event reader");
    Ok(Boot { verdict, log })
}

fn report(name: &str, b: &Boot) {
    let vsock = b
        .verdict
        .targets
        .iter()
        .find(|(t, _)| t == MULTI_USER)
        .map(|(_, at)| *at);
    eprintln!(
        "TIMING {name}: transport={} vsock multi-user={:?} serial multi-user={:?} messages={}",
        b.verdict.transport_line(),
        vsock,
        b.serial_multi_user(),
        b.log.len()
    );
}

/// Index of the first message equal to `text` (panics with the log if absent).
fn position(log: &[String], text: &str) -> usize {
    log.iter()
        .position(|m| m == text)
        .unwrap_or_else(|| panic!("no message {text:?} in {log:#?}"))
}

async fn open(choice: NotifyChoice) -> (tempfile::TempDir, Result<NotifyChannel, NotifyError>) {
    let dir = tempfile::Builder::new()
        .prefix("ng-n-")
        .tempdir_in("/tmp")
        .unwrap();
    let chan = NotifyChannel::open(dir.path(), MEMORY_MIB, choice).await;
    (dir, chan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport2_boot_reports_multi_user_in_order() {
    let _one_guest = GUEST_LOCK.lock().await;
    let b = boot(NotifyChoice::VhostDeviceVsock, &[], None)
        .await
        .expect("transport 2 (vhost-device-vsock) must work on this machine");
    report("transport2-normal", &b);
    let v = &b.verdict;
    assert_eq!(v.transport_line(), "vhost-device-vsock", "{}", b.evidence());
    assert!(v.is_ready(), "{}", b.evidence());
    assert_eq!(v.source, ReadinessSource::Vsock, "{}", b.evidence());
    assert!(v.hostname.as_deref().is_some_and(|h| !h.is_empty()));
    assert!(v.machine_id.as_deref().is_some_and(|m| m.len() == 32));
    // The order observed from systemd 257: hostname and machine id first, targets, then
    // multi-user.target before READY=1.
    let host = b
        .log
        .iter()
        .position(|m| m.starts_with("X_SYSTEMD_HOSTNAME="));
    let mid = b
        .log
        .iter()
        .position(|m| m.starts_with("X_SYSTEMD_MACHINE_ID="));
    let sysinit = position(&b.log, "X_SYSTEMD_UNIT_ACTIVE=sysinit.target");
    let basic = position(&b.log, "X_SYSTEMD_UNIT_ACTIVE=basic.target");
    let multi = position(&b.log, "X_SYSTEMD_UNIT_ACTIVE=multi-user.target");
    assert!(
        host.unwrap() < sysinit && mid.unwrap() < sysinit,
        "{}",
        b.evidence()
    );
    assert!(sysinit < basic && basic < multi, "{}", b.evidence());
    let names: Vec<&str> = v.targets.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&MULTI_USER), "{names:?}");
    assert!(!names.contains(&"emergency.target"), "{names:?}");
    // The timeline is ordered in time as well.
    assert!(v.targets.windows(2).all(|w| w[0].1 <= w[1].1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport2_emergency_boot_fails_through_vsock() {
    let _one_guest = GUEST_LOCK.lock().await;
    let b = boot(
        NotifyChoice::VhostDeviceVsock,
        &["systemd.unit=emergency.target"],
        Some(Reason::EmergencyMode),
    )
    .await
    .expect("transport 2 (vhost-device-vsock) must work on this machine");
    report("transport2-emergency", &b);
    assert_eq!(
        b.verdict.reason(),
        Some(Reason::EmergencyMode),
        "{}",
        b.evidence()
    );
    let names: Vec<&str> = b.verdict.targets.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"emergency.target"), "{}", b.evidence());
    assert!(!names.contains(&MULTI_USER), "{}", b.evidence());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport2_guest_ignoring_the_credential_stays_silent() {
    // systemd.import_credentials=no makes PID 1 ignore the SMBIOS credential, like a guest
    // whose systemd is too old (bookworm's 252): nothing arrives, and the console decides.
    let _one_guest = GUEST_LOCK.lock().await;
    let b = boot(
        NotifyChoice::VhostDeviceVsock,
        &["systemd.import_credentials=no"],
        None,
    )
    .await
    .expect("transport 2 (vhost-device-vsock) must work on this machine");
    report("transport2-silent", &b);
    assert!(b.verdict.is_ready(), "{}", b.evidence());
    assert_eq!(
        b.verdict.source,
        ReadinessSource::Serial,
        "{}",
        b.evidence()
    );
    assert!(b.log.is_empty(), "{}", b.evidence());
    assert!(b.verdict.targets.is_empty(), "{}", b.evidence());
    assert!(b.serial_multi_user().is_some(), "{}", b.evidence());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport1_boot_where_vhost_vsock_works() {
    let _one_guest = GUEST_LOCK.lock().await;
    let b = match boot(NotifyChoice::VhostVsock, &[], None).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("SKIPPED: transport 1 needs /dev/vhost-vsock: {e}");
            return;
        }
    };
    report("transport1-normal", &b);
    assert_eq!(
        b.verdict.transport_line(),
        "vhost-vsock",
        "{}",
        b.evidence()
    );
    assert!(b.verdict.is_ready(), "{}", b.evidence());
    assert_eq!(b.verdict.source, ReadinessSource::Vsock, "{}", b.evidence());
}

#[tokio::test]
async fn auto_never_fails_and_names_its_transport() {
    let (_dir, chan) = open(NotifyChoice::Auto).await;
    let chan = chan.expect("Auto falls back instead of failing");
    let name = chan.transport().to_string();
    assert!(
        name == "vhost-vsock" || name == "vhost-device-vsock" || name.starts_with("serial-only: "),
        "{name}"
    );
    let (_dir, off) = open(NotifyChoice::Off).await;
    let off = off.unwrap();
    assert_eq!(off.transport().to_string(), "serial-only: notify disabled");
    assert!(off.qemu_args().is_empty());
}
