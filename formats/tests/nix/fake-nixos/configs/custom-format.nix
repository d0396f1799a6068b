# A custom format in nixos-generators' style: makes system.build.<formatAttr> exist.
{ config, ... }:
{
  formatAttr = "customImage";
  fileExtension = ".custom";
  system.build.customImage = {
    builder = "custom";
    outPath = "/nix/store/00000000000000000000000000000000-custom";
    inherit (config.boot) kernelParams;
  };
}
