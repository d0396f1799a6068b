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
  modulesPath,
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
    # Not read-only, like nixos-generators: `formats = lib.mkForce { ... }` replaces them.
    formats = lib.mkOption {
      type = lib.types.lazyAttrsOf lib.types.raw;
      description = "For each format: a derivation linking its single image file.";
    };
  };

  config = {
    # Normal priority, like nixos-generators: a user's definition merges with these.
    formatConfigs = builtins.mapAttrs (name: _: { imports = [ (ng.modulePath name) ]; }) ng.formats;
    formats = builtins.mapAttrs (
      name: module:
      let
        variant = if ng.formats ? ${name} then ng.variantFor modulesPath name else null;
        modules =
          if variant == null then
            [ (ng.wrapCustom module) ]
          else
            # A built-in format built by nixpkgs' variant: its formatConfigs module (the
            # format's own module plus the user's customisation, which may set options only
            # the image module declares, e.g. amazonImage.*) goes into the variant.
            [
              (ng.wrap name)
              { image.modules.${variant} = module; }
            ];
      in
      ng.linkOutput pkgs (extendModules { inherit modules; })
    ) config.formatConfigs;
  };
}
