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
    rm -f "$c/usr/lib/systemd/systemd" "$c/sbin/init"
    ln -s /bin/false "$c/sbin/init"
    container_tarball "$c" "$out/container-noinit/$tarball"
    add_standin container-noinit lxc container-exited 257 "lxc tarball whose /sbin/init is /bin/false (no systemd)"
    rm -rf "$c"
}
