//! A UEFI firmware that prints its banner and then nothing (AAVMF did so once on CI, booting a
//! good ISO): the guest is started again once after `BootOptions::firmware_stall`, and a second
//! stall is the verdict `firmware-stalled`, decided long before the deadline, with the first
//! attempt's console kept as `stalled-serial.log`, and nothing of the run left running.
//!
//! The firmware is a stand-in for a stalled AAVMF, written by the test: 32 bytes of aarch64
//! code that print AAVMF's banner on the `virt` board's PL011 UART and then wait for an
//! interrupt that never comes (no CPU time), given as `NIXGEN_AAVMF_CODE` to the real
//! qemu-system-aarch64, which boots the aarch64 ISO stand-in with it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{processes_mentioning, standins_dir};
use harness::rundir::RunFiles;
use harness::{BootOptions, Event, NotifyChoice, Outcome, Reason};

/// What the stalled AAVMF of CI's run printed, byte for byte but for the version: its banner,
/// then its boot manager's screen clearing, then nothing (the NUL ends the string).
const BANNER: &[u8] =
    b"UEFI firmware (version stand-in stalled) built at 00:00:00 on Jan  1 2026)\r\n\
    \x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H\0";

/// The code at the reset address (flash at 0 on `virt`), little-endian words:
/// ```text
///  0: movz x0, #0x0900, lsl #16   // x0 = 0x0900_0000, the PL011's data register
///  4: adr  x1, 32                 // x1 = the banner
///  8: ldrb w2, [x1], #1
/// 12: cbz  w2, 24
/// 16: strb w2, [x0]
/// 20: b    8
/// 24: wfi
/// 28: b    24
/// ```
const CODE: [u32; 8] = [
    0xD2A1_2000,
    0x1000_00E1,
    0x3840_1422,
    0x3400_0062,
    0x3900_0002,
    0x17FF_FFFD,
    0xD503_207F,
    0x17FF_FFFF,
];

/// QEMU's `virt` board takes flash images of exactly 64 MiB.
const FLASH: u64 = 64 << 20;

/// Writes the stalling firmware (`CODE.fd`) and its variable store template (`VARS.fd`) into
/// `dir`, sparse; returns the code file.
fn stalling_firmware(dir: &Path) -> PathBuf {
    let mut code: Vec<u8> = CODE.iter().flat_map(|w| w.to_le_bytes()).collect();
    code.extend_from_slice(BANNER);
    let path = dir.join("CODE.fd");
    let file = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &file, &code).unwrap();
    file.set_len(FLASH).unwrap();
    std::fs::File::create(dir.join("VARS.fd"))
        .unwrap()
        .set_len(FLASH)
        .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_firmware_is_started_again_once_then_is_the_verdict() {
    let fw = tempfile::tempdir().unwrap();
    // The only test of this binary sets it.
    std::env::set_var(harness::aarch64::AAVMF_ENV, stalling_firmware(fw.path()));
    let window = Duration::from_secs(3);
    let opts = BootOptions {
        notify: NotifyChoice::Off,
        firmware_stall: window,
        timeout: Some(Duration::from_secs(120)),
        ..BootOptions::default()
    };
    let format = formats::registry().get("iso").unwrap();
    let image = standins_dir().join("iso-aarch64");
    let (tx, mut rx) = harness::progress::channel();
    let events = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(ev) = rx.recv().await {
            seen.push(ev);
        }
        seen
    });
    let verdict = harness::check(format, &image, &opts, Some(tx))
        .await
        .expect("QEMU starts with the stalling firmware");
    let events = events.await.unwrap();

    assert_eq!(
        verdict.reason(),
        Some(Reason::FirmwareStalled),
        "{verdict:?}"
    );
    let detail = match &verdict.outcome {
        Outcome::Failed { detail, .. } => detail.as_str(),
        Outcome::Ready => "",
    };
    assert!(detail.contains("again after a restart"), "{detail}");
    let first = verdict
        .firmware_restarted
        .as_deref()
        .expect("restarted once");
    assert!(first.contains("printed its banner"), "{first}");
    let started = events
        .iter()
        .filter(|e| matches!(e, Event::Started { .. }))
        .count();
    let restarts: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::RestartedAfterFirmwareStall { .. }))
        .collect();
    assert_eq!((started, restarts.len()), (2, 1), "{events:?}");
    // Each start stalled for its window, and the deadline did not decide.
    assert!(
        verdict.elapsed < Duration::from_secs(60),
        "decided after {:?}",
        verdict.elapsed
    );

    let run_dir = verdict
        .run_dir
        .clone()
        .expect("a failure keeps its run directory");
    let files = RunFiles::of(&run_dir);
    for log in [files.stalled_serial_log(), files.serial_log()] {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.starts_with("UEFI firmware (version stand-in stalled)"),
            "{}: {text:?}",
            log.display()
        );
    }
    let left = processes_mentioning(&run_dir.to_string_lossy());
    assert!(left.is_empty(), "processes of the run left: {left:?}");
    std::fs::remove_dir_all(&run_dir).unwrap();
}
