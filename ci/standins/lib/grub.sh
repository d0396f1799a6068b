# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# GRUB for the stand-ins: built with grub-mkimage into files, never installed on a device.
# Sourced, not run.

GRUB_MODULES="part_gpt part_msdos ext2 fat linux normal search search_label search_fs_uuid
    configfile echo test serial terminal gzio boot halt reboot ls cat"

# grub_cfg KERNEL INITRD CMDLINE: a grub.cfg that boots at once, on the serial line and the screen.
grub_cfg() {
    cat <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
echo 'stand-in: GRUB loading the kernel'
search --no-floppy --label nixos --set=root
linux $1 $3
initrd $2
boot
CFG
}

# grub_efi OUT.EFI: a removable-path GRUB for x86_64 UEFI that reads its grub.cfg from the
# directory it was loaded from (the ESP's /EFI/BOOT), like a grub-install --removable does.
grub_efi() {
    # shellcheck disable=SC2086
    grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$1" $GRUB_MODULES
}

# grub_bios OUT.CORE: core.img for an MBR disk whose first partition holds /boot/grub/grub.cfg.
grub_bios() {
    # shellcheck disable=SC2086
    grub-mkimage -O i386-pc -p '(hd0,msdos1)/boot/grub' -o "$1" biosdisk $GRUB_MODULES
    local size
    size=$(stat -c %s "$1")
    [ "$size" -lt $(( 2047 * 512 )) ] || die "core.img is $size bytes, too big for the MBR gap"
}

# install_grub_bios DISK CORE: GRUB's documented BIOS layout, written with dd instead of
# grub-bios-setup (which wants a block device): boot.img's code (first 440 bytes, so the
# partition table stays) in the MBR, core.img from sector 1 on. boot.img's kernel sector
# (offset 0x5c) defaults to 1 and diskboot.img's block list (offset 0x1f4) to "from sector 2,
# core size - 1 sectors" as grub-mkimage fills it, which is exactly this placement.
install_grub_bios() {
    local disk=$1 core=$2 dir=/usr/lib/grub/i386-pc
    dd if="$dir/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
    dd if="$core" of="$disk" bs=512 seek=1 conv=notrunc status=none
}
