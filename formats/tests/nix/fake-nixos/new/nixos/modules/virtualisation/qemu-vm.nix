# STUB of nixpkgs' qemu-vm.nix: "auto" is rejected, as nixpkgs' assertion does; records what
# reaches the run script.
{ config, lib, modulesPath, ... }:
{
  imports = [ (modulesPath + "/virtualisation/disk-size-option.nix") ];
  options.virtualisation = {
    graphics = lib.mkOption { default = true; };
    useBootLoader = lib.mkOption { default = false; };
  };
  config.system.build.vm =
    assert lib.assertMsg (config.virtualisation.diskSize != "auto") "vm: diskSize auto is not supported";
    {
      builder = "vm";
      outPath = "/nix/store/00000000000000000000000000000000-image";
      inherit (config.virtualisation) diskSize graphics useBootLoader;
      loginShellInit = config.environment.loginShellInit or "";
    };
}
