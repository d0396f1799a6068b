# Format "vm-bootloader": a QEMU virtual machine that boots through the configuration's boot
# loader from a generated disk image instead of loading the kernel directly.
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/qemu-vm.nix
# (`virtualisation.useBootLoader`, `useEFIBoot`; disk size as for "vm").
import ../nix/mk-format.nix {
  name = "vm-bootloader";
  legacy =
    { lib, modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/qemu-vm.nix") ];
      virtualisation.diskSize = lib.mkDefault 2048;
      virtualisation.useBootLoader = true;
    };
}
