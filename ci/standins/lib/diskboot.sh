# shellcheck shell=bash disable=SC2154 # $work, $out: set by ../build
# Stand-ins whose kernel a loader outside the image reads from the image's own file system:
# linode (Linode's GRUB 2, "kernel from disk") and sd-x86_64 (U-Boot's extlinux). Sourced.

LINODE_UUID=4c696e6f-6465-5374-616e-64696e2d6e67

# with_root_files ROOTFS FSTAB CFGPATH CFGTEXT CMD...: runs CMD with ROOTFS's /etc/fstab and the
# file CFGPATH replaced, then puts the originals back (CFGPATH removed if it was not there).
with_root_files() {
    local r=$1 fstab=$2 cfg=$3 text=$4
    shift 4
    cp "$r/etc/fstab" "$work/fstab.saved"
    rm -f "$work/cfg.saved"
    [ ! -e "$r$cfg" ] || cp "$r$cfg" "$work/cfg.saved"
    printf '%s' "$fstab" >"$r/etc/fstab"
    mkdir -p "$(dirname "$r$cfg")"
    printf '%s\n' "$text" >"$r$cfg"
    "$@"
    cp "$work/fstab.saved" "$r/etc/fstab"
    if [ -e "$work/cfg.saved" ]; then mv "$work/cfg.saved" "$r$cfg"; else rm -f "$r$cfg"; fi
}

# standin_linode ROOTFS KERNEL INITRD: one ext4 file system without partition table (nixpkgs'
# linode-image.nix: make-disk-image with partitionTableType "none"), gzip'd; its
# /boot/grub/grub.cfg in the shape of NixOS's install-grub.pl output (search by file system
# UUID, paths prefixed with the found drive), fstab as linode-config.nix: / on /dev/sda,
# swap on /dev/sdb.
standin_linode() {
    local r=$1 k=$2 i=$3 mib cfg
    cfg=$(cat <<CFG
# Stand-in (Debian), shaped like NixOS's grub.cfg for Linode.
set default=0
set timeout=10
serial --speed=19200 --unit=0 --word=8 --parity=no --stop=1;
terminal_input serial;
terminal_output serial
menuentry "NixOS - Default" --class nixos --unrestricted {
search --set=drive1 --fs-uuid $LINODE_UUID
  linux (\$drive1)$k root=/dev/sda rw console=tty0 console=ttyS0,19200n8
  initrd (\$drive1)$i
}
CFG
)
    mib=$(( $(tree_mib "$r") * 13 / 10 + 96 ))
    rm -f "$work/linode.img"
    with_root_files "$r" $'# stand-in: as linode-config.nix\n/dev/sda / ext4 rw,noatime 0 0\n/dev/sdb none swap sw 0 0\n' \
        /boot/grub/grub.cfg "$cfg" \
        mke2fs -q -F -t ext4 -L nixos -U "$LINODE_UUID" -m 0 -E root_owner=0:0 -d "$r" "$work/linode.img" "${mib}M" >&2
    debugfs -R "cat /boot/grub/grub.cfg" "$work/linode.img" 2>/dev/null | grep -q 'root=/dev/sda' \
        || die "linode stand-in: grub.cfg not in place"
    mkdir -p "$out/linode"
    gzip -1 -c "$work/linode.img" >"$out/linode/nixos-image-linode-standin-x86_64-linux.img.gz"
    rm -f "$work/linode.img"
    add_standin linode linode multi-user 257 "gzip'd ext4 file system without partition table, /boot/grub/grub.cfg for Linode's GRUB; root /dev/sda (virtio-scsi), swap /dev/sdb"
}

# standin_sd ROOTFS KERNEL INITRD: nixpkgs' sd-image.nix layout: MBR without boot code, p1 FAT
# (type b, label FIRMWARE, from 8 MiB, 30 MiB, empty: populateFirmwareCommands is "" on x86_64),
# p2 ext4 labelled NIXOS_SD (type 83, bootable) holding /boot/extlinux/extlinux.conf as
# generic-extlinux-compatible writes it (kernel and initrd copied to /boot/nixos, paths
# relative to the configuration's directory); zstd-compressed (sdImage.compressImage).
standin_sd() {
    local r=$1 k=$2 i=$3 mib root fw img conf
    mkdir -p "$r/boot/nixos"
    cp "$r$k" "$r/boot/nixos/standin-linux-bzImage"
    cp "$r$i" "$r/boot/nixos/standin-initrd-initrd"
    conf=$(cat <<CONF
# Generated file, all changes will be lost on nixos-rebuild!
# (stand-in, Debian: shaped like generic-extlinux-compatible's output)

DEFAULT nixos-default

MENU TITLE ------------------------------------------------------------
TIMEOUT 50

LABEL nixos-default
  MENU LABEL NixOS - Default
  LINUX ../nixos/standin-linux-bzImage
  INITRD ../nixos/standin-initrd-initrd
  APPEND root=LABEL=NIXOS_SD rw console=tty0 console=ttyS0,115200
CONF
)
    mib=$(( $(tree_mib "$r") * 13 / 10 + 96 ))
    root="$work/sd-root.ext4" fw="$work/sd-firmware.vfat" img="$work/nixos-sd.img"
    rm -f "$root" "$fw" "$img"
    with_root_files "$r" $'# stand-in: as sd-image.nix\nLABEL=NIXOS_SD / ext4 rw,noatime 0 0\nLABEL=FIRMWARE /boot/firmware vfat nofail,noauto 0 0\n' \
        /boot/extlinux/extlinux.conf "$conf" \
        mke2fs -q -F -t ext4 -L NIXOS_SD -m 0 -E root_owner=0:0 -d "$r" "$root" "${mib}M" >&2
    rm -rf "$r/boot/nixos" "$r/boot/extlinux"
    mkfs.vfat -n FIRMWARE -C "$fw" $(( 30 * 1024 )) >/dev/null
    local root_s
    root_s=$(( $(stat -c %s "$root") / 512 ))
    truncate -s $(( (38 * 2048 + root_s) * 512 )) "$img"
    sfdisk --quiet --no-reread --no-tell-kernel "$img" >&2 <<TABLE
label: dos
label-id: 0x2178694e
start=8M, size=$(( 30 * 2048 )), type=b
start=38M, type=83, bootable
TABLE
    dd if="$fw" of="$img" bs=1M seek=8 conv=notrunc,sparse status=none
    dd if="$root" of="$img" bs=1M seek=38 conv=notrunc,sparse status=none
    rm -f "$root" "$fw"
    mkdir -p "$out/sd-x86_64/sd-image"
    zstd -q -T2 -3 --rm "$img" -o "$out/sd-x86_64/sd-image/nixos-image-sd-card-standin-x86_64-linux.img.zst"
    add_standin sd-x86_64 sd-x86_64 multi-user 257 "MBR without boot code: FAT FIRMWARE + bootable ext4 NIXOS_SD with /boot/extlinux/extlinux.conf (U-Boot's), zstd"
}
