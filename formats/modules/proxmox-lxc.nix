# Format "proxmox-lxc": Proxmox VE container template. proxmox-lxc.nix builds system.build.tarball.
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/proxmox-lxc.nix and
# nixos/modules/image/images.nix (the `proxmox-lxc` variant, used when present). Containers have no
# boot loader (../nix/shapes.nix).
(import ../nix/shapes.nix).container {
  name = "proxmox-lxc";
  module = "virtualisation/proxmox-lxc.nix";
}
