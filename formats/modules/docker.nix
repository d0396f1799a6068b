# Format "docker": a root file system tarball for docker/podman with systemd as init (podman
# runs it best: `podman import` then `podman run --systemd=always ... /init`).
# Based on reading NixOS/nixpkgs nixos/modules/virtualisation/docker-image.nix (builds
# `system.build.tarball` with make-system-tarball and boot.isContainer). nixpkgs has no image
# variant for it. No boot loader in a container; the journal goes to the container's console.
import ../nix/mk-format.nix {
  name = "docker";
  fileExtension = ".tar.xz";
  legacy =
    { lib, modulesPath, ... }:
    {
      imports = [ (modulesPath + "/virtualisation/docker-image.nix") ];
    };
  tweaks =
    { lib, ... }:
    {
      boot.loader.grub.enable = lib.mkForce false;
      boot.loader.systemd-boot.enable = lib.mkForce false;
      services.journald.console = "/dev/console";
    };
}
