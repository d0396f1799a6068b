# The kexec and kexec-bundle formats' builders (nixpkgs has no equivalent of the bundle; its
# 25.05 `kexec` variant is a different tarball layout, so both formats keep their own).
#
#   system.build.kexec_image   directory: bzImage, initrd, cmdline (kernel command line)
#   system.build.kexec_script  switches the running Linux into this system with kexec; an
#                              SSH public key in /ssh_pubkey becomes root's authorized_keys
#   system.build.kexec_tarball tarball/*.tar.xz to unpack at / : /kexec_nixos + the store paths
#   system.build.kexec_bundle  directory holding one self-extracting executable *-kexec_bundle
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
  keyHook = ''
    if [ -e /authorized_keys ]; then
      mkdir -p -m 0700 /mnt-root/root/.ssh
      cp /authorized_keys /mnt-root/root/.ssh/authorized_keys
      chmod 0600 /mnt-root/root/.ssh/authorized_keys
    fi
  '';
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
  boot.initrd.postMountCommands = keyHook;
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
      kexec --load ${build.kexec_image}/bzImage --initrd=initrd \
        --command-line="$(cat ${build.kexec_image}/cmdline)"
      sync
      echo "kexec_nixos: executing the new kernel; file systems are not unmounted cleanly" >&2
      kexec -e
    '';

    kexec_tarball = pkgs.callPackage (modulesPath + "/../lib/make-system-tarball.nix") {
      fileName = "nixos-kexec-${config.system.nixos.label}-${pkgs.stdenv.hostPlatform.system}";
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
      pkgs.runCommand "kexec-bundle" { } ''
        mkdir -p $out
        bundle=$out/nixos-${pkgs.stdenv.hostPlatform.system}-kexec_bundle
        cat ${header} ${build.kexec_tarball}/tarball/*.tar.xz > "$bundle"
        chmod +x "$bundle"
      '';
  };
}
