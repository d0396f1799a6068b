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
# Formats whose image boots from its own media (disk, board, ISO and kexec profiles; not the vm
# and container ones) get the image's file systems, swap, LUKS devices and boot loader device
# over a host's (./image-media.nix): on the variant route the format is built from
# `image.modules.<variant>` lifted that way, by the same `extendModules` that nixpkgs'
# `system.build.images.<variant>` uses; on the legacy route the imported module is lifted.
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
  extendModules,
  ...
}:
let
  ng = import ./lib.nix;
  fmt = ng.formats.${name};
  # Decided from modulesPath only (never from config), so `imports` can depend on it.
  variant = ng.variantFor modulesPath name;
  onVariant = variant != null;

  imageMedia = import ./image-media.nix lib;
  ownMedia = ng.ownMedia name;
  media = module: if ownMedia then imageMedia.lift module else module;

  # nixpkgs' `system.build.images.<variant>` (images.nix), with the variant's modules lifted.
  image =
    let
      evaluated = extendModules {
        modules = [
          (media config.image.modules.${variant})
        ]
        ++ lib.optional ownMedia imageMedia.baseline;
      };
      builder =
        evaluated.config.system.build.image
          or (throw "nixos-generate: the ${variant} variant builds no `system.build.image`");
    in
    lib.recursiveUpdate builder {
      passthru = {
        inherit (evaluated) config;
        inherit (evaluated.config.image) filePath;
      };
    };
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
        (media legacy)
        variantTweaks
        ng.strict
      ]
      ++ lib.optional ownMedia imageMedia.baseline
  );

  config = {
    formatAttr = fmt.attr;
    inherit fileExtension;
    formatVariant = variant;
  }
  # Keeps `config.system.build.${config.formatAttr}` meaningful for code written against
  # nixos-generators, and is what every route builds. Weaker than any real definition, so inside
  # the variant's own evaluation (which also sees this module) nixpkgs' attribute wins.
  # `onVariant` depends on modulesPath only, so choosing the attribute set here cannot recurse
  # into config.
  // lib.optionalAttrs onVariant {
    system.build.${fmt.attr} = lib.mkOverride 1400 image;
  };
}
