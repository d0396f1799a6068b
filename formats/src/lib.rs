//! The formats nixos-generate knows, and the Nix files that build them.
//!
//! [`registry()`] is the one table: every format's name, description, build attribute, output
//! file pattern, architecture and boot profile, parsed from `formats/registry.toml`, which the Nix
//! side reads too. `nix_files` holds the Nix entry expression and one NixOS module per format,
//! embedded in the binary so an installed command works without a checkout.

mod nix_files;
mod registry;

pub use nix_files::{install_nix_files, NixFiles, FILES};
pub use registry::{
    registry, Controller, Format, Packing, Profile, Registry, RegistryError, System,
};
