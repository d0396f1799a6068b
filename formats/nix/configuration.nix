# The configuration nixos-generate builds when given neither `-c` nor `$NIXOS_CONFIG`: a small
# machine that can be reached and checked. Serial console on ttyS0, root logged in
# automatically on the consoles, sshd on. Unlike nixos-generators' example it sets NO password:
# root has none (locked), so sshd only accepts keys you add.
#
# Its settings are weaker than `lib.mkDefault`, so a format's own defaults (the kexec host
# name, the installer's autologin user, ...) win instead of conflicting.
{ lib, ... }:
let
  weak = lib.mkOverride 1100;
in
{
  boot.kernelParams = [ "console=ttyS0,115200" ];

  services.getty.autologinUser = weak "root";

  services.openssh.enable = true;

  # A small image: no manuals (disk images stay at "auto" size: closure + 512 MiB).
  documentation.enable = weak false;

  # The release of the nixpkgs it is built with: a fresh machine has no older state to keep.
  system.stateVersion = weak lib.trivial.release;
}
