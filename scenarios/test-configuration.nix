# The NixOS configuration the scenario matrix builds every format from when its image source is
# `nixos` (NIXGEN_IMAGE_SOURCE=nixos, the default where nixpkgs is found). Small on purpose:
# what the scenarios need and nothing else.
#   - a serial console on ttyS0 (the harness reads it, the console scenario types into it),
#   - root logged in automatically on the consoles (mkDefault: the installer formats log in
#     their own `nixos` user instead, which nixpkgs sets at normal priority),
#   - no documentation, no sshd, no firewall rules to wait for,
#   - the hostname the snapshots record.
# Settings a format's image module also makes (boot menu timeout, host name, sshd, manuals) are
# `prefer` (priority 900): stronger than the image modules' `mkDefault`s, weaker than their plain
# definitions, so no format conflicts with this file (checked against a real nixpkgs by
# formats/tests/nixpkgs_eval.rs, route cli-test-configuration/<format>).
{ lib, ... }:
let
  prefer = lib.mkOverride 900;
in
{
  boot.kernelParams = [ "console=ttyS0,115200" ];
  # A short boot menu: the serial console still shows it, nobody waits at it.
  boot.loader.timeout = prefer 1;

  services.getty.autologinUser = lib.mkDefault "root";

  networking.hostName = prefer "scenario";
  networking.firewall.enable = false;
  services.openssh.enable = prefer false;

  documentation.enable = prefer false;
  documentation.nixos.enable = prefer false;

  system.stateVersion = lib.mkDefault lib.trivial.release;
}
