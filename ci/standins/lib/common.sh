# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# Shared helpers for ci/standins/build. Sourced, not run.

log() { printf 'standins: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The packages the build needs: ci/standins/packages, one list shared with ci/test.
standin_packages() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$(dirname "${BASH_SOURCE[0]}")/../packages"
}

# Install what the build needs, only when it is missing (a fresh Debian 12 machine).
ensure_tools() {
    local want=() pkg
    while read -r pkg; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            want+=("$pkg")
    done < <(standin_packages)
    if [ "${#want[@]}" -gt 0 ]; then
        log "installing: ${want[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >&2
    fi
    export PATH="$PATH:/usr/sbin:/sbin"
}

# Size in MiB of a directory tree, rounded up.
tree_mib() { du -sm --apparent-size "$1" | cut -f1; }
