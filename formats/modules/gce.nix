# Format "gce": Google Compute Engine image. Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/google-compute-image.nix (the image builder; NixOS 25.05+ also
# exposes it as a `system.build.images` variant, see nixos/modules/image/images.nix, which is used
# when present). Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/
# disk-size-option.nix), which the image module reads.
import ../nix/mk-format.nix {
  name = "gce";
  fileExtension = ".raw.tar.gz";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/google-compute-image.nix") ];
    };
}
