# STUB of NixOS's base options, for the module-level tests only: system.build as in nixpkgs
# (a submodule with a lazy freeform attribute set of unique values), the few list options the
# format modules append to, a stub pkgs, and everything else accepted freely.
{ lib, ... }:
let
  t = lib.types;
in
{
  options = {
    system.build = lib.mkOption {
      default = { };
      type = t.submoduleWith { modules = [ { freeformType = t.lazyAttrsOf (t.uniq t.unspecified); } ]; };
    };
    boot.kernelParams = lib.mkOption {
      type = t.listOf t.str;
      default = [ ];
    };
    boot.initrd.availableKernelModules = lib.mkOption {
      type = t.listOf t.str;
      default = [ ];
    };
    environment.systemPackages = lib.mkOption {
      type = t.listOf t.unspecified;
      default = [ ];
    };
  };
  config = {
    _module.freeformType = t.lazyAttrsOf t.anything;
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
