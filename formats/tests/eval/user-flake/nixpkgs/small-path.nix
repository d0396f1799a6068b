# Tests only: the overlay that gives nixpkgs a small `pkgs.path`: ./source, symbolic links to
# the snapshot's top-level entries (/nixpkgs in nix-eval's chroot). Evaluation reads through them
# (`pkgs.path + "/lib"` for the manuals); copying `pkgs.path` into the store copies the links
# only, where the snapshot itself is 440 MB (30-60 s of disk writes per copy). Every image with
# a NixOS channel copies it (make-disk-image's copyChannel, installer/cd-dvd/channel.nix).
# Applied three ways, one per way nixpkgs is imported:
# - ./flake.nix: this test nixpkgs' `lib.nixosSystem` adds it to every system;
# - ../small-channel.nix: the systems of the classic entry (configs/bundled.nix, test.nix);
# - `-I nixpkgs-overlays=<this file>` (../../../nixpkgs_eval.rs): nixpkgs imported without
#   explicit overlays (nixpkgs' impure overlays: the flake's legacyPackages, and
#   openstack-image.nix's own `import ../../../.. { system }`).
final: prev: { path = ./source; }
