# Helpers shared by entry.nix, mk-format.nix and the flake. Builtins only (no nixpkgs lib), so
# it can be imported before any nixpkgs is known. The one list of formats is ../registry.toml.
let
  registry = builtins.fromTOML (builtins.readFile ../registry.toml);

  formatList = registry.format;

  formats = builtins.listToAttrs (
    map (f: {
      name = f.name;
      value = f;
    }) formatList
  );

  formatModule = ./format-module.nix;

  # The module file of a built-in format.
  modulePath = name: ../modules + "/${name}.nix";

  # What `nixosModules.<name>` (and lib.nixosGenerate's format) is: the format plus the options
  # it sets, and `lenient` (below): nixos-generators users set the image module's options
  # (isoImage.*, amazonImage.*, proxmox.*) in their configuration, which on nixpkgs with image
  # variants declares them only inside the variant; the variant checks every definition.
  wrap = name: {
    _file = "nixos-generate format ${name}";
    imports = [
      formatModule
      lenient
      (modulePath name)
    ];
  };

  # Undeclared options in a configuration are tolerated in the configuration alone and
  # checked in each format's evaluation (`strict`), where the image module's options
  # (isoImage.*, amazonImage.*, ...) exist: on nixpkgs with image variants they are declared
  # only inside the variant, yet nixos-generators configurations set them at top level.
  # (A hand-made `lib.mkOverride 900 false`: stronger than option defaults and mkDefault.)
  lenient = {
    _file = "nixos-generate: options checked per format";
    _module.check = {
      _type = "override";
      priority = 900;
      content = false;
    };
  };
  strict = {
    _file = "nixos-generate: options checked per format";
    _module.check = true;
  };

  # A user's format module (`--format-path`, `customFormats`, `formatConfigs`).
  wrapCustom = module: {
    _file = "nixos-generate custom format";
    imports = [
      formatModule
      strict
      module
    ];
  };

  # Whether this nixpkgs (its nixos/modules directory) has `system.build.images.<variant>`.
  # images.nix exists since early 2025; its first versions typed `image.modules` as lists and
  # lacked most variants, so the full variant set is recognised by disk-image.nix (which backs
  # the qemu/raw variants) and the variant's own entry in images.nix.
  hasVariant =
    modulesPath: variant:
    let
      images = modulesPath + "/image/images.nix";
    in
    builtins.pathExists images
    && builtins.pathExists (modulesPath + "/virtualisation/disk-image.nix")
    && builtins.length (builtins.split "[[:space:]]${variant}[[:space:]]*=" (builtins.readFile images)) > 1;

  # Whether a format's image boots from media of its own (disk, board, ISO, kexec), whose file
  # systems, swap, LUKS devices and boot loader device replace a host's (./image-media.nix);
  # not the vm formats (a host may run its own file systems in a VM) nor the containers.
  ownMedia =
    name:
    builtins.elem formats.${name}.profile [
      "cloud-disk"
      "cloud-only"
      "board"
      "kernel-from-disk"
      "extlinux"
      "uboot-board"
      "bios-disk"
      "efi-disk"
      "iso"
      "kexec"
    ];

  # The variant a built-in format uses with this nixpkgs, or null for the build attribute.
  variantFor =
    modulesPath: name:
    let
      f = formats.${name};
    in
    if f ? variant && hasVariant modulesPath f.variant then f.variant else null;

  # The derivation that builds the format of an evaluated configuration (its `config`):
  # `system.build.<formatAttr>`, which on the variant route is `system.build.images.<variant>`
  # at a priority weaker than any definition (mk-format.nix), so a user's own
  # `system.build.<formatAttr>` takes effect, as with nixos-generators.
  imageOf = config: config.system.build.${config.formatAttr};

  shellQuote = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  # Like nixos-generators' `formats.<name>`: a derivation holding a symlink to the single file
  # of the build output whose name ends in `fileExtension`; the build fails when there is none.
  # `evaluated` is an evaluated NixOS configuration (its `config` is used); `pkgs` provides
  # runCommand.
  linkOutput =
    pkgs: evaluated:
    let
      inherit (evaluated) config;
      built = imageOf config;
      pattern = "*" + config.fileExtension;
      drv =
        pkgs.runCommand "${built.name or "nixos-generate-image"}-file"
          {
            passthru = {
              # The configuration the image is built from: the variant's where there is one.
              config = built.passthru.config or config;
              image = built;
            };
          }
          ''
            set -eu
            target=$(find ${shellQuote "${built}"} -name ${shellQuote pattern} -xtype f -print -quit)
            if [ -z "$target" ]; then
              echo "nixos-generate: no file matching ${shellQuote pattern} in ${shellQuote "${built}"} (formatAttr ${shellQuote config.formatAttr})" >&2
              exit 1
            fi
            mkdir -p "$out"
            ln -s "$target" "$out/$(basename "$target")"
          '';
    in
    drv;
in
{
  inherit
    registry
    formatList
    formats
    formatModule
    modulePath
    wrap
    wrapCustom
    lenient
    strict
    hasVariant
    variantFor
    ownMedia
    imageOf
    linkOutput
    shellQuote
    ;
  names = map (f: f.name) formatList;
}
