# Format "qcow": qcow2 disk image, BIOS boot (GRUB; on non-x86 machines UEFI GRUB).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `qemu`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "hybrid"). The shape all disk
# formats share: ../nix/shapes.nix.
(import ../nix/shapes.nix).disk {
  name = "qcow";
  partitionTableType = "hybrid";
  tweaks =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
    };
}
