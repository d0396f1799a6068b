# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# aarch64 stand-ins: an arm64 trixie root (mmdebstrap --arch=arm64, its maintainer scripts run
# by qemu-user-static through binfmt_misc), laid out like nixpkgs' sd-image-aarch64.nix
# (installer/sd-card/sd-image.nix): MBR (label-id 0x2178694e), partition 1 a FAT firmware
# partition labelled FIRMWARE from 8 MiB (30 MiB), partition 2 (bootable) ext4 labelled
# NIXOS_SD holding /boot/extlinux/extlinux.conf (generic-extlinux-compatible), compressed with
# zstd as `sdImage.compressImage` (on by default) does. Booted by U-Boot (qemu_arm64) under
# qemu-system-aarch64 -M virt. Sourced, not run.

# Debian's generic arm64 kernel, not the cloud one: the cloud kernel has no gpio-keys driver
# (CONFIG_KEYBOARD_GPIO unset), and on `virt` booted by U-Boot (a device tree; the harness sets
# acpi=off) QEMU's power button is a GPIO key on the PL061 (GPIO_PL061=y, KEYBOARD_GPIO=m in the
# generic kernel; udev loads gpio_keys).
ARM64_PACKAGES="systemd-sysv,udev,kmod,dbus,linux-image-arm64,initramfs-tools"

# Its initrd is initramfs-tools' default (MODULES=most: 36.7 MB gzip'd; the cloud kernel's was
# 17.3 MB). Tried 2026-11-27: MODULES=list with virtio_blk, virtio_scsi, sd_mod and ext4 only
# (10.8 MB) boots too, but sd-aarch64 reached multi-user.target later through the harness
# (58.6-65.6 s in five boots against 50.0-52.4 s in three, interleaved, same load). Not checked
# why; most likely the modules the big initrd loads early are then loaded from the root, where
# every lookup searches the generic kernel's whole module index.

# NixOS's kernel parameters for the SD image (sd-image-aarch64.nix: ttyS0 for Tegra, ttyAMA0 for
# QEMU's virt, tty0) and boot.consoleLogLevel 7, in NixOS's order: tty0 last, so /dev/console is
# tty0 and systemd's status lines ("Reached target multi-user.target") never reach the serial
# port. The kernel's own messages still go to every console (the harness's milestones), the
# serial getty runs on ttyAMA0 (standin-serial-getty here, systemd-getty-generator on NixOS),
# and readiness comes over vsock only, as it would from a real NixOS SD image.
SD_CONSOLE="console=ttyS0,115200n8 console=ttyAMA0,115200n8 console=tty0 loglevel=7"

# ensure_arm64_emulation: qemu-user-static registered with binfmt_misc (mounted if it is not).
ensure_arm64_emulation() {
    # qemu-user-static and binfmt-support: ensure_tools (ci/standins/packages).
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
        die "cannot mount binfmt_misc (needed to run arm64 maintainer scripts)"
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >&2 ||
        die "qemu-aarch64 is not registered with binfmt_misc: update-binfmts --enable qemu-aarch64"
}

# debootstrap_arm64 SUITE DEST_TAR: as debootstrap_suite, for arm64. Cached in rootfs/ like it:
# under emulation it takes several minutes.
debootstrap_arm64() {
    local suite=$1 dest=$2 key
    key=$(printf '%s arm64 %s' "$suite" "$ARM64_PACKAGES" | sha256sum | cut -c1-12)
    local cached="$cache_root/rootfs/$suite-arm64-$key.tar"
    if [ ! -f "$cached" ]; then
        ensure_arm64_emulation
        log "mmdebstrap $suite arm64 (several minutes under qemu-user)"
        mkdir -p "$cache_root/rootfs"
        # shellcheck disable=SC2016 # $1 is for the hook's shell
        mmdebstrap --quiet --arch=arm64 --format=tar --variant=minbase --include="$ARM64_PACKAGES" \
            --customize-hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*' \
            "$suite" "$cached.partial" >&2
        mv "$cached.partial" "$cached"
    fi
    ln -sf "$cached" "$dest"
}

# customise_arm64_root DIR: what every good stand-in has, with the serial getty on ttyAMA0
# (the virt machine's PL011) instead of ttyS0.
customise_arm64_root() {
    local r=$1
    customise_root "$r"
    mv "$r/etc/systemd/system/serial-getty@ttyS0.service.d" "$r/etc/systemd/system/serial-getty@ttyAMA0.service.d"
    sed -i 's/serial-getty@ttyS0/serial-getty@ttyAMA0/; s/ttyS0/ttyAMA0/' "$r/etc/systemd/system/standin-serial-getty.service"
    printf '# stand-in root file system\nLABEL=NIXOS_SD / ext4 rw,noatime 0 0\n' >"$r/etc/fstab"
}

# sd_boot_files DIR CMDLINE: /boot as generic-extlinux-compatible writes it: the kernel as an
# uncompressed arm64 Image and the initrd under /boot/nixos, a dtbs directory, and
# /boot/extlinux/extlinux.conf naming them relative to itself, with NixOS's 5 s menu timeout.
sd_boot_files() {
    local r=$1 cmdline=$2 k i
    k=$(kernel_of "$r") i=$(initrd_of "$r")
    mkdir -p "$r/boot/nixos/0standin0-dtbs" "$r/boot/extlinux"
    # Debian's arm64 vmlinuz is a gzip'd Image; U-Boot's booti wants it uncompressed, as NixOS
    # installs it.
    if gzip -t "$r$k" 2>/dev/null; then
        gzip -dc "$r$k" >"$r/boot/nixos/0standin0-linux-Image"
    else
        cp "$r$k" "$r/boot/nixos/0standin0-linux-Image"
    fi
    cp "$r$i" "$r/boot/nixos/0standin0-initrd-initrd"
    cat >"$r/boot/extlinux/extlinux.conf" <<CONF
# Generated file, all changes will be lost on nixos-rebuild!

# Change this to e.g. nixos-42 to temporarily boot to an older configuration.
DEFAULT nixos-default

MENU TITLE ------------------------------------------------------------
TIMEOUT 50

LABEL nixos-default
  MENU LABEL NixOS - Default (stand-in: Debian)
  LINUX ../nixos/0standin0-linux-Image
  INITRD ../nixos/0standin0-initrd-initrd
  APPEND $cmdline
  FDTDIR ../nixos/0standin0-dtbs
CONF
}

# sd_image OUT ROOT.EXT4 [FIRMWARE_DIR]: the SD card image of sd-image.nix, uncompressed.
sd_image() {
    local img=$1 root=$2 fw=${3:-} root_s fw_s=$(( 30 * 2048 ))
    root_s=$(( $(stat -c %s "$root") / 512 ))
    rm -f "$img" "$work/firmware_part.img"
    truncate -s $(( (8 * 2048 + fw_s + root_s) * 512 )) "$img"
    sfdisk --quiet --no-reread --no-tell-kernel "$img" >&2 <<TABLE
label: dos
label-id: 0x2178694e

start=8M, size=$fw_s, type=b
start=$(( 8 + 30 ))M, type=83, bootable
TABLE
    truncate -s $(( fw_s * 512 )) "$work/firmware_part.img"
    mkfs.vfat --invariant -i 0x2178694e -n FIRMWARE "$work/firmware_part.img" >/dev/null
    if [ -n "$fw" ]; then
        mcopy -s -i "$work/firmware_part.img" "$fw"/* ::/
    fi
    dd if="$work/firmware_part.img" of="$img" bs=1M seek=8 conv=notrunc,sparse status=none
    dd if="$root" of="$img" bs=1M seek=38 conv=notrunc,sparse status=none
}

# grub_arm64_efi OUT.EFI: a removable-path GRUB for aarch64 UEFI (EFI/BOOT/BOOTAA64.EFI) reading
# its grub.cfg from /EFI/BOOT. Debian ships grub-efi-arm64-bin for arm64 only: its modules are
# extracted (mmdebstrap --variant=extract, no scripts run; bookworm's, to match the host's
# grub-mkimage 2.06) and cached in rootfs/ beside the root file systems.
grub_arm64_efi() {
    local cached="$cache_root/rootfs/bookworm-arm64-grub-efi.tar" dir="$work/grub-arm64"
    if [ ! -f "$cached" ]; then
        log "extracting grub-efi-arm64-bin (bookworm, arm64)"
        mkdir -p "$cache_root/rootfs"
        mmdebstrap --quiet --arch=arm64 --variant=extract --format=tar --include=grub-efi-arm64-bin \
            bookworm "$cached.partial" >&2
        mv "$cached.partial" "$cached"
    fi
    mkdir -p "$dir"
    tar -C "$dir" -xf "$cached" ./usr/lib/grub/arm64-efi
    # shellcheck disable=SC2086
    grub-mkimage -O arm64-efi -d "$dir/usr/lib/grub/arm64-efi" -p /EFI/BOOT -o "$1" \
        part_gpt part_msdos ext2 fat linux normal search search_label configfile echo test gzio \
        boot halt reboot ls cat
}

# efi_arm64_standin NAME ROOT.IMG KERNEL INITRD CMDLINE: STANDINS/NAME/nixos.img, an aarch64
# raw-efi disk (GPT, ESP with GRUB at EFI/BOOT/BOOTAA64.EFI, ext4 root labelled nixos). AAVMF's
# console is the PL011 already, so GRUB needs no serial terminal of its own.
efi_arm64_standin() {
    local name=$1 root=$2 img
    mkdir -p "$out/$name"
    grub_cfg "$3" "$4" "$5" | sed '/^serial /d; /^terminal_/d' >"$work/$name.cfg"
    img="$work/$name.esp"
    rm -f "$img"
    mkfs.vfat -n ESP -C "$img" $(( ESP_MIB * 1024 )) >/dev/null
    mmd -i "$img" ::/EFI ::/EFI/BOOT
    mcopy -i "$img" "$work/BOOTAA64.EFI" ::/EFI/BOOT/BOOTAA64.EFI
    mcopy -i "$img" "$work/$name.cfg" ::/EFI/BOOT/grub.cfg
    disk_efi "$out/$name/nixos.img" "$img" "$root"
}

# iso_arm64 KERNEL_FILE RAMROOT ISO: an aarch64 UEFI ISO (grub-mkrescue with the arm64-efi
# modules of grub_arm64_efi, EFI/BOOT/BOOTAA64.EFI in its El Torito ESP) that boots KERNEL_FILE
# with RAMROOT (the whole root file system) as its initramfs, volume id NIXOS_STANDIN.
iso_arm64() {
    local d
    d=$(mktemp -d "$work/isoroot.XXXXXX")
    mkdir -p "$d/boot/grub" "$(dirname "$3")"
    cp "$1" "$d/boot/Image"
    cp "$2" "$d/boot/initrd"
    cat >"$d/boot/grub/grub.cfg" <<'CFG'
set timeout=0
echo 'stand-in: GRUB loading the kernel'
linux /boot/Image console=tty0 console=ttyAMA0,115200
initrd /boot/initrd
boot
CFG
    grub-mkrescue --quiet -d "$work/grub-arm64/usr/lib/grub/arm64-efi" -o "$3" "$d" -- -volid NIXOS_STANDIN 2>&1 \
        | grep -v '^xorriso.*: UPDATE' >&2 || true
    [ -s "$3" ] || die "grub-mkrescue made no ISO $3"
    rm -rf "$d"
}

# standin_aarch64: sd-aarch64, sd-aarch64-installer, the broken sd-noboot, the aarch64 UEFI
# disks raw-efi-aarch64 and qcow-efi-aarch64, and the aarch64 ISO iso-aarch64.
standin_aarch64() {
    local ar="$work/trixie-arm64" k i
    debootstrap_arm64 trixie "$work/trixie-arm64.tar"
    unpack_root "$work/trixie-arm64.tar" "$ar"
    customise_arm64_root "$ar"

    # UEFI: the same root labelled nixos, GRUB for arm64 on the ESP.
    k=$(kernel_of "$ar") i=$(initrd_of "$ar")
    sed -i 's/^LABEL=NIXOS_SD /LABEL=nixos /' "$ar/etc/fstab"
    make_ext4 "$ar" "$work/root-arm64.ext4"
    sed -i 's/^LABEL=nixos /LABEL=NIXOS_SD /' "$ar/etc/fstab"
    grub_arm64_efi "$work/BOOTAA64.EFI"
    efi_arm64_standin raw-efi-aarch64 "$work/root-arm64.ext4" "$k" "$i" "root=LABEL=nixos rw console=tty0 console=ttyAMA0,115200"
    add_standin raw-efi-aarch64 raw-efi multi-user 257 "arm64 trixie raw-efi: GPT + ESP (GRUB at EFI/BOOT/BOOTAA64.EFI) + ext4 root labelled nixos; AAVMF boots it"
    mkdir -p "$out/qcow-efi-aarch64"
    to_qcow2 "$out/raw-efi-aarch64/nixos.img" "$out/qcow-efi-aarch64/nixos.qcow2"
    add_standin qcow-efi-aarch64 qcow-efi multi-user 257 "qcow2 of raw-efi-aarch64 (its ESP is read through qemu-img)"
    make_ram_root "$ar" "$work/ramroot-arm64.zst"
    iso_arm64 "$ar$k" "$work/ramroot-arm64.zst" "$out/iso-aarch64/iso/nixos-standin-aarch64.iso"
    add_standin iso-aarch64 iso multi-user 257 "aarch64 UEFI ISO (grub-mkrescue, arm64-efi); root file system inside the initramfs"

    sd_boot_files "$ar" "root=LABEL=NIXOS_SD rw rootwait $SD_CONSOLE"
    # The FAT partition holds the Raspberry Pi firmware on NixOS; here a note saying what it is.
    mkdir -p "$work/sd-firmware"
    printf 'stand-in: the Raspberry Pi firmware files would be here (not used under QEMU)\n' >"$work/sd-firmware/README.TXT"
    ROOT_LABEL=NIXOS_SD make_ext4 "$ar" "$work/sd-root.ext4"
    mkdir -p "$out/sd-aarch64/sd-image"
    sd_image "$work/sd.img" "$work/sd-root.ext4" "$work/sd-firmware"
    zstd -q -T2 --rm -o "$out/sd-aarch64/sd-image/nixos-image-sd-card-standin-aarch64-linux.img.zst" "$work/sd.img"
    add_standin sd-aarch64 sd-aarch64 multi-user 257 "arm64 trixie SD card image (MBR, FAT firmware, ext4 NIXOS_SD with extlinux.conf), zstd: U-Boot boots it"

    # The installer: user nixos logged in on the console, stand-in installer tools.
    installer_user "$ar"
    ROOT_LABEL=NIXOS_SD make_ext4 "$ar" "$work/sd-installer.ext4"
    mkdir -p "$out/sd-aarch64-installer/sd-image"
    sd_image "$work/sd-installer.img" "$work/sd-installer.ext4" "$work/sd-firmware"
    zstd -q -T2 --rm -o "$out/sd-aarch64-installer/sd-image/nixos-image-sd-card-installer-standin-aarch64-linux.img.zst" "$work/sd-installer.img"
    add_standin sd-aarch64-installer sd-aarch64-installer multi-user 257 "the sd-aarch64 stand-in whose root logs user nixos in on ttyAMA0 and has stand-in nixos-install tools"

    # No boot loader: the root file system without /boot (no extlinux.conf, no kernel).
    mkdir -p "$work/sd-noboot/etc"
    printf 'stand-in: an SD card image without a boot loader\n' >"$work/sd-noboot/README"
    ROOT_LABEL=NIXOS_SD make_ext4 "$work/sd-noboot" "$work/sd-noboot.ext4"
    mkdir -p "$out/sd-noboot/sd-image"
    sd_image "$out/sd-noboot/sd-image/nixos-image-sd-card-noboot-aarch64-linux.img" "$work/sd-noboot.ext4" "$work/sd-firmware"
    add_standin sd-noboot sd-aarch64 no-bootable-device 257 "SD card image whose partitions hold no extlinux.conf and no kernel: U-Boot finds nothing to boot"
}
