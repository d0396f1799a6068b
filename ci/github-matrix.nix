# The job matrix of .github/workflows/formats.yml: one entry per format that builds on
# x86_64-linux (the registry's formats/registry.toml), and whether the flake has a boot-<format>
# check for it (formats the harness boots; they need KVM).
#   nix eval --json --impure --file ci/github-matrix.nix
# (formats/tests/eval/routes.nix evaluates it with the flake's outputs on a nixpkgs snapshot.)
{
  flake ? builtins.getFlake (toString ../.),
}:
let
  registry = builtins.fromTOML (builtins.readFile ../formats/registry.toml);
  checks = flake.checks.x86_64-linux;
in
map (f: {
  format = f.name;
  boot = checks ? "boot-${f.name}";
}) (builtins.filter (f: f.system != "aarch64-linux") registry.format)
