# Everything flake.nix and default.nix expose, built from one nixpkgs:
#   nixpkgsLib   nixpkgs' lib
#   nixosSystem  nixpkgs' lib.nixosSystem (default.nix passes an eval-config wrapper)
#   src          the repository root
# The formats come from ../registry.toml through ./lib.nix: there is no second list.
{
  nixpkgsLib,
  nixosSystem,
  src,
}:
let
  ng = import ./lib.nix;
  version = (builtins.fromTOML (builtins.readFile "${toString src}/Cargo.toml")).workspace.package.version;

  # nixosModules.<format> (the format + its options, like nixos-generators) and all-formats.
  nixosModules = builtins.mapAttrs (name: _: ng.wrap name) ng.formats // {
    all-formats = ./all-formats.nix;
  };

  # nixos-generators' nixosGenerate, same arguments and meaning: the build output of `format`
  # for the configuration `modules` (nixpkgs' image variant where it has one).
  nixosGenerate =
    {
      pkgs ? null,
      lib ? nixpkgsLib,
      nixosSystem ? defaultNixosSystem,
      format,
      system ? null,
      specialArgs ? { },
      modules ? [ ],
      customFormats ? { },
    }:
    let
      custom = builtins.mapAttrs (_: ng.wrapCustom) customFormats;
      formatModule =
        custom.${format} or nixosModules.${format}
          or (throw "nixosGenerate: unknown format \"${format}\"; known: ${builtins.concatStringsSep " " ng.names}");
      image = nixosSystem {
        inherit pkgs specialArgs;
        system =
          if system != null then
            system
          else if pkgs != null then
            pkgs.stdenv.hostPlatform.system
          else
            throw "nixosGenerate: give `system` or `pkgs`";
        lib = if lib != null then lib else pkgs.lib;
        modules = [ formatModule ] ++ modules;
      };
    in
    ng.imageOf image.config;
  defaultNixosSystem = nixosSystem;

  packageFor = pkgs: pkgs.callPackage ./package.nix { inherit src version; };

  # Formats the harness can boot on this system (registry profile and system).
  bootableOn =
    system: f:
    let
      isX86 = builtins.match "(x86_64|i686)-.*" system != null;
    in
    (f.system == "any" || f.system == system)
    && builtins.elem f.profile (
      [
        "direct-kernel"
        "vm-bootloader"
        "efi-disk"
        "iso"
        "kexec"
      ]
      ++ (if isX86 then [ "bios-disk" ] else [ ])
    );

  checksFor =
    pkgs:
    let
      system = pkgs.stdenv.hostPlatform.system;
      package = packageFor pkgs;
      bootCheck =
        f:
        let
          image = nixosGenerate {
            inherit system;
            format = f.name;
            modules = [ ./configuration.nix ];
          };
        in
        pkgs.runCommand "boot-${f.name}"
          {
            nativeBuildInputs = [ package ];
            # A whole NixOS boot under emulation exceeds the harness's timeouts on builders.
            requiredSystemFeatures = [ "kvm" ];
          }
          ''
            export HOME=$TMPDIR
            nixos-generate --check -f ${f.name} --image ${image} --accel kvm \
              ${nixpkgsLib.optionalString (pkgs ? OVMF) "--firmware ${pkgs.OVMF.firmware}"}
            touch $out
          '';
      boot = builtins.listToAttrs (
        map (f: {
          name = "boot-${f.name}";
          value = bootCheck f;
        }) (builtins.filter (bootableOn system) ng.formatList)
      );
    in
    boot
    // {
      nixos-generate = package;
      rust-tests = pkgs.callPackage ./package.nix {
        inherit src version;
        runTests = true;
      };
    };

  devShellFor =
    pkgs:
    pkgs.mkShell {
      packages =
        with pkgs;
        [
          cargo
          rustc
          clippy
          rustfmt
          nix
          qemu
          socat
          zstd
          xz
          cpio
        ]
        ++ nixpkgsLib.optionals stdenv.hostPlatform.isLinux (
          [
            OVMF
            xorriso
            mtools
            dosfstools
            gptfdisk
            e2fsprogs
            squashfsTools
          ]
          ++ nixpkgsLib.optional (pkgs ? vhost-device-vsock) vhost-device-vsock
          ++ nixpkgsLib.optional (pkgs ? mmdebstrap) mmdebstrap
        );
    };

  # The RFC 166 style formatter: `nixfmt` since 25.05, `nixfmt-rfc-style` before.
  formatterFor =
    pkgs:
    if nixpkgsLib.versionAtLeast nixpkgsLib.trivial.release "25.05" then
      pkgs.nixfmt
    else
      pkgs.nixfmt-rfc-style;
in
{
  inherit
    ng
    version
    nixosModules
    nixosGenerate
    packageFor
    bootableOn
    checksFor
    devShellFor
    formatterFor
    ;
}
