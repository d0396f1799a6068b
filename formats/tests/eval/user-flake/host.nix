# A real host's configuration, as nixosModules.all-formats and `--flake` users have one: its
# own root file system and boot loader, its own host name and sshd.
{
  imports = [ ./host-base.nix ];
  fileSystems = import ./host-disks.nix;
  boot.loader.grub.device = "/dev/sda";
}
