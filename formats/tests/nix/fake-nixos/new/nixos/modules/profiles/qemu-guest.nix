# STUB of nixpkgs' profiles/qemu-guest.nix.
{ ... }:
{
  boot.initrd.availableKernelModules = [ "virtio_blk" ];
}
