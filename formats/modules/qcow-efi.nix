# Format "qcow-efi": qcow2 disk image, UEFI boot.
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `qemu-efi`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "efi"). Both honour
# `virtualisation.diskSize`. Kernel messages go to the serial console ttyS0.
import ../nix/mk-format.nix {
  name = "qcow-efi";
  fileExtension = ".qcow2";
  legacy = import ../nix/disk-legacy.nix {
    attr = "qcow-efi";
    format = "qcow2";
    partitionTableType = "efi";
  };
  tweaks =
    {
      lib,
      pkgs,
      modulesPath,
      ...
    }:
    {
      imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
      boot.kernelParams =
        [ "console=ttyS0" ]
        ++ lib.optional pkgs.stdenv.hostPlatform.isAarch "console=ttyAMA0,115200"
        ++ lib.optional pkgs.stdenv.hostPlatform.isRiscV64 "console=ttySIF0,115200";
      boot.loader.timeout = lib.mkDefault 0;
    };
  variantTweaks = ../nix/disk-variant.nix;
}
