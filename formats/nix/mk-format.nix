# Turns one format's description into its NixOS module (used by every ../modules/<name>.nix).
#
#   name           the registry name; `attr` and `variant` come from ../registry.toml
#   fileExtension  upstream-compatible suffix of the image file
#   legacy         module used when this nixpkgs has no `system.build.images.<variant>` (24.11
#                  and older, or formats without a variant): imports the nixpkgs image module
#                  and builds `system.build.<attr>`
#   tweaks         this project's per-format settings that use options every NixOS
#                  configuration has (console, services, boot loader): they join the
#                  configuration on both routes, and so also reach the variant, whose
#                  evaluation extends the configuration
#   variantTweaks  settings of options that only the image module declares (e.g. isoImage.*):
#                  on the variant route they go into `image.modules.<variant>` (images.nix sets
#                  `image.modules` at normal priority with type `attrsOf deferredModule`, so a
#                  further definition merges with nixpkgs' module instead of replacing it); on
#                  the legacy route they join the configuration next to the imported module
#
# Based on reading NixOS/nixpkgs nixos/modules/image/images.nix (variant table, `image.modules`,
# `system.build.images`, disabled when the configuration defines `system.build.image`).
{
  name,
  fileExtension ? "",
  legacy ? { },
  tweaks ? { },
  variantTweaks ? { },
}:
{
  config,
  lib,
  modulesPath,
  ...
}:
let
  ng = import ./lib.nix;
  fmt = ng.formats.${name};
  # Decided from modulesPath only (never from config), so `imports` can depend on it.
  variant = ng.variantFor modulesPath name;
  onVariant = variant != null;
in
{
  imports = [
    ./format-module.nix
    tweaks
  ]
  ++ (
    if onVariant then
      [
        {
          image.modules.${variant} = {
            imports = [
              variantTweaks
              ng.strict
            ];
          };
        }
      ]
    else
      [
        legacy
        variantTweaks
        ng.strict
      ]
  );

  config = {
    formatAttr = fmt.attr;
    inherit fileExtension;
    formatVariant = variant;
  }
  # Keeps `config.system.build.${config.formatAttr}` meaningful for code written against
  # nixos-generators. Weaker than any real definition, so inside the variant's own evaluation
  # (which also sees this module) nixpkgs' attribute wins. `onVariant` depends on modulesPath
  # only, so choosing the attribute set here cannot recurse into config.
  // lib.optionalAttrs onVariant {
    system.build.${fmt.attr} = lib.mkOverride 1400 config.system.build.images.${variant};
  };
}
