# Calls flake.nix's outputs with a fake nixpkgs input: nixpkgs' real lib (NIXGEN_NIXPKGS_LIB),
# lib.nixosSystem = the module-system stub of ./fake-nixos/new, stub package sets. Checks the
# outputs' shape and runs lib.nixosGenerate end to end through the real module system; the
# same for default.nix.
# Evaluates to true, or throws naming what failed.
let
  lib = import (builtins.getEnv "NIXGEN_NIXPKGS_LIB");
  ng = import ../../nix/lib.nix;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
    "x86_64-darwin"
    "aarch64-darwin"
  ];
  fakePkgs = system: rec {
    stdenv.hostPlatform = {
      inherit system;
      isLinux = lib.hasSuffix "-linux" system;
    };
    callPackage = _: args: {
      name = "nixos-generate";
      runsTests = args.runTests or false;
      outPath = "/nix/store/00000000000000000000000000000000-nixos-generate";
      meta.mainProgram = "nixos-generate";
      type = "derivation";
    };
    runCommand = name: env: _: {
      inherit name;
      inherit (env) requiredSystemFeatures;
    };
    mkShell = args: { shellPackages = args.packages; };
    nixfmt = "nixfmt";
    nixfmt-rfc-style = "nixfmt-rfc-style";
    OVMF.firmware = "/ovmf/OVMF_CODE.fd";
  };
  nixpkgs = {
    lib = lib // {
      nixosSystem = args: import ./fake-nixos/new/nixos/lib/eval-config.nix (removeAttrs args [ "lib" "pkgs" ]);
    };
    legacyPackages = lib.genAttrs systems fakePkgs;
  };
  flake = import ../../../flake.nix;
  outputs = flake.outputs {
    self = outputs // {
      outPath = toString ../../..;
    };
    inherit nixpkgs;
  };

  # default.nix with the same fake nixpkgs (its eval-config is found through pkgs.path).
  classic = import ../../../default.nix {
    pkgs = fakePkgs "x86_64-linux" // {
      inherit lib;
      path = ./fake-nixos/new;
    };
  };

  sort = builtins.sort builtins.lessThan;
  eq =
    what: actual: expected:
    if actual == expected then
      true
    else
      throw "check failed: ${what}: got ${builtins.toJSON actual}, expected ${builtins.toJSON expected}";
  generate =
    args:
    outputs.lib.nixosGenerate (
      {
        system = "x86_64-linux";
        modules = [ ./fake-nixos/configs/user.nix ];
      }
      // args
    );
in
builtins.all (x: x) [
  (eq "flake inputs: nixpkgs only" (builtins.attrNames flake.inputs) [ "nixpkgs" ])
  (eq "packages on every system" (builtins.attrNames outputs.packages) (sort systems))
  (eq "package names" (builtins.attrNames outputs.packages.x86_64-linux) [ "default" "nixos-generate" ])
  (eq "apps" outputs.apps.aarch64-darwin.default.program "/nix/store/00000000000000000000000000000000-nixos-generate/bin/nixos-generate")
  (eq "checks on Linux only" (builtins.attrNames outputs.checks) [ "aarch64-linux" "x86_64-linux" ])
  (eq "boot checks need kvm" outputs.checks.x86_64-linux.boot-raw-efi.requiredSystemFeatures [ "kvm" ])
  (eq "rust-tests runs the tests" outputs.checks.x86_64-linux.rust-tests.runsTests true)
  (eq "nixosModules" (sort (builtins.attrNames outputs.nixosModules)) (sort (ng.names ++ [ "all-formats" ])))
  (eq "devShells" (builtins.attrNames outputs.devShells.x86_64-linux) [ "default" ])
  (eq "formatter" outputs.formatter.x86_64-linux (
    if lib.versionAtLeast lib.trivial.release "25.05" then "nixfmt" else "nixfmt-rfc-style"
  ))
  (eq "nixosGenerate builds the variant" (generate { format = "raw-efi"; }).builder "variant")
  (eq "nixosGenerate: modules reach the image" (builtins.elem "user-param" (generate { format = "raw"; }).kernelParams) true)
  (eq "nixosGenerate: specialArgs" (builtins.elem "mark=sa" (generate {
    format = "raw";
    specialArgs.mark = "sa";
  }).kernelParams) true)
  (eq "nixosGenerate: legacy-route format" (generate { format = "vm"; }).builder "vm")
  (eq "nixosGenerate: customFormats" (generate {
    format = "mine";
    customFormats.mine = ./fake-nixos/configs/custom-format.nix;
  }).builder "custom")
  (eq "default.nix attributes" (builtins.attrNames classic) [ "checks" "default" "lib" "nixos-generate" "nixosGenerate" "nixosModules" "shell" ])
  (eq "default.nix nixosGenerate" (classic.lib.nixosGenerate {
    system = "x86_64-linux";
    format = "iso";
    modules = [ ./fake-nixos/configs/user.nix ];
  }).builder "iso")
  (eq "default.nix boot checks = flake's" (builtins.attrNames classic.checks) (builtins.attrNames outputs.checks.x86_64-linux))
  (eq "upstream spelling nixosGenerate" ((outputs.nixosGenerate { format = "vm"; system = "x86_64-linux"; modules = [ ]; }).builder) "vm")
]
