# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# Disk images assembled from file system images with sfdisk and dd: no loop devices.
# Sourced, not run.

ESP_MIB=32

# make_esp OUT.IMG GRUB.EFI GRUB.CFG: a FAT ESP labelled ESP with GRUB at the removable path.
# GRUB.EFI may be empty (no boot loader at all).
make_esp() {
    local img=$1 efi=$2 cfg=$3
    rm -f "$img"
    mkfs.vfat -n ESP -C "$img" $(( ESP_MIB * 1024 )) >/dev/null
    mmd -i "$img" ::/EFI ::/EFI/BOOT
    if [ -n "$efi" ]; then
        mcopy -i "$img" "$efi" ::/EFI/BOOT/BOOTX64.EFI
        mcopy -i "$img" "$cfg" ::/EFI/BOOT/grub.cfg
    fi
}

# disk_efi OUT ESP.IMG ROOT.IMG: GPT, partition 1 the ESP, partition 2 the ext4 root (like
# nixpkgs' make-disk-image with partitionTableType = "efi").
disk_efi() {
    local out=$1 esp=$2 root=$3 esp_s root_s
    esp_s=$(( $(stat -c %s "$esp") / 512 ))
    root_s=$(( $(stat -c %s "$root") / 512 ))
    rm -f "$out"
    truncate -s $(( (2048 + esp_s + root_s + 2048) * 512 )) "$out"
    sfdisk --quiet --no-reread --no-tell-kernel "$out" >&2 <<TABLE
label: gpt
start=2048, size=$esp_s, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
start=$(( 2048 + esp_s )), size=$root_s, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="nixos"
TABLE
    dd if="$esp" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$root" of="$out" bs=512 seek=$(( 2048 + esp_s )) conv=notrunc,sparse status=none
}

# disk_bios OUT ROOT.IMG CORE.IMG: MBR, one bootable ext4 partition from 1 MiB, GRUB in the MBR and
# the gap before it (like make-disk-image with partitionTableType = "legacy").
disk_bios() {
    local out=$1 root=$2 core=$3 root_s
    root_s=$(( $(stat -c %s "$root") / 512 ))
    rm -f "$out"
    truncate -s $(( (2048 + root_s) * 512 )) "$out"
    sfdisk --quiet --no-reread --no-tell-kernel "$out" >&2 <<TABLE
label: dos
start=2048, size=$root_s, type=83, bootable
TABLE
    dd if="$root" of="$out" bs=1M seek=1 conv=notrunc,sparse status=none
    [ -z "$core" ] || install_grub_bios "$out" "$core"
}

# to_qcow2 IN OUT: a compressed-free qcow2 copy (fast to make, sparse).
to_qcow2() {
    qemu-img convert -q -O qcow2 "$1" "$2"
}
