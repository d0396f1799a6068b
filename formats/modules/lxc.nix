# Format "lxc": LXC container root file system tarball (pair with lxc-metadata). lxc-container.nix
# builds system.build.tarball and system.build.metadata. Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/lxc-container.nix and nixos/modules/image/images.nix (the `lxc`
# variant, used when present). Containers have no boot loader (../nix/shapes.nix).
(import ../nix/shapes.nix).container {
  name = "lxc";
  module = "virtualisation/lxc-container.nix";
}
