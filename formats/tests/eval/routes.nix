# Every route a user takes to an image, for every format it applies to, evaluated against the
# real nixpkgs that ../../../../shared/nixpkgs-eval provides (`<nixpkgs>`, and /nixpkgs for the
# test flake). Run by ../nixpkgs_eval.rs, one Nix process per group:
#
#   nix-instantiate --eval --strict --json routes.nix --argstr group cli
#
# evaluates to { "<route>/<format>" = { ok = true; drv = <drvPath>; file = <the file the build
# will produce, where nixpkgs says it (image.filePath, make-system-tarball's fileName, the ISO's
# isoName), else null>; ... } or { ok = false; } }. A failure inside one route does not stop the
# others (builtins.tryEval); `--argstr only <route>` evaluates that one route alone, without
# tryEval, so Nix prints its error; `--arg names true` lists every group's route names.
{
  group ? null,
  only ? null,
  names ? false,
}:
let
  ng = import ../../nix/lib.nix;
  lib = import <nixpkgs/lib>;
  imageOptions = import ./image-options.nix;
  entry = import ../../nix/entry.nix;

  # Builds only nothing: the source copy is small (no target/, no .git), made once per process.
  src = builtins.path {
    name = "source";
    path = ../../..;
    filter =
      path: type:
      let
        base = baseNameOf path;
      in
      !(builtins.elem base [
        "target"
        ".git"
      ])
      && !(lib.hasPrefix "result" base);
  };

  userFlake = builtins.getFlake "path:${toString ./user-flake}";
  nixpkgsFlake = userFlake.inputs.nixpkgs;

  # nixos-generate's flake.nix, called the way Nix calls a flake's outputs, with the snapshot as
  # its `nixpkgs` input (what `inputs.nixos-generate.inputs.nixpkgs.follows` gives a user).
  ngFlake =
    let
      outputs = (import (src + "/flake.nix")).outputs {
        self = outputs // {
          outPath = src;
        };
        nixpkgs = nixpkgsFlake;
      };
    in
    outputs;

  formatsOn =
    system:
    builtins.filter (f: f.system == "any" || f.system == system) ng.formatList;

  # Where nixpkgs says which file the build produces (relative to the build result).
  fileOf =
    drv:
    let
      image = drv.passthru.image or drv;
    in
    if image ? passthru.filePath then
      image.passthru.filePath
    else if image ? isoName then
      "iso/${image.isoName}"
    else if image ? fileName && lib.hasSuffix "tarball" (image.name or "") then
      "tarball/${image.fileName}.tar.xz"
    else
      null;

  result = drv: {
    drv = drv.drvPath;
    file = fileOf drv;
  };

  # The format's top-level image options (image-options.nix) and the bundled configuration.
  userModules = name: [ ./configs/bundled.nix ] ++ withOptions name;

  withOptions = name: lib.optional (imageOptions.${name} != null) imageOptions.${name};

  perFormat =
    prefix: system: f:
    lib.listToAttrs (
      map (fmt: {
        name = "${prefix}/${fmt.name}";
        value = f fmt;
      }) (formatsOn system)
    );

  # `nixos-generate -f F` with the bundled configuration, x86_64: one attribute set, so that the
  # routes that need the same image (cli/F and disk-size/F's comparison) share one evaluation
  # when they are in one Nix process.
  bundled = entry { configuration = toString ./configs/bundled.nix; };

  cli =
    args: name:
    (entry (
      {
        configuration = toString ./configs/bundled.nix;
      }
      // args
    )).${name};

  groups = {
    # `nixos-generate -f F` with the bundled configuration, x86_64 and aarch64, and
    # `--disk-size`: whether the derivation changes is compared with the registry's disk_size.
    # One group, cut by format (see `chunked`), so that disk-size/F reuses cli/F's evaluation.
    cli =
      perFormat "cli" "x86_64-linux" (fmt: result bundled.${fmt.name})
      // perFormat "cli-aarch64" "aarch64-linux" (
        fmt: result (cli { system = "aarch64-linux"; } fmt.name)
      )
      // perFormat "disk-size" "x86_64-linux" (
        fmt:
        let
          sized = (cli { diskSize = "7777"; } fmt.name).drvPath;
        in
        {
          drv = sized;
          file = null;
          changed = sized != bundled.${fmt.name}.drvPath;
        }
      );

    # The scenarios' configuration (what the NixOS matrix and its boot tests build).
    cli-test-configuration = perFormat "cli-test-configuration" "x86_64-linux" (
      fmt: result (cli { configuration = toString ./configs/test.nix; } fmt.name)
    );

    # `-c configs/user.nix --special-arg ngTestFormat F`: top-level image options.
    cli-user = perFormat "cli-user" "x86_64-linux" (
      fmt:
      result (
        cli {
          configuration = toString ./configs/user.nix;
          specialArgs = builtins.toJSON { ngTestFormat = fmt.name; };
        } fmt.name
      )
    );

    # `--flake path#host` (a real host), `--format-path`, and the flake's own outputs.
    flake =
      perFormat "flake" "x86_64-linux" (
        fmt:
        result (
          (entry {
            flakeUri = "path:${toString ./user-flake}";
            flakeAttr = "host";
            system = "x86_64-linux";
          }).${fmt.name}
        )
      )
      // {
        "flake/aarch64-raw-efi" = result (
          (entry {
            flakeUri = "path:${toString ./user-flake}";
            flakeAttr = "host-aarch64";
            system = "aarch64-linux";
          }).raw-efi
        );
        # What .github/workflows/formats.yml runs, one job per entry.
        "outputs/github-matrix" =
          let
            matrix = import ../../../ci/github-matrix.nix { flake = ngFlake; };
            boots = builtins.filter (m: m.boot) matrix;
            pkgs = nixpkgsFlake.legacyPackages.x86_64-linux;
          in
          if
            builtins.length matrix == builtins.length (formatsOn "x86_64-linux")
            && boots != [ ]
            && builtins.all (m: ngFlake.checks.x86_64-linux ? "boot-${m.format}") boots
          then
            { drv = (pkgs.writeText "github-matrix.json" (builtins.toJSON matrix)).drvPath; file = null; }
          else
            throw "ci/github-matrix.nix: not one entry per x86_64 format with its boot check";
        "format-path/custom" = result (cli { formatPath = toString ./custom-format.nix; } "custom");
        "format-path/custom-flake" = result (
          (entry {
            flakeUri = "path:${toString ./user-flake}";
            flakeAttr = "host";
            system = "x86_64-linux";
            formatPath = toString ./custom-format.nix;
          }).custom
        );
      }
      // lib.concatMapAttrs (
        system: _:
        {
          "outputs/packages.${system}.default" = result ngFlake.packages.${system}.default;
          "outputs/devShells.${system}.default" = result ngFlake.devShells.${system}.default;
        }
        // lib.mapAttrs' (name: drv: lib.nameValuePair "outputs/checks.${system}.${name}" (result drv)) (
          ngFlake.checks.${system} or { }
        )
      ) ngFlake.packages;

    # The flake's formatter (nixfmt, a Haskell package) in a group of its own: where nixpkgs lacks
    # the Haskell package set (the snapshot), Nix's error is one tryEval cannot catch, which fails
    # the whole group and has each of its routes evaluated again alone.
    formatter = lib.mapAttrs' (
      system: _: lib.nameValuePair "outputs/formatter.${system}" (result ngFlake.formatter.${system})
    ) ngFlake.packages;

    # lib.nixosGenerate { format; modules = [ configuration, top-level image options ]; }
    lib =
      perFormat "lib" "x86_64-linux" (
        fmt:
        result (
          ngFlake.lib.nixosGenerate {
            system = "x86_64-linux";
            format = fmt.name;
            modules = userModules fmt.name;
          }
        )
      )
      // perFormat "lib-aarch64" "aarch64-linux" (
        fmt:
        result (
          ngFlake.nixosGenerate {
            system = "aarch64-linux";
            format = fmt.name;
            modules = userModules fmt.name;
          }
        )
      )
      // {
        "lib/customFormats" = result (
          ngFlake.lib.nixosGenerate {
            system = "x86_64-linux";
            format = "mine";
            customFormats.mine = ./custom-format.nix;
            modules = [ ./configs/bundled.nix ];
          }
        );
      };

    # nixosModules.F in the user's nixosSystem, built as config.system.build.${formatAttr}.
    module = perFormat "module" "x86_64-linux" (
      fmt:
      let
        system = nixpkgsFlake.lib.nixosSystem {
          modules = [
            ngFlake.nixosModules.${fmt.name}
            { nixpkgs.hostPlatform = "x86_64-linux"; }
          ]
          ++ userModules fmt.name;
        };
      in
      result system.config.system.build.${system.config.formatAttr}
    );

    # nixosModules.all-formats in a real host (own disks, swap, LUKS volume, boot loader device):
    # config.formats.F, with the format's image options in formatConfigs.F. An image that boots
    # from its own media keeps none of the host's disks and boot loader device, and keeps the
    # host's other settings (its time zone); the route throws what it finds otherwise.
    all-formats =
      let
        hostDisks = [
          "/dev/sda1"
          "/dev/sda2"
          "/dev/sda3"
          "/dev/sda4"
          "/dev/mapper/srv"
          "/dev/disk/by-id/ata-HOST"
        ];
        media =
          fmt: drv:
          let
            c = drv.passthru.config;
            used =
              lib.mapAttrsToList (_: f: f.device) c.fileSystems
              ++ map (s: s.device) c.swapDevices
              ++ lib.mapAttrsToList (_: d: d.device) c.boot.initrd.luks.devices
              ++ c.boot.loader.grub.devices;
            found = builtins.filter (d: builtins.elem d hostDisks) used;
          in
          if c.time.timeZone != "Europe/Berlin" then
            throw "${fmt.name} built from a host lost the host's time zone"
          else if ng.ownMedia fmt.name && found != [ ] then
            throw "${fmt.name} built from a host uses the host's ${builtins.concatStringsSep ", " found}"
          else if ng.ownMedia fmt.name && !(c.fileSystems ? "/") then
            throw "${fmt.name} built from a host has no root file system"
          else
            drv;
        host = nixpkgsFlake.lib.nixosSystem {
          modules = [
            ngFlake.nixosModules.all-formats
            ./user-flake/host.nix
            { nixpkgs.hostPlatform = "x86_64-linux"; }
            {
              formatConfigs = lib.mapAttrs (_: o: if o == null then { } else o) imageOptions;
            }
          ];
        };
      in
      perFormat "all-formats" "x86_64-linux" (
        fmt: result (media fmt host.config.formats.${fmt.name})
      );

    # nixos-generators behaviour that configurations and scripts rely on; each throws the
    # difference it finds.
    compat =
      let
        expect =
          what: ok: value:
          if ok then value else throw "nixos-generators compatibility: ${what}";
        host =
          extra:
          nixpkgsFlake.lib.nixosSystem {
            modules = [
              ngFlake.nixosModules.all-formats
              ./user-flake/host.nix
              { nixpkgs.hostPlatform = "x86_64-linux"; }
              extra
            ];
          };
        kexec = bundled.kexec;
        bundle = bundled.kexec-bundle;
        overridden = ngFlake.lib.nixosGenerate {
          system = "x86_64-linux";
          format = "iso";
          modules = [
            ./configs/bundled.nix
            (
              { lib, pkgs, ... }:
              {
                system.build.isoImage = lib.mkForce (pkgs.writeText "overridden" "");
              }
            )
          ];
        };
        forced = host (
          { lib, pkgs, ... }:
          {
            formats = lib.mkForce { only = pkgs.writeText "only" ""; };
          }
        );
        iso = (host { formatConfigs.iso = imageOptions.iso; }).config.formats.iso;
      in
      {
        "compat/kexec-tarball-name" = expect "kexec tarball is tarball/nixos-system-<system>.tar.xz" (
          fileOf kexec == "tarball/nixos-system-x86_64-linux.tar.xz"
        ) (result kexec);
        "compat/kexec-bundle-is-the-executable" =
          expect "kexec-bundle's output is the executable itself (kexec_bundle)"
            (bundle.name == "kexec_bundle")
            (result bundle);
        "compat/system-build-override" =
          expect "a user's system.build.isoImage is what lib.nixosGenerate builds"
            (overridden.name == "overridden")
            (result overridden);
        "compat/formats-mkForce" =
          expect "formats = lib.mkForce { ... } replaces the formats"
            (builtins.attrNames forced.config.formats == [ "only" ])
            (result forced.config.formats.only);
        "compat/virtualbox-disk-auto" =
          let
            vbox = bundled.virtualbox;
          in
          expect "virtualbox without --disk-size is \"auto\", not nixpkgs' 50 GiB" (
            vbox.passthru.config.virtualisation.diskSize == "auto"
          ) (result vbox);
        "compat/formats-passthru-config" =
          expect "formats.<name>.passthru.config is the image's configuration"
            (iso.passthru.config.isoImage.volumeID == "NGTEST")
            (result iso);
      };
  };

  # Forces the whole record (drvPath and file) inside tryEval.
  attempt =
    value:
    let
      t = builtins.tryEval (builtins.deepSeq value value);
    in
    if t.success then t.value // { ok = true; } else { ok = false; };

  all = lib.foldl' (acc: g: acc // g) { } (builtins.attrValues groups);

  # Groups of at most 16 routes: one Nix process's memory grows with every NixOS evaluation it
  # keeps (about 0.15 GB each), and smaller groups spread better over the cores. A format's
  # routes of one group (cli/F, cli-aarch64/F, disk-size/F: the name after the last `/`) stay
  # in one process, so that they share what they have in common.
  chunked = lib.concatMapAttrs (
    name: routes:
    let
      byFormat = builtins.attrValues (builtins.groupBy baseNameOf (builtins.attrNames routes));
      parts = lib.imap1 (i: part: {
        name = "${name}-${toString i}";
        value = lib.getAttrs part routes;
      }) (packInto 16 byFormat);
    in
    if builtins.length parts == 1 then { ${name} = routes; } else builtins.listToAttrs parts
  ) groups;

  # Packs lists of names, in order, into chunks of at most n names (a longer list alone).
  packInto =
    n: lists:
    lib.foldl' (
      chunks: names:
      let
        last = lib.last chunks;
      in
      if chunks != [ ] && builtins.length last + builtins.length names <= n then
        lib.init chunks ++ [ (last ++ names) ]
      else
        chunks ++ [ names ]
    ) [ ] lists;
in
if only != null then
  all.${only} or (throw "routes.nix: no route ${only}")
else if group != null then
  builtins.mapAttrs (_: attempt) (chunked.${group} or (throw "routes.nix: no group ${group}"))
else if names then
  builtins.mapAttrs (_: builtins.attrNames) chunked
else
  throw "routes.nix: give --argstr group NAME, --argstr only ROUTE or --arg names true"
