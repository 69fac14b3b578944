#!/usr/bin/env python3
"""Test helper for the ebs-direct builder: a partitioned base AMI in moto, and snapshots read back.

Usage (ENDPOINT: the patched moto of moto-ebs.py; credentials from the environment or dummies):
  ebs-snap.py disk VM_QCOW2 OUT.raw         GPT disk (one Linux partition at 1 MiB) holding the
                                            ext4 filesystem of the qemu test VM image; once
  ebs-snap.py base ENDPOINT DISK.raw NAME   upload it through the EBS direct APIs, register an
                                            AMI; prints {"ami", "snapshot", "blocks"}
  ebs-snap.py download ENDPOINT SNAP OUT    the snapshot's blocks into a sparse raw file
  ebs-snap.py changed ENDPOINT FIRST SECOND ListChangedBlocks: the block indexes
  ebs-snap.py snapshots ENDPOINT            every snapshot: {id, state, volume_size}
  ebs-snap.py image ENDPOINT REGION AMI     DescribeImages of one image, plus its tags
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import struct
import subprocess
import sys
import uuid
import zlib

import boto3

BLOCK = 524288
SECTOR = 512
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def client(service, endpoint, region="us-east-1"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "AKIAKILNTESTKEY00001"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test-secret"),
    )


def gpt(disk_bytes, start_lba, end_lba):
    """The primary and backup GPT of a disk with one Linux filesystem partition."""
    sectors = disk_bytes // SECTOR
    entry = uuid.UUID(LINUX_FS).bytes_le + uuid.uuid4().bytes_le
    entry += struct.pack("<QQQ", start_lba, end_lba, 0) + "root".encode("utf-16-le").ljust(72, b"\0")
    entries = entry.ljust(128 * 128, b"\0")
    entries_crc = zlib.crc32(entries)

    def header(current, backup, entries_lba):
        h = struct.pack(
            "<8sIIIIQQQQ16sQIII",
            b"EFI PART", 0x00010000, 92, 0, 0, current, backup, 34, sectors - 34,
            uuid.uuid4().bytes_le, entries_lba, 128, 128, entries_crc,
        )
        h = h[:16] + struct.pack("<I", zlib.crc32(h)) + h[20:]
        return h.ljust(SECTOR, b"\0")

    mbr = bytearray(SECTOR)
    mbr[446:462] = struct.pack("<BBBBBBBBII", 0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, min(sectors - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    primary = bytes(mbr) + header(1, sectors - 1, 2) + entries
    backup = entries + header(sectors - 1, 1, sectors - 33)
    return primary, backup


def make_disk(qcow2, out):
    if os.path.exists(out):
        return
    # Names of this process's own: two tests may build the cached disk at once; each renames a
    # complete file into place (the same bytes either way).
    fs = f"{out}.{os.getpid()}.fs"
    subprocess.run(["qemu-img", "convert", "-O", "raw", qcow2, fs], check=True)
    fs_bytes = os.path.getsize(fs)
    start = 2048  # 1 MiB
    size = (start * SECTOR + fs_bytes + 34 * SECTOR + 2**30 - 1) // 2**30 * 2**30
    tmp = f"{out}.{os.getpid()}.part"
    with open(tmp, "wb") as f:
        f.truncate(size)
        primary, backup = gpt(size, start, start + fs_bytes // SECTOR - 1)
        f.write(primary)
        f.seek(size - len(backup))
        f.write(backup)
    subprocess.run(
        ["dd", f"if={fs}", f"of={tmp}", "bs=1M", "seek=1", "conv=sparse,notrunc", "status=none"], check=True
    )
    os.remove(fs)
    os.rename(tmp, out)


def upload_base(endpoint, disk, name):
    ebs = client("ebs", endpoint)
    size = os.path.getsize(disk)
    snap = ebs.start_snapshot(VolumeSize=size // 2**30, Description=f"kiln test base {name}")["SnapshotId"]

    def put(index, data):
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        ebs.put_snapshot_block(
            SnapshotId=snap, BlockIndex=index, BlockData=data, DataLength=BLOCK,
            Checksum=digest, ChecksumAlgorithm="SHA256",
        )

    zero = bytes(BLOCK)
    count = 0
    with open(disk, "rb") as f, concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = []
        for index in range(size // BLOCK):
            data = f.read(BLOCK)
            if data != zero:
                futures.append(pool.submit(put, index, data))
                count += 1
        for fut in futures:
            fut.result()
    ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=count)
    ec2 = client("ec2", endpoint)
    ami = ec2.register_image(
        Name=name, RootDeviceName="/dev/xvda", Architecture="x86_64", VirtualizationType="hvm",
        EnaSupport=True, SriovNetSupport="simple", BootMode="legacy-bios",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeSize": size // 2**30,
                                                "DeleteOnTermination": True, "VolumeType": "gp3"}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ],
    )["ImageId"]
    return {"ami": ami, "snapshot": snap, "blocks": count}


def download(endpoint, snap, out):
    ebs = client("ebs", endpoint)
    listed = ebs.list_snapshot_blocks(SnapshotId=snap)
    with open(out, "wb") as f:
        f.truncate(listed["VolumeSize"] * 2**30)
        for b in listed["Blocks"]:
            got = ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"])
            f.seek(b["BlockIndex"] * BLOCK)
            f.write(got["BlockData"].read())
    return {"blocks": len(listed["Blocks"]), "block_size": listed["BlockSize"]}


def main(argv):
    cmd = argv[0]
    if cmd == "disk":
        make_disk(argv[1], argv[2])
        out = {"disk": argv[2]}
    elif cmd == "base":
        out = upload_base(argv[1], argv[2], argv[3])
    elif cmd == "download":
        out = download(argv[1], argv[2], argv[3])
    elif cmd == "changed":
        got = client("ebs", argv[1]).list_changed_blocks(FirstSnapshotId=argv[2], SecondSnapshotId=argv[3])
        out = [b["BlockIndex"] for b in got["ChangedBlocks"]]
    elif cmd == "snapshots":
        got = client("ec2", argv[1]).describe_snapshots(OwnerIds=["self"])["Snapshots"]
        out = [{"id": s["SnapshotId"], "state": s["State"], "volume_size": s["VolumeSize"]} for s in got]
    elif cmd == "image":
        ec2 = client("ec2", argv[1], argv[2])
        out = ec2.describe_images(ImageIds=[argv[3]])["Images"][0]
        out["KilnTags"] = {
            t["Key"]: t["Value"]
            for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [argv[3]]}])["Tags"]
        }
        out["LaunchPermissions"] = ec2.describe_image_attribute(ImageId=argv[3], Attribute="launchPermission")[
            "LaunchPermissions"
        ]
    else:
        sys.exit(__doc__)
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
