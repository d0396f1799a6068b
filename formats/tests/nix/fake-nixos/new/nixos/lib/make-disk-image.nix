# STUB of nixpkgs' make-disk-image.nix: returns what it was asked to build.
{
  config,
  diskSize ? "auto",
  format ? "raw",
  partitionTableType ? "legacy",
  builder ? "legacy",
  ...
}:
{
  inherit diskSize format partitionTableType builder;
  outPath = "/nix/store/00000000000000000000000000000000-image";
  inherit (config.boot) kernelParams;
  initrdModules = config.boot.initrd.availableKernelModules;
  grub = config.boot.loader.grub or { };
  fileSystems = builtins.attrNames (config.fileSystems or { });
}
