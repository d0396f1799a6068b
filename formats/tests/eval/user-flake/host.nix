# A real host's configuration, as nixosModules.all-formats and `--flake` users have one: its
# own disks (root, /boot, swap, an encrypted volume) and boot loader device, which no image
# built from it has, and settings every image keeps (host name, sshd, time zone).
{
  networking.hostName = "host";
  services.openssh.enable = true;
  time.timeZone = "Europe/Berlin";
  system.stateVersion = "25.11";

  fileSystems = {
    "/" = {
      device = "/dev/sda2";
      fsType = "ext4";
    };
    "/boot" = {
      device = "/dev/sda1";
      fsType = "vfat";
    };
    "/srv" = {
      device = "/dev/mapper/srv";
      fsType = "ext4";
    };
  };
  swapDevices = [ { device = "/dev/sda3"; } ];
  boot.initrd.luks.devices.srv.device = "/dev/sda4";
  boot.loader.grub.device = "/dev/disk/by-id/ata-HOST";
}
