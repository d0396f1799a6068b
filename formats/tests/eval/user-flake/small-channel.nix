# Tests only: a small `pkgs.path` (./nixpkgs/small-path.nix says why) for the systems the
# classic entry evaluates (configs/bundled.nix, test.nix); the test nixpkgs' own
# `lib.nixosSystem` adds the same overlay to the systems it evaluates.
{
  nixpkgs.overlays = [ (import ./nixpkgs/small-path.nix) ];
}
