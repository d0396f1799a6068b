//! The command line, spelled like upstream nixos-generators, plus the checks of issue 6.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

/// nixos-generate: build a NixOS configuration into images of any format, and boot-check them.
///
/// Prints the path of each built image file on stdout, one line per format; logs go to stderr.
#[derive(Debug, Parser)]
#[command(name = "nixos-generate", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Image format to build; repeat to build several in one Nix invocation (see --list).
    #[arg(short = 'f', long = "format", value_name = "NAME", action = ArgAction::Append)]
    pub formats: Vec<String>,

    /// A custom format module (sets formatAttr and fileExtension, as for nixos-generators).
    #[arg(long, value_name = "FILE")]
    pub format_path: Option<PathBuf>,

    /// List every format with a one-line description, then exit.
    #[arg(long)]
    pub list: bool,

    /// The NixOS configuration to build [default: $NIXOS_CONFIG, else a bundled one with a
    /// serial console, root autologin on the console and sshd].
    #[arg(
        short = 'c',
        long,
        value_name = "PATH",
        env = "NIXOS_CONFIG",
        conflicts_with = "flake"
    )]
    pub configuration: Option<PathBuf>,

    /// Build nixosConfigurations.ATTR of a flake (ATTR defaults to the host name).
    #[arg(long, value_name = "URI[#ATTR]")]
    pub flake: Option<String>,

    /// The system to build for, e.g. aarch64-linux.
    #[arg(long, value_name = "SYSTEM")]
    pub system: Option<String>,

    /// Create a symlink to the build result at PATH (like nix build --out-link).
    #[arg(short = 'o', long, value_name = "PATH")]
    pub out_link: Option<PathBuf>,

    /// Maximum number of cores each build job may use (passed to Nix).
    #[arg(long, value_name = "N")]
    pub cores: Option<u32>,

    /// Set a Nix option for this invocation; repeatable.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = ArgAction::Append)]
    pub option: Vec<String>,

    /// Add a path to the Nix search path, e.g. -I nixpkgs=/path/to/nixpkgs; repeatable.
    #[arg(short = 'I', value_name = "KEY=VALUE", action = ArgAction::Append)]
    pub include: Vec<String>,

    /// Show Nix's evaluation trace on errors.
    #[arg(long)]
    pub show_trace: bool,

    /// Disk size in MiB, or "auto" (closure size plus headroom), for every disk format.
    #[arg(long, value_name = "MIB|auto")]
    pub disk_size: Option<String>,

    /// Pass NAME = VALUE (a string) to the NixOS modules' specialArgs; repeatable.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = ArgAction::Append)]
    pub special_arg: Vec<String>,

    /// Print the exact Nix command(s) it would run, then exit.
    #[arg(long)]
    pub dry_run: bool,

    /// Print JSON instead of bare paths (with --list: the format table).
    #[arg(long)]
    pub json: bool,

    /// Build, then boot the image under QEMU with its serial console on this terminal.
    #[arg(long, conflicts_with = "check")]
    pub run: bool,

    /// Build, boot headless and exit 0 only if the system reaches multi-user.target;
    /// --check=console also logs in on the serial console and checks the system state.
    #[arg(long, value_name = "SCENARIO", num_args = 0..=1, require_equals = true,
          default_missing_value = "boot")]
    pub check: Option<CheckScenario>,

    /// With --run or --check: use this image file or build result instead of building;
    /// repeatable, paired in order with the -f formats.
    #[arg(long, value_name = "PATH", action = ArgAction::Append)]
    pub image: Vec<PathBuf>,

    /// With --check: seconds to wait for multi-user [default: scaled by the accelerator].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_S))]
    pub timeout: Option<u64>,

    /// Guest memory in MiB for --run/--check.
    #[arg(long, value_name = "MIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(64..=4_194_304))]
    pub memory: u32,

    /// Guest CPUs for --run/--check [default: 2 under KVM; under TCG 1, and 2 for a lone
    /// x86_64 --check when two cores are idle (restarted with 1 if its kernel oopses on a
    /// stale int3)].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=255))]
    pub cpus: Option<u32>,

    /// Accelerator for --run/--check. auto: KVM if a probe guest runs under it, and a guest
    /// that then dies of KVM is started again under TCG; kvm never falls back.
    #[arg(long, value_enum, env = "NIXGEN_ACCEL", default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,

    /// UEFI firmware (OVMF code) to use instead of the one QEMU's descriptors name.
    #[arg(long, value_name = "PATH")]
    pub firmware: Option<PathBuf>,

    /// Boot iso formats with BIOS instead of UEFI.
    #[arg(long)]
    pub bios: bool,

    /// Keep the run directory (serial log, QEMU stderr, QMP events) even on success.
    #[arg(long)]
    pub keep: bool,

    /// A directory of guest slots shared with other nixos-generate runs on this machine: each
    /// guest waits for a free slot per vCPU (one slot per core) before QEMU starts.
    #[arg(long, value_name = "DIR", env = "NIXGEN_GUEST_SLOTS")]
    pub guest_slots: Option<PathBuf>,

    /// Extra QEMU arguments for --run/--check (after --).
    #[arg(last = true, value_name = "QEMU_ARGS")]
    pub qemu_args: Vec<String>,
}

/// The longest `--timeout`: a week (a deadline must fit in the clock).
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;

/// What `--check` verifies after boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckScenario {
    /// Reaches multi-user.target.
    Boot,
    /// Also logs in on the serial console and checks `systemctl is-system-running`.
    Console,
}

/// The accelerator choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelArg {
    /// Probe KVM by starting a tiny guest; fall back to TCG.
    Auto,
    /// KVM only.
    Kvm,
    /// Software emulation only.
    Tcg,
}

/// Pairs the flat values of a two-valued, repeatable option.
pub fn pairs(flat: &[String]) -> Vec<(String, String)> {
    flat.chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}
