# Format "virtualbox": VirtualBox appliance (OVA). Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/virtualbox-image.nix (the image builder; NixOS 25.05+ also exposes it
# as a `system.build.images` variant, see nixos/modules/image/images.nix, which is used when
# present). Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/
# disk-size-option.nix), which the image module reads; "auto" without --disk-size
# (../nix/shapes.nix).
(import ../nix/shapes.nix).virtualbox {
  name = "virtualbox";
  fileExtension = ".ova";
  module = "virtualisation/virtualbox-image.nix";
}
