# Format "lxc-metadata": LXC image metadata tarball (pair with lxc). lxc-container.nix imports
# lxc-image-metadata.nix, which builds system.build.metadata; the 25.05 variant uses
# lxc-image-metadata.nix. Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/lxc-container.nix and nixos/modules/image/images.nix (the
# `lxc-metadata` variant, used when present). Containers have no boot loader.
import ../nix/mk-format.nix {
  name = "lxc-metadata";
  fileExtension = ".tar.xz";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/lxc-container.nix") ];
    };
  tweaks =
    { lib, ... }:
    {
      boot.loader.grub.enable = lib.mkForce false;
      boot.loader.systemd-boot.enable = lib.mkForce false;
    };
}
