# A nixos-generators style configuration: sets an option only the ISO image module declares,
# without importing it.
{ lib, ... }:
{
  imports = [ ./user.nix ];
  isoImage.makeUsbBootable = lib.mkForce false;
}
