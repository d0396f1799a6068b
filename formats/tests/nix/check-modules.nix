# Module-level checks: the real NixOS module system (nixpkgs' lib from NIXGEN_NIXPKGS_LIB)
# over the stub modules of ./fake-nixos, through formats/nix/entry.nix. Run once with
# `-I nixpkgs=fake-nixos/new` (image variants, like 25.05+) and once with
# `-I nixpkgs=fake-nixos/old` (none, like 24.11), `--argstr tree new|old`.
# Evaluates to true, or throws naming what failed.
{ tree }:
let
  new = tree == "new";
  configs = ./fake-nixos/configs;
  entry = args: import ../../nix/entry.nix ({ configuration = toString (configs + "/user.nix"); } // args);
  plain = entry { };
  sized = entry {
    diskSize = "4096";
    specialArgs = builtins.toJSON { mark = "sa"; };
  };
  customised = entry { configuration = toString (configs + "/user-variant.nix"); };
  isoOptions = entry { configuration = toString (configs + "/iso-options.nix"); };
  typo = entry { configuration = toString (configs + "/typo.nix"); };
  fails = v: !(builtins.tryEval (builtins.deepSeq v v)).success;
  # The bundled configuration (no `configuration` argument).
  bundled = import ../../nix/entry.nix { };

  check =
    what: cond:
    if cond then true else throw "check failed (${tree}): ${what}";
  eq =
    what: actual: expected:
    check "${what}: got ${builtins.toJSON actual}, expected ${builtins.toJSON expected}" (
      actual == expected
    );
  has = what: list: x: check "${what}: ${builtins.toJSON x} not in ${builtins.toJSON list}" (builtins.elem x list);

  evalConfig = import <nixpkgs/nixos/lib/eval-config.nix>;
  ng = import ../../nix/lib.nix;
  withFormat =
    name: extra:
    evalConfig {
      modules = [
        (ng.wrap name)
        (configs + "/user.nix")
      ]
      ++ extra;
    };
  raw = withFormat "raw" [ ];
  kexec = (withFormat "kexec" [ ]).config.system.build;
  allFormats = evalConfig {
    modules = [
      ../../nix/all-formats.nix
      (configs + "/user.nix")
      (
        { lib, ... }:
      {
        formatConfigs.raw.boot.kernelParams = [ "from-formatConfigs" ];
        # An option only the image module declares (like amazonImage.name upstream).
        formatConfigs.iso.isoImage.makeUsbBootable = lib.mkForce false;
        formatConfigs.my-format =
          { config, ... }:
          {
            formatAttr = "myThing";
            fileExtension = ".thing";
            system.build.myThing = {
              builder = "custom";
              outPath = "/nix/store/00000000000000000000000000000000-image";
              inherit (config.boot) kernelParams;
            };
          };
      }
      )
    ];
  };
in
builtins.all (x: x) (
[
  (eq "raw builder" sized.raw.builder (if new then "variant" else "legacy"))
  (eq "raw partition table" sized.raw.partitionTableType "legacy")
  (eq "raw-efi partition table" sized.raw-efi.partitionTableType "efi")
  (eq "qcow partition table" sized.qcow.partitionTableType (if new then "legacy" else "hybrid"))
  (eq "qcow format" sized.qcow.format "qcow2")
  (eq "diskSize reaches the image builder" sized.raw-efi.diskSize 4096)
  (eq "no diskSize: auto" plain.raw.diskSize "auto")
  (has "format tweak reaches the builder" sized.raw.kernelParams "console=ttyS0")
  (has "user configuration reaches the builder" sized.raw.kernelParams "user-param")
  (has "specialArgs reach the configuration" sized.raw.kernelParams "mark=sa")
  (has "qcow imports the qemu-guest profile" sized.qcow.initrdModules "virtio_blk")
  (eq "iso is EFI and USB bootable" [ sized.iso.efi sized.iso.usb ] [ true true ])
  (eq "formatVariant" raw.config.formatVariant (if new then "raw" else null))
  (eq "system.build.<attr> is the image on both routes" raw.config.system.build.raw.builder (
    if new then "variant" else "legacy"
  ))
  (eq "an image-module option in the configuration applies" [ isoOptions.iso.usb isoOptions.iso.efi ] [ false true ])
  (check "a misspelt option fails a variant format" (fails typo.raw))
  (check "a misspelt option fails a legacy format" (fails typo.vm))
  (check "a misspelt option fails iso" (fails typo.iso))
  (check "an image-module option fails a format without that module" (fails isoOptions.raw))
  (has "bundled configuration: serial console" bundled.raw-efi.kernelParams "console=ttyS0,115200")
  (check "bundled configuration builds kexec (host name, stateVersion)" (!fails bundled.kexec))
  (eq "kexec keeps its host name with the bundled configuration"
    (evalConfig { modules = [ (ng.wrap "kexec") ../../nix/configuration.nix ]; }).config.networking.hostName
    "kexec"
  )
  (eq "vm keeps its 2048 MiB default" plain.vm.diskSize 2048)
  (eq "vm honours --disk-size" sized.vm.diskSize 4096)
  (eq "vm-nogui has no graphics" plain.vm-nogui.graphics false)
  (check "vm-nogui runs resize at login" (builtins.match ".*/bin/resize" plain.vm-nogui.loginShellInit != null))
  (eq "vm-bootloader boots a boot loader" plain.vm-bootloader.useBootLoader true)
  (eq "kexec tarball holds /kexec_nixos" kexec.kexec_tarball.storeContents [
    {
      object = "kexec-nixos";
      symlink = "/kexec_nixos";
    }
  ])
  (check "kexec script loads the image's kernel" (
    builtins.match ".*kexec --load [^ ]*-kexec-image/bzImage --initrd=initrd.*" kexec.kexec_script.text != null
  ))
  (has "kexec kernel parameters" (withFormat "kexec" [ ]).config.boot.kernelParams "console=ttyS0,115200")
  (eq "kexec-bundle is the executable itself, named like nixos-generators'" plain.kexec-bundle.name "kexec_bundle")
  (check "kexec-bundle writes \$out as a file" (
    builtins.match ".*> \\$out\nchmod \\+x \\$out.*" plain.kexec-bundle.script != null
  ))
  (check "all-formats links the raw image" (
    builtins.match ".*-name '\\*\\.img'.*" allFormats.config.formats.raw.script != null
  ))
  (has "formatConfigs customises a format" allFormats.config.formats.raw.passthru.image.kernelParams "from-formatConfigs")
  (has "formatConfigs keeps the format's own tweaks" allFormats.config.formats.raw.passthru.image.kernelParams "console=ttyS0")
  (eq "formatConfigs sets an option of the image module" allFormats.config.formats.iso.passthru.image.usb false)
  (eq "... keeping the format's own settings" allFormats.config.formats.iso.passthru.image.efi true)
  (eq "formatConfigs adds a format" allFormats.config.formats.my-format.passthru.image.builder "custom")
  (check "a custom format links *fileExtension" (
    builtins.match ".*-name '\\*\\.thing'.*" allFormats.config.formats.my-format.script != null
  ))
]
++ (
  if new then
    [
      (has "user's image.modules.raw merges with the variant" customised.raw.kernelParams "user-variant-param")
      (has "... and keeps nixos-generate's tweaks" customised.raw.kernelParams "console=ttyS0")
    ]
  else
    [ ]
)
)
