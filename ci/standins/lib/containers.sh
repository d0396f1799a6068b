# shellcheck shell=bash disable=SC2154 # $work, $out: set by ../build
# Container stand-ins: root file system tarballs laid out like NixOS's make-system-tarball output
# (tarball/nixos-system-x86_64-linux.tar.xz; the init at /sbin/init, as nixpkgs'
# profiles/container.nix puts it), booted by the harness with systemd-nspawn. Sourced, not run.

# container_tree ROOTFS DIR: the stand-in root without kernel or boot files, with an empty fstab
# (a container mounts nothing itself) and root logged in automatically on the container console
# once multi-user.target is reached (the serial getty's rule, see customise_root).
container_tree() {
    local r=$2
    rm -rf "$r"
    cp -a "$1" "$r"
    rm -rf "${r:?}/boot" "${r:?}/usr/lib/modules" "${r:?}"/vmlinuz* "${r:?}"/initrd.img*
    printf '# stand-in container: nothing to mount\n' >"$r/etc/fstab"
    autologin_dropin "$r/etc/systemd/system/console-getty.service.d"
    cat >"$r/etc/systemd/system/standin-console-getty.service" <<'UNIT'
[Unit]
Description=Stand-in: console getty once multi-user.target is reached
DefaultDependencies=no
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/systemctl start --no-block console-getty.service
UNIT
    ln -sf ../standin-console-getty.service "$r/etc/systemd/system/multi-user.target.wants/standin-console-getty.service"
    rm -f "$r/etc/systemd/system/multi-user.target.wants/standin-serial-getty.service"
    [ -e "$r/sbin/init" ] || die "the container tree has no /sbin/init"
}

# container_tarball DIR FILE: DIR as an xz-compressed tarball, owners numeric, paths relative.
container_tarball() {
    mkdir -p "$(dirname "$2")"
    tar -C "$1" --numeric-owner -cf - . | xz -T2 -1 >"$2"
}

# standin_containers ROOTFS: lxc, docker and proxmox-lxc (one tarball, hard-linked), and
# container-noinit, whose init exits at once.
standin_containers() {
    local c="$work/container" name tarball=tarball/nixos-system-x86_64-linux.tar.xz
    container_tree "$1" "$c"
    container_tarball "$c" "$out/lxc/$tarball"
    add_standin lxc lxc multi-user 257 "$tarball: trixie root with /sbin/init, no kernel, console autologin"
    for name in docker proxmox-lxc; do
        mkdir -p "$out/$name/tarball"
        ln "$out/lxc/$tarball" "$out/$name/$tarball"
        add_standin "$name" "$name" multi-user 257 "the lxc stand-in's tarball"
    done
    standin_lxc_metadata
    rm -f "$c/usr/lib/systemd/systemd" "$c/sbin/init"
    ln -s /bin/false "$c/sbin/init"
    container_tarball "$c" "$out/container-noinit/$tarball"
    add_standin container-noinit lxc container-exited 257 "lxc tarball whose /sbin/init is /bin/false (no systemd)"
    rm -rf "$c"
}

# lxc_metadata ARCH: metadata.yaml as nixpkgs' lxc-image-metadata.nix writes it
# (lib.generators.toYAML writes JSON), with one template, /etc/hostname from hostname.tpl.
lxc_metadata() {
    printf '{"architecture":"%s","creation_date":1,"properties":{"description":"nixos-generate stand-in (Debian trixie) %s-linux","os":"debian","release":"trixie"},"templates":{"/etc/hostname":{"properties":{},"template":"hostname.tpl","when":["create"]}}}\n' "$1" "$1"
}

# standin_lxc_metadata: the metadata tarball that goes with the lxc stand-in, and one for
# aarch64 (a mismatched pair the harness must refuse before booting anything).
standin_lxc_metadata() {
    local d="$work/lxc-meta" arch name
    for arch in x86_64 aarch64; do
        rm -rf "$d" && mkdir -p "$d/templates"
        lxc_metadata "$arch" >"$d/metadata.yaml"
        printf '{{ container.name }}\n' >"$d/templates/hostname.tpl"
        name=lxc-metadata
        [ "$arch" = x86_64 ] || name=lxc-metadata-mismatch
        container_tarball "$d" "$out/$name/tarball/nixos-image-lxc-metadata-standin-$arch-linux.tar.xz"
    done
    rm -rf "$d"
    add_standin lxc-metadata lxc-metadata multi-user 257 "metadata.yaml (x86_64, as nixpkgs writes it) + templates/hostname.tpl; checked with the lxc stand-in, which is then booted"
    add_standin lxc-metadata-mismatch lxc-metadata refused 257 "metadata.yaml saying aarch64: paired with the (x86_64) lxc stand-in it must be refused (exit 2)"
}
