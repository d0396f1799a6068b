//! Boots one image and prints the progress events and the verdict as JSON lines.
//!
//! `cargo run -p harness --example check -- FORMAT IMAGE [--timeout SECS] [--tcg] [--bios] [--keep]
//! [--notify-off] [-- EXTRA QEMU ARGS...]`. Ctrl-C (SIGINT) stops the guest and removes the
//! run directory. Exit status: 0 ready, 1 failed boot, 2 harness error, 130 interrupted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use harness::{AccelChoice, BootOptions, Event, Machine, NotifyChoice};

fn usage() -> ExitCode {
    eprintln!("usage: check FORMAT IMAGE [--timeout SECS] [--tcg] [--bios] [--keep] [--notify-off] [-- QEMU ARGS...]");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(image)) = (args.next(), args.next()) else {
        return usage();
    };
    // Like the command: a slot directory shared with other runs, if the environment names one.
    let mut opts = BootOptions {
        guest_slots: std::env::var_os("NIXGEN_GUEST_SLOTS").map(Into::into),
        ..BootOptions::default()
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--timeout" => match args.next().and_then(|s| s.parse().ok()) {
                Some(s) => opts.timeout = Some(Duration::from_secs(s)),
                None => return usage(),
            },
            "--tcg" => opts.accel = AccelChoice::Tcg,
            "--bios" => opts.iso_firmware = harness::IsoFirmware::Bios,
            "--keep" => opts.keep = true,
            "--notify-off" => opts.notify = NotifyChoice::Off,
            "--" => opts.extra_qemu_args.extend(args.by_ref()),
            _ => return usage(),
        }
    }
    let Some(format) = formats::registry().get(&name) else {
        eprintln!("unknown format {name}");
        return ExitCode::from(2);
    };
    let (tx, mut rx) = harness::progress::channel();
    let printer = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            println!("{}", serde_json::to_string(&ev).unwrap_or_default());
        }
    });
    let image = PathBuf::from(image);
    let code = tokio::select! {
        r = run(format, &image, &opts, tx) => r,
        _ = tokio::signal::ctrl_c() => 130,
    };
    // Dropping the machine (inside `run`'s future) has killed QEMU and removed the run dir.
    let _ = tokio::time::timeout(Duration::from_secs(1), printer).await;
    ExitCode::from(code)
}

async fn run(
    format: &formats::Format,
    image: &std::path::Path,
    opts: &BootOptions,
    tx: tokio::sync::mpsc::Sender<Event>,
) -> u8 {
    let mut machine = match Machine::start(format, image, opts, Some(tx)).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let verdict = machine.wait_ready().await;
    if let Some(dir) = machine.finish(verdict.is_ready()).await {
        eprintln!("run directory kept: {}", dir.display());
    }
    if verdict.is_ready() {
        0
    } else {
        1
    }
}
