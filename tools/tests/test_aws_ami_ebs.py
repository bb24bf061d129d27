"""`nixecs ami publish` by EBS direct upload, against the moto server's EBS direct API
(StartSnapshot, PutSnapshotBlock, CompleteSnapshot, ListSnapshotBlocks, GetSnapshotBlock):
a sparse raw image of a few hundred MiB round-trips block by block, only non-zero blocks are
sent, and a failure midway followed by a rerun leaves exactly one AMI.

moto does not verify checksums nor honour ClientToken (DESIGN §8): the checksums we send are
checked here against an independent computation instead."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import image_identity, moto_client, run_cli
from nixecs.aws.ami import MIB, publish
from nixecs.aws.ebs import BLOCK, data_blocks
from nixecs.aws.session import Session

pytestmark = pytest.mark.moto

LABEL = "25.11.20260510.8fd9daa"
SIZE = 300 * MIB + 1000  # not a whole number of blocks: the last one is padded


def raw_image(root: Path) -> Path:
    """An image builder output with a sparse raw disk: data at a few places, one allocated
    block of zeros, the rest holes."""
    image_dir = root / "result"
    (image_dir / "nix-support").mkdir(parents=True)
    name = f"nixos-amazon-image-{LABEL}-x86_64-linux.raw"
    disk = image_dir / name
    rng = __import__("random").Random(7)
    with disk.open("wb") as handle:
        handle.truncate(SIZE)
        for offset, length in [(0, 100_000), (10 * MIB + 123, MIB), (200 * MIB, BLOCK)]:
            handle.seek(offset)
            handle.write(rng.randbytes(length))
        handle.seek(50 * MIB)
        handle.write(bytes(BLOCK))  # allocated, but all zeros: not sent
        handle.seek(SIZE - 1000)
        handle.write(rng.randbytes(1000))
    info = {
        "label": LABEL,
        "boot_mode": "legacy-bios",
        "system": "x86_64-linux",
        "file": str(disk),
        "disks": {"root": {"file": str(disk)}},
    }
    (image_dir / "nix-support" / "image-info.json").write_text(json.dumps(info))
    return image_dir


def expected_blocks(disk: Path) -> dict[int, bytes]:
    """The non-zero blocks, read plainly (no SEEK_DATA): the reference for data_blocks."""
    blocks = {}
    with disk.open("rb") as handle:
        index = 0
        while chunk := handle.read(BLOCK):
            chunk = chunk.ljust(BLOCK, b"\0")
            if chunk.count(0) != BLOCK:
                blocks[index] = chunk
            index += 1
    return blocks


def disk_of(image_dir: Path) -> Path:
    return next(image_dir.glob("*.raw"))


def test_data_blocks_skips_holes_and_zero_blocks(tmp_path: Path) -> None:
    disk = disk_of(raw_image(tmp_path))
    assert dict(data_blocks(disk)) == expected_blocks(disk)
    assert sorted(expected_blocks(disk)) == [0, 20, 21, 22, 400, 600]


class Recorder:
    """Counts PutSnapshotBlock calls and keeps CompleteSnapshot's parameters."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.puts = 0
        self.complete: dict[str, Any] = {}
        self.register: dict[str, Any] = {}
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def attach(self, session: Session) -> None:
        ebs = session.client("ebs")
        ebs.meta.events.register("provide-client-params.ebs.PutSnapshotBlock", self._put)
        ebs.meta.events.register("provide-client-params.ebs.CompleteSnapshot", self._complete)
        session.client("ec2").meta.events.register(
            "provide-client-params.ec2.RegisterImage", self._register
        )

    def _put(self, params: dict[str, Any], **_: Any) -> None:
        with self.lock:
            self.puts += 1
            if self.fail_at is not None and self.puts >= self.fail_at:
                raise ConnectionResetError("injected: the network went away")

    def _complete(self, params: dict[str, Any], **_: Any) -> None:
        self.complete = dict(params)

    def _register(self, params: dict[str, Any], **_: Any) -> None:
        self.register = dict(params)


def read_back(url: str, snapshot_id: str) -> dict[int, bytes]:
    ebs = moto_client(url, "ebs")
    listed = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)
    # (moto answers BlockSize 512 here; AWS documents 524288: not asserted.)
    blocks = {}
    for block in listed["Blocks"]:
        got = ebs.get_snapshot_block(
            SnapshotId=snapshot_id, BlockIndex=block["BlockIndex"], BlockToken=block["BlockToken"]
        )
        data = got["BlockData"].read()
        assert base64.b64decode(got["Checksum"]) == hashlib.sha256(data).digest()
        blocks[block["BlockIndex"]] = data
    return blocks


def test_publish_sends_only_data_blocks_and_they_round_trip(moto: Any, tmp_path: Path) -> None:
    image = raw_image(tmp_path)
    disk = disk_of(image)
    expected = expected_blocks(disk)
    session = Session(region="us-east-1", endpoint_url=moto.url)
    recorder = Recorder()
    recorder.attach(session)
    result = publish(session, image, flake_rev="abc123", poll=0, workers=4)

    assert recorder.puts == len(expected) == 6  # of 601 blocks
    assert read_back(moto.url, result.snapshot_id or "") == expected
    # The aggregate checksum: SHA-256 of the blocks' SHA-256 digests in block order.
    linear = hashlib.sha256(
        b"".join(hashlib.sha256(expected[i]).digest() for i in sorted(expected))
    ).digest()
    assert recorder.complete["ChangedBlocksCount"] == 6
    assert recorder.complete["ChecksumAggregationMethod"] == "LINEAR"
    assert base64.b64decode(recorder.complete["Checksum"]) == linear

    # The AMI is registered on our snapshot (asked of RegisterImage: moto makes a snapshot of
    # its own for an image's block device mapping, so DescribeImages cannot show it).
    ebs_mapping = recorder.register["BlockDeviceMappings"][0]["Ebs"]
    assert ebs_mapping["SnapshotId"] == result.snapshot_id
    assert recorder.register["EnaSupport"] is True
    assert recorder.register["ImdsSupport"] == "v2.0"
    ec2 = moto_client(moto.url, "ec2")
    assert ec2.describe_images(ImageIds=[result.image_id])["Images"]
    tags = {t["Key"]: t["Value"] for t in recorder.register["TagSpecifications"][0]["Tags"]}
    assert tags["nixecs:flake"] == "abc123"
    assert tags["nixecs:image-sha256"] == image_identity(disk)
    snapshot = ec2.describe_snapshots(SnapshotIds=[result.snapshot_id])["Snapshots"][0]
    assert snapshot["VolumeSize"] == 1  # 300 MiB rounds up to one GiB


def test_a_failure_midway_and_a_rerun_leave_exactly_one_ami(
    moto: Any, tmp_path: Path, capsys: Any
) -> None:
    image = raw_image(tmp_path)
    expected = expected_blocks(disk_of(image))
    session = Session(region="us-east-1", endpoint_url=moto.url, max_attempts=0)
    Recorder(fail_at=4).attach(session)
    with pytest.raises(Exception, match="injected"):
        publish(session, image, poll=0, workers=2)
    ec2 = moto_client(moto.url, "ec2")
    assert ec2.describe_images(Owners=["self"])["Images"] == []

    os.environ["NIXECS_POLL_INTERVAL"] = "0"
    try:
        base = ["--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json"]
        first = run_cli(capsys, [*base, "ami", "publish", str(image)])
        assert first.code == 0, first.err
        again = run_cli(capsys, [*base, "ami", "publish", str(image)])
        assert again.code == 0, again.err
    finally:
        del os.environ["NIXECS_POLL_INTERVAL"]
    assert again.json()["reused"] is True
    assert again.json()["image_id"] == first.json()["image_id"]
    images = ec2.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in images] == [first.json()["image_id"]]
    assert read_back(moto.url, first.json()["snapshot_id"]) == expected


def test_a_completed_snapshot_is_reused_without_uploading(moto: Any, tmp_path: Path) -> None:
    image = raw_image(tmp_path)
    session = Session(region="us-east-1", endpoint_url=moto.url)
    first = publish(session, image, poll=0)
    # The AMI is gone (deregistered by hand), the snapshot stays: only RegisterImage runs again.
    moto_client(moto.url, "ec2").deregister_image(ImageId=first.image_id)
    session = Session(region="us-east-1", endpoint_url=moto.url)
    recorder = Recorder()
    recorder.attach(session)
    second = publish(session, image, poll=0)
    assert recorder.puts == 0
    assert second.snapshot_id == first.snapshot_id
    assert second.image_id != first.image_id


def test_a_non_raw_image_is_refused_with_the_fix(tmp_path: Path, capsys: Any) -> None:
    image = raw_image(tmp_path)
    disk = disk_of(image)
    disk.rename(disk.with_suffix(".vhd"))
    info = json.loads((image / "nix-support" / "image-info.json").read_text())
    info["file"] = str(disk.with_suffix(".vhd"))
    (image / "nix-support" / "image-info.json").write_text(json.dumps(info))
    result = run_cli(capsys, ["--region", "us-east-1", "ami", "publish", str(image)])
    assert result.code == 2
    assert 'amazonImage.format = "raw"' in result.err and "--via s3" in result.err
