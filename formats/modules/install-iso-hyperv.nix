# Format "install-iso-hyperv": the installer ISO with Hyper-V guest support and no Wi-Fi
# daemon at boot (Hyper-V guests have no Wi-Fi).
# Based on reading NixOS/nixpkgs nixos/modules/installer/cd-dvd/installation-cd-base.nix and
# nixos/modules/virtualisation/hyperv-guest.nix (`virtualisation.hypervGuest.enable`). No
# nixpkgs variant matches it, so it is always built as `system.build.isoImage`.
import ../nix/mk-format.nix {
  name = "install-iso-hyperv";
  fileExtension = ".iso";
  legacy =
    { lib, modulesPath, ... }:
    {
      imports = [
        (modulesPath + "/installer/cd-dvd/installation-cd-base.nix")
        ../nix/installer-common.nix
      ];
      virtualisation.hypervGuest.enable = true;
      # Stronger than installer-common's mkForce (priority 50).
      systemd.services.wpa_supplicant.wantedBy = lib.mkOverride 40 [ ];
    };
}
