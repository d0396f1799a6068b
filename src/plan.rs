//! The Nix plan: the one `nix build` that builds every requested format, as argv.

use std::{ffi::OsString, path::PathBuf};

use formats::NixFiles;

use crate::request::{BuildRequest, Source};

/// The attribute the entry expression gives a `--format-path` module.
pub const CUSTOM_ATTR: &str = "custom";

/// One Nix invocation, and which installable is which format.
#[derive(Debug, Clone)]
pub struct NixPlan {
    /// The program and its arguments; never run through a shell.
    pub argv: Vec<OsString>,
    /// Labels of the installables, in the order `nix build --json` reports them.
    pub labels: Vec<String>,
}

/// Builds the argv of the one `nix build`. User values reach Nix only as `--argstr` data.
pub fn plan(request: &BuildRequest, nix: &NixFiles) -> NixPlan {
    let mut argv: Vec<OsString> = vec![
        "nix".into(),
        "build".into(),
        "--extra-experimental-features".into(),
        "nix-command flakes".into(),
        "--print-build-logs".into(),
        "--json".into(),
        "--file".into(),
        nix.entry().into(),
    ];
    let mut argstr = |name: &str, value: OsString| {
        argv.extend(["--argstr".into(), OsString::from(name), value]);
    };
    match &request.source {
        Source::File(Some(path)) => argstr("configuration", path.into()),
        Source::File(None) => argstr(
            "configuration",
            nix.root.join("nix/configuration.nix").into(),
        ),
        Source::Flake(target) => {
            argstr("flakeUri", target.uri.clone().into());
            argstr("flakeAttr", target.attr.clone().into());
        }
    }
    if let Some(system) = &request.system {
        argstr("system", system.into());
    }
    if let Some(size) = &request.disk_size {
        argstr("diskSize", size.into());
    }
    if !request.special_args.is_empty() {
        let object: serde_json::Map<String, serde_json::Value> = request
            .special_args
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        argstr(
            "specialArgs",
            serde_json::Value::Object(object).to_string().into(),
        );
    }
    if let Some(path) = &request.format_path {
        argstr("formatPath", path.into());
    }
    argv.extend(request.nix_options.iter().map(OsString::from));
    match &request.out_link {
        Some(link) => argv.extend(["--out-link".into(), link.clone().into()]),
        None => argv.push("--no-link".into()),
    }
    let mut labels: Vec<String> = request.formats.iter().map(|f| f.name.clone()).collect();
    if request.format_path.is_some() {
        labels.push(CUSTOM_ATTR.into());
    }
    // Installables are attribute names of the entry expression; `--` keeps a name from ever
    // being read as an option.
    argv.push("--".into());
    argv.extend(labels.iter().map(OsString::from));
    NixPlan { argv, labels }
}

/// The argv as one line a shell would read back to the same argv (for --dry-run and logs).
pub fn shell_line(argv: &[OsString]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    shell_words::join(words)
}

/// Where the entry files are installed: `$XDG_CACHE_HOME/nixos-generate`, else
/// `~/.cache/nixos-generate` (the home directory from `$HOME`, else the password database).
/// Never a shared temporary directory, where another user could plant `entry.nix`: `None`
/// when there is no home directory at all.
pub fn cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|base| base.join("nixos-generate"))
}
