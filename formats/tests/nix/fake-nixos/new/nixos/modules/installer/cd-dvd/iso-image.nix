# STUB of nixpkgs' iso-image.nix: its options exist only where it is imported.
{ config, lib, ... }:
{
  options.isoImage = {
    makeEfiBootable = lib.mkOption {
      type = lib.types.bool;
      default = false;
    };
    makeUsbBootable = lib.mkOption {
      type = lib.types.bool;
      default = false;
    };
  };
  config.system.build.isoImage = {
    builder = "iso";
    outPath = "/nix/store/00000000000000000000000000000000-image";
    efi = config.isoImage.makeEfiBootable;
    usb = config.isoImage.makeUsbBootable;
    kernelParams = config.boot.kernelParams;
  };
  config.system.build.image = config.system.build.isoImage;
}
