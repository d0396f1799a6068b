# STUB standing for nixpkgs' disk-image.nix (the raw/qemu variants): records what reaches it.
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [ (modulesPath + "/virtualisation/disk-size-option.nix") ];
  options.image = {
    efiSupport = lib.mkOption { default = true; };
    format = lib.mkOption { default = "raw"; };
  };
  config.system.build.image = import ../../lib/make-disk-image.nix {
    inherit config lib pkgs;
    inherit (config.virtualisation) diskSize;
    format = config.image.format;
    partitionTableType = if config.image.efiSupport then "efi" else "legacy";
    builder = "variant";
  };
}
