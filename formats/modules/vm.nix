# Format "vm": a QEMU virtual machine; result/bin/run-<hostname>-vm boots the kernel directly
# and shares the host's /nix/store.
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/qemu-vm.nix
# (`system.build.vm`, `virtualisation.*`; it sets `diskSizeAutoSupported = false`, so the
# disk defaults to 2048 MiB here and `--disk-size auto` is rejected by nixpkgs' assertion).
import ../nix/mk-format.nix {
  name = "vm";
  legacy =
    { lib, modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/qemu-vm.nix") ];
      virtualisation.diskSize = lib.mkDefault 2048;
    };
}
