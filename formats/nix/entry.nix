# The Nix entry of nixos-generate (`nix build --file entry.nix <format>... [custom]`).
#
# Every argument arrives through `--argstr`, i.e. as data, never as Nix source:
#   configuration  absolute path of a classic NixOS configuration (default: ./configuration.nix)
#   flakeUri       flake reference (locked by the command); with flakeAttr: the configuration is
#   flakeAttr      packages.<system>.nixosConfigurations.<attr> or nixosConfigurations.<attr>
#   system         system to build for (classic) / to look configurations up under (flake)
#   diskSize       "auto" or a number of MiB, for virtualisation.diskSize
#   specialArgs    JSON object of strings, passed to the modules' specialArgs
#   formatPath     absolute path of a custom format module (`custom`)
# It evaluates to an attribute set: registry format name -> the derivation that builds it
# (nixpkgs' `system.build.images.<variant>` where present, else `system.build.<attr>`), and
# `custom` -> a derivation holding a symlink to the custom format's single file.
{
  configuration ? null,
  flakeUri ? null,
  flakeAttr ? null,
  system ? null,
  diskSize ? null,
  specialArgs ? null,
  formatPath ? null,
}:
let
  ng = import ./lib.nix;

  fail = msg: throw "nixos-generate: ${msg}";

  absolutePath =
    what: s:
    if builtins.isString s && builtins.substring 0 1 s == "/" then
      # A path value made from the string: no Nix source is generated from user input.
      /. + s
    else
      fail "${what} must be an absolute path";

  extraSpecialArgs =
    if specialArgs == null then
      { }
    else
      let
        parsed = builtins.fromJSON specialArgs;
        bad = builtins.filter (n: !builtins.isString parsed.${n}) (builtins.attrNames parsed);
      in
      if !builtins.isAttrs parsed then
        fail "specialArgs must be a JSON object"
      else if bad != [ ] then
        fail "specialArgs values must be strings (not: ${builtins.concatStringsSep ", " bad})"
      else
        parsed;

  diskSizeValue =
    let
      digits = builtins.match "0*([0-9]+)" diskSize;
    in
    if diskSize == "auto" then
      "auto"
    else if digits != null then
      builtins.fromJSON (builtins.head digits)
    else
      fail "diskSize must be \"auto\" or a number of MiB, not \"${diskSize}\"";

  diskSizeModules = if diskSize == null then [ ] else [
    {
      _file = "nixos-generate --disk-size";
      virtualisation.diskSize = diskSizeValue;
    }
  ];

  # The user's configuration, evaluated once; formats extend it.
  base =
    if flakeUri != null then
      let
        flake = builtins.getFlake flakeUri;
        attr = if flakeAttr != null then flakeAttr else fail "flakeAttr is required with flakeUri";
        lookupSystem = if system != null then system else builtins.currentSystem;
        missing = fail (
          "flake ${flakeUri} has neither packages.${lookupSystem}.nixosConfigurations.${attr}"
          + " nor nixosConfigurations.${attr}"
        );
        found =
          flake.packages.${lookupSystem}.nixosConfigurations.${attr}
            or flake.nixosConfigurations.${attr}
            or missing;
      in
      if configuration != null then
        fail "give either configuration or flakeUri, not both"
      else
        found.extendModules { specialArgs = extraSpecialArgs; }
    else
      import <nixpkgs/nixos/lib/eval-config.nix> (
        {
          modules = [
            (
              if configuration == null then
                ./configuration.nix
              else
                absolutePath "configuration" configuration
            )
            # Options of image modules (isoImage.*, ...) are checked in each format's evaluation.
            ng.lenient
          ];
          specialArgs = extraSpecialArgs;
        }
        // (if system != null then { inherit system; } else { })
      );

  withModules = modules: base.extendModules { modules = modules ++ diskSizeModules; };

  builtIn = builtins.mapAttrs (
    name: _: ng.imageOf (withModules [ (ng.wrap name) ]).config
  ) ng.formats;

  custom =
    if formatPath == null then
      fail "the custom format needs formatPath"
    else
      let
        evaluated = withModules [ (ng.wrapCustom (absolutePath "formatPath" formatPath)) ];
      in
      ng.linkOutput (evaluated.pkgs or evaluated._module.args.pkgs) evaluated;
in
builtIn // { inherit custom; }
