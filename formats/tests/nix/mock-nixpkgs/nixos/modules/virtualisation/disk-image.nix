# MOCK: its existence marks a nixpkgs with the full set of image variants (see lib.nix).
{ ... }: { }
