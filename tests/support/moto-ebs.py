#!/usr/bin/env python3
"""moto's server with the EBS direct API gaps of moto 5.2.5 patched, for the ebs-direct tests.

Usage: moto-ebs.py -H 127.0.0.1 -p PORT   (the arguments of moto_server)

Without these patches a test of the ebs-direct builder would pass against behaviour AWS does not
have (see ../shared/reference/ebs-direct.md, "moto 5.2.5"):
- StartSnapshot reports 512-byte blocks (AWS: 524288) and ignores ParentSnapshotId: here a child
  starts with its parent's blocks, and the EC2 snapshot stays `pending` until CompleteSnapshot.
- PutSnapshotBlock checks nothing: here the body must be one 512 KiB block whose base64 SHA-256
  is the x-amz-Checksum given (HTTP 400 otherwise), and the snapshot must be pending.
- GetSnapshotBlock / ListSnapshotBlocks of a missing snapshot or block: HTTP 404, not a 500.
- ListChangedBlocks walked the first snapshot only: here it answers the blocks written into the
  second since the first (its parent), or every block whose content differs.
- RegisterImage kept only Name and Description: here it keeps the block device mappings, root
  device, architecture, ENA/SR-IOV and boot mode, and refuses an unknown snapshot.
- EC2 DeleteSnapshot also forgets the snapshot's blocks.

KILN_MOTO_EBS_PUT_DELAY=SECONDS makes every PutSnapshotBlock into a child snapshot that slow (a
slow link, so a test can cancel or kill kiln mid-upload); a base upload (no parent) is not slowed.
"""

import base64
import hashlib
import os
import sys
import time

from moto.core.exceptions import JsonRESTError
from moto.ebs import models as ebs_models
from moto.ebs import responses as ebs_responses
from moto.ec2.exceptions import InvalidSnapshotIdError
from moto.ec2.models import amis as ec2_amis
from moto.ec2.models import elastic_block_store as ec2_ebs
from moto.ec2.responses import amis as ec2_ami_responses

BLOCK = 524288
PUT_DELAY = float(os.environ.get("KILN_MOTO_EBS_PUT_DELAY") or 0)


class Validation(JsonRESTError):
    code = 400

    def __init__(self, message):
        super().__init__("ValidationException", message)


class NotFound(JsonRESTError):
    code = 404

    def __init__(self, message):
        super().__init__("ResourceNotFoundException", message)


def snapshot(backend, snapshot_id):
    s = backend.snapshots.get(snapshot_id)
    if s is None:
        raise NotFound(f"snapshot {snapshot_id} does not exist")
    return s


_start = ebs_models.EBSBackend.start_snapshot


def start_snapshot(self, volume_size, tags, description, parent=None):
    parent_snap = snapshot(self, parent) if parent else None
    if parent_snap and parent_snap.status != "completed":
        raise Validation(f"parent snapshot {parent} is not completed")
    s = _start(self, volume_size, tags, description)
    s.block_size = BLOCK
    s.written = set()
    s.parent = parent
    if parent_snap:
        s.blocks = dict(parent_snap.blocks)
    self.ec2_backend.snapshots[s.snapshot_id].status = "pending"
    return s


def start_snapshot_response(self):
    s = self.ebs_backend.start_snapshot(
        volume_size=self._get_param("VolumeSize"),
        tags=self._get_param("Tags"),
        description=self._get_param("Description"),
        parent=self._get_param("ParentSnapshotId"),
    )
    return ebs_responses.ActionResult(
        {
            "SnapshotId": s.snapshot_id,
            "OwnerId": s.account_id,
            "Status": s.status,
            "StartTime": s.start_time,
            "VolumeSize": s.volume_size,
            "BlockSize": s.block_size,
            "ParentSnapshotId": s.parent,
            "Description": s.description,
        }
    )


def put_snapshot_block(self, snapshot_id, block_index, block_data, checksum, checksum_algorithm, data_length):
    s = snapshot(self, snapshot_id)
    if PUT_DELAY and getattr(s, "parent", None):
        time.sleep(PUT_DELAY)
    if s.status != "pending":
        raise Validation(f"snapshot {snapshot_id} is {s.status}, not pending")
    index = int(block_index)
    if index < 0 or index * BLOCK >= s.volume_size * 2**30:
        raise Validation(f"block index {index} is outside the volume")
    if len(block_data) != BLOCK or int(data_length or 0) != BLOCK:
        raise Validation(f"a block is {BLOCK} bytes, got {len(block_data)} (DataLength {data_length})")
    digest = base64.b64encode(hashlib.sha256(block_data).digest()).decode()
    if checksum_algorithm != "SHA256" or checksum != digest:
        raise Validation(f"checksum mismatch for block {index}")
    s.put_block(index, block_data, checksum, checksum_algorithm, data_length)
    s.written.add(index)
    return checksum, checksum_algorithm


def complete_snapshot(self, snapshot_id):
    s = snapshot(self, snapshot_id)
    s.status = "completed"
    ec2 = self.ec2_backend.snapshots.get(snapshot_id)
    if ec2 is not None:
        ec2.status = "completed"
    return "completed"


def get_snapshot_block(self, snapshot_id, block_index):
    s = snapshot(self, snapshot_id)
    block = s.blocks.get(int(block_index))
    if block is None:
        raise NotFound(f"block {block_index} of {snapshot_id} does not exist")
    return block


def list_snapshot_blocks(self, snapshot_id):
    s = snapshot(self, snapshot_id)
    s.blocks = dict(sorted(s.blocks.items()))
    return s


def list_changed_blocks(self, first_snapshot_id, second_snapshot_id):
    second = snapshot(self, second_snapshot_id)
    first = snapshot(self, first_snapshot_id) if first_snapshot_id else None
    changed = {}
    if first is not None and getattr(second, "parent", None) == first_snapshot_id:
        for idx in sorted(second.written):
            old = first.blocks.get(idx)
            changed[idx] = (old.block_token if old else None, second.blocks[idx].block_token)
    else:
        old_blocks = first.blocks if first else {}
        for idx in sorted(set(old_blocks) | set(second.blocks)):
            a, b = old_blocks.get(idx), second.blocks.get(idx)
            if (a and a.block_data) != (b and b.block_data):
                changed[idx] = (a.block_token if a else None, b.block_token if b else None)
    return changed, second


def register_image_response(self):
    backend = self.ec2_backend
    mappings = []
    for m in self._get_param("BlockDeviceMappings", []):
        ebs = m.get("Ebs") or {}
        snap = ebs.get("SnapshotId")
        if snap and snap not in backend.snapshots:
            raise InvalidSnapshotIdError()
        entry = {"DeviceName": m.get("DeviceName")}
        if m.get("VirtualName"):
            entry["VirtualName"] = m["VirtualName"]
        if ebs:
            entry["Ebs"] = {
                "SnapshotId": snap,
                "VolumeSize": int(ebs.get("VolumeSize") or 0) or None,
                "DeleteOnTermination": str(ebs.get("DeleteOnTermination", "true")).lower() == "true",
                "VolumeType": ebs.get("VolumeType") or "gp3",
            }
        mappings.append(entry)
    self.error_on_dryrun()
    image = backend.register_image(self._get_param("Name"), self._get_param("Description", ""))
    image.kiln_mappings = mappings
    image.root_device_name = self._get_param("RootDeviceName") or image.root_device_name
    image.root_device_type = "ebs"
    image.architecture = self._get_param("Architecture") or "x86_64"
    image.virtualization_type = self._get_param("VirtualizationType") or "hvm"
    image.sriov = self._get_param("SriovNetSupport") or image.sriov
    image.boot_mode = self._get_param("BootMode") or image.boot_mode
    image.ena_support = str(self._get_param("EnaSupport", "false")).lower() == "true"
    return ec2_ami_responses.ActionResult({"ImageId": image.id})


_mappings = ec2_amis.Ami.block_device_mappings.fget


def block_device_mappings(self):
    kept = getattr(self, "kiln_mappings", None)
    return kept if kept is not None else _mappings(self)


_delete = ec2_ebs.EBSBackend.delete_snapshot


def delete_snapshot(self, snapshot_id):
    gone = _delete(self, snapshot_id)
    for account in ebs_models.ebs_backends.values():
        for backend in account.values():
            backend.snapshots.pop(snapshot_id, None)
    return gone


ebs_models.EBSBackend.start_snapshot = start_snapshot
ebs_models.EBSBackend.put_snapshot_block = put_snapshot_block
ebs_models.EBSBackend.complete_snapshot = complete_snapshot
ebs_models.EBSBackend.get_snapshot_block = get_snapshot_block
ebs_models.EBSBackend.list_snapshot_blocks = list_snapshot_blocks
ebs_models.EBSBackend.list_changed_blocks = list_changed_blocks
ebs_responses.EBSResponse.start_snapshot = start_snapshot_response
ec2_ami_responses.AmisResponse.register_image = register_image_response
ec2_amis.Ami.block_device_mappings = property(block_device_mappings)
ec2_ebs.EBSBackend.delete_snapshot = delete_snapshot

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
