# STUB of nixpkgs' netboot-minimal.nix: the attributes the kexec builders read.
{ lib, ... }:
{
  # As nixpkgs' netboot.nix does.
  system.stateVersion = lib.mkDefault lib.trivial.release;
  system.build.kernel = "/nix/store/00000000000000000000000000000000-linux";
  system.build.netbootRamdisk = "/nix/store/00000000000000000000000000000000-initrd";
  system.build.toplevel = "/nix/store/00000000000000000000000000000000-nixos-system";
  system.boot.loader.kernelFile = "bzImage";
  system.nixos.label = "test";
}
