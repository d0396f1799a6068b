# For each format, top-level settings of its nixpkgs image module, as nixos-generators users
# write them in their configuration (null: the module has no option worth setting there). Every
# route of routes.nix passes these through the user's configuration; evaluation fails where the
# option does not reach the image module. Option names read from nixpkgs (26.11-pre snapshot):
# maintainers/scripts/ec2/amazon-image.nix, nixos/modules/virtualisation/*-image.nix,
# installer/cd-dvd/iso-image.nix, installer/netboot/netboot.nix, installer/sd-card/sd-image.nix.
let
  iso = {
    isoImage.volumeID = "NGTEST";
  };
  virtualbox = {
    virtualbox.vmName = "nixos-generate test";
  };
  netboot = {
    netboot.squashfsCompression = "zstd";
  };
  sd = {
    sdImage.compressImage = false;
  };
  vm = {
    virtualisation.memorySize = 1536;
  };
in
{
  amazon.amazonImage.format = "vpc";
  azure.virtualisation.azureImage.vmGeneration = "v2";
  cloudstack = null;
  do.virtualisation.digitalOceanImage.compressionMethod = "gzip";
  docker = null;
  gce.virtualisation.googleComputeImage.compressionLevel = 6;
  hyperv.hyperv.vmDerivationName = "nixos-generate-test";
  install-iso = iso;
  install-iso-hyperv = iso;
  inherit iso;
  kexec = netboot;
  kexec-bundle = netboot;
  kubevirt = null;
  linode.virtualisation.linodeImage.compressionLevel = 6;
  lxc = null;
  lxc-metadata = null;
  openstack = null;
  proxmox.proxmox.qemuConf.cores = 2;
  proxmox-lxc.proxmoxLXC.privileged = true;
  qcow = null;
  qcow-efi = null;
  raw = null;
  raw-efi = null;
  sd-aarch64 = sd;
  sd-aarch64-installer = sd;
  sd-x86_64 = sd;
  vagrant-virtualbox = virtualbox;
  inherit virtualbox;
  vm = vm;
  vm-bootloader = vm;
  vm-nogui = vm;
  vmware.vmware.vmDerivationName = "nixos-generate-test";
}
