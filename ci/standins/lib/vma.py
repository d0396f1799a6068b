#!/usr/bin/env python3
"""Writes a Proxmox VMA archive of one raw disk (stand-in for nixpkgs' proxmox image, which
runs Proxmox's `vma create ... drive-virtio0=DISK`). Layout as Proxmox documents it: a header
(magic, version 1, blob buffer, config and device tables, big-endian numbers, blobs with a
little-endian 16-bit length), then extents of a 512-byte header and up to 59 clusters of 64 KiB,
of which only the 4 KiB blocks that are not zero are stored (every cluster is listed, a zero
one with an empty mask, as Proxmox's writer does). The MD5 fields stay zero.

usage: vma.py DISK.raw CONFIG-TEXT OUT.vma
"""
import struct
import sys
import uuid

CLUSTER, BLOCK, PER_EXTENT, HEADER = 65536, 4096, 59, 12288


def header(disk_size, config):
    h = bytearray(HEADER)
    buffer = 8192
    blobs = bytearray(b"\0")  # pointer 0 means "none"

    def blob(data):
        ptr = len(blobs)
        blobs.extend(struct.pack("<H", len(data)) + data)
        return ptr

    conf_name, conf = blob(b"qemu-server.conf\0"), blob(config + b"\0")
    dev = blob(b"drive-virtio0\0")
    assert buffer + len(blobs) <= HEADER
    h[0:4] = b"VMA\0"
    struct.pack_into(">I16sq", h, 4, 1, uuid.uuid4().bytes, 0)
    struct.pack_into(">III", h, 48, buffer, len(blobs), HEADER)
    struct.pack_into(">I", h, 2044, conf_name)
    struct.pack_into(">I", h, 3068, conf)
    struct.pack_into(">IIQ", h, 4096 + 32, dev, 0, disk_size)  # device id 1
    h[buffer:buffer + len(blobs)] = blobs
    return h


def extents(disk):
    cluster_no = 0
    while True:
        infos, data = [], bytearray()
        while len(infos) < PER_EXTENT:
            cluster = disk.read(CLUSTER)
            if not cluster:
                break
            cluster = cluster.ljust(CLUSTER, b"\0")
            mask = 0
            for b in range(16):
                block = cluster[b * BLOCK:(b + 1) * BLOCK]
                if block.count(0) != BLOCK:
                    mask |= 1 << b
                    data.extend(block)
            # Every cluster is listed, a zero one with an empty mask: Proxmox's reader
            # refuses an archive missing one ("detected missing cluster").
            infos.append((mask << 48) | (1 << 32) | cluster_no)
            cluster_no += 1
        if not infos:
            if not cluster:
                return
            continue
        head = bytearray(512)
        head[0:4] = b"VMAE"
        struct.pack_into(">H", head, 6, len(data) // BLOCK)
        for i, info in enumerate(infos):
            struct.pack_into(">Q", head, 40 + 8 * i, info)
        yield bytes(head) + bytes(data)
        if not cluster:
            return


def main():
    disk_path, config, out_path = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
    with open(disk_path, "rb") as disk, open(out_path, "wb") as out:
        disk.seek(0, 2)
        size = disk.tell()
        disk.seek(0)
        out.write(header(size, config))
        for extent in extents(disk):
            out.write(extent)


if __name__ == "__main__":
    main()
