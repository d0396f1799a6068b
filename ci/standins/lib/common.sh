# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# Shared helpers for ci/standins/build. Sourced, not run.

log() { printf 'standins: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Install what the build needs, only when it is missing (a fresh Debian 12 machine).
ensure_tools() {
    local want=() pair cmd pkg
    for pair in mmdebstrap:mmdebstrap grub-mkimage:grub-common grub-mkrescue:grub-common \
        xorriso:xorriso mcopy:mtools mkfs.vfat:dosfstools mke2fs:e2fsprogs sfdisk:fdisk \
        qemu-img:qemu-utils cpio:cpio zstd:zstd xz:xz-utils flock:util-linux; do
        cmd=${pair%%:*} pkg=${pair#*:}
        PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null || want+=("$pkg")
    done
    for pkg in grub-pc-bin grub-efi-amd64-bin; do
        dpkg -s "$pkg" >/dev/null 2>&1 || want+=("$pkg")
    done
    if [ "${#want[@]}" -gt 0 ]; then
        log "installing: ${want[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >&2
    fi
    export PATH="$PATH:/usr/sbin:/sbin"
}

# Size in MiB of a directory tree, rounded up.
tree_mib() { du -sm --apparent-size "$1" | cut -f1; }
