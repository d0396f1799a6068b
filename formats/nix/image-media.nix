# An image built from a host's configuration (`--flake`, `nixosModules.all-formats`,
# `nixosModules.<format>` in a host) boots from the image's own disk, not the host's: the format's
# root file system, swap, LUKS devices and boot loader device must win over the host's, while
# every other setting of the host stays.
#
# nixpkgs' image modules (nixos/modules/virtualisation/*-image.nix, the ec2, openstack and
# cloudstack scripts, sd-card/sd-image.nix, disk-image.nix, at 26.11-pre) define
# `fileSystems."/"`, `boot.loader.grub.device(s)` and `swapDevices` at normal priority or with
# mkDefault, like any host does, so inside a host they conflict ("The option
# `fileSystems."/".device' has conflicting definition values") or, with mkDefault, silently lose
# to the host (the image would wait for the host's disk at boot). Only the ISO, netboot and the
# installer use `mkImageMediaOverride` (60), which is meant for exactly this: "image media
# profiles can be derived by inclusion into host config, hence needing to override host config,
# but do allow user to mkForce" (nixpkgs lib/modules.nix).
#
# `lift module` returns the module (with everything it imports) with its definitions of the
# options below moved above normal priority, keeping their order among themselves (51-57, see
# `liftPriority`); every other definition is unchanged. `baseline` empties the same options
# (but `boot.loader.grub.devices`) at priority 70, so a host's values go even where the image
# defines none (nixpkgs' installer does the same: `swapDevices = mkImageMediaOverride [ ]`,
# `boot.initrd.luks.devices = ... { }`). A host's `lib.mkForce` (50) still wins, as nixpkgs
# intends.
lib:
let
  # Option paths whose definitions belong to the image when it is built from a host.
  paths = [
    [ "fileSystems" ]
    [ "swapDevices" ]
    [
      "boot"
      "initrd"
      "luks"
      "devices"
    ]
    [
      "boot"
      "loader"
      "grub"
      "device"
    ]
    [
      "boot"
      "loader"
      "grub"
      "devices"
    ]
  ];

  # Below mkForce (50); weaker priorities stay weaker: mkImageMediaOverride 51, normal 52,
  # mkDefault 54, mkOptionDefault 56. All stronger than `baseline` (70) and a host (100+).
  liftPriority =
    p:
    if p <= 50 then
      p
    else
      51
      + builtins.length (
        builtins.filter (t: t < p) [
          60
          100
          500
          1000
          1400
        ]
      );

  # A definition's value, lifted: through mkIf, mkMerge and mkOrder; an override gets the
  # lifted priority, a plain value the priority of a normal definition, lifted.
  liftValue =
    v:
    let
      type = v._type or null;
    in
    if type == "override" then
      v // { priority = liftPriority v.priority; }
    else if type == "if" || type == "order" then
      v // { content = liftValue v.content; }
    else if type == "merge" then
      v // { contents = map liftValue v.contents; }
    else
      lib.mkOverride (liftPriority 100) v;

  # Lifts the definition at `path` inside a module's config value `v`.
  liftAt =
    path: v:
    let
      type = v._type or null;
    in
    if path == [ ] then
      liftValue v
    else if type == "if" || type == "override" || type == "order" then
      v // { content = liftAt path v.content; }
    else if type == "merge" then
      v // { contents = map (liftAt path) v.contents; }
    else if builtins.isAttrs v && v ? ${builtins.head path} then
      v // { ${builtins.head path} = liftAt (builtins.tail path) v.${builtins.head path}; }
    else
      v;

  liftConfig = c: lib.foldl' (acc: path: liftAt path acc) c paths;

  # The attribute set a module evaluates to (after applying it to its arguments).
  liftAttrs =
    m:
    let
      imports = map lift (m.require or [ ] ++ m.imports or [ ]);
    in
    if (m._type or "module") != "module" then
      # A bare mkIf / mkOverride as a module is its config.
      { config = liftConfig m; }
    else if m ? config || m ? options then
      m // { inherit imports; } // lib.optionalAttrs (m ? config) { config = liftConfig m.config; }
    else
      # Shorthand: the attributes other than the special ones are config; none of `paths`
      # starts with a special attribute, so lifting the whole set touches config only.
      removeAttrs (liftConfig m) [ "require" ] // { inherit imports; };

  lift =
    module:
    if builtins.isPath module || (builtins.isString module && lib.hasPrefix "/" module) then
      # A file keeps its identity (key), so a file the host imports too is still imported once,
      # and `disabledModules` naming it still applies.
      let
        loaded = lift (import module);
        identity = {
          _file = toString module;
          key = toString module;
        };
      in
      if lib.isFunction loaded then
        lib.setFunctionArgs (args: identity // loaded args) (lib.functionArgs loaded)
      else
        identity // loaded
    else if lib.isFunction module then
      lib.setFunctionArgs (args: liftAttrs (module args)) (lib.functionArgs module)
    else if builtins.isAttrs module then
      liftAttrs module
    else
      module;

  baseline = {
    _file = "nixos-generate: the image's disks replace the host's (formats/nix/image-media.nix)";
    fileSystems = lib.mkOverride 70 { };
    swapDevices = lib.mkOverride 70 [ ];
    boot.initrd.luks.devices = lib.mkOverride 70 { };
    # Not `devices`: nixpkgs' grub.nix itself defines it from `device` (at normal priority).
    boot.loader.grub.device = lib.mkOverride 70 "";
  };
in
{
  inherit lift baseline liftPriority;
}
