# MOCK of nixpkgs' lib: only what the top level of formats/nix/format-module.nix and
# formats/nix/mk-format.nix calls, so their module functions can be applied in tests.
{
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
