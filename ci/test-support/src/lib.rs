//! Test support of nixos-generate, in the manner of cloud-hypervisor's `test_infra`: what the
//! tests of every crate share and the shipped binary never links (it is only ever a
//! dev-dependency; `cargo tree -p nixos-generate -e normal` does not show it).
//!
//! - [`standins`]: THE reader of the stand-ins directory and its `manifest.toml` (the harness's
//!   boot tests, the command's tests and the matrix all use it).
//! - [`source`]: where the matrix's images come from (stand-ins, or NixOS builds made by the
//!   command itself).
//! - [`summary`]: the matrix's format x scenario table.
//! - [`threads`]: how many matrix trials run at once.
//!
//! It depends on no crate of the workspace, so the harness's own tests can use it without a
//! dependency cycle; what it needs of them (the capacity of the machine, the scenario names)
//! its callers pass in.

pub mod source;
pub mod standins;
pub mod summary;
pub mod threads;

pub use standins::{read_manifest, standins_dir, Standin, StandinsError};
