# Format "raw": Raw disk image, BIOS boot (MBR, GRUB on /dev/vda).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `raw`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "legacy"). The shape all disk
# formats share: ../nix/shapes.nix.
(import ../nix/shapes.nix).disk {
  name = "raw";
  partitionTableType = "legacy";
  # USB storage, for images written to a stick.
  tweaks.boot.initrd.availableKernelModules = [ "uas" ];
}
