//! Boot benchmarks on the stand-in images (run with `ci/bench`; a benchmark, not a test).
//!
//! For the raw-efi and vm stand-ins, in the same run and interleaved round by round:
//! - bare QEMU: a minimal hand-written QEMU command line, timed from spawn to the serial line
//!   "Reached target multi-user.target";
//! - the harness deciding from the serial console (notify off);
//! - the harness deciding from the guest's vsock notify messages.
//!
//! The order of the three rotates from round to round. It prints the medians and two ratios,
//! each the median of the per-round ratios (the three boots of a round run back to back and
//! share the machine's load, so their ratio is steadier than a ratio of medians): harness
//! (serial) / bare QEMU (target: at most 1.05) and harness (vsock) / harness (serial).
//! Everything runs under TCG, so the KVM probe is measured once on its own and not inside the
//! boot times.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use harness::{AccelChoice, BootOptions, Machine, NotifyChoice};

const MULTI_USER_LINE: &str = "Reached target multi-user.target";
const MEMORY_MIB: u32 = 1024;
/// The harness's default vCPU count under TCG, for the bare QEMU command line as well.
const CPUS: u32 = harness::options::default_cpus(harness::Accel::Tcg);

/// How long one boot may take before the benchmark gives up on it.
const BOOT_BOUND: Duration = Duration::from_secs(300);

/// The three ways one stand-in is booted in a round.
#[derive(Clone, Copy)]
enum Way {
    Bare,
    Serial,
    Vsock,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let standins =
        PathBuf::from(std::env::var("NIXGEN_STANDINS").expect("ci/bench sets NIXGEN_STANDINS"));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");

    let probe = Instant::now();
    let accel = runtime.block_on(harness::accel::resolve(AccelChoice::Auto));
    eprintln!(
        "KVM probe: chose {accel:?} in {:.2}s (not part of the boot times below)",
        probe.elapsed().as_secs_f64()
    );

    let mut table = Vec::new();
    for name in ["raw-efi", "vm"] {
        let format = formats::registry().get(name).expect("registry format");
        let image = standins.join(name);
        let (mut bare, mut serial, mut vsock) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // The order rotates from round to round, so that none of the three always boots
            // first (cold caches) or last.
            let mut ways = [Way::Bare, Way::Serial, Way::Vsock];
            ways.rotate_left(round % 3);
            for way in ways {
                match way {
                    Way::Bare => bare.push(bare_qemu(name, &image)),
                    Way::Serial => serial.push(runtime.block_on(harness_boot(
                        format,
                        &image,
                        NotifyChoice::Off,
                    ))),
                    Way::Vsock => vsock.push(runtime.block_on(harness_boot(
                        format,
                        &image,
                        NotifyChoice::Auto,
                    ))),
                }
            }
            eprintln!(
                "{name} round {}: bare {:.2}s, harness {:.2}s, harness+vsock {:.2}s",
                round + 1,
                bare[round].as_secs_f64(),
                serial[round].as_secs_f64(),
                vsock[round].as_secs_f64()
            );
        }
        table.push(Row::new(name, &bare, &serial, &vsock));
    }
    println!();
    println!(
        "{:<9} {:>6} {:>10} {:>10} {:>10} {:>9} {:>9} {:>12}",
        "stand-in", "rounds", "bare QEMU", "harness", "h+vsock", "h/bare", "(min)", "vsock/serial"
    );
    for row in &table {
        row.print();
    }
    println!(
        "medians of {rounds} rounds; h/bare = median of the per-round ratios (each round boots \
         the three ways back to back, so they share the machine's load); (min) = fastest \
         harness / fastest bare. Target: h/bare <= 1.05."
    );
}

/// One stand-in's results.
struct Row {
    name: &'static str,
    rounds: usize,
    bare: Duration,
    serial: Duration,
    vsock: Duration,
    ratio: f64,
    ratio_min: f64,
    vsock_ratio: f64,
}

impl Row {
    fn new(name: &'static str, bare: &[Duration], serial: &[Duration], vsock: &[Duration]) -> Row {
        let paired = |a: &[Duration], b: &[Duration]| {
            let mut r: Vec<f64> = a
                .iter()
                .zip(b)
                .map(|(x, y)| x.as_secs_f64() / y.as_secs_f64())
                .collect();
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        };
        let min = |v: &[Duration]| v.iter().min().copied().unwrap_or_default().as_secs_f64();
        Row {
            name,
            rounds: bare.len(),
            bare: median(bare),
            serial: median(serial),
            vsock: median(vsock),
            ratio: paired(serial, bare),
            ratio_min: min(serial) / min(bare),
            vsock_ratio: paired(vsock, serial),
        }
    }

    fn print(&self) {
        println!(
            "{:<9} {:>6} {:>9.2}s {:>9.2}s {:>9.2}s {:>9.3} {:>9.3} {:>12.3}  {}",
            self.name,
            self.rounds,
            self.bare.as_secs_f64(),
            self.serial.as_secs_f64(),
            self.vsock.as_secs_f64(),
            self.ratio,
            self.ratio_min,
            self.vsock_ratio,
            if self.ratio <= 1.05 {
                "target met (<= 1.05)"
            } else {
                "TARGET MISSED (> 1.05)"
            }
        );
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// The harness from `Machine::start` to its verdict, which must be multi-user.
async fn harness_boot(format: &formats::Format, image: &Path, notify: NotifyChoice) -> Duration {
    let opts = BootOptions {
        accel: AccelChoice::Tcg,
        memory_mib: MEMORY_MIB,
        cpus: Some(CPUS),
        notify,
        ..Default::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let start = Instant::now();
    let mut machine = Machine::start(format, image, &opts, tx)
        .await
        .expect("the harness starts the stand-in");
    let verdict = machine.wait_ready().await;
    let took = start.elapsed();
    assert!(verdict.is_ready(), "{}: {:?}", format.name, verdict.outcome);
    machine.finish(true).await;
    took
}

/// Bare QEMU: spawn to the multi-user serial line, then kill.
fn bare_qemu(name: &str, image: &Path) -> Duration {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut command = match name {
        "raw-efi" => {
            let vars = tmp.path().join("vars.fd");
            std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
                .expect("OVMF vars (package ovmf)");
            // The machine the harness starts for this profile, without its QMP, chardev
            // socket, pvpanic or vsock: what a person would type.
            let mut c = Command::new("qemu-system-x86_64");
            c.args([
                "-machine", "pc", "-accel", "tcg", "-cpu", "max", "-nic", "none",
            ])
            .args(["-m", &MEMORY_MIB.to_string(), "-smp", &CPUS.to_string()])
            .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
            .args([
                "-drive",
                "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            ])
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ))
            .arg("-drive")
            .arg(format!(
                "file={},if=ide,format=raw,snapshot=on",
                image.join("nixos.img").display()
            ));
            c
        }
        "vm" => {
            let script = std::fs::read_dir(image.join("bin"))
                .expect("bin/")
                .flatten()
                .next()
                .expect("run script")
                .path();
            let mut c = Command::new(script);
            c.env(
                "QEMU_OPTS",
                format!("-machine accel=tcg -smp {CPUS} -display none -serial stdio"),
            )
            // As the harness (and NixOS's test driver) do: the script's last console= is tty0,
            // which would keep systemd's status lines off the serial port.
            .env("QEMU_KERNEL_PARAMS", "console=ttyS0,115200n8")
            .env("NIX_DISK_IMAGE", tmp.path().join("disk.qcow2"))
            .env("TMPDIR", tmp.path())
            .env("USE_TMPDIR", "1")
            .current_dir(tmp.path());
            c
        }
        other => panic!("no bare QEMU command for {other}"),
    };
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("QEMU starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            // systemd colours the unit name: match the text without its escapes.
            if harness::detect::strip_ansi(&String::from_utf8_lossy(&line))
                .contains(MULTI_USER_LINE)
            {
                let _ = tx.send(start.elapsed());
                return;
            }
        }
    });
    let took = rx.recv_timeout(BOOT_BOUND);
    let _ = child.kill();
    let _ = child.wait();
    took.unwrap_or_else(|_| {
        panic!("{name}: bare QEMU did not print {MULTI_USER_LINE:?} within {BOOT_BOUND:?}")
    })
}
