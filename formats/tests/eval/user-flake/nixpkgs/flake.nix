# nixpkgs' own flake outputs, from the snapshot that shared/nixpkgs-eval/nix-eval (beside the
# project's clone) provides at /nixpkgs, without copying its 440 MB into the store: a
# `path:/nixpkgs` input is copied and hashed again on every run (2-4 minutes here). Evaluated
# impurely (`--impure`), so importing /nixpkgs is allowed. `outPath` is a string, so nothing
# that interpolates it (nixpkgs.flake.source) copies the tree either.
#
# One change to nixpkgs' outputs: every system `lib.nixosSystem` evaluates gets the small
# `pkgs.path` of ./small-path.nix (which says why).
{
  description = "nixpkgs snapshot for nixos-generate's evaluation tests";
  outputs =
    { self }:
    let
      nixpkgs = (import /nixpkgs/flake.nix).outputs {
        self = nixpkgs // {
          outPath = "/nixpkgs";
          lastModifiedDate = "19700101000000";
          shortRev = "snapshot";
        };
      };
      smallChannel = {
        nixpkgs.overlays = [ (import ./small-path.nix) ];
      };
    in
    nixpkgs
    // {
      lib = nixpkgs.lib // {
        nixosSystem =
          args: nixpkgs.lib.nixosSystem (args // { modules = args.modules ++ [ smallChannel ]; });
      };
    };
}
