# Format "kubevirt": KubeVirt image (qcow2). Based on reading NixOS/nixpkgs
# nixos/modules/virtualisation/kubevirt.nix (the image builder; NixOS 25.05+ also exposes it as a
# `system.build.images` variant, see nixos/modules/image/images.nix, which is used when present).
# Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/disk-size-option.nix), which
# the image module reads.
import ../nix/mk-format.nix {
  name = "kubevirt";
  fileExtension = ".qcow2";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/kubevirt.nix") ];
    };
}
