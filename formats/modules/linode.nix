# Format "linode": Linode image (gzip-compressed raw disk). Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/linode-image.nix (the image builder; NixOS 25.05+ also exposes it as
# a `system.build.images` variant, see nixos/modules/image/images.nix, which is used when present).
# Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/disk-size-option.nix), which
# the image module reads.
import ../nix/mk-format.nix {
  name = "linode";
  fileExtension = ".img.gz";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/linode-image.nix") ];
    };
}
