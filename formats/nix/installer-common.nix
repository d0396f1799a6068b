# Shared by the install-iso formats: the NixOS installer ISO, with sshd (and wpa_supplicant)
# started at boot instead of waiting for a manual start, so a headless machine is reachable.
# Based on reading NixOS/nixpkgs nixos/modules/installer/cd-dvd/installation-cd-base.nix
# (imports iso-image.nix and the installation-device profile, which leaves sshd and
# wpa_supplicant without `wantedBy`).
{ lib, ... }:
{
  systemd.services.sshd.wantedBy = lib.mkForce [ "multi-user.target" ];
  systemd.services.wpa_supplicant.wantedBy = lib.mkForce [ "multi-user.target" ];
}
