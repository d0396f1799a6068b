# MOCK flake for entry.nix's flake mode: configurations made by the mock eval-config.
{
  outputs =
    { self }:
    let
      mk = name: import ./nixos/lib/eval-config.nix { modules = [ { mockConfiguration = name; } ]; };
    in
    {
      nixosConfigurations = {
        plain = mk "nixosConfigurations.plain";
        both = mk "nixosConfigurations.both";
      };
      packages.x86_64-linux.nixosConfigurations.both = mk "packages.x86_64-linux.nixosConfigurations.both";
    };
}
