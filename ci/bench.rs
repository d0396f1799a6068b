//! Boot benchmarks on the stand-in images (run with `ci/bench`; a benchmark, not a test).
//!
//! Three parts, each in one run so that what is compared shares the machine's load:
//! 1. **Wall time.** The raw-efi stand-in, round by round in rotating order: `nixos-generate -f
//!    raw-efi --check --accel tcg --image ...` timed from spawn to exit (what a user waits for), and bare
//!    QEMU command lines on several machines ([`MACHINES`]: disk controller and chipset), each
//!    timed from spawn to the serial line "Reached target multi-user.target". It prints the
//!    median of every way, which bare machine won, and the ratio `--check` wall / fastest bare
//!    (the median of the per-round ratios; target: at most 1.05). `--check`'s time to verdict
//!    (QEMU start to verdict, from its `--json`) and what it spends outside that (start cost
//!    plus teardown) are printed separately.
//! 2. **Start cost.** Through the library: from `Machine::start` being called to QEMU's spawn
//!    (image lookup, accelerator choice, run directory, overlay, firmware variables, helpers).
//! 3. **Failure verdicts.** For each failing stand-in ([`FAILURES`]): bare QEMU's time to the
//!    guest's own failure message, and the harness's time (from QEMU's start) to its failure
//!    verdict; the difference is how long after the message the harness decides (target:
//!    within 2 s).
//!
//! Every boot runs under TCG, bare QEMU with the vCPUs [`MACHINES`] gives it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use harness::{AccelChoice, BootOptions, Machine};

const MULTI_USER_LINE: &str = "Reached target multi-user.target";
const MEMORY_MIB: u32 = 1024;
/// How long one boot may take before the benchmark gives up on it.
const BOOT_BOUND: Duration = Duration::from_secs(300);
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Bare QEMU machines tried for the raw-efi stand-in: name, `-machine`, disk `if=`, vCPUs
/// (`None`: the harness's default under TCG, one). `if=ide` is PIIX IDE on `pc` and the AHCI
/// controller on `q35`. A lone `--check` takes two vCPUs when two cores are idle
/// (`harness::BootOptions::idle_cores`), so the ratio is taken against the fastest of them all,
/// whatever its vCPUs, and also printed against the fastest at one vCPU.
const MACHINES: [(&str, &str, &str, Option<u32>); 5] = [
    ("pc+ide", "pc", "ide", None),
    ("q35+ahci", "q35", "ide", None),
    ("pc+virtio", "pc", "virtio", None),
    ("q35+virtio", "q35", "virtio", None),
    ("q35+ahci/2cpu", "q35", "ide", Some(2)),
];

/// Failing stand-ins (raw-efi layout) and the guest's own failure message on its console.
const FAILURES: [(&str, &str); 5] = [
    ("panic", "Kernel panic - not syncing"),
    ("initrd", "Gave up waiting for root"),
    ("emergency", "You are in emergency mode"),
    ("truncated", "grub> "),
    ("noboot", "UEFI Interactive Shell"),
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let standins =
        PathBuf::from(std::env::var("NIXGEN_STANDINS").expect("ci/bench sets NIXGEN_STANDINS"));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cpus = harness::options::default_cpus(harness::Accel::Tcg);
    eprintln!(
        "{} cores, load average {}; TCG, {cpus} vCPU(s), {MEMORY_MIB} MiB; {rounds} rounds",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );

    // A second argument picks parts (e.g. `start` or `wall,failures`); all by default.
    let parts = args.get(1).map_or("wall,start,failures", String::as_str);
    let wanted = |part: &str| parts.split(',').any(|p| p == part);
    if wanted("wall") {
        wall_times(&standins.join("raw-efi"), cpus, rounds);
    }
    if wanted("start") {
        start_cost(&runtime, &standins.join("raw-efi"), rounds);
    }
    if wanted("failures") {
        failure_verdicts(&runtime, &standins, cpus, rounds);
    }
    eprintln!("load average at the end: {}", load_average());
    println!(
        "\nkernel oopses in bare boots: {}",
        OOPSES.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// Part 1: `--check` wall time against bare QEMU on each machine of [`MACHINES`].
fn wall_times(image_dir: &Path, cpus: u32, rounds: usize) {
    let image = image_dir.join("nixos.img");
    // Way 0 is --check, ways 1.. the bare machines.
    let ways = MACHINES.len() + 1;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); ways];
    let mut verdicts = Vec::new();
    let mut check_vcpus = Vec::new();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..ways).collect();
        order.rotate_left(round % ways);
        for way in order {
            let took = if way == 0 {
                let (wall, verdict, vcpus) = check_wall(image_dir);
                verdicts.push(verdict);
                check_vcpus.push(vcpus);
                wall
            } else {
                let (_, machine, disk, n) = MACHINES[way - 1];
                bare_uefi(&image, machine, disk, n.unwrap_or(cpus), MULTI_USER_LINE)
            };
            times[way].push(took.as_secs_f64());
        }
        eprintln!(
            "round {}: --check {:.2}s ({} vCPU(s); verdict {:.2}s after QEMU start); {}",
            round + 1,
            times[0][round],
            check_vcpus[round],
            verdicts[round],
            MACHINES
                .iter()
                .enumerate()
                .map(|(i, (name, ..))| format!("{name} {:.2}s", times[i + 1][round]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let fastest_of = |ways: &mut dyn Iterator<Item = usize>| {
        ways.min_by(|a, b| median(&times[*a]).total_cmp(&median(&times[*b])))
            .expect("machines")
    };
    let fastest = fastest_of(&mut (1..ways));
    let fastest_at_default =
        fastest_of(&mut (1..ways).filter(|w| !MACHINES[w - 1].3.is_some_and(|n| n != cpus)));
    let ratio_to = |way: usize| {
        median(
            &(0..rounds)
                .map(|r| times[0][r] / times[way][r])
                .collect::<Vec<_>>(),
        )
    };
    let outside: Vec<f64> = (0..rounds).map(|r| times[0][r] - verdicts[r]).collect();
    println!("\nraw-efi stand-in, multi-user, medians of {rounds} rounds:");
    for (i, (name, ..)) in MACHINES.iter().enumerate() {
        let mark = if i + 1 == fastest { "  <- fastest" } else { "" };
        println!(
            "  bare QEMU {name:<11} {:>7.2}s{mark}",
            median(&times[i + 1])
        );
    }
    println!(
        "  --check wall         {:>7.2}s  (time to verdict {:.2}s after QEMU start; {:.2}s outside it: start cost + teardown)",
        median(&times[0]),
        median(&verdicts),
        median(&outside)
    );
    println!("  --check's vCPUs by round: {check_vcpus:?}");
    let ratio = ratio_to(fastest);
    println!(
        "  --check wall / fastest bare ({}): {ratio:.3}  {}",
        MACHINES[fastest - 1].0,
        if ratio <= 1.05 {
            "target met (<= 1.05)"
        } else {
            "TARGET MISSED (> 1.05)"
        }
    );
    if fastest_at_default != fastest {
        println!(
            "  --check wall / fastest bare at {cpus} vCPU(s) ({}): {:.3}",
            MACHINES[fastest_at_default - 1].0,
            ratio_to(fastest_at_default)
        );
    }
}

/// Part 2: from `Machine::start` to QEMU's spawn, through the library (the first call in a
/// process includes the accelerator choice, later ones reuse it), for the raw-efi stand-in and
/// for a 50 GiB sparse copy of it: the start cost must not grow with the image's size.
fn start_cost(runtime: &tokio::runtime::Runtime, image_dir: &Path, rounds: usize) {
    let large = tempfile::tempdir().expect("temp dir");
    let large_image = large.path().join("nixos.img");
    let copied = Command::new("cp")
        .arg("--sparse=always")
        .arg(image_dir.join("nixos.img"))
        .arg(&large_image)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "copying the raw-efi stand-in failed");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&large_image)
        .and_then(|f| f.set_len(50 << 30))
        .expect("the sparse copy grows to 50 GiB");
    for (label, dir) in [
        ("raw-efi", image_dir),
        ("raw-efi, 50 GiB sparse", large.path()),
    ] {
        let costs = start_costs(runtime, dir, rounds);
        println!(
            "\nstart cost (Machine::start called -> QEMU spawned), {label}: first {:.3}s, then {}  (target < 0.3 s)",
            costs[0],
            costs[1..]
                .iter()
                .map(|c| format!("{c:.3}s"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Seconds from `Machine::start` to QEMU's spawn, `rounds` times (at least three).
fn start_costs(runtime: &tokio::runtime::Runtime, image_dir: &Path, rounds: usize) -> Vec<f64> {
    let format = formats::registry().get("raw-efi").expect("registry format");
    (0..rounds.max(3))
        .map(|_| {
            runtime.block_on(async {
                let called = Instant::now();
                let machine = Machine::start(format, image_dir, &BootOptions::default(), None)
                    .await
                    .expect("the harness starts the stand-in");
                // `elapsed` counts from QEMU's spawn.
                let cost = called.elapsed().saturating_sub(machine.elapsed());
                machine.finish(true).await;
                cost.as_secs_f64()
            })
        })
        .collect()
}

/// Part 3: the failing stand-ins, bare QEMU to the message against the harness's verdict.
fn failure_verdicts(runtime: &tokio::runtime::Runtime, standins: &Path, cpus: u32, rounds: usize) {
    println!("\nfailure verdicts, medians of {rounds} rounds (seconds after QEMU start):");
    println!(
        "  {:<10} {:>12} {:>10} {:>8}  verdict",
        "stand-in", "bare message", "harness", "after"
    );
    for (name, message) in FAILURES {
        let dir = standins.join(name);
        let (mut bare, mut harness, mut reason) = (Vec::new(), Vec::new(), String::new());
        for round in 0..rounds {
            let mut both = [true, false];
            both.rotate_left(round % 2);
            for is_bare in both {
                if is_bare {
                    let img = dir.join("nixos.img");
                    bare.push(bare_uefi(&img, "q35", "ide", cpus, message).as_secs_f64());
                } else {
                    let (at, why) = runtime.block_on(harness_failure(&dir));
                    harness.push(at);
                    reason = why;
                }
            }
        }
        let after = median(&harness) - median(&bare);
        println!(
            "  {name:<10} {:>11.2}s {:>9.2}s {:>7.2}s  {reason}{}",
            median(&bare),
            median(&harness),
            after,
            if after <= 2.0 { "" } else { "  (over 2 s)" }
        );
    }
}

/// `nixos-generate -f raw-efi --check --image DIR --json`: wall time from spawn to exit, the
/// verdict's time after QEMU's start, and the guest's vCPUs.
fn check_wall(image_dir: &Path) -> (Duration, f64, u64) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_nixos-generate"))
        .args([
            "-f", "raw-efi", "--check", "--accel", "tcg", "--json", "--image",
        ])
        .arg(image_dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("nixos-generate runs");
    let wall = start.elapsed();
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON on stdout");
    assert!(
        out.status.success(),
        "--check of the raw-efi stand-in failed: {json}"
    );
    let elapsed = json[0]["elapsed_s"].as_f64().expect("elapsed_s");
    (wall, elapsed, json[0]["vcpus"].as_u64().expect("vcpus"))
}

/// The harness's failure verdict on a failing stand-in: seconds after QEMU's start, and the
/// reason.
async fn harness_failure(image_dir: &Path) -> (f64, String) {
    let format = formats::registry().get("raw-efi").expect("registry format");
    let opts = BootOptions {
        accel: AccelChoice::Tcg,
        memory_mib: MEMORY_MIB,
        ..Default::default()
    };
    let mut machine = Machine::start(format, image_dir, &opts, None)
        .await
        .expect("the harness starts the stand-in");
    let verdict = machine.wait_ready().await;
    machine.finish(true).await;
    assert!(
        !verdict.is_ready(),
        "{}: reached multi-user",
        image_dir.display()
    );
    let reason = verdict.reason().map_or_else(String::new, |r| r.to_string());
    (verdict.elapsed.as_secs_f64(), reason)
}

/// Bare QEMU booting a UEFI disk on `machine` with the disk on `disk` (an `if=` value): time
/// from spawn to the first serial output containing `wanted` (also without a line end, for
/// prompts), then killed. What a person would type for speed (`cache=unsafe` on the snapshot
/// overlay, as the harness has), without the harness's QMP, chardev socket, pvpanic or vsock;
/// the console goes to a file read every 20 ms, as the harness reads its own.
fn bare_uefi(image: &Path, machine: &str, disk: &str, cpus: u32, wanted: &str) -> Duration {
    let tmp = tempfile::tempdir().expect("temp dir");
    let vars = tmp.path().join("vars.fd");
    std::fs::copy(OVMF_VARS, &vars).expect("OVMF vars (package ovmf)");
    let log = tmp.path().join("serial.log");
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args([
            "-machine", machine, "-accel", "tcg", "-cpu", "max", "-nic", "none",
        ])
        .args(["-m", &MEMORY_MIB.to_string(), "-smp", &cpus.to_string()])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "chardev:s0",
        ])
        // The console into a file, read every 20 ms as the harness reads its log: a pipe would
        // make QEMU wait for the reader whenever the reader is not scheduled.
        .arg("-chardev")
        .arg(format!("file,id=s0,path={}", log.display()))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file={},if={disk},format=raw,snapshot=on,cache=unsafe",
            image.display()
        ));
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("QEMU starts");
    let (mut read, mut seen, mut took) = (0usize, String::new(), None);
    while start.elapsed() < BOOT_BOUND {
        std::thread::sleep(Duration::from_millis(20));
        let bytes = std::fs::read(&log).unwrap_or_default();
        if bytes.len() <= read {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            continue;
        }
        seen.push_str(&String::from_utf8_lossy(&bytes[read..]));
        read = bytes.len();
        // systemd colours the unit name: match the text without its escapes.
        let clean = harness::detect::strip_ansi(&seen);
        if clean.contains(wanted) {
            took = Some(start.elapsed());
            break;
        }
        // An unexpected kernel oops (multi-threaded TCG's `Oops: int3`): counted and shown,
        // the boot's time is then the time to the oops.
        if let Some(at) = clean.find("Oops:") {
            let excerpt: String = clean[at..].lines().take(3).collect::<Vec<_>>().join(" | ");
            eprintln!("OOPS ({machine}, {cpus} vCPUs): {excerpt}");
            OOPSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            took = Some(start.elapsed());
            break;
        }
        // Keep the tail only (a message never spans more than this).
        if seen.len() > 8192 {
            let cut = seen.len() - 4096;
            let cut = (cut..seen.len())
                .find(|i| seen.is_char_boundary(*i))
                .unwrap_or(cut);
            seen.drain(..cut);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    took.unwrap_or_else(|| {
        panic!(
            "{}: bare QEMU ({machine}, {disk}) did not print {wanted:?} within {BOOT_BOUND:?}",
            image.display()
        )
    })
}

/// Kernel oopses seen in bare boots (see [`bare_uefi`]).
static OOPSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
