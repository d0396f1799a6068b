# STUB of nixpkgs' disk-size-option.nix: "auto" or a positive number of MiB.
{ lib, ... }:
{
  options.virtualisation.diskSize = lib.mkOption {
    type = lib.types.either (lib.types.enum [ "auto" ]) lib.types.ints.positive;
    default = "auto";
  };
}
