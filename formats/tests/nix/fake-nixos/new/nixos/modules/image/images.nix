# STUB with the behaviour of nixpkgs' nixos/modules/image/images.nix that the format modules
# rely on (written for the tests): `image.modules` (attrsOf deferredModule, set at normal
# priority), `system.build.images.<variant>` = the variant's `system.build.image` in an
# extension of the configuration, both off when the configuration defines system.build.image.
# Variants here: raw, raw-efi, qemu, iso.
{
  config,
  lib,
  extendModules,
  ...
}:
let
  variants = {
    raw = {
      imports = [ ../virtualisation/disk-image.nix ];
      image.efiSupport = false;
    };
    raw-efi = ../virtualisation/disk-image.nix;
    qemu = {
      imports = [ ../virtualisation/disk-image.nix ];
      image.efiSupport = false;
      image.format = "qcow2";
    };
    iso = ../installer/cd-dvd/iso-image.nix;
  };
  off = config.system.build ? image;
in
{
  options = {
    system.build.images = lib.mkOption {
      type = lib.types.lazyAttrsOf lib.types.raw;
      readOnly = true;
    };
    image.modules = lib.mkOption { type = lib.types.attrsOf lib.types.deferredModule; };
  };
  config.image.modules = lib.mkIf (!off) variants;
  config.system.build.images = lib.mkIf (!off) (
    lib.mapAttrs (_: m: (extendModules { modules = [ m ]; }).config.system.build.image) config.image.modules
  );
}
