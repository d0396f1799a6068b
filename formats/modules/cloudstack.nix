# Format "cloudstack": Apache CloudStack image (qcow2, MBR, GRUB).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/cloudstack-config.nix (guest
# settings, cloud-init) and nixos/lib/make-disk-image.nix; newer nixpkgs has a `cloudstack`
# variant in nixos/modules/image/images.nix, used when present. Without it, the image is built
# here with make-disk-image (qcow2, legacy table) and carries a /etc/nixos/configuration.nix
# importing the CloudStack settings, so `nixos-rebuild` inside keeps them.
import ../nix/mk-format.nix {
  name = "cloudstack";
  fileExtension = ".qcow2";
  legacy =
    {
      config,
      lib,
      pkgs,
      modulesPath,
      ...
    }:
    {
      imports = [ (modulesPath + "/virtualisation/cloudstack-config.nix") ];

      fileSystems."/".fsType = lib.mkDefault "ext4";

      system.build.cloudstackImage = import (modulesPath + "/../lib/make-disk-image.nix") {
        inherit lib config pkgs;
        diskSize = config.virtualisation.diskSize or "auto";
        format = "qcow2";
        configFile = pkgs.writeText "configuration.nix" ''
          { modulesPath, ... }:
          {
            imports = [ (modulesPath + "/virtualisation/cloudstack-config.nix") ];
          }
        '';
      };
    };
}
