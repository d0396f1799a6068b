//! Validating the command line into a build request: every path checked, every name known.

use std::path::{Path, PathBuf};

use formats::Format;

use crate::{
    cli::{pairs, Cli},
    exit::{bad_input, Exit},
    flake::{self, FlakeTarget},
};

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A configuration file (absolute path), or None for the bundled default.
    File(Option<PathBuf>),
    /// A flake's nixosConfigurations entry.
    Flake(FlakeTarget),
}

/// A validated request to build formats.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The built-in formats, in the order given.
    pub formats: Vec<&'static Format>,
    /// A custom format module (absolute path).
    pub format_path: Option<PathBuf>,
    /// The configuration.
    pub source: Source,
    /// `--system`.
    pub system: Option<String>,
    /// `--disk-size`, validated ("auto" or a positive number of MiB).
    pub disk_size: Option<String>,
    /// `--special-arg` pairs, in order (a later one wins).
    pub special_args: Vec<(String, String)>,
    /// Options passed to Nix as they are: --cores, --option, -I, --show-trace.
    pub nix_options: Vec<String>,
    /// `-o`.
    pub out_link: Option<PathBuf>,
}

/// Checks the command line. With no format, `--run` builds `vm`, as upstream does.
pub fn build_request(cli: &Cli, cwd: &Path, hostname: &str) -> Result<BuildRequest, Exit> {
    let registry = formats::registry();
    let mut formats = Vec::new();
    for name in &cli.formats {
        let format = registry.get(name).ok_or_else(|| unknown_format(name))?;
        if !formats.iter().any(|f: &&Format| f.name == format.name) {
            formats.push(format);
        }
    }
    let format_path = cli
        .format_path
        .as_deref()
        .map(|p| readable_file(p, "--format-path", cwd))
        .transpose()?;
    if formats.is_empty() && format_path.is_none() {
        if cli.run {
            formats.push(registry.get("vm").expect("vm is a built-in format"));
        } else {
            return Err(bad_input(
                "no format given: pass -f NAME (nixos-generate --list shows them all)",
            ));
        }
    }
    let source = match &cli.flake {
        Some(spec) => Source::Flake(flake::resolve(spec, cwd, hostname)?),
        None => Source::File(
            cli.configuration
                .as_deref()
                .map(|p| readable_file(p, "configuration", cwd))
                .transpose()?,
        ),
    };
    if let Some(size) = &cli.disk_size {
        let ok = size == "auto" || size.parse::<u64>().is_ok_and(|n| n > 0);
        if !ok {
            return Err(bad_input(format!(
                "--disk-size {size:?} is not a size: give MiB as a whole number (e.g. 8192) or \"auto\""
            )));
        }
    }
    let mut nix_options = Vec::new();
    if let Some(cores) = cli.cores {
        nix_options.extend(["--cores".to_string(), cores.to_string()]);
    }
    for (name, value) in pairs(&cli.option) {
        nix_options.extend(["--option".to_string(), name, value]);
    }
    for include in &cli.include {
        if include.is_empty() {
            return Err(bad_input(
                "-I needs KEY=VALUE (e.g. -I nixpkgs=/path/to/nixpkgs)",
            ));
        }
        nix_options.extend(["-I".to_string(), include.clone()]);
    }
    if cli.show_trace {
        nix_options.push("--show-trace".into());
    }
    Ok(BuildRequest {
        formats,
        format_path,
        source,
        system: cli.system.clone(),
        disk_size: cli.disk_size.clone(),
        special_args: pairs(&cli.special_arg),
        nix_options,
        out_link: cli.out_link.as_ref().map(|p| cwd.join(p)),
    })
}

/// The error for a name the registry does not know, naming the nearest ones.
pub fn unknown_format(name: &str) -> Exit {
    let near = formats::registry().nearest(name);
    let hint = if near.is_empty() {
        String::new()
    } else {
        format!("did you mean {}? ", near.join(", "))
    };
    bad_input(format!(
        "unknown format {name:?}: {hint}(nixos-generate --list shows every format)"
    ))
}

/// An absolute path to a readable file (or a directory holding default.nix), or a one-line error.
fn readable_file(path: &Path, what: &str, cwd: &Path) -> Result<PathBuf, Exit> {
    let abs = cwd.join(path);
    let target = if abs.is_dir() {
        abs.join("default.nix")
    } else {
        abs.clone()
    };
    std::fs::File::open(&target).map_err(|e| {
        bad_input(format!(
            "{what} {}: cannot read it ({e}); pass an existing .nix file",
            target.display()
        ))
    })?;
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn request(args: &[&str]) -> Result<BuildRequest, Exit> {
        let cli =
            Cli::try_parse_from(std::iter::once("nixos-generate").chain(args.iter().copied()))
                .unwrap();
        build_request(&cli, Path::new("/"), "host")
    }

    #[test]
    fn formats_keep_their_order_and_drop_repeats() {
        let r = request(&["-f", "qcow", "-f", "iso", "-f", "qcow"]).unwrap();
        let names: Vec<_> = r.formats.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["qcow", "iso"]);
    }

    #[test]
    fn unknown_format_names_the_nearest() {
        let err = request(&["-f", "raw-ef"]).unwrap_err();
        assert_eq!(err.code(), 2);
        assert!(err.to_string().contains("did you mean raw-efi"), "{err}");
    }

    #[test]
    fn missing_format_and_missing_configuration_are_bad_input() {
        assert!(request(&[])
            .unwrap_err()
            .to_string()
            .contains("no format given"));
        let err = request(&["-f", "iso", "-c", "/nonexistent/conf.nix"]).unwrap_err();
        assert_eq!(err.code(), 2);
        assert!(err.to_string().contains("/nonexistent/conf.nix"), "{err}");
    }

    #[test]
    fn run_defaults_to_vm() {
        let r = request(&["--run"]).unwrap();
        assert_eq!(r.formats[0].name, "vm");
    }

    #[test]
    fn disk_size_is_mib_or_auto() {
        assert!(request(&["-f", "raw", "--disk-size", "8192"]).is_ok());
        assert!(request(&["-f", "raw", "--disk-size", "auto"]).is_ok());
        for bad in ["8G", "0", "1.5", ""] {
            let err = request(&["-f", "raw", "--disk-size", bad]).unwrap_err();
            assert!(err.to_string().contains("--disk-size"), "{bad}: {err}");
        }
    }

    #[test]
    fn nix_options_pass_through_in_order() {
        let nix = [
            "--cores",
            "4",
            "--option",
            "builders",
            "",
            "-I",
            "nixpkgs=/n",
            "--show-trace",
        ];
        let r = request(&[["-f", "iso"].as_slice(), &nix].concat()).unwrap();
        assert_eq!(r.nix_options, nix);
    }
}
