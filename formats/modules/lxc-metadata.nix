# Format "lxc-metadata": LXC image metadata tarball (pair with lxc). lxc-container.nix imports
# lxc-image-metadata.nix, which builds system.build.metadata; the 25.05 variant uses
# lxc-image-metadata.nix. Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/lxc-container.nix and nixos/modules/image/images.nix (the
# `lxc-metadata` variant, used when present). Containers have no boot loader
# (../nix/shapes.nix).
(import ../nix/shapes.nix).container {
  name = "lxc-metadata";
  module = "virtualisation/lxc-container.nix";
}
