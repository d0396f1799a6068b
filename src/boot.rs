//! Hands built (or given) images to the harness for `--run` and `--check`.

use std::time::Duration;

use harness::{AccelChoice, BootOptions, IsoFirmware};

use crate::{
    cli::{AccelArg, CheckScenario, Cli},
    exit::Exit,
    targets::Target,
};

/// The harness options the command line asks for.
pub fn options(cli: &Cli) -> BootOptions {
    BootOptions {
        timeout: cli.timeout.map(Duration::from_secs),
        memory_mib: cli.memory,
        cpus: cli.cpus,
        accel: match cli.accel {
            AccelArg::Auto => AccelChoice::Auto,
            AccelArg::Kvm => AccelChoice::Kvm,
            AccelArg::Tcg => AccelChoice::Tcg,
        },
        firmware: cli.firmware.clone(),
        iso_firmware: if cli.bios {
            IsoFirmware::Bios
        } else {
            IsoFirmware::Uefi
        },
        keep: cli.keep,
        extra_qemu_args: cli.qemu_args.clone(),
        system: cli.system.clone(),
        guest_slots: cli.guest_slots.clone(),
        ..BootOptions::default()
    }
}

/// Runs `--run` (one target) or `--check` (all targets) on a tokio runtime of its own.
pub fn boot(cli: &Cli, mut targets: Vec<Target>) -> Result<(), Exit> {
    crate::targets::pair_metadata(&mut targets);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::CannotCheck(format!("cannot start the async runtime: {e}")))?;
    let opts = options(cli);
    let result = if cli.run {
        let target = targets.into_iter().next().expect("--run has one target");
        runtime.block_on(crate::run::run(target, opts))
    } else {
        let scenario = cli.check.unwrap_or(CheckScenario::Boot);
        let reporter = crate::report_check::Reporter::new(cli.json);
        runtime
            .block_on(crate::check::check_all(
                targets,
                opts,
                scenario,
                reporter.on_event(),
            ))
            .and_then(|results| {
                reporter.finish(&results);
                crate::check::exit_for(&results)
            })
    };
    // A blocked read of the terminal (--run) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}
