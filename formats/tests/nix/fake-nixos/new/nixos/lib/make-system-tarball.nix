# STUB of nixpkgs' make-system-tarball.nix: records its arguments.
{
  fileName ? "nixos-system",
  contents,
  storeContents ? [ ],
  ...
}:
{
  builder = "tarball";
  inherit fileName contents;
  storeContents = map (c: {
    object = c.object.name or "?";
    inherit (c) symlink;
  }) storeContents;
  outPath = "/nix/store/00000000000000000000000000000000-tarball";
}
