# nixos-generate as a flake.
#
#   nix run <this flake> -- -f iso -c ./configuration.nix
#
# As an input (`inputs.nixos-generate.inputs.nixpkgs.follows = "nixpkgs";`):
#   packages.x86_64-linux.iso = nixos-generate.lib.nixosGenerate {
#     system = "x86_64-linux";
#     format = "iso";                 # any name of `nixos-generate --list`
#     modules = [ ./configuration.nix ];
#     # specialArgs = { ... }; customFormats = { my-format = ./my-format.nix; };
#   };
# or, per machine: imports = [ nixos-generate.nixosModules.all-formats ]; then
#   nix build .#nixosConfigurations.<host>.config.formats.raw-efi
# The checks boot-<format> boot each bootable format and need a builder with the "kvm" feature.
{
  description = "nixos-generate: one NixOS configuration in, an image of any format out, boot-checked under QEMU";

  # The only input; `inputs.nixos-generate.inputs.nixpkgs.follows = "nixpkgs"` works.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      project = import ./formats/nix/project.nix {
        nixpkgsLib = lib;
        nixosSystem = lib.nixosSystem;
        src = ./.;
      };
      linux = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      # The command alone (building images needs a Linux builder).
      darwin = [
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forSystems = systems: f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # nixosModules.<format> for every format of formats/registry.toml, and all-formats.
      inherit (project) nixosModules;

      # lib.nixosGenerate { system | pkgs, format, modules, specialArgs, customFormats }, with
      # nixos-generators' meaning; `nixosGenerate` is kept as the upstream spelling.
      lib = {
        inherit (project) nixosGenerate;
        formats = project.ng.names;
      };
      inherit (project) nixosGenerate;

      packages = forSystems (linux ++ darwin) (
        pkgs:
        let
          nixos-generate = project.packageFor pkgs;
        in
        {
          default = nixos-generate;
          inherit nixos-generate;
        }
      );

      apps = forSystems (linux ++ darwin) (
        pkgs:
        let
          app = {
            type = "app";
            program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.nixos-generate;
          };
        in
        {
          default = app;
          nixos-generate = app;
        }
      );

      # boot-<format> for every format the harness boots on that system (they need KVM),
      # nixos-generate (the package builds) and rust-tests (the workspace's tests).
      checks = forSystems linux project.checksFor;

      devShells = forSystems (linux ++ darwin) (pkgs: {
        default = project.devShellFor pkgs;
      });

      formatter = forSystems (linux ++ darwin) project.formatterFor;
    };
}
