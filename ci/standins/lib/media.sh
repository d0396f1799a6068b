# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# iso, kexec, kexec-bundle: a kernel plus an initramfs that holds the whole root file system.
# Sourced, not run.

# iso_image KERNEL_FILE RAMROOT ISO VOLID: a hybrid BIOS + UEFI ISO (grub-mkrescue) that boots
# KERNEL_FILE with RAMROOT (the whole root file system) as its initramfs.
iso_image() {
    local d
    d=$(mktemp -d "$work/isoroot.XXXXXX")
    mkdir -p "$d/boot/grub" "$(dirname "$3")"
    cp "$1" "$d/boot/bzImage"
    cp "$2" "$d/boot/initrd"
    cat >"$d/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
echo 'stand-in: GRUB loading the kernel'
linux /boot/bzImage console=tty0 console=ttyS0,115200
initrd /boot/initrd
boot
CFG
    grub-mkrescue --quiet -o "$3" "$d" -- -volid "$4" 2>&1 \
        | grep -v '^xorriso.*: UPDATE' >&2 || true
    [ -s "$3" ] || die "grub-mkrescue made no ISO $3"
    rm -rf "$d"
}

# standin_iso ROOTFS KERNEL RAMROOT: STANDINS/iso/iso/nixos-standin.iso, hybrid BIOS + UEFI.
standin_iso() {
    iso_image "$1$2" "$3" "$out/iso/iso/nixos-standin.iso" NIXOS_STANDIN
    add_standin iso iso multi-user 257 "hybrid BIOS+UEFI ISO (grub-mkrescue); root file system inside the initramfs"
}

# installer_user ROOT: user `nixos` (no password) logged in automatically on the serial console
# instead of root, and stand-in `nixos-install`, `nixos-generate-config` in /usr/local/bin.
installer_user() {
    local r=$1 tool
    printf 'nixos:x:1000:100:installer user (stand-in):/home/nixos:/bin/bash\n' >>"$r/etc/passwd"
    printf 'nixos::20000:0:99999:7:::\n' >>"$r/etc/shadow"
    mkdir -p "$r/home/nixos"
    chown 1000:100 "$r/home/nixos"
    sed -i 's/--autologin root/--autologin nixos/' "$r/usr/local/sbin/standin-autologin"
    grep -q -- '--autologin nixos' "$r/usr/local/sbin/standin-autologin" || die "autologin user not replaced"
    mkdir -p "$r/usr/local/bin"
    for tool in nixos-install nixos-generate-config; do
        cat >"$r/usr/local/bin/$tool" <<SH
#!/bin/sh
# Stand-in for NixOS's $tool: this guest is Debian (a nixos-generate test image), not NixOS.
echo "$tool: stand-in on a Debian test image; it does nothing" >&2
exit 1
SH
        chmod 0755 "$r/usr/local/bin/$tool"
    done
}

# standin_install_iso ROOTFS KERNEL: STANDINS/install-iso/iso/nixos-installer-standin.iso, the iso
# stand-in made to look like NixOS's installer from the serial console: user `nixos` (no
# password) logged in automatically, and `nixos-install` and `nixos-generate-config` in PATH.
# Those two are stand-ins that say so and install nothing: the guest is Debian. The same ISO,
# hard-linked, stands in for install-iso-hyperv (its Hyper-V drivers change nothing under QEMU).
standin_install_iso() {
    local tr=$1 r="$work/installer-root"
    cp -a "$tr/." "$r/"
    installer_user "$r"
    make_ram_root "$r" "$work/installer-ramroot.zst"
    rm -rf "$r"
    iso_image "$tr$2" "$work/installer-ramroot.zst" "$out/install-iso/iso/nixos-installer-standin.iso" NIXOS_INSTALLER
    add_standin install-iso install-iso multi-user 257 "the iso stand-in with user nixos logged in on the serial console and stand-in nixos-install, nixos-generate-config in PATH"
    mkdir -p "$out/install-iso-hyperv/iso"
    ln "$out/install-iso/iso/nixos-installer-standin.iso" "$out/install-iso-hyperv/iso/nixos-installer-standin.iso"
    add_standin install-iso-hyperv install-iso-hyperv multi-user 257 "the install-iso stand-in, hard-linked (Hyper-V drivers change nothing under QEMU)"
}

# Fake store paths, shaped like NixOS's (32 characters of Nix base-32, then a name).
KEXEC_SCRIPT_PATH=/nix/store/0standin0kexec0script00000000000-kexec-nixos
KEXEC_IMAGE_PATH=/nix/store/0standin0kexec0image000000000000-kexec-image
KEXEC_SYSTEM_PATH=/nix/store/0standin0system00000000000000000-nixos-system-standin
KEXEC_CMDLINE="init=$KEXEC_SYSTEM_PATH/init console=ttyS0,115200 panic=30 boot.panic_on_fail"

# standin_kexec ROOTFS KERNEL RAMROOT: the tarball and the self-extracting bundle, shaped like
# this project's real builders (formats/nix/kexec-builders.nix): tarball/nixos-system-<system>.tar.xz
# holding /kexec_nixos, a symlink to a script that loads ${image}/bzImage and ${image}/initrd
# (plus ${image}/cmdline), and the bundle as one executable file.
standin_kexec() {
    local tr=$1 t="$work/kexec"
    local tarball="$out/kexec/tarball/nixos-system-x86_64-linux.tar.xz"
    mkdir -p "$t$KEXEC_IMAGE_PATH" "$(dirname "$t$KEXEC_SCRIPT_PATH")" "$out/kexec/tarball"
    cp "$tr$2" "$t$KEXEC_IMAGE_PATH/bzImage"
    cp "$3" "$t$KEXEC_IMAGE_PATH/initrd"
    printf '%s\n' "$KEXEC_CMDLINE" >"$t$KEXEC_IMAGE_PATH/cmdline"
    cat >"$t$KEXEC_SCRIPT_PATH" <<SCRIPT
#!/bin/sh
# Stand-in for nixos-generate's kexec_nixos (the guest is Debian, not NixOS).
set -eu
work=\$(mktemp -d)
cd "\$work"
mkdir extra
if [ -e /ssh_pubkey ]; then
  cat /ssh_pubkey >> extra/authorized_keys
fi
(cd extra && find . -type f | cpio -o -H newc | gzip -9) > extra.gz
cat $KEXEC_IMAGE_PATH/initrd extra.gz > initrd
kexec --load $KEXEC_IMAGE_PATH/bzImage --initrd=initrd \\
  --command-line='$KEXEC_CMDLINE'
sync
echo "kexec_nixos: executing the new kernel; file systems are not unmounted cleanly" >&2
kexec -e
SCRIPT
    chmod 0555 "$t$KEXEC_SCRIPT_PATH"
    ln -s "$KEXEC_SCRIPT_PATH" "$t/kexec_nixos"
    (cd "$t" && tar --owner=0 --group=0 --numeric-owner --sort=name -c kexec_nixos nix) \
        | xz -T2 -0 >"$tarball"
    add_standin kexec kexec multi-user 257 "tarball: /kexec_nixos -> script loading \${image}/bzImage and \${image}/initrd (root in the initramfs)"

    # The bundle is the executable itself (nix build's result is the file <hash>-kexec_bundle).
    local b="$out/kexec-bundle"
    cat >"$b" <<'SFX'
#!/bin/sh
# Stand-in for nixos-generate's kexec_bundle: unpacks its tarball at / and runs /kexec_nixos.
set -eu
line=$(awk '/^__ARCHIVE_BELOW__$/ { print NR + 1; exit 0 }' "$0")
tail -n "+$line" "$0" | tar -xJ -C /
/kexec_nixos
exit 1
__ARCHIVE_BELOW__
SFX
    cat "$tarball" >>"$b"
    chmod 0755 "$b"
    add_standin kexec-bundle kexec-bundle multi-user 257 "one executable file: a self-extracting script, __ARCHIVE_BELOW__, then the kexec tarball"
}
