# Format "kexec": a tarball to unpack at / on a running Linux; /kexec_nixos then switches the
# machine into this configuration (kernel + initrd carrying the whole system) with kexec.
# Based on reading NixOS/nixpkgs nixos/modules/installer/netboot/netboot-minimal.nix,
# netboot.nix and nixos/lib/make-system-tarball.nix; the builders are ../nix/kexec-builders.nix.
# nixpkgs' `kexec` variant has another layout (no /kexec_nixos), so it is not used.
import ../nix/mk-format.nix {
  name = "kexec";
  fileExtension = ".tar.xz";
  legacy = ../nix/kexec-builders.nix;
}
