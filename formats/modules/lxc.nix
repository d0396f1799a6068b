# Format "lxc": LXC container root file system tarball (pair with lxc-metadata). lxc-container.nix
# builds system.build.tarball and system.build.metadata. Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/lxc-container.nix and nixos/modules/image/images.nix (the `lxc`
# variant, used when present). Containers have no boot loader.
import ../nix/mk-format.nix {
  name = "lxc";
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
