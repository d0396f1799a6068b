# The legacy route of the raw, raw-efi, qcow and qcow-efi formats (nixpkgs without
# `system.build.images.{raw,raw-efi,qemu,qemu-efi}`): a root file system labelled "nixos" that
# grows to the disk, GRUB for BIOS or (removable-path) UEFI, built with make-disk-image.
#
# Based on reading NixOS/nixpkgs nixos/lib/make-disk-image.nix (arguments `diskSize`, `format`,
# `partitionTableType` legacy|efi|hybrid, output `<name>.img` / `.qcow2`) and
# nixos/modules/virtualisation/disk-image.nix (the layout its 25.05 variants use).
{
  attr,
  format,
  partitionTableType,
}:
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:
let
  # No BIOS outside x86: a BIOS-only table becomes an EFI one there.
  table =
    if partitionTableType == "legacy" && !pkgs.stdenv.hostPlatform.isx86 then
      "efi"
    else
      partitionTableType;
  hasEsp = table == "efi" || table == "hybrid";
  # BIOS GRUB when the table has a place for it and the machine has a BIOS; else UEFI GRUB
  # installed at the removable path, so no NVRAM entry is needed.
  biosGrub =
    table == "legacy" || (table == "hybrid" && pkgs.stdenv.hostPlatform.isx86);
in
{
  fileSystems = lib.mkImageMediaOverride (
    {
      "/" = {
        device = "/dev/disk/by-label/nixos";
        autoResize = true;
        fsType = "ext4";
      };
    }
    // lib.optionalAttrs (hasEsp && !biosGrub) {
      "/boot" = {
        device = "/dev/disk/by-label/ESP";
        fsType = "vfat";
      };
    }
  );

  boot.growPartition = true;
  boot.loader.grub =
    if biosGrub then
      { device = lib.mkDefault "/dev/vda"; }
    else
      {
        device = "nodev";
        efiSupport = true;
        efiInstallAsRemovable = true;
      };

  system.build.${attr} = import (modulesPath + "/../lib/make-disk-image.nix") {
    inherit
      lib
      config
      pkgs
      format
      ;
    partitionTableType = table;
    diskSize = config.virtualisation.diskSize or "auto";
  };
}
