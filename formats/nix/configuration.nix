# The configuration nixos-generate builds when given neither `-c` nor `$NIXOS_CONFIG`: a small
# machine that can be reached and checked. Serial console on ttyS0, root logged in
# automatically on the consoles, sshd on. Unlike nixos-generators' example it sets NO password:
# root has none (locked), so sshd only accepts keys you add.
{ lib, ... }:
{
  boot.kernelParams = [ "console=ttyS0,115200" ];

  services.getty.autologinUser = lib.mkDefault "root";

  services.openssh.enable = true;

  networking.hostName = lib.mkDefault "nixos";

  # A small image: no manuals (disk images stay at "auto" size: closure + 512 MiB).
  documentation.enable = lib.mkDefault false;

  # The release of the nixpkgs it is built with: a fresh machine has no older state to keep.
  system.stateVersion = lib.mkDefault lib.trivial.release;
}
