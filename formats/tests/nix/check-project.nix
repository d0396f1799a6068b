# Checks the structure flake.nix and default.nix expose (formats/nix/project.nix) without
# nixpkgs: nixosModules and the boot checks cover exactly the registry's formats. Evaluates to
# true, or throws naming what failed.
let
  ng = import ../../nix/lib.nix;
  project = import ../../nix/project.nix {
    nixpkgsLib = {
      optionalString = c: s: if c then s else "";
    };
    nixosSystem = _: throw "not evaluated in this test";
    src = toString ../../..;
  };
  fakePkgs = system: {
    stdenv.hostPlatform.system = system;
    callPackage = _: _: { };
    runCommand = name: _: _: { inherit name; };
  };
  sort = builtins.sort builtins.lessThan;
  eq =
    what: actual: expected:
    if actual == expected then
      true
    else
      throw "check failed: ${what}: got ${builtins.toJSON actual}, expected ${builtins.toJSON expected}";
  bootProfiles = [
    "direct-kernel"
    "vm-bootloader"
    "bios-disk"
    "efi-disk"
    "iso"
    "kexec"
  ];
  expectedBoot =
    system: noBios:
    sort (
      map (f: "boot-${f.name}") (
        builtins.filter (
          f:
          (f.system == "any" || f.system == system)
          && builtins.elem f.profile bootProfiles
          && !(noBios && f.profile == "bios-disk")
        ) ng.formatList
      )
    );
  bootNames =
    system:
    sort (
      builtins.filter (n: builtins.substring 0 5 n == "boot-") (
        builtins.attrNames (project.checksFor (fakePkgs system))
      )
    );
in
builtins.all (x: x) [
  (eq "nixosModules = registry + all-formats" (sort (builtins.attrNames project.nixosModules)) (
    sort (ng.names ++ [ "all-formats" ])
  ))
  (eq "x86_64-linux boot checks" (bootNames "x86_64-linux") (expectedBoot "x86_64-linux" false))
  (eq "aarch64-linux boot checks (no BIOS)" (bootNames "aarch64-linux") (expectedBoot "aarch64-linux" true))
  (eq "other checks" (sort (
    builtins.filter (n: builtins.substring 0 5 n != "boot-") (
      builtins.attrNames (project.checksFor (fakePkgs "x86_64-linux"))
    )
  )) [ "nixos-generate" "rust-tests" ])
  (eq "version from Cargo.toml" project.version
    (builtins.fromTOML (builtins.readFile ../../../Cargo.toml)).workspace.package.version
  )
  (eq "nixosGenerate rejects an unknown format" (builtins.tryEval (project.nixosGenerate {
    system = "x86_64-linux";
    format = "nosuch";
  })).success false)
]
