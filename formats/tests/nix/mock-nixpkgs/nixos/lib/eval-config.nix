# MOCK of nixpkgs' nixos/lib/eval-config.nix, for testing formats/nix/entry.nix's plumbing
# without nixpkgs. It evaluates no module: it records what it was given (system, modules,
# specialArgs) and offers the attributes entry.nix uses (config, pkgs, extendModules).
{
  system ? null,
  modules ? [ ],
  specialArgs ? { },
  ...
}:
let
  # JSON-friendly description of a module: paths stay paths ({ path = ...; }, never copied to
  # the store), functions become a marker.
  describe =
    v:
    if builtins.isPath v then
      { path = toString v; }
    else if builtins.isFunction v then
      "<function>"
    else if builtins.isAttrs v then
      builtins.mapAttrs (_: describe) v
    else if builtins.isList v then
      map describe v
    else
      v;

  isCustom = m: builtins.isAttrs m && (m._file or null) == "nixos-generate custom format";

  result =
    { modules, specialArgs }:
    let
      record = {
        inherit system specialArgs;
        modules = map describe modules;
      };
      custom = builtins.any isCustom modules;
    in
    {
      config = {
        # The custom format's module cannot be evaluated here: pretend it asked for ".mock".
        formatAttr = if custom then "customOut" else "record";
        fileExtension = if custom then ".mock" else "";
        formatVariant = null;
        mockRecord = record;
        system.build = {
          inherit record;
          customOut = record // {
            outPath = "/nix/store/00000000000000000000000000000000-mock-output";
          };
        };
      };
      pkgs.runCommand = name: env: script: {
        inherit name script;
        passthru = env.passthru or { };
      };
      extendModules =
        args:
        result {
          modules = modules ++ (args.modules or [ ]);
          specialArgs = specialArgs // (args.specialArgs or { });
        };
    };
in
result { inherit modules specialArgs; }
