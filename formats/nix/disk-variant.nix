# Inside the raw, raw-efi, qcow and qcow-efi variants (nixpkgs' nixos/modules/virtualisation/
# disk-image.nix, through nixos/modules/image/images.nix):
# - its file systems again, at `mkImageMediaOverride` (what nixpkgs' ISO module uses): a real
#   host's own `fileSystems."/"` (`--flake`, `nixosModules.all-formats`) is defined at normal
#   priority like disk-image.nix's, so the two conflicted; the host's disk does not exist in the
#   image, so the image's file systems replace the host's (all of them, as on nixpkgs' ISO);
# - no BIOS outside x86: the BIOS-only variants (qemu, raw) get the EFI system partition and
#   UEFI boot loader of the EFI ones there, instead of a BIOS GRUB that cannot boot.
{
  config,
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

    # The image's BIOS GRUB goes to the image's disk, not to a host's `boot.loader.grub.device`.
    boot.loader.grub = lib.mkIf (!config.image.efiSupport) {
      device = lib.mkImageMediaOverride "";
      devices = lib.mkImageMediaOverride [ "/dev/vda" ];
    };

    fileSystems = lib.mkImageMediaOverride (
      {
        "/" = {
          device = "/dev/disk/by-label/nixos";
          autoResize = true;
          fsType = "ext4";
        };
      }
      // lib.optionalAttrs config.image.efiSupport {
        "/boot" = {
          device = "/dev/disk/by-label/ESP";
          fsType = "vfat";
        };
      }
    );
  };
}
