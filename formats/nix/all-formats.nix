# NixOS module `nixosModules.all-formats`, compatible with nixos-generators' all-formats.nix:
#   formatConfigs.<name>  a module per format, pre-filled with every registry format; define it
#                         to customise a format or to add one (a module setting formatAttr and
#                         fileExtension)
#   formats.<name>        derivation holding a symlink to that format's single image file, with
#                         passthru.config (the format's configuration) and passthru.image
# Usage: nix build .#nixosConfigurations.<host>.config.formats.raw-efi
{
  config,
  lib,
  pkgs,
  extendModules,
  ...
}:
let
  ng = import ./lib.nix;
in
{
  _file = ./all-formats.nix;
  key = "nixos-generate:formats/nix/all-formats.nix";

  options = {
    formatConfigs = lib.mkOption {
      type = lib.types.attrsOf lib.types.deferredModule;
      description = "The module of each image format (customise one, or add one).";
    };
    formats = lib.mkOption {
      type = lib.types.lazyAttrsOf lib.types.raw;
      readOnly = true;
      description = "For each format: a derivation linking its single image file.";
    };
  };

  config = {
    # Normal priority, like nixos-generators: a user's definition merges with these.
    formatConfigs = builtins.mapAttrs (name: _: { imports = [ (ng.modulePath name) ]; }) ng.formats;
    formats = builtins.mapAttrs (
      _: module: ng.linkOutput pkgs (extendModules { modules = [ (ng.wrapCustom module) ]; })
    ) config.formatConfigs;
  };
}
