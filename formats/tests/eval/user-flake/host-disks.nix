# The host's own disks (data), for ./host.nix and routes.nix.
{
  "/" = {
    device = "/dev/sda2";
    fsType = "ext4";
  };
  "/boot" = {
    device = "/dev/sda1";
    fsType = "vfat";
  };
}
