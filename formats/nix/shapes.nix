# The shapes several formats share, each a function from what differs to the format's module
# (through ./mk-format.nix). Used by ../modules/<name>.nix:
#
#   disk        raw, raw-efi, qcow, qcow-efi: nixpkgs' disk-image.nix variants, else
#               make-disk-image (./disk-legacy.nix); kernel messages on the serial console ttyS0
#   container   lxc, lxc-metadata, proxmox-lxc: a nixpkgs container module, no boot loader
#   virtualbox  virtualbox, vagrant-virtualbox: a nixpkgs VirtualBox image module, disk "auto"
#               unless --disk-size says otherwise
let
  ng = import ./lib.nix;
in
{
  # make-disk-image's `format` (raw or qcow2) and the build attribute are the registry's `disk`
  # and `attr` (../registry.toml); `partitionTableType` is make-disk-image's (legacy, efi,
  # hybrid). Both routes honour `virtualisation.diskSize`.
  disk =
    {
      name,
      partitionTableType,
      # Kernel consoles after ttyS0 (the last `console=` is the primary one), given
      # `{ lib, pkgs }`.
      extraConsoles ? _: [ ],
      # The format's own settings beyond these (a NixOS module).
      tweaks ? { },
    }:
    let
      fmt = ng.formats.${name};
    in
    import ./mk-format.nix {
      inherit name;
      fileExtension =
        {
          raw = ".img";
          qcow2 = ".qcow2";
        }
        .${fmt.disk};
      legacy = import ./disk-legacy.nix {
        inherit (fmt) attr;
        format = fmt.disk;
        inherit partitionTableType;
      };
      tweaks =
        { lib, pkgs, ... }:
        {
          imports = [ tweaks ];
          boot.kernelParams = [ "console=ttyS0" ] ++ extraConsoles { inherit lib pkgs; };
          boot.loader.timeout = lib.mkDefault 0;
        };
      variantTweaks = ./disk-variant.nix;
    };

  # `module`: the nixpkgs module that builds the tarball, relative to nixos/modules.
  container =
    { name, module }:
    import ./mk-format.nix {
      inherit name;
      fileExtension = ".tar.xz";
      legacy =
        { modulesPath, ... }:
        {
          imports = [ (modulesPath + "/${module}") ];
        };
      tweaks =
        { lib, ... }:
        {
          boot.loader.grub.enable = lib.mkForce false;
          boot.loader.systemd-boot.enable = lib.mkForce false;
        };
    };

  # `module`: the nixpkgs image module, relative to nixos/modules; `variantTweaks` as in
  # ./mk-format.nix.
  virtualbox =
    {
      name,
      fileExtension,
      module,
      variantTweaks ? { },
    }:
    import ./mk-format.nix {
      inherit name fileExtension variantTweaks;
      legacy =
        { modulesPath, ... }:
        {
          imports = [ (modulesPath + "/${module}") ];
        };
      # Without --disk-size the disk is "auto" (closure + headroom), as nixos-generators built
      # it, instead of virtualbox-image.nix's 50 GiB default (mkOverride 1490); --disk-size
      # still wins.
      tweaks =
        { lib, modulesPath, ... }:
        lib.optionalAttrs (builtins.pathExists (modulesPath + "/virtualisation/disk-size-option.nix")) {
          virtualisation.diskSize = lib.mkOverride 1480 "auto";
        };
    };
}
