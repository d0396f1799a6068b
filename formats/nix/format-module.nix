# The options every format module sets, compatible with nixos-generators' format modules:
# `formatAttr` names the build attribute (`config.system.build.<formatAttr>`), `fileExtension` is
# the suffix (a shell glob) that picks the one image file inside that build's output. Modules
# written for nixos-generators' `--format-path` keep working unchanged.
#
# `formatVariant` is this project's addition (internal): set when the format is built from
# nixpkgs' `system.build.images.<variant>` (nixos/modules/image/images.nix, NixOS 25.05+).
#
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/disk-size-option.nix (declares
# `virtualisation.diskSize`, "auto" or MiB, in nixpkgs since late 2024); imported only where it
# exists, so older nixpkgs still evaluate (there `--disk-size` needs a module declaring it).
{ lib, modulesPath, ... }:
let
  diskSizeOption = modulesPath + "/virtualisation/disk-size-option.nix";
in
{
  _file = ./format-module.nix;
  # Fixed identity: the same module reached through the flake's nixosModules, entry.nix or a
  # copy written out by the command is imported once.
  key = "nixos-generate:formats/nix/format-module.nix";

  imports = lib.optional (builtins.pathExists diskSizeOption) diskSizeOption;

  options = {
    formatAttr = lib.mkOption {
      type = lib.types.str;
      description = "Attribute of `config.system.build` that builds this format.";
    };
    fileExtension = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "Suffix (shell glob) of the wanted file inside the build output.";
    };
    formatVariant = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      internal = true;
      description = ''
        Variant of `config.system.build.images` that builds this format, or null when the
        format is built from `config.system.build.<formatAttr>`.
      '';
    };
  };
}
