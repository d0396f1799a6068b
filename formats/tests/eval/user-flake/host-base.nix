# A real host without its disks and boot loader device (./host.nix adds them).
{
  networking.hostName = "host";
  services.openssh.enable = true;
  system.stateVersion = "25.11";
}
