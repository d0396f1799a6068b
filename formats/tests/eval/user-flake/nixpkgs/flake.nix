# nixpkgs' own flake outputs, from the snapshot that shared/nixpkgs-eval/nix-eval (beside the
# project's clone) provides at /nixpkgs, without copying its 440 MB into the store: a
# `path:/nixpkgs` input is copied and hashed again on every run (2-4 minutes here). Evaluated
# impurely (`--impure`), so importing /nixpkgs is allowed. `outPath` is a string, so nothing
# that interpolates it (nixpkgs.flake.source) copies the tree either.
#
# One change to nixpkgs' outputs: every system `lib.nixosSystem` evaluates gets `pkgs.path` =
# ./source (symbolic links to /nixpkgs's top-level entries), as ../small-channel.nix gives the
# classic entry's systems. Otherwise every image with a channel (make-disk-image's copyChannel,
# installer/cd-dvd/channel.nix) copies all of nixpkgs into the store once per image: half a
# minute of disk writes each, most of the tier's time when the flake's boot checks had them.
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
        nixpkgs.overlays = [ (final: prev: { path = ./source; }) ];
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
