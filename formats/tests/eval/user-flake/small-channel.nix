# Tests only: nixpkgs copies its whole source into the store (440 MB here, minutes each) for
# the channel of every make-disk-image image (`copyChannel`) and of the installer, docker and
# lxc images (installer/cd-dvd/channel.nix), once per image evaluated. Here `pkgs.path`, the
# source those channels copy, is a one-file directory: the channel derivations still evaluate,
# from a small source; nothing else in an image's evaluation reads pkgs.path's files.
{
  nixpkgs.overlays = [ (final: prev: { path = ./nixpkgs; }) ];
}
