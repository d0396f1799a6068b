# shellcheck shell=bash disable=SC2154 # $work, $out: set by ../build
# Cloud and hypervisor disk stand-ins: the raw (MBR, GRUB for BIOS) and raw-efi (GPT + ESP)
# stand-ins converted with qemu-img and wrapped as each nixpkgs image module wraps its disk.
# The harness reads the firmware from the partition table, so both kinds are here. Sourced.

# cloud_file NAME PATH: the stand-in NAME's output file (directories made).
cloud_file() {
    mkdir -p "$(dirname "$out/$1/$2")"
    printf '%s\n' "$out/$1/$2"
}

# ovf NAME DISK: a minimal OVF descriptor naming DISK (the harness boots the disk; the
# descriptor is there so the archive has VirtualBox's layout).
ovf() {
    cat <<XML
<?xml version="1.0"?>
<!-- nixos-generate stand-in: not a complete OVF -->
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:id="file1" ovf:href="$2"/></References>
  <VirtualSystem ovf:id="$1"/>
</Envelope>
XML
}

# standin_cloud: amazon (+ amazon-efi), azure, hyperv, vmware, virtualbox, vagrant-virtualbox,
# gce, do, proxmox, openstack, cloudstack, kubevirt.
standin_cloud() {
    local bios="$out/raw/nixos.img" efi="$out/raw-efi/nixos.img" d f
    qemu-img convert -f raw -O vpc "$bios" "$(cloud_file amazon nixos-amazon-image-x86_64-linux.vhd)"
    add_standin amazon amazon multi-user 257 "VHD (dynamic) of the raw stand-in: BIOS, like ec2.efi = false"
    qemu-img convert -f raw -O vpc "$efi" "$(cloud_file amazon-efi nixos-amazon-image-x86_64-linux.vhd)"
    add_standin amazon-efi amazon multi-user 257 "VHD of the raw-efi stand-in: GPT + ESP, booted with UEFI as ec2.efi = true is"
    qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$bios" "$(cloud_file azure disk.vhd)"
    add_standin azure azure multi-user 257 "fixed-size VHD of the raw stand-in (vmGeneration v1: BIOS)"
    qemu-img convert -f raw -O vhdx -o subformat=dynamic "$efi" "$(cloud_file hyperv nixos-x86_64-linux.vhdx)"
    add_standin hyperv hyperv multi-user 257 "VHDX of the raw-efi stand-in (UEFI, as hyperv-image.nix)"
    qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$efi" "$(cloud_file vmware nixos-x86_64-linux.vmdk)"
    add_standin vmware vmware multi-user 257 "monolithicSparse VMDK of the raw-efi stand-in (UEFI, as vmware-image.nix)"

    # virtualbox: an OVA (plain tar, descriptor first) holding a streamOptimized VMDK.
    d="$work/ova"
    rm -rf "$d" && mkdir -p "$d"
    qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$bios" "$d/nixos-disk001.vmdk"
    ovf standin nixos-disk001.vmdk >"$d/nixos.ovf"
    f=$(cloud_file virtualbox nixos-x86_64-linux.ova)
    tar -C "$d" --owner=0 --group=0 -cf "$f" nixos.ovf nixos-disk001.vmdk
    add_standin virtualbox virtualbox multi-user 257 "OVA: OVF descriptor + streamOptimized VMDK of the raw stand-in (BIOS)"
    # vagrant-virtualbox: the OVA's files plus Vagrantfile and metadata.json, as a tar.gz.
    mv "$d/nixos.ovf" "$d/box.ovf"
    printf 'Vagrant.configure("2") do |config|\nend\n' >"$d/Vagrantfile"
    printf '{"provider": "virtualbox"}\n' >"$d/metadata.json"
    tar -C "$d" --owner=0 --group=0 -czf "$(cloud_file vagrant-virtualbox nixos.box)" .
    add_standin vagrant-virtualbox vagrant-virtualbox multi-user 257 "Vagrant box (tar.gz): box.ovf, VMDK, Vagrantfile, metadata.json"
    rm -rf "$d"

    # gce: disk.raw in a tar.gz, sparse.
    d="$work/gce"
    rm -rf "$d" && mkdir -p "$d"
    cp --sparse=always "$bios" "$d/disk.raw"
    tar -C "$d" -Scf - disk.raw | gzip -1 >"$(cloud_file gce nixos-image-x86_64-linux.raw.tar.gz)"
    add_standin gce gce multi-user 257 "disk.raw (the raw stand-in) in a sparse tar.gz"
    rm -rf "$d"

    qemu-img convert -f raw -O qcow2 "$bios" "$work/do.qcow2"
    gzip -1 -c "$work/do.qcow2" >"$(cloud_file "do" nixos.qcow2.gz)"
    rm -f "$work/do.qcow2"
    add_standin "do" "do" multi-user 257 "gzip-compressed qcow2 of the raw stand-in"
    # proxmox: a VMA archive (drive-virtio0 = the raw stand-in), zstd-compressed.
    python3 "$(dirname "${BASH_SOURCE[0]}")/vma.py" "$bios" "$(printf 'bios: seabios\nvirtio0: local-lvm:vm-9999-disk-0\n')" "$work/proxmox.vma"
    # proxmox-truncated: the same archive cut in the middle of an extent (a broken download).
    local vma_size
    vma_size=$(stat -c %s "$work/proxmox.vma")
    head -c $(( vma_size / 2 + 1000 )) "$work/proxmox.vma" \
        | zstd -q -T2 -3 -o "$(cloud_file proxmox-truncated vzdump-qemu-nixos-standin.vma.zst)"
    add_standin proxmox-truncated proxmox refused 257 "the proxmox stand-in's VMA cut in the middle of an extent: refused (exit 2) before QEMU starts"
    zstd -q -T2 -3 --rm "$work/proxmox.vma" -o "$(cloud_file proxmox vzdump-qemu-nixos-standin.vma.zst)"
    add_standin proxmox proxmox multi-user 257 "VMA archive (Proxmox's layout, written by lib/vma.py) of the raw stand-in, zstd"
    for f in openstack cloudstack kubevirt; do
        ln "$out/qcow/nixos.qcow2" "$(cloud_file "$f" nixos.qcow2)"
        add_standin "$f" "$f" multi-user 257 "the qcow stand-in's qcow2 (BIOS)"
    done
}
