# A user's flake for the `--flake` route of the evaluation tests (routes.nix): a real host
# (./host.nix: its own root file system, boot loader, host name) whose nixpkgs input is the
# snapshot (./nixpkgs, a subdirectory, so the relative input survives the flake's copy into
# the store; its `lib.nixosSystem` keeps `pkgs.path` small, see ./nixpkgs/flake.nix).
{
  inputs.nixpkgs.url = "path:./nixpkgs";
  outputs =
    { nixpkgs, ... }:
    let
      host =
        system:
        nixpkgs.lib.nixosSystem {
          modules = [
            ./host.nix
            { nixpkgs.hostPlatform = system; }
          ];
        };
    in
    {
      nixosConfigurations.host = host "x86_64-linux";
      nixosConfigurations.host-aarch64 = host "aarch64-linux";
      # Looked up first by `--flake`, like nixos-generators.
      packages.x86_64-linux.nixosConfigurations.host = host "x86_64-linux";
    };
}
