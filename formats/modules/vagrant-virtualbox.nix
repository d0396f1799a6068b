# Format "vagrant-virtualbox": Vagrant box for VirtualBox. Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/vagrant-virtualbox-image.nix (the image builder; NixOS 25.05+ also
# exposes it as a `system.build.images` variant, see nixos/modules/image/images.nix, which is used
# when present). Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/
# disk-size-option.nix), which the image module reads; "auto" without --disk-size
# (../nix/shapes.nix).
(import ../nix/shapes.nix).virtualbox {
  name = "vagrant-virtualbox";
  fileExtension = ".box";
  module = "virtualisation/vagrant-virtualbox-image.nix";
  # nixpkgs' vagrant module asks for the `.box` extension at priority 999, below
  # virtualbox-image.nix's plain "ova", so the box came out named `*.ova` (found by
  # formats/tests/nixpkgs_eval.rs). Only in the variant, where `image.*` exists.
  variantTweaks =
    { lib, options, ... }:
    {
      config = lib.optionalAttrs (options ? image && options.image ? extension) {
        image.extension = lib.mkOverride 90 "box";
      };
    };
}
