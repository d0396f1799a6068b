# Tests only: nixpkgs copies its whole source into the store (440 MB here, minutes each) for
# the channel of every make-disk-image image (`copyChannel`) and of the installer, docker and
# lxc images (installer/cd-dvd/channel.nix), once per image evaluated. Here `pkgs.path`, the
# source those channels copy, is ./nixpkgs/source: symbolic links to the snapshot's top-level
# entries (/nixpkgs in nix-eval's chroot). Evaluation reads through them (`pkgs.path + "/lib"`
# for the manuals); copying them into the store copies the links only. The test nixpkgs' own
# `lib.nixosSystem` (./nixpkgs/flake.nix) adds the same overlay to every system it evaluates;
# this module is for the systems the classic entry evaluates (configs/bundled.nix, test.nix).
{
  nixpkgs.overlays = [ (final: prev: { path = ./nixpkgs/source; }) ];
}
