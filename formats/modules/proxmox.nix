# Format "proxmox": Proxmox VE backup archive (VMA, zstd); nixpkgs names it
# vzdump-qemu-<proxmox.filenameSuffix>.vma.zst, the prefix qmrestore requires. Based on reading
# NixOS/nixpkgs nixos/modules/virtualisation/proxmox-image.nix (the image builder; NixOS 25.05+ also
# exposes it as a `system.build.images` variant, see nixos/modules/image/images.nix, which is used
# when present). Disk size: `virtualisation.diskSize` (nixos/modules/virtualisation/
# disk-size-option.nix), which the image module reads.
import ../nix/mk-format.nix {
  name = "proxmox";
  fileExtension = ".vma.zst";
  legacy =
    { modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/proxmox-image.nix") ];
    };
}
