# Format "qcow": qcow2 disk image, BIOS boot (GRUB; on non-x86 machines UEFI GRUB).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `qemu`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "hybrid"). Both honour
# `virtualisation.diskSize`. Kernel messages go to the serial console ttyS0.
import ../nix/mk-format.nix {
  name = "qcow";
  fileExtension = ".qcow2";
  legacy = import ../nix/disk-legacy.nix {
    attr = "qcow";
    format = "qcow2";
    partitionTableType = "hybrid";
  };
  tweaks =
    { lib, modulesPath, ... }:
    {
      imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
      boot.kernelParams = [ "console=ttyS0" ];
      boot.loader.timeout = lib.mkDefault 0;
    };
  variantTweaks = ../nix/disk-variant.nix;
}
