# Format "raw-efi": Raw disk image, UEFI boot (GPT with an EFI system partition).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `raw-efi`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "efi"). Both honour
# `virtualisation.diskSize`. Kernel messages go to the serial console ttyS0.
import ../nix/mk-format.nix {
  name = "raw-efi";
  fileExtension = ".img";
  legacy = import ../nix/disk-legacy.nix {
    attr = "raw";
    format = "raw";
    partitionTableType = "efi";
  };
  tweaks =
    { lib, ... }:
    {
      boot.kernelParams = [ "console=ttyS0" ];
      boot.loader.timeout = lib.mkDefault 0;
      boot.initrd.availableKernelModules = [ "uas" ];
    };
  variantTweaks = ../nix/disk-variant.nix;
}
