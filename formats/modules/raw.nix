# Format "raw": Raw disk image, BIOS boot (MBR, GRUB on /dev/vda).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `raw`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "legacy"). Both honour
# `virtualisation.diskSize`. Kernel messages go to the serial console ttyS0.
import ../nix/mk-format.nix {
  name = "raw";
  fileExtension = ".img";
  legacy = import ../nix/disk-legacy.nix {
    attr = "raw";
    format = "raw";
    partitionTableType = "legacy";
  };
  tweaks =
    { lib, ... }:
    {
      boot.kernelParams = [ "console=ttyS0" ];
      boot.loader.timeout = lib.mkDefault 0;
      # USB storage, for images written to a stick.
      boot.initrd.availableKernelModules = [ "uas" ];
    };
  variantTweaks = ../nix/disk-variant.nix;
}
