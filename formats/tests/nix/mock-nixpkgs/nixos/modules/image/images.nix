# MOCK: stands for nixpkgs' nixos/modules/image/images.nix in tests of formats/nix/lib.nix,
# which only looks for variant names followed by "=". This mock knows four variants.
{ ... }:
{
  mockVariants = {
    raw = { };
    raw-efi = { };
    qemu = { };
    iso = { };
  };
}
