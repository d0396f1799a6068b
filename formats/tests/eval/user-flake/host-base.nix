# A real host without its disks (./host.nix adds them).
{
  boot.loader.grub.device = "/dev/sda";
  networking.hostName = "host";
  services.openssh.enable = true;
  system.stateVersion = "25.11";
}
