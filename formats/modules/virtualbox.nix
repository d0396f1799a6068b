# Format "virtualbox": VirtualBox appliance (OVA). Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/virtualbox-image.nix (the image builder; NixOS 25.05+ also exposes it
# as a `system.build.images` variant, see nixos/modules/image/images.nix, which is used when
# present). Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/
# disk-size-option.nix), which the image module reads.
import ../nix/mk-format.nix {
  name = "virtualbox";
  fileExtension = ".ova";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/virtualbox-image.nix") ];
    };
  # Without --disk-size the disk is "auto" (closure + headroom), as nixos-generators built it,
  # instead of virtualbox-image.nix's 50 GiB default (mkOverride 1490); --disk-size still wins.
  tweaks =
    { lib, modulesPath, ... }:
    lib.optionalAttrs (builtins.pathExists (modulesPath + "/virtualisation/disk-size-option.nix")) {
      virtualisation.diskSize = lib.mkOverride 1480 "auto";
    };
}
