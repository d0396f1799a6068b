# STUB of NixOS's base options, for the module-level tests only: system.build as in nixpkgs
# (a submodule with a lazy freeform attribute set of unique values), the few list options the
# format modules append to, a stub pkgs; a few option trees accept any settings.
{ lib, ... }:
let
  t = lib.types;
  # An option holding any settings, with these options declared inside. Names not declared
  # anywhere (e.g. isoImage without iso-image.nix) are errors, as in NixOS.
  open =
    options:
    lib.mkOption {
      default = { };
      type = t.submodule {
        freeformType = t.lazyAttrsOf t.anything;
        inherit options;
      };
    };
in
{
  options = {
    system.build = lib.mkOption {
      default = { };
      type = t.submoduleWith { modules = [ { freeformType = t.lazyAttrsOf (t.uniq t.unspecified); } ]; };
    };
    boot = open {
      kernelParams = lib.mkOption {
        type = t.listOf t.str;
        default = [ ];
      };
      initrd = open {
        availableKernelModules = lib.mkOption {
          type = t.listOf t.str;
          default = [ ];
        };
      };
    };
    environment = open {
      systemPackages = lib.mkOption {
        type = t.listOf t.unspecified;
        default = [ ];
      };
    };
    services = open { };
    systemd = open { };
    networking = open { };
    fileSystems = open { };
    swapDevices = lib.mkOption {
      type = t.listOf t.anything;
      default = [ ];
    };
    documentation = open { };
    system.stateVersion = lib.mkOption { type = t.str; };
    system.nixos = open { };
    system.boot = open { };
  };
  config = {
    _module.args.pkgs = rec {
      fakeOut = name: "/nix/store/00000000000000000000000000000000-${name}";
      runCommand = name: env: script: {
        inherit name script;
        passthru = env.passthru or { };
        outPath = fakeOut name;
      };
      writeText = name: text: {
        inherit name text;
        outPath = fakeOut name;
      };
      writeScript = writeText;
      writeShellScriptBin = writeText;
      callPackage = f: args: import f args;
      runtimeShell = "/bin/sh";
      nukeReferences = fakeOut "nuke-refs";
      kexec-tools = fakeOut "kexec-tools";
      cpio = fakeOut "cpio";
      gzip = fakeOut "gzip";
      coreutils = fakeOut "coreutils";
      findutils = fakeOut "findutils";
      stdenv.hostPlatform = {
        system = "x86_64-linux";
        isx86 = true;
        isAarch = false;
        isRiscV64 = false;
      };
    };
  };
}
