# FAKE nixpkgs eval-config.nix for module-level tests: the real module system (nixpkgs' lib,
# given by the environment variable NIXGEN_NIXPKGS_LIB) over a handful of stub NixOS modules
# (./../modules), enough to check how the format modules merge, which route they take and what
# reaches the image builders. Not NixOS: no package is built.
{
  system ? null,
  modules ? [ ],
  specialArgs ? { },
  modulesPath ? toString ../modules,
  ...
}:
let
  libDir = builtins.getEnv "NIXGEN_NIXPKGS_LIB";
  lib = if libDir == "" then throw "NIXGEN_NIXPKGS_LIB is not set" else import libDir;
  evaluated = lib.evalModules {
    class = "nixos";
    specialArgs = { inherit modulesPath; } // specialArgs;
    # The module list: the stub base, and images.nix where this fake nixpkgs has it.
    modules = [
      (modulesPath + "/base.nix")
    ]
    ++ lib.optional (builtins.pathExists (modulesPath + "/image/images.nix")) (
      modulesPath + "/image/images.nix"
    )
    ++ modules;
  };
  withExtras = e: e // {
    inherit lib;
    pkgs = e.config._module.args.pkgs;
    extendModules = args: withExtras (e.extendModules args);
  };
in
withExtras evaluated
