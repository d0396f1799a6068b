# Format "proxmox-lxc": Proxmox VE container template. proxmox-lxc.nix builds system.build.tarball.
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/proxmox-lxc.nix and
# nixos/modules/image/images.nix (the `proxmox-lxc` variant, used when present). Containers have no
# boot loader.
import ../nix/mk-format.nix {
  name = "proxmox-lxc";
  fileExtension = ".tar.xz";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/proxmox-lxc.nix") ];
    };
  tweaks =
    { lib, ... }:
    {
      boot.loader.grub.enable = lib.mkForce false;
      boot.loader.systemd-boot.enable = lib.mkForce false;
    };
}
