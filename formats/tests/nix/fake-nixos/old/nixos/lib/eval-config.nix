# FAKE nixpkgs without image variants (like 24.11): the same stubs, without image/images.nix
# and virtualisation/disk-image.nix.
args: import ../../../new/nixos/lib/eval-config.nix ({ modulesPath = toString ../modules; } // args)
