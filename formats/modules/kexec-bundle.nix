# Format "kexec-bundle": one self-extracting executable (*-kexec_bundle) that unpacks the kexec
# tarball at / and runs /kexec_nixos.
# Based on reading NixOS/nixpkgs nixos/modules/installer/netboot/netboot-minimal.nix,
# netboot.nix and nixos/lib/make-system-tarball.nix; the builders are ../nix/kexec-builders.nix.
import ../nix/mk-format.nix {
  name = "kexec-bundle";
  fileExtension = "-kexec_bundle";
  legacy = ../nix/kexec-builders.nix;
}
