# For users without flakes: the same package, modules and library as flake.nix.
#   nix-build -A nixos-generate            (nixpkgs from <nixpkgs>, or --arg pkgs ...)
#   (import ./. { }).nixosGenerate { system = "x86_64-linux"; format = "iso"; modules = [ ... ]; }
{
  pkgs ? import <nixpkgs> { },
}:
let
  nixpkgsLib = pkgs.lib;
  project = import ./formats/nix/project.nix {
    inherit nixpkgsLib;
    # What nixpkgs' flake calls lib.nixosSystem, from the same nixpkgs source.
    nixosSystem = args: import (pkgs.path + "/nixos/lib/eval-config.nix") ({ lib = nixpkgsLib; } // args);
    src = nixpkgsLib.cleanSourceWith {
      src = nixpkgsLib.cleanSource ./.;
      filter = path: _: baseNameOf path != "target" && !(nixpkgsLib.hasPrefix "result" (baseNameOf path));
    };
  };
  nixos-generate = project.packageFor pkgs;
in
{
  inherit nixos-generate;
  default = nixos-generate;
  inherit (project) nixosModules nixosGenerate;
  lib = {
    inherit (project) nixosGenerate;
    formats = project.ng.names;
  };
  checks = project.checksFor pkgs;
  shell = project.devShellFor pkgs;
}
