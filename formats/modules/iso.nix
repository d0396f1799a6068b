# Format "iso": a live ISO of the configuration, bootable from BIOS and UEFI, as CD or USB stick.
# Based on reading NixOS/nixpkgs nixos/modules/installer/cd-dvd/iso-image.nix (`isoImage.*`,
# `system.build.isoImage`, output iso/<isoName>) and the `iso` variant in
# nixos/modules/image/images.nix, used when present; the EFI/USB settings (options of
# iso-image.nix) reach it through `image.modules.iso`.
import ../nix/mk-format.nix {
  name = "iso";
  fileExtension = ".iso";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/installer/cd-dvd/iso-image.nix") ];
    };
  variantTweaks = {
    isoImage.makeEfiBootable = true;
    isoImage.makeUsbBootable = true;
  };
}
