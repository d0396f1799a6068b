//! nixos-generate: one NixOS configuration in, a bootable image of any format out.

mod cli;
mod exit;
mod flake;
mod nix;
mod plan;
mod report;
mod request;

use std::process::ExitCode;

use clap::Parser;

use crate::{cli::Cli, exit::Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => {
            eprintln!("nixos-generate: {exit}");
            ExitCode::from(u8::try_from(exit.code()).unwrap_or(1))
        }
    }
}

fn run(cli: &Cli) -> Result<(), Exit> {
    if cli.list {
        return report::list(cli.json);
    }
    let cwd = std::env::current_dir()
        .map_err(|e| exit::bad_input(format!("cannot read the working directory: {e}")))?;
    let hostname = ::nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let request = request::build_request(cli, &cwd, &hostname)?;
    if cli.run || cli.check.is_some() || cli.image.is_some() {
        return Err(exit::bad_input(
            "--run, --check and --image are not available yet in this version: build with -f, then boot the image yourself",
        ));
    }
    let nix_files = formats::install_nix_files(&plan::cache_dir()).map_err(|e| {
        exit::bad_input(format!(
            "cannot write the Nix files to {}: {e}; set XDG_CACHE_HOME to a writable directory",
            plan::cache_dir().display()
        ))
    })?;
    let plan = plan::plan(&request, &nix_files);
    if cli.dry_run {
        println!("{}", plan::shell_line(&plan.argv));
        return Ok(());
    }
    which::which("nix").map_err(|_| Exit::NixMissing)?;
    nix::warn_if_tmp_small();
    eprintln!("nixos-generate: {}", plan::shell_line(&plan.argv));
    let results = nix::run(&plan)?;
    let custom_name = request
        .format_path
        .as_deref()
        .and_then(|p| p.file_stem())
        .map_or_else(
            || plan::CUSTOM_ATTR.to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
    let built = plan
        .labels
        .iter()
        .zip(&results)
        .map(|(label, result)| nix::image_of(label, result, &custom_name))
        .collect::<Result<Vec<_>, _>>()?;
    report::built(&built, cli.json);
    Ok(())
}
