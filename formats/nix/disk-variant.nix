# Inside the raw, raw-efi, qcow and qcow-efi variants (nixpkgs' nixos/modules/virtualisation/
# disk-image.nix, through nixos/modules/image/images.nix): no BIOS outside x86, so the BIOS-only
# variants (qemu, raw) get the EFI system partition and UEFI boot loader of the EFI ones there,
# instead of a BIOS GRUB that cannot boot. (The image's file systems and boot loader device
# replacing a host's are ./image-media.nix's job, as for every disk format.)
{
  lib,
  options,
  pkgs,
  ...
}:
{
  # Only where nixpkgs' disk-image.nix is imported (the variant): on the route for nixpkgs without
  # variants this module joins the configuration, which has no `image.*` (../nix/disk-legacy.nix
  # does the same there). An explicit `config`, so the module's shape does not depend on options.
  config = lib.optionalAttrs (options ? image && options.image ? efiSupport) {
    image.efiSupport = lib.mkIf (!pkgs.stdenv.hostPlatform.isx86) (lib.mkOverride 90 true);
  };
}
