# The kexec and kexec-bundle formats' builders (nixpkgs has no equivalent of the bundle; its
# 25.05 `kexec` variant is a different tarball layout, so both formats keep their own).
#
#   system.build.kexec_image   directory: bzImage, initrd, cmdline (kernel command line)
#   system.build.kexec_script  switches the running Linux into this system with kexec; an
#                              SSH public key in /ssh_pubkey becomes root's authorized_keys
#   system.build.kexec_tarball tarball/nixos-system-<system>.tar.xz (nixos-generators' name) to
#                              unpack at / : /kexec_nixos + the store paths
#   system.build.kexec_bundle  the self-extracting executable itself (a file-shaped output,
#                              `<hash>-kexec_bundle`, like nixos-generators)
#
# The caller's SSH key reaches root's authorized_keys in stage 1: with the scripted initrd
# through boot.initrd.postMountCommands, with systemd's (the default since NixOS 26.05; it
# asserts postMountCommands is empty) through an initrd service before the switch to stage 2.
#
# Based on reading NixOS/nixpkgs nixos/modules/installer/netboot/netboot.nix (kernel +
# `system.build.netbootRamdisk`, an initrd carrying the store as squashfs),
# nixos/modules/installer/netboot/netboot-minimal.nix and nixos/lib/make-system-tarball.nix
# (`storeContents` symlinks, output `tarball/<fileName>.tar.xz`).
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:
let
  build = config.system.build;
  # The system lives inside the initrd's squashfs: referring to it without its string context
  # keeps the toplevel closure out of the tarball (the initrd already carries it).
  init = "${builtins.unsafeDiscardStringContext build.toplevel}/init";
  cmdline = "init=${init} ${toString config.boot.kernelParams}";
  # The key comes from the machine running the script, so it is added as data in an extra
  # initrd archive, never evaluated.
  keyHook = root: ''
    if [ -e /authorized_keys ]; then
      mkdir -p -m 0700 ${root}/root/.ssh
      cp /authorized_keys ${root}/root/.ssh/authorized_keys
      chmod 0600 ${root}/root/.ssh/authorized_keys
    fi
  '';
  systemdInitrd = config.boot.initrd.systemd.enable or false;
in
{
  imports = [ (modulesPath + "/installer/netboot/netboot-minimal.nix") ];

  boot.loader.grub.enable = lib.mkForce false;
  boot.loader.systemd-boot.enable = lib.mkForce false;
  boot.kernelParams = [
    "console=ttyS0,115200"
    "panic=30"
    "boot.panic_on_fail"
  ];
  boot.initrd.postMountCommands = lib.mkIf (!systemdInitrd) (keyHook "/mnt-root");
  boot.initrd.systemd.services = lib.mkIf systemdInitrd {
    nixos-generate-kexec-key = {
      description = "Authorize the kexec caller's SSH key for root";
      wantedBy = [ "initrd.target" ];
      after = [ "initrd-fs.target" ];
      before = [
        "initrd.target"
        "initrd-nixos-activation.service"
      ];
      unitConfig.DefaultDependencies = false;
      serviceConfig.Type = "oneshot";
      script = keyHook "/sysroot";
    };
  };
  systemd.services.sshd.wantedBy = lib.mkForce [ "multi-user.target" ];
  networking.hostName = lib.mkDefault "kexec";

  system.build = {
    kexec_image = pkgs.runCommand "kexec-image" { nativeBuildInputs = [ pkgs.nukeReferences ]; } ''
      mkdir -p $out
      cp ${build.kernel}/${config.system.boot.loader.kernelFile} $out/bzImage
      cp ${build.netbootRamdisk}/initrd $out/initrd
      printf '%s\n' ${lib.escapeShellArg cmdline} > $out/cmdline
      nuke-refs $out/bzImage
    '';

    kexec_script = pkgs.writeScript "kexec-nixos" ''
      #!${pkgs.runtimeShell}
      set -eu
      export PATH=${
        lib.makeBinPath [
          pkgs.kexec-tools
          pkgs.cpio
          pkgs.gzip
          pkgs.coreutils
          pkgs.findutils
        ]
      }:$PATH
      work=$(mktemp -d)
      cd "$work"
      mkdir extra
      if [ -e /ssh_pubkey ]; then
        cat /ssh_pubkey >> extra/authorized_keys
      fi
      (cd extra && find . -type f | cpio -o -H newc | gzip -9) > extra.gz
      cat ${build.kexec_image}/initrd extra.gz > initrd
      # The command line literally (not read from the cmdline file), so a reader of this
      # script (the boot harness) sees what kexec gets.
      kexec --load ${build.kexec_image}/bzImage --initrd=initrd \
        --command-line=${lib.escapeShellArg cmdline}
      sync
      echo "kexec_nixos: executing the new kernel; file systems are not unmounted cleanly" >&2
      kexec -e
    '';

    # make-system-tarball's default name, nixos-system-<system>.tar.xz, as nixos-generators.
    kexec_tarball = pkgs.callPackage (modulesPath + "/../lib/make-system-tarball.nix") {
      contents = [ ];
      storeContents = [
        {
          object = build.kexec_script;
          symlink = "/kexec_nixos";
        }
      ];
    };

    kexec_bundle =
      let
        header = pkgs.writeText "kexec-bundle-header" ''
          #!/bin/sh
          # Self-extracting NixOS kexec bundle: unpacks its tarball at / and runs /kexec_nixos.
          set -eu
          line=$(awk '/^__ARCHIVE_BELOW__$/ { print NR + 1; exit 0 }' "$0")
          tail -n "+$line" "$0" | tar -xJ -C /
          /kexec_nixos
          exit 1
          __ARCHIVE_BELOW__
        '';
      in
      pkgs.runCommand "kexec_bundle" { } ''
        cat ${header} ${build.kexec_tarball}/tarball/*.tar.xz > $out
        chmod +x $out
      '';
  };
}
