//! nixos-generate: one NixOS configuration in, a bootable image of any format out.

mod boot;
mod check;
mod cli;
mod console;
mod exit;
mod flake;
mod nix;
mod plan;
mod progress;
mod report;
mod report_check;
mod request;
mod run;
mod signals;
mod targets;

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;

use crate::{cli::Cli, exit::Exit, request::BuildRequest, targets::Target};

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
    let booting = cli.run || cli.check.is_some();
    if booting {
        targets::check_bootable(&request, cli.run)?;
    } else if !cli.image.is_empty() {
        return Err(exit::bad_input(
            "--image is for --run or --check: add one of them",
        ));
    }
    if !cli.image.is_empty() {
        return boot::boot(cli, targets::from_images(&cli.formats, &cli.image, &cwd)?);
    }
    let Some(built) = build(cli, &request)? else {
        return Ok(());
    };
    if booting {
        let targets = request
            .formats
            .iter()
            .zip(built)
            .map(|(format, image)| Target {
                format,
                image,
                pair: None,
            })
            .collect();
        return boot::boot(cli, targets);
    }
    let images = built_images(&request, &built)?;
    report::built(&images, cli.json);
    Ok(())
}

/// Runs the one `nix build` and returns each installable's build result directory, or None
/// after `--dry-run` printed the command.
fn build(cli: &Cli, request: &BuildRequest) -> Result<Option<Vec<PathBuf>>, Exit> {
    let cache = plan::cache_dir().ok_or_else(|| {
        exit::bad_input(
            "no cache directory for the Nix files: set HOME (or XDG_CACHE_HOME) to your own directory",
        )
    })?;
    let nix_files = formats::install_nix_files(&cache).map_err(|e| {
        exit::bad_input(format!(
            "cannot use {} for the Nix files: {e}; set XDG_CACHE_HOME to a private, writable directory",
            cache.display()
        ))
    })?;
    let plan = plan::plan(request, &nix_files);
    if cli.dry_run {
        println!("{}", plan::shell_line(&plan.argv));
        return Ok(None);
    }
    which::which("nix").map_err(|_| Exit::NixMissing)?;
    nix::warn_if_tmp_small();
    eprintln!("nixos-generate: {}", plan::shell_line(&plan.argv));
    nix::run(&plan).map(Some)
}

/// Finds each format's image file in its build result.
fn built_images(request: &BuildRequest, results: &[PathBuf]) -> Result<Vec<nix::Built>, Exit> {
    let custom_name = request
        .format_path
        .as_deref()
        .and_then(|p| p.file_stem())
        .map_or_else(
            || plan::CUSTOM_ATTR.to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
    let labels = request
        .formats
        .iter()
        .map(|f| f.name.as_str())
        .chain(request.format_path.as_ref().map(|_| plan::CUSTOM_ATTR));
    labels
        .zip(results)
        .map(|(label, result)| nix::image_of(label, result, &custom_name))
        .collect()
}
