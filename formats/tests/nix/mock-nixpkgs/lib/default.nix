# MOCK of nixpkgs' lib: only what the top level of formats/nix/format-module.nix,
# formats/nix/mk-format.nix and formats/nix/image-media.nix calls, so their module functions can
# be applied in tests. The function helpers are nixpkgs' lib/trivial.nix definitions.
rec {
  isFunction = f: builtins.isFunction f || (f ? __functor && isFunction (f.__functor f));
  setFunctionArgs = f: args: {
    __functor = self: f;
    __functionArgs = args;
  };
  functionArgs =
    f:
    if f ? __functor then
      f.__functionArgs or (functionArgs (f.__functor f))
    else
      builtins.functionArgs f;
  foldl' = builtins.foldl';
  hasPrefix = pref: str: builtins.substring 0 (builtins.stringLength pref) str == pref;
  optional = cond: x: if cond then [ x ] else [ ];
  optionalAttrs = cond: as: if cond then as else { };
  mkOption = args: args // { _type = "option"; };
  mkOverride = priority: content: {
    _type = "override";
    inherit priority content;
  };
  mkForce = content: {
    _type = "override";
    priority = 50;
    inherit content;
  };
  mkDefault = content: {
    _type = "override";
    priority = 1000;
    inherit content;
  };
  types = {
    str = "str";
    nullOr = t: "nullOr ${t}";
  };
}
