# Format "qcow-efi": qcow2 disk image, UEFI boot.
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `qemu-efi`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "efi"). The shape all disk formats
# share: ../nix/shapes.nix.
(import ../nix/shapes.nix).disk {
  name = "qcow-efi";
  partitionTableType = "efi";
  extraConsoles =
    { lib, pkgs }:
    lib.optional pkgs.stdenv.hostPlatform.isAarch "console=ttyAMA0,115200"
    ++ lib.optional pkgs.stdenv.hostPlatform.isRiscV64 "console=ttySIF0,115200";
  tweaks =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
    };
}
