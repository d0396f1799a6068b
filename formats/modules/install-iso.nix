# Format "install-iso": the NixOS installer ISO built from the configuration, sshd on at boot.
# Based on reading NixOS/nixpkgs nixos/modules/installer/cd-dvd/installation-cd-base.nix and
# the `iso-installer` variant in nixos/modules/image/images.nix (used when present; it extends
# the configuration, so the sshd settings reach it).
import ../nix/mk-format.nix {
  name = "install-iso";
  fileExtension = ".iso";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/installer/cd-dvd/installation-cd-base.nix") ];
    };
  tweaks = ../nix/installer-common.nix;
}
