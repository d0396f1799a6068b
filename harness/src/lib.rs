//! Boots an image of a nixos-generate format under QEMU and returns a verdict with evidence.

pub mod notify;
