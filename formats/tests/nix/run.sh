#!/bin/sh
# Evaluates formats/nix/entry.nix against a mock nixpkgs (no real nixpkgs needed) and checks
# that every argument arrives as data: the configuration path exactly as given, specialArgs as
# specialArgs, diskSize in virtualisation.diskSize; that bad input fails with a clear message;
# formats/nix/lib.nix + every format module's top level (check-lib.nix); the structure of the
# flake's outputs (check-project.nix); with NIXGEN_NIXPKGS_LIB, the real module system over
# stub NixOS modules (check-modules.nix); and that every .nix file parses.
# Needs nix-instantiate (Nix >= 2.4; Debian's nix-bin works). Exits non-zero on any mismatch.
# Each check is a named case: NIXGEN_NIX_LIST=1 prints `case: NAME` for each and runs none;
# NIXGEN_NIX_CASE=NAME runs that case only (formats/tests/nix_eval.rs runs each as a trial).
set -u
here=$(cd "$(dirname "$0")" && pwd)
formats=$(cd "$here/../.." && pwd)
entry=$formats/nix/entry.nix
mock=$here/mock-nixpkgs
failures=0
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# Evaluation copies the mock flake into a store: without a writable /nix, use a private
# chroot store (and state directory) under a temporary directory.
store_opts=""
if [ "${NIXGEN_TEST_PRIVATE_STORE:-}" = 1 ] || ! [ -w /nix/store ] 2>/dev/null; then
  private=$(mktemp -d)
  trap 'rm -f "$out" "$err"; chmod -R u+w "$private" 2>/dev/null; rm -rf "$private"' EXIT
  NIX_STATE_DIR=$private/state
  export NIX_STATE_DIR
  store_opts="local?root=$private/root"
fi

nixeval() {
  nix-instantiate ${store_opts:+--option store "$store_opts"} \
    --option experimental-features 'nix-command flakes' \
    --eval --strict --json -I "nixpkgs=$mock" "$@" >"$out" 2>"$err"
}

# want NAME: whether the case NAME runs now (in list mode it is printed instead).
want() {
  if [ "${NIXGEN_NIX_LIST:-}" = 1 ]; then
    echo "case: $1"
    return 1
  fi
  [ -z "${NIXGEN_NIX_CASE:-}" ] || [ "$NIXGEN_NIX_CASE" = "$1" ]
}

fail() {
  echo "FAIL: $1" >&2
  echo "  stdout: $(cat "$out")" >&2
  echo "  stderr: $(head -c 2000 "$err")" >&2
  failures=$((failures + 1))
}

# expect_out NAME EXPECTED-JSON-FRAGMENT... -- NIX-ARGS...: succeeds and stdout holds each fragment.
expect_out() {
  name=$1
  shift
  want "$name" || return 0
  n=0
  for a in "$@"; do
    [ "$a" = "--" ] && break
    n=$((n + 1))
  done
  i=0
  frags=""
  while [ $i -lt $n ]; do
    frags="$frags$1
"
    shift
    i=$((i + 1))
  done
  shift # --
  if ! nixeval "$@"; then
    fail "$name (evaluation failed)"
    return
  fi
  printf '%s' "$frags" | while IFS= read -r frag; do
    [ -z "$frag" ] && continue
    grep -qF -- "$frag" "$out" || { echo "missing: $frag" >"$err.miss"; }
  done
  if [ -s "$err.miss" ]; then
    cat "$err.miss" >>"$err"
    rm -f "$err.miss"
    fail "$name (output lacks an expected part)"
  else
    rm -f "$err.miss"
    echo "ok: $name"
  fi
}

# expect_exact NAME EXPECTED-JSON -- NIX-ARGS...
expect_exact() {
  name=$1 expected=$2
  shift 3
  want "$name" || return 0
  if ! nixeval "$@"; then
    fail "$name (evaluation failed)"
  elif [ "$(cat "$out")" != "$expected" ]; then
    fail "$name (expected $expected)"
  else
    echo "ok: $name"
  fi
}

# expect_fail NAME STDERR-FRAGMENT -- NIX-ARGS...
expect_fail() {
  name=$1 frag=$2
  shift 3
  want "$name" || return 0
  if nixeval "$@"; then
    fail "$name (evaluation succeeded, expected a failure)"
  elif ! grep -qF -- "$frag" "$err"; then
    fail "$name (error lacks: $frag)"
  else
    echo "ok: $name"
  fi
}

# A configuration path with a space, quotes, ${, a backslash and a newline.
# shellcheck disable=SC2016 # literal text, never expanded
weird='/tmp/a b/"q" ${x} \ 
.nix'
# Its JSON form, produced by Nix itself from the same argv string.
weird_json=$(nix-instantiate --eval --json -E '{ p }: p' --argstr p "$weird")

expect_out "configuration path arrives exactly, as a path" \
  "{\"path\":$weird_json}" \
  "{\"path\":\"$formats/modules/raw.nix\"}" \
  "{\"path\":\"$formats/nix/format-module.nix\"}" \
  -- "$entry" --argstr configuration "$weird" -A raw.modules

expect_exact "configuration path is the first module, nothing else added" \
  "{\"path\":$weird_json}" \
  -- "$entry" --argstr configuration "$weird" -A raw.modules.0

expect_out "default configuration is the bundled one" \
  "{\"path\":\"$formats/nix/configuration.nix\"}" \
  -- "$entry" -A iso.modules

# shellcheck disable=SC2016 # literal JSON text
expect_exact "specialArgs arrive as specialArgs" \
  '{"foo":"bar baz","q":"\"${x}\" \\ \n"}' \
  -- "$entry" --argstr configuration "$weird" \
  --argstr specialArgs '{"q":"\"${x}\" \\ \n","foo":"bar baz"}' -A qcow.specialArgs

expect_exact "no specialArgs: empty set" '{}' -- "$entry" --argstr configuration /c.nix -A raw.specialArgs

expect_out "diskSize digits become an integer" '"virtualisation":{"diskSize":4096}' \
  -- "$entry" --argstr configuration /c.nix --argstr diskSize 4096 -A raw-efi.modules
expect_out "diskSize leading zeros" '"virtualisation":{"diskSize":42}' \
  -- "$entry" --argstr configuration /c.nix --argstr diskSize 0042 -A vm.modules
expect_out "diskSize auto stays a string" '"virtualisation":{"diskSize":"auto"}' \
  -- "$entry" --argstr configuration /c.nix --argstr diskSize auto -A qcow.modules
name="no diskSize: nothing set (vm keeps its own default)"
if ! want "$name"; then
  :
elif nixeval "$entry" --argstr configuration /c.nix -A vm.modules && ! grep -q diskSize "$out"; then
  echo "ok: $name"
else
  fail "$name"
fi
expect_fail "diskSize garbage rejected" 'diskSize must be "auto" or a number of MiB' \
  -- "$entry" --argstr configuration /c.nix --argstr diskSize 12G -A raw.modules

expect_exact "system passed to eval-config" '"aarch64-linux"' \
  -- "$entry" --argstr configuration /c.nix --argstr system aarch64-linux -A sd-aarch64.system
expect_exact "no system: eval-config's default" 'null' \
  -- "$entry" --argstr configuration /c.nix -A raw.system

expect_fail "unknown format name" 'nosuch' -- "$entry" --argstr configuration /c.nix -A nosuch
expect_fail "relative configuration rejected" 'configuration must be an absolute path' \
  -- "$entry" --argstr configuration c.nix -A raw.modules
expect_fail "specialArgs must be an object" 'specialArgs must be a JSON object' \
  -- "$entry" --argstr configuration /c.nix --argstr specialArgs '["a"]' -A raw.specialArgs
expect_fail "specialArgs values must be strings" 'specialArgs values must be strings (not: n)' \
  -- "$entry" --argstr configuration /c.nix --argstr specialArgs '{"n":1}' -A raw.specialArgs
expect_fail "custom without formatPath" 'the custom format needs formatPath' \
  -- "$entry" --argstr configuration /c.nix -A custom.name

custom_path='/tmp/my format/it'"'"'s.nix'
custom_json=$(nix-instantiate --eval --json -E '{ p }: p' --argstr p "$custom_path")
expect_out "custom format module arrives as a path" "{\"path\":$custom_json}" \
  -- "$entry" --argstr configuration /c.nix --argstr formatPath "$custom_path" \
  -A custom.passthru.config.mockRecord.modules
expect_out "custom links the file matching *fileExtension" \
  "-name '*.mock' -xtype f" 'ln -s' \
  -- "$entry" --argstr configuration /c.nix --argstr formatPath "$custom_path" -A custom.script

flake="path:$mock"
expect_out "flake: packages.<system>.nixosConfigurations first, specialArgs via extendModules" \
  '"mockConfiguration":"packages.x86_64-linux.nixosConfigurations.both"' '"specialArgs":{"k":"v w"}' \
  "{\"path\":\"$formats/modules/vm.nix\"}" \
  -- "$entry" --argstr flakeUri "$flake" --argstr flakeAttr both --argstr system x86_64-linux \
  --argstr specialArgs '{"k":"v w"}' -A vm
expect_out "flake: falls back to nixosConfigurations, diskSize too" \
  '"mockConfiguration":"nixosConfigurations.plain"' '"virtualisation":{"diskSize":2048}' \
  -- "$entry" --argstr flakeUri "$flake" --argstr flakeAttr plain --argstr system x86_64-linux \
  --argstr diskSize 2048 -A raw-efi.modules
expect_fail "flake: unknown attribute" 'nor nixosConfigurations.nosuch' \
  -- "$entry" --argstr flakeUri "$flake" --argstr flakeAttr nosuch --argstr system x86_64-linux -A raw
expect_fail "flake: flakeAttr required" 'flakeAttr is required' \
  -- "$entry" --argstr flakeUri "$flake" -A raw

expect_exact "every built-in format is an attribute, plus custom" \
  "$(nix-instantiate --eval --strict --json -E \
    'builtins.sort builtins.lessThan ((map (f: f.name) (builtins.fromTOML (builtins.readFile '"$formats"'/registry.toml)).format) ++ [ "custom" ])' |
    tr -d '\n')" \
  -- -E "builtins.attrNames (import $entry { })"

name="lib.nix and every format module (check-lib.nix)"
if ! want "$name"; then
  :
elif nixeval "$here/check-lib.nix" && [ "$(cat "$out")" = true ]; then
  echo "ok: $name"
else
  fail "$name"
fi

name="flake/default.nix structure covers the registry (check-project.nix)"
if ! want "$name"; then
  :
elif nixeval "$here/check-project.nix" && [ "$(cat "$out")" = true ]; then
  echo "ok: $name"
else
  fail "$name"
fi

# With nixpkgs' lib (a checkout's lib/ directory, e.g. NIXGEN_NIXPKGS_LIB=$(nix-instantiate
# --find-file nixpkgs)/lib): the real module system over the stub modules of fake-nixos/, as
# nixpkgs with image variants (new) and without (old).
without_lib="(set NIXGEN_NIXPKGS_LIB to a nixpkgs lib/ directory)"
for tree in new old; do
  name="module system checks, nixpkgs $tree (check-modules.nix)"
  if ! want "$name"; then
    :
  elif [ -z "${NIXGEN_NIXPKGS_LIB:-}" ]; then
    echo "skipped: $name $without_lib"
  elif NIXGEN_NIXPKGS_LIB=$NIXGEN_NIXPKGS_LIB nix-instantiate --eval --strict \
    -I "nixpkgs=$here/fake-nixos/$tree" "$here/check-modules.nix" --argstr tree "$tree" \
    >"$out" 2>"$err" && [ "$(cat "$out")" = true ]; then
    echo "ok: $name"
  else
    fail "$name"
  fi
done
name="flake.nix outputs and default.nix with a fake nixpkgs input (check-flake.nix)"
if ! want "$name"; then
  :
elif [ -z "${NIXGEN_NIXPKGS_LIB:-}" ]; then
  echo "skipped: $name $without_lib"
elif nixeval "$here/check-flake.nix" && [ "$(cat "$out")" = true ]; then
  echo "ok: $name"
else
  fail "$name"
fi

root=$(cd "$formats/.." && pwd)
if want "every .nix file parses"; then
  before=$failures
  for f in $(find "$formats" -name '*.nix') "$root/flake.nix" "$root/default.nix"; do
    [ -e "$f" ] || continue
    if ! nix-instantiate --parse "$f" >/dev/null 2>"$err"; then
      fail "parse $f"
    fi
  done
  [ "$failures" -eq "$before" ] && echo "ok: every .nix file parses"
fi

[ "${NIXGEN_NIX_LIST:-}" = 1 ] && exit 0

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all Nix checks passed"
