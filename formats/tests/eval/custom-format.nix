# A `--format-path` / `customFormats` module written for nixos-generators: it imports a nixpkgs
# image module and names the build attribute and the file's suffix.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/virtualisation/qemu-vm.nix") ];
  formatAttr = "vm";
  fileExtension = "-vm";
}
