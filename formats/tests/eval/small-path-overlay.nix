# Tests only, given to every Nix process of the tier as `-I nixpkgs-overlays=<this file>`
# (../nixpkgs_eval.rs): nixpkgs imported without explicit overlays (nixpkgs' impure overlays:
# the flake's legacyPackages, and openstack-image.nix's own `import ../../../.. { system }`) gets
# the same small `pkgs.path` as ./user-flake/small-channel.nix gives NixOS systems. Without it,
# the openstack image's channel copies all of nixpkgs into the store in every route (40-60 s of
# disk writes each).
final: prev: { path = ./user-flake/nixpkgs/source; }
