# Format "raw-efi": Raw disk image, UEFI boot (GPT with an EFI system partition).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-image.nix (the `raw-efi`
# variant of nixos/modules/image/images.nix, used when present) and nixos/lib/make-disk-image.nix
# (the legacy route, ../nix/disk-legacy.nix, partition table "efi"). The shape all disk formats
# share: ../nix/shapes.nix.
(import ../nix/shapes.nix).disk {
  name = "raw-efi";
  partitionTableType = "efi";
  # USB storage, for images written to a stick.
  tweaks.boot.initrd.availableKernelModules = [ "uas" ];
}
