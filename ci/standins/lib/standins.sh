# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# The stand-ins themselves: which image each one is and what the harness must say about it.
# Sourced, not run. Uses $work (scratch) and $out (the STANDINS directory being built).

CONSOLE="console=tty0 console=ttyS0,115200"

# add_standin NAME FORMAT EXPECT SYSTEMD DESCRIPTION: one manifest entry.
add_standin() {
    cat >>"$out/manifest.toml" <<TOML

[[standin]]
name = "$1"
format = "$2"
expect = "$3"
systemd = $4
description = "$5"
TOML
}

# efi_standin NAME ROOT.IMG KERNEL INITRD CMDLINE: STANDINS/NAME/nixos.img, a raw-efi disk.
efi_standin() {
    local name=$1 root=$2
    mkdir -p "$out/$name"
    grub_cfg "$3" "$4" "$5" >"$work/$name.cfg"
    make_esp "$work/$name.esp" "$work/BOOTX64.EFI" "$work/$name.cfg"
    disk_efi "$out/$name/nixos.img" "$work/$name.esp" "$root"
}

# tiny_root DIR ROOTFS: a file system with only /boot of ROOTFS (kernel and initramfs), for
# stand-ins that fail before they would need a root file system.
tiny_root() {
    mkdir -p "$1/boot"
    cp -a "$2/boot/." "$1/boot/"
    printf 'stand-in: only /boot here\n' >"$1/README"
}

build_all() {
    local work=$1 out=$2 tr="$1/trixie" br="$1/bookworm"
    printf '# Stand-in images for nixos-generate tests: Debian guests laid out like NixOS results.\n# Built by ci/standins/build. Not NixOS.\n' >"$out/manifest.toml"

    debootstrap_suite trixie "$work/trixie.tar"
    debootstrap_suite bookworm "$work/bookworm.tar"
    log "unpacking and customising root file systems"
    unpack_root "$work/trixie.tar" "$tr"
    unpack_root "$work/bookworm.tar" "$br"
    check_initrd_modules "$tr"
    check_initrd_modules "$br"
    customise_root "$tr"
    customise_root "$br"
    local K I KB IB
    K=$(kernel_of "$tr") I=$(initrd_of "$tr") KB=$(kernel_of "$br") IB=$(initrd_of "$br")
    local good="root=LABEL=nixos rw $CONSOLE"
    mkdir -p "$tr/boot/grub" "$br/boot/grub"
    grub_cfg "$K" "$I" "$good" >"$tr/boot/grub/grub.cfg"
    grub_cfg "$KB" "$IB" "$good" >"$br/boot/grub/grub.cfg"

    log "file systems"
    make_ext4 "$tr" "$work/root.ext4"
    make_ext4 "$br" "$work/root-bookworm.ext4"
    standin_roots_broken "$tr"
    tiny_root "$work/tiny" "$tr"
    make_ext4 "$work/tiny" "$work/tiny.ext4"

    log "boot loaders"
    grub_efi "$work/BOOTX64.EFI"
    grub_bios "$work/core.img"

    log "raw-efi, qcow-efi, raw, qcow"
    efi_standin raw-efi "$work/root.ext4" "$K" "$I" "$good"
    add_standin raw-efi raw-efi multi-user 257 "GPT + ESP (GRUB at EFI/BOOT/BOOTX64.EFI) + ext4 root labelled nixos"
    mkdir -p "$out/qcow-efi" "$out/raw" "$out/qcow"
    to_qcow2 "$out/raw-efi/nixos.img" "$out/qcow-efi/nixos.qcow2"
    add_standin qcow-efi qcow-efi multi-user 257 "qcow2 of the raw-efi stand-in"
    disk_bios "$out/raw/nixos.img" "$work/root.ext4" "$work/core.img"
    add_standin raw raw multi-user 257 "MBR + GRUB for BIOS in the MBR gap + ext4 root labelled nixos"
    to_qcow2 "$out/raw/nixos.img" "$out/qcow/nixos.qcow2"
    add_standin qcow qcow multi-user 257 "qcow2 of the raw stand-in"

    log "amazon, azure, hyperv, vmware, virtualbox, vagrant-virtualbox, gce, do, openstack, cloudstack, kubevirt"
    standin_cloud

    log "linode, sd-x86_64"
    standin_linode "$tr" "$K" "$I"
    standin_sd "$tr" "$K" "$I"

    log "vm, vm-nogui, vm-bootloader"
    standin_vms "$tr" "$K" "$I"

    log "lxc, docker, proxmox-lxc, container-noinit"
    standin_containers "$tr"

    log "iso, kexec, kexec-bundle, install-iso, install-iso-hyperv"
    make_ram_root "$tr" "$work/ramroot.zst"
    standin_iso "$tr" "$K" "$work/ramroot.zst"
    standin_kexec "$tr" "$K" "$work/ramroot.zst"
    standin_install_iso "$tr" "$K"

    log "broken stand-ins"
    efi_standin panic "$work/tiny.ext4" "$K" "$I" "$good rdinit=/bin/false"
    add_standin panic raw-efi kernel-panic 257 "raw-efi whose initramfs init is /bin/false: Attempted to kill init"
    standin_initrd_root "$tr" "$I"
    efi_standin initrd "$work/tiny-initrd.ext4" "$K" "$I" "root=LABEL=standin-missing rootdelay=3 rw $CONSOLE"
    add_standin initrd raw-efi initrd-failure 257 "raw-efi whose root device does not exist: the initramfs gives up after rootdelay=3 s"
    efi_standin emergency "$work/root-emergency.ext4" "$K" "$I" "$good"
    add_standin emergency raw-efi emergency-mode 257 "raw-efi with an fstab entry for a missing device (3 s timeout)"
    efi_standin hang "$work/root-hang.ext4" "$K" "$I" "$good"
    add_standin hang raw-efi timeout 257 "raw-efi whose boot waits forever for a start job before multi-user"
    standin_truncated
    standin_noboot
    efi_standin old-systemd "$work/root-bookworm.ext4" "$KB" "$IB" "$good"
    add_standin old-systemd raw-efi multi-user 252 "bookworm raw-efi: systemd 252 sends no vsock notify"

    log "aarch64: sd-aarch64, sd-aarch64-installer, sd-noboot"
    standin_aarch64
}

# standin_roots_broken ROOTFS: root file systems that boot into emergency mode or hang.
standin_roots_broken() {
    local tr=$1
    cp "$tr/etc/fstab" "$work/fstab.good"
    printf 'LABEL=standin-missing /mnt/data ext4 defaults,x-systemd.device-timeout=3s 0 0\n' >>"$tr/etc/fstab"
    make_ext4 "$tr" "$work/root-emergency.ext4"
    cp "$work/fstab.good" "$tr/etc/fstab"
    local unit="$tr/etc/systemd/system/standin-hang.service"
    cat >"$unit" <<'UNIT'
[Unit]
Description=Stand-in start job that never finishes
Before=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sleep infinity
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
    mkdir -p "$tr/etc/systemd/system/multi-user.target.wants"
    ln -s ../standin-hang.service "$tr/etc/systemd/system/multi-user.target.wants/standin-hang.service"
    make_ext4 "$tr" "$work/root-hang.ext4"
    rm -f "$unit" "$tr/etc/systemd/system/multi-user.target.wants/standin-hang.service"
}

# standin_initrd_root ROOTFS INITRD: a tiny root whose initramfs gives up on a missing root device
# after rootdelay= seconds. Trixie's initramfs-tools waits max(30, rootdelay) s; an appended cpio
# (the kernel unpacks concatenated archives, later files win) replaces its scripts/local with a
# copy whose minimum is rootdelay itself.
standin_initrd_root() {
    local tr=$1 initrd=$2 d="$work/initrd-overlay"
    mkdir -p "$d/scripts"
    # shellcheck disable=SC2016 # ${ROOTDELAY:-30} is text for the initramfs script
    sed 's/^\([[:space:]]*\)slumber=30$/\1slumber=${ROOTDELAY:-30}/' \
        "$tr/usr/share/initramfs-tools/scripts/local" >"$d/scripts/local"
    # shellcheck disable=SC2016 # the same text
    grep -q 'slumber=${ROOTDELAY:-30}' "$d/scripts/local" || die "initramfs-tools' scripts/local changed"
    tiny_root "$work/tiny-initrd" "$tr"
    (cd "$d" && printf '%s\n' scripts scripts/local | cpio --quiet -o -H newc -R 0:0 | gzip -9) \
        >>"$work/tiny-initrd$initrd"
    make_ext4 "$work/tiny-initrd" "$work/tiny-initrd.ext4"
}

standin_truncated() {
    mkdir -p "$out/truncated"
    cp --sparse=always "$out/raw-efi/nixos.img" "$out/truncated/nixos.img"
    truncate -s "${STANDIN_TRUNCATE_MIB:-48}M" "$out/truncated/nixos.img"
    add_standin truncated raw-efi "${STANDIN_TRUNCATED_EXPECT:-bootloader-stuck}" 257 \
        "raw-efi cut short after ${STANDIN_TRUNCATE_MIB:-48} MiB: ESP intact, root file system missing"
}

standin_noboot() {
    mkdir -p "$out/noboot"
    make_esp "$work/noboot.esp" "" ""
    disk_efi "$out/noboot/nixos.img" "$work/noboot.esp" "$work/tiny.ext4"
    add_standin noboot raw-efi no-bootable-device 257 "GPT with an empty ESP and an ext4 root: no boot loader"
}
