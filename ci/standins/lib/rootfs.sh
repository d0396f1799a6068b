# shellcheck shell=bash disable=SC2154 # $work, $out, $cache_root: set by ../build
# Root file systems of the stand-ins: one mmdebstrap per Debian suite, then small customisations.
# Sourced, not run.

# dbus: systemd-logind needs it to act on the ACPI power button (QMP system_powerdown).
# KERNEL is replaced by the suite's kernel package (suite_kernel).
STANDIN_PACKAGES="systemd-sysv,udev,kmod,dbus,KERNEL,initramfs-tools"

# The modules NixOS's default initrd carries for disks and CD-ROMs (nixpkgs
# nixos/modules/system/boot/kernel.nix, boot.initrd.availableKernelModules). The harness boots
# disks and CD-ROMs on q35's AHCI controller, so a stand-in kernel must have them too.
NIXOS_INITRD_MODULES="ahci ata_piix sd_mod sr_mod"

# suite_kernel SUITE: the kernel package of a suite's stand-ins. Trixie's cloud kernel has every
# module of NIXOS_INITRD_MODULES; bookworm's has no AHCI driver (no ahci.ko, CONFIG_SATA_AHCI
# unset), so bookworm gets the generic kernel.
suite_kernel() {
    case "$1" in
        bookworm) echo linux-image-amd64 ;;
        *) echo linux-image-cloud-amd64 ;;
    esac
}

# debootstrap_suite SUITE DEST_TAR: mmdebstrap once per suite and package list. The tarball is
# kept beside the stand-ins (rootfs/) so that a change of the customisation does not download again.
debootstrap_suite() {
    local suite=$1 dest=$2 key packages
    packages=${STANDIN_PACKAGES/KERNEL/$(suite_kernel "$suite")}
    key=$(printf '%s %s' "$suite" "$packages" | sha256sum | cut -c1-12)
    local cached="$cache_root/rootfs/$suite-$key.tar"
    if [ ! -f "$cached" ]; then
        log "mmdebstrap $suite (about a minute)"
        mkdir -p "$cache_root/rootfs"
        # shellcheck disable=SC2016 # $1 is for the hook's shell
        mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" \
            --customize-hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*' \
            "$suite" "$cached.partial" >&2
        mv "$cached.partial" "$cached"
    fi
    ln -sf "$cached" "$dest"
}

# unpack_root TAR DIR
unpack_root() {
    mkdir -p "$2"
    tar -C "$2" --numeric-owner -xpf "$1"
}

# check_initrd_modules DIR: the root's kernel has every module of NIXOS_INITRD_MODULES (as a
# module or built in), or the build stops naming the missing ones.
check_initrd_modules() {
    local mods m missing=()
    mods=$(ls -d "$1"/usr/lib/modules/*/) || die "no kernel modules in $1"
    for m in $NIXOS_INITRD_MODULES; do
        if ! find "$mods" -name "$m.ko*" | grep -q . && ! grep -q "/$m.ko$" "$mods/modules.builtin"; then
            missing+=("$m")
        fi
    done
    ((${#missing[@]} == 0)) || die "the kernel in $1 lacks ${missing[*]} (NixOS's default initrd has them): pick another kernel in suite_kernel"
}

# autologin_dropin DIR: a drop-in in DIR that makes a getty unit log root in through
# standin-autologin (written by customise_root), without hanging up or resetting its tty.
autologin_dropin() {
    mkdir -p "$1"
    cat >"$1/autologin.conf" <<'UNIT'
[Service]
TTYVHangup=no
TTYReset=no
ExecStart=
ExecStart=-/usr/local/sbin/standin-autologin
UNIT
}

# customise_root DIR: what every good stand-in has (hostname, serial autologin, os-release variant).
customise_root() {
    local r=$1
    echo standin >"$r/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tstandin\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
    # It is Debian, and says so; the variant tells what it is for.
    local osr
    osr=$(cat "$r/usr/lib/os-release")
    rm -f "$r/etc/os-release"
    printf '%s\nVARIANT="nixos-generate stand-in"\nVARIANT_ID=nixos-generate-standin\n' "$osr" >"$r/etc/os-release"
    # Root without a password, logged in automatically on the serial console.
    sed -i 's/^root:[^:]*:/root::/' "$r/etc/shadow"
    mkdir -p "$r/etc/systemd/system/serial-getty@ttyS0.service.d" "$r/etc/systemd/system/getty.target.wants"
    # The serial getty starts only after multi-user.target is reached. Measured: with the usual
    # ordering (getty.target before multi-user.target, serial-getty@ is Type=idle) systemd's last
    # status lines, "Reached target multi-user.target" among them, were often missing from the
    # serial log once the getty had the console (systemd's vhangup/reset of the tty and agetty's
    # flush). So: no getty-generator instance, no getty.target link; standin-serial-getty.service
    # (no default dependencies, so multi-user.target is not ordered after it) starts it later.
    mkdir -p "$r/etc/systemd/system-generators" "$r/etc/systemd/system/multi-user.target.wants"
    ln -sf /dev/null "$r/etc/systemd/system-generators/systemd-getty-generator"
    cat >"$r/usr/local/sbin/standin-autologin" <<'SH'
#!/bin/sh
# Stand-in: root autologin on the serial console, once the console's output has drained.
sleep 1
exec /sbin/agetty -o '-p -f -- \u' --noclear --keep-baud --autologin root 115200,57600,38400,9600 - "${TERM:-vt220}"
SH
    chmod 0755 "$r/usr/local/sbin/standin-autologin"
    autologin_dropin "$r/etc/systemd/system/serial-getty@ttyS0.service.d"
    cat >"$r/etc/systemd/system/standin-serial-getty.service" <<'UNIT'
[Unit]
Description=Stand-in: serial getty on ttyS0 once multi-user.target is reached
DefaultDependencies=no
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/systemctl start --no-block serial-getty@ttyS0.service
UNIT
    ln -sf ../standin-serial-getty.service "$r/etc/systemd/system/multi-user.target.wants/standin-serial-getty.service"
    ln -sf /lib/systemd/system/multi-user.target "$r/etc/systemd/system/default.target"
    # No fsck at boot (fstab pass 0) and no waiting for a network.
    printf '# stand-in root file system\nLABEL=nixos / ext4 rw,noatime 0 0\n' >"$r/etc/fstab"
    # A fixed machine id: an empty one makes every boot a first boot (presets, slower).
    echo 5374616e64696e2d6e69786f7367656e >"$r/etc/machine-id"
    rm -f "$r/var/lib/dbus/machine-id"
    # Mark /etc and /var up to date, or ldconfig and the journal catalogue run at every boot.
    touch "$r/etc/.updated" "$r/var/.updated"
    # Timers that do nothing useful in a test guest.
    local t
    for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer; do
        ln -sf /dev/null "$r/etc/systemd/system/$t"
    done
    lean_boot "$r"
}

# lean_boot DIR: less userspace at boot. For test cost under TCG (one vCPU: every generator,
# mount and oneshot is a fork+exec on the boot's critical path), not realism: NixOS runs most of
# these. What stays, and why: udev (coldplug; it loads vmw_vsock_virtio_transport for the vsock
# notify, and button/evdev/gpio_keys), dbus and systemd-logind (they turn the ACPI or GPIO power
# button into a poweroff: the `poweroff` scenario), systemd-tmpfiles-setup and
# systemd-user-sessions (/run/nologin would keep the installer's user `nixos` out), the serial
# getty arrangement above, modprobe@vmw_vsock_virtio_transport (the harness's drop-in credential
# wants it). Nothing masked here may leave a failed unit: the console scenario wants
# `systemctl is-system-running` to say "running". Units and generators that a suite lacks
# (bookworm's systemd 252 has no ssh or tpm2 generator) are masked all the same: harmless.
lean_boot() {
    local r=$1 g u
    mkdir -p "$r/etc/systemd/system-generators" "$r/etc/systemd/journald.conf.d" "$r/etc/modprobe.d"
    # Generators with nothing to do here (no SysV scripts, no GPT auto-mounting, no sshd, no TPM,
    # no resume device, no system update, no rc.local, no systemd.run=); each one runs at every
    # boot and at every daemon-reload.
    for g in systemd-sysv-generator systemd-gpt-auto-generator systemd-ssh-generator \
        systemd-tpm2-generator systemd-hibernate-resume-generator systemd-system-update-generator \
        systemd-rc-local-generator systemd-run-generator; do
        ln -sf /dev/null "$r/etc/systemd/system-generators/$g"
    done
    # Pseudo file systems and early oneshots nobody in a test guest uses. The root is mounted rw
    # by the kernel command line (no remount needed), /tmp and /run/lock stay on the root and
    # /run, /dev is devtmpfs (the static nodes kmod-static-nodes and systemd-tmpfiles-setup-dev
    # add are for modules that are not loaded), sysctl.d holds only systemd's defaults, the
    # journal lives in /run (below), nothing needs a random seed saved, utmp is not read.
    for u in dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
        sys-fs-fuse-connections.mount sys-kernel-config.mount proc-sys-fs-binfmt_misc.automount \
        tmp.mount run-lock.mount \
        modprobe@configfs.service modprobe@drm.service modprobe@efi_pstore.service modprobe@fuse.service \
        systemd-pstore.service systemd-journal-flush.service systemd-random-seed.service \
        systemd-remount-fs.service kmod-static-nodes.service systemd-tmpfiles-setup-dev-early.service \
        systemd-tmpfiles-setup-dev.service systemd-sysctl.service systemd-udev-load-credentials.service \
        systemd-update-utmp.service systemd-binfmt.service e2scrub_reap.service \
        getty@tty1.service; do
        ln -sf /dev/null "$r/etc/systemd/system/$u"
    done
    # systemd-tmpfiles-clean.timer stays (an idle timer costs nothing at boot): with every timer
    # masked, timers.target has nothing to wait for and is reached before sysinit.target, which
    # drops it from the targets the matrix's U-Boot snapshots list (those from sysinit on).
    # local-fs-pre.target was pulled in by systemd-remount-fs and systemd-tmpfiles-setup-dev,
    # both masked above; NixOS reaches it, and the matrix's snapshots list the targets a guest
    # reports (over vsock), so the stand-ins still reach it (a target: costs nothing).
    mkdir -p "$r/etc/systemd/system/local-fs.target.wants"
    ln -sf /lib/systemd/system/local-fs-pre.target "$r/etc/systemd/system/local-fs.target.wants/local-fs-pre.target"
    # The journal in /run only: no flush to /var at boot, nothing written to the image.
    printf '# stand-in: the journal in /run only (test cost)\n[Journal]\nStorage=volatile\n' \
        >"$r/etc/systemd/journald.conf.d/standin.conf"
    # systemd-modules-load has nothing to load (/etc/modules holds only comments; nothing here
    # writes modules-load.d): without its one file the unit's conditions skip it. A
    # modules-load= on the kernel command line still starts it.
    if [ -L "$r/etc/modules-load.d/modules.conf" ] && ! grep -q '^[^#[:space:]]' "$r/etc/modules"; then
        rm -f "$r/etc/modules-load.d/modules.conf"
    fi
    # udev's coldplug loads a module for every CPU feature and device it has an alias for; these
    # do nothing for a test (KVM inside TCG, CPU crypto and CRC drivers whose generic versions
    # are built in, pstore, raw PS/2, cpufreq). `blacklist` stops only loading by alias: nothing
    # that asks for them by name is affected.
    cat >"$r/etc/modprobe.d/standin-lean.conf" <<'CONF'
# stand-in (ci/standins/lib/rootfs.sh, lean_boot): modules udev would load by alias for nothing
blacklist kvm
blacklist kvm_amd
blacklist kvm_intel
blacklist irqbypass
blacklist crct10dif_pclmul
blacklist crc32_pclmul
blacklist ghash_clmulni_intel
blacklist polyval_clmulni
blacklist sha1_ssse3
blacklist sha256_ssse3
blacklist sha512_ssse3
blacklist aesni_intel
blacklist efi_pstore
blacklist serio_raw
blacklist powernow_k8
blacklist acpi_cpufreq
blacklist sha1_ce
blacklist sha2_ce
blacklist sha256_arm64
blacklist sha512_ce
blacklist sha512_arm64
blacklist sha3_ce
blacklist aes_ce_blk
blacklist aes_ce_cipher
blacklist aes_neon_blk
blacklist ghash_ce
blacklist polyval_ce
blacklist crct10dif_ce
blacklist sm3_ce
blacklist sm4_ce
CONF
}

# kernel_of DIR / initrd_of DIR: the one kernel and initramfs of a root file system.
# The first in glob order (as `ls | head -n1` gave); none is a failure.
kernel_of() { local k; for k in "$1"/boot/vmlinuz-*; do break; done; [ -e "$k" ] && echo "/boot/${k##*/}"; }
initrd_of() { local i; for i in "$1"/boot/initrd.img-*; do break; done; [ -e "$i" ] && echo "/boot/${i##*/}"; }

# make_ext4 DIR IMAGE: an ext4 file system labelled nixos (or $ROOT_LABEL) holding DIR, sized to
# fit with room.
make_ext4() {
    local dir=$1 img=$2 mib
    mib=$(( $(tree_mib "$dir") * 13 / 10 + 96 ))
    rm -f "$img"
    mke2fs -q -F -t ext4 -L "${ROOT_LABEL:-nixos}" -m 0 -E root_owner=0:0 -d "$dir" "$img" "${mib}M" >&2
}

# make_ram_root DIR INITRD: the whole root file system as a zstd initramfs whose /init is systemd.
# Used where NixOS boots a kernel and an initrd with nothing else (iso, kexec).
make_ram_root() {
    local dir=$1 out=$2 tmp
    tmp=$(mktemp -d "$work/ramroot.XXXXXX")
    cp -a "$dir/." "$tmp/"
    rm -rf "${tmp:?}/boot"/* "${tmp:?}/var/cache/apt"/* "${tmp:?}/var/lib/apt/lists"/*
    printf '# stand-in root in RAM (initramfs): nothing to mount\n' >"$tmp/etc/fstab"
    ln -sf /sbin/init "$tmp/init"
    (cd "$tmp" && find . -print0 | LC_ALL=C sort -z | cpio --quiet -o -0 -H newc) \
        | zstd -q -T2 -9 >"$out"
    rm -rf "$tmp"
}
