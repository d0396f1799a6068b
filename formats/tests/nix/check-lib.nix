# Checks of formats/nix/lib.nix and of every format module's top level, evaluated against the
# mock nixpkgs (`-I nixpkgs=mock-nixpkgs`). Evaluates to true, or throws naming what failed.
let
  ng = import ../../nix/lib.nix;
  lib = import <nixpkgs/lib>;
  withVariants = toString ./mock-nixpkgs/nixos/modules;
  withoutVariants = toString ./mock-nixpkgs/absent/nixos/modules;

  check =
    what: cond:
    if cond then true else throw "check failed: ${what}";
  eq =
    what: actual: expected:
    check "${what}: got ${builtins.toJSON actual}, expected ${builtins.toJSON expected}" (
      actual == expected
    );

  moduleFiles = map (n: builtins.substring 0 (builtins.stringLength n - 4) n) (
    builtins.filter (n: builtins.match ".*\\.nix" n != null) (
      builtins.attrNames (builtins.readDir ../../modules)
    )
  );

  # Applies a format module (and the mk-format function inside it) to fake arguments.
  apply =
    modulesPath: name:
    import (ng.modulePath name) {
      inherit lib modulesPath;
      config.system.build.images = { };
      pkgs = { };
      # The variant's evaluation (mk-format.nix's `image`) is real evaluation's business.
      extendModules = _: throw "check-lib.nix: extendModules is not evaluated here";
    };

  formatChecks = map (
    f:
    let
      legacy = apply withoutVariants f.name;
      modern = apply withVariants f.name;
      expectVariant = if f ? variant && builtins.elem f.variant [ "raw" "raw-efi" "qemu" "iso" ] then f.variant else null;
      ext = legacy.config.fileExtension;
      variantImports = builtins.filter (m: builtins.isAttrs m && m ? image) modern.imports;
    in
    builtins.all (x: x) [
      (eq "${f.name} formatAttr" legacy.config.formatAttr f.attr)
      (eq "${f.name} legacy variant" legacy.config.formatVariant null)
      (eq "${f.name} variant with images.nix" modern.config.formatVariant expectVariant)
      (eq "${f.name} variantFor" (ng.variantFor withVariants f.name) expectVariant)
      (check "${f.name} fileExtension ${ext} fits output ${f.output}" (
        ext == ""
        || builtins.match ".*[*].*" ext != null
        || builtins.substring (builtins.stringLength f.output - builtins.stringLength ext) (builtins.stringLength ext) f.output == ext
      ))
      (eq "${f.name} variant-only tweaks go to image.modules" (map (m: builtins.attrNames m.image.modules) variantImports) (
        if expectVariant == null then [ ] else [ [ expectVariant ] ]
      ))
      (check "${f.name} alias of system.build.${f.attr} only on the variant route" (
        (modern.config ? system) == (expectVariant != null) && !(legacy.config ? system)
      ))
    ]
  ) ng.formatList;
in
builtins.all (x: x) (
  [
    (eq "modules/*.nix are the registry's formats" (builtins.sort builtins.lessThan moduleFiles) (
      builtins.sort builtins.lessThan ng.names
    ))
    (eq "names are unique" (builtins.length (builtins.attrNames ng.formats)) (builtins.length ng.names))
    (eq "no images.nix: no variant" (ng.hasVariant withoutVariants "raw") false)
    (eq "variant listed" (ng.hasVariant withVariants "raw-efi") true)
    (eq "variant not listed" (ng.hasVariant withVariants "cloudstack") false)
    (eq "prefix of a listed variant is not one" (ng.hasVariant withVariants "ra") false)
    # On the variant route system.build.<formatAttr> is the variant at a weak priority
    # (mk-format.nix), so a user's own definition wins (real evaluation: routes.nix, compat).
    (eq "imageOf is system.build.<formatAttr>" (ng.imageOf {
      formatVariant = "raw";
      formatAttr = "raw";
      system.build = {
        images.raw = "from-images";
        raw = "from-attr";
      };
    }) "from-attr")
    (eq "shellQuote" (ng.shellQuote "a'b") "'a'\\''b'")
  ]
  ++ formatChecks
)
