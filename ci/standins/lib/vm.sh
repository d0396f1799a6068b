# shellcheck shell=bash disable=SC2154 # $work, $out: set by ../build
# vm, vm-nogui, vm-bootloader: result/bin/run-standin-vm, with the same contract as the run
# script of nixpkgs' qemu-vm.nix. Sourced, not run.

# standin_vms ROOTFS KERNEL INITRD
standin_vms() {
    local tr=$1 share="$out/vm/share/standin"
    mkdir -p "$share"
    cp "$tr$2" "$share/kernel"
    cp "$tr$3" "$share/initrd"
    echo "root=LABEL=nixos rw" >"$share/kernel-params"
    to_qcow2 "$work/root.ext4" "$share/disk.qcow2"
    mkdir -p "$out/vm-nogui/share" "$out/vm-bootloader/share/standin"
    cp -al "$share" "$out/vm-nogui/share/standin"
    ln "$out/qcow/nixos.qcow2" "$out/vm-bootloader/share/standin/disk.qcow2"
    run_script direct graphics >"$work/run-vm"
    run_script direct nographic >"$work/run-vm-nogui"
    run_script bootloader graphics >"$work/run-vm-bootloader"
    local v
    for v in vm vm-nogui vm-bootloader; do
        mkdir -p "$out/$v/bin"
        install -m 0755 "$work/run-$v" "$out/$v/bin/run-standin-vm"
    done
    add_standin vm vm multi-user 257 "bin/run-standin-vm: direct kernel boot, disk = qcow2 overlay of an ext4 root"
    add_standin vm-nogui vm-nogui multi-user 257 "bin/run-standin-vm: as vm, -nographic (qemu-vm.nix with graphics off)"
    add_standin vm-bootloader vm-bootloader multi-user 257 "bin/run-standin-vm: SeaBIOS -> GRUB from a qcow2 overlay of the raw disk"
}

# run_script direct|bootloader graphics|nographic: the script text.
run_script() {
    local boot=$1 gfx=$2 consoles
    # qemu-vm.nix puts the serial console first with graphics (so tty0 is /dev/console) and
    # last without; the harness appends console=ttyS0 through QEMU_KERNEL_PARAMS if it needs it.
    if [ "$gfx" = graphics ]; then consoles="console=ttyS0,115200n8 console=tty0"
    else consoles="console=tty0 console=ttyS0,115200n8"; fi
    cat <<'HEAD'
#!/usr/bin/env bash
# Stand-in for NixOS's result/bin/run-<host>-vm (nixpkgs nixos/modules/virtualisation/qemu-vm.nix).
# The guest is Debian, not NixOS. Honours NIX_DISK_IMAGE, TMPDIR + USE_TMPDIR, SHARED_DIR,
# QEMU_OPTS, QEMU_NET_OPTS, QEMU_KERNEL_PARAMS (direct boot) and passes "$@" on to QEMU.
# Like NixOS it asks for KVM when it can (accel=kvm:tcg); QEMU_OPTS="-machine accel=tcg" forces TCG.
set -e

share=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../share/standin" && pwd)

NIX_DISK_IMAGE=$(readlink -f "${NIX_DISK_IMAGE:-./standin.qcow2}")
if ! test -e "$NIX_DISK_IMAGE"; then
    echo "Disk image do not exist, creating the virtualisation disk image..." >&2
    qemu-img create -q -f qcow2 -F qcow2 -b "$share/disk.qcow2" "$NIX_DISK_IMAGE"
    echo "Virtualisation disk image created." >&2
fi

if [ -z "$TMPDIR" ] || [ -z "$USE_TMPDIR" ]; then
    TMPDIR=$(mktemp -d nix-vm.XXXXXXXXXX --tmpdir)
fi
mkdir -p "$TMPDIR/xchg"
export SHARED_DIR="${SHARED_DIR:-$TMPDIR/xchg}"
cd "$TMPDIR"

HEAD
    cat <<'QEMU'
# shellcheck disable=SC2086
exec qemu-system-x86_64 -machine accel=kvm:tcg -cpu max \
    -name standin -m 1024 -smp 1 -device virtio-rng-pci \
    -net nic,netdev=user.0,model=virtio -netdev user,id=user.0,"$QEMU_NET_OPTS" \
    -virtfs local,path="$SHARED_DIR",security_model=none,mount_tag=shared \
    -virtfs local,path="$TMPDIR"/xchg,security_model=none,mount_tag=xchg \
    -drive cache=writeback,file="$NIX_DISK_IMAGE",id=drive1,if=none,index=1,werror=report \
    -device virtio-blk-pci,bootindex=1,drive=drive1,serial=root \
    -device virtio-keyboard -usb -device usb-tablet,bus=usb-bus.0 \
QEMU
    if [ "$boot" = direct ]; then
        cat <<'QEMU'
    -kernel "$share/kernel" -initrd "$share/initrd" \
QEMU
        # shellcheck disable=SC2016 # text of the run script, expanded when it runs
        printf '    -append "$(cat "$share/kernel-params") %s $QEMU_KERNEL_PARAMS" \\\n' "$consoles"
    fi
    if [ "$gfx" = nographic ]; then
        printf '    -nographic \\\n'
    fi
    cat <<'QEMU'
    $QEMU_OPTS \
    "$@"
QEMU
}
