# A real host's configuration, as nixosModules.all-formats and `--flake` users have one: its
# own root file system and boot loader, its own host name and sshd.
{
  boot.loader.grub.device = "/dev/sda";
  fileSystems."/" = {
    device = "/dev/sda2";
    fsType = "ext4";
  };
  fileSystems."/boot" = {
    device = "/dev/sda1";
    fsType = "vfat";
  };
  networking.hostName = "host";
  services.openssh.enable = true;
  system.stateVersion = "25.11";
}
