# Format "vmware": VMware image (VMDK). Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/vmware-image.nix (the image builder; NixOS 25.05+ also exposes it as
# a `system.build.images` variant, see nixos/modules/image/images.nix, which is used when present).
# Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/disk-size-option.nix), which
# the image module reads.
import ../nix/mk-format.nix {
  name = "vmware";
  fileExtension = ".vmdk";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/vmware-image.nix") ];
    };
}
