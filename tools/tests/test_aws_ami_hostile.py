"""`nixecs ami publish` against hostile images (issue 16 items 4 and 9): the table below names
each input and its expected outcome; the tests after it prove each row.

| input                                   | outcome                                                   |
|-----------------------------------------|-----------------------------------------------------------|
| empty image (0 bytes)                   | exit 2 "is empty", nothing created in AWS                 |
| image of zeros only                     | exit 2 "holds no data", nothing created                   |
| truncated (size ≠ logical_bytes)        | exit 2 naming both sizes, nothing created                 |
| FIFO or device as the disk              | exit 2 "is not a regular file", never opened (no block)   |
| symlink to the disk (a Nix `result`)    | followed: published like the file                         |
| block rewritten during the upload       | exit 1 before that block is sent (one already sent: at    |
|                                         | the end, by size and mtime); no snapshot marked           |
|                                         | uploaded, no AMI; a rerun publishes the new content       |
| grown during the upload                 | exit 1; nothing completed                                 |
| huge sparse (10 GiB, a few KiB of data) | published; holes never read (bytes read ≤ data blocks)    |
| lost answer: StartSnapshot returns a    | reused (real AWS, Stubber): no block sent, marked         |
|   completed snapshot for the token      |   uploaded                                                |
| StartSnapshot returns one in `error`    | a new token starts a new snapshot                         |
| killed midway, rerun                    | test_aws_ami_ebs: exactly one AMI, blocks round-trip      |
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import image_identity, moto_client, run_cli, stubbed_clients
from conftest import require
from nixecs.aws.ami import MIB, publish
from nixecs.aws.ebs import BLOCK, TAG_UPLOADED, ImageChanged, client_token, scan, upload
from nixecs.aws.session import Session
from test_aws_ami_ebs import LABEL, Recorder, expected_blocks, raw_image, read_back

_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)
GIB = 1024**3


def image_dir_with(root: Path, disk_bytes: bytes | None = None, **info: Any) -> Path:
    """An image builder output whose raw disk holds `disk_bytes` (None: make no file)."""
    image_dir = root / "result"
    (image_dir / "nix-support").mkdir(parents=True)
    disk = image_dir / f"nixos-amazon-image-{LABEL}-x86_64-linux.raw"
    if disk_bytes is not None:
        disk.write_bytes(disk_bytes)
    data = {
        "label": LABEL,
        "boot_mode": "legacy-bios",
        "system": "x86_64-linux",
        "file": str(disk),
        **info,
    }
    (image_dir / "nix-support" / "image-info.json").write_text(json.dumps(data))
    return image_dir


def cli(capsys: Any, url: str, image: Path) -> Any:
    os.environ["NIXECS_POLL_INTERVAL"] = "0"
    try:
        base = ["--endpoint-url", url, "--region", "us-east-1", "--output", "json"]
        return run_cli(capsys, [*base, "ami", "publish", str(image)])
    finally:
        del os.environ["NIXECS_POLL_INTERVAL"]


def nothing_in_aws(url: str) -> bool:
    return moto_client(url, "ec2").describe_images(Owners=["self"])["Images"] == [] and not (
        _snapshots(url)
    )


@pytest.mark.moto
@pytest.mark.parametrize(
    ("content", "info", "message"),
    [
        (b"", {}, "is empty (0 bytes)"),
        (bytes(3 * BLOCK), {}, "holds no data"),
        (b"\x01" * BLOCK, {"logical_bytes": str(2 * BLOCK)}, f"is {BLOCK} bytes"),
        (b"\x01" * BLOCK, {"disks": {"root": {"logical_bytes": 2 * BLOCK}}}, "logical_bytes"),
        (b"\x01" * BLOCK, {"logical_bytes": "lots"}, "not a whole number"),
    ],
    ids=["empty", "zeros-only", "truncated", "truncated-root-disk", "bad-logical-bytes"],
)
def test_bad_images_are_refused_before_any_aws_call(
    moto: Any, tmp_path: Path, capsys: Any, content: bytes, info: dict[str, Any], message: str
) -> None:
    image = image_dir_with(tmp_path, content, **info)
    result = cli(capsys, moto.url, image)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err
    assert nothing_in_aws(moto.url)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_is_refused_without_blocking(
    tmp_path: Path, capsys: Any, kind: str
) -> None:
    image = image_dir_with(tmp_path)
    disk = Path(json.loads((image / "nix-support" / "image-info.json").read_text())["file"])
    if kind == "fifo":
        os.mkfifo(disk)  # opening it for reading would block until a writer comes
    else:
        disk.symlink_to("/dev/zero")  # endless: hashing it would never end
        assert stat.S_ISCHR(disk.stat().st_mode)
    result = run_cli(capsys, ["--region", "us-east-1", "ami", "publish", str(image)])
    assert result.code == 2
    assert "is not a regular file" in result.err


@pytest.mark.moto
def test_a_symlinked_disk_is_published_like_the_file(moto: Any, tmp_path: Path) -> None:
    image = raw_image(tmp_path)
    disk = next(image.glob("*.raw"))
    real = tmp_path / "store-disk.raw"
    disk.rename(real)
    disk.symlink_to(real)
    result = publish(Session(region="us-east-1", endpoint_url=moto.url), image, poll=0)
    assert read_back(moto.url, result.snapshot_id or "") == expected_blocks(real)


def _snapshots(url: str) -> list[dict[str, Any]]:
    """Snapshots publish made (moto's own AMIs come with snapshots of their own)."""
    ec2 = moto_client(url, "ec2")
    return list(
        ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["nixecs:image-sha256"]}]
        )["Snapshots"]
    )


@pytest.mark.moto
@pytest.mark.parametrize("change", ["rewrite", "rewrite-sent", "grow"])
def test_an_image_changed_during_the_upload_is_refused_and_a_rerun_is_clean(
    moto: Any, tmp_path: Path, change: str
) -> None:
    image = raw_image(tmp_path)
    disk = next(image.glob("*.raw"))
    session = Session(region="us-east-1", endpoint_url=moto.url)
    recorder = Recorder()
    recorder.attach(session)
    sent: list[int] = []

    def write_midway(index: int) -> None:
        sent.append(index)
        if len(sent) == 1:
            with disk.open("r+b") as handle:
                if change == "rewrite":  # block 600 (the last) gets other bytes
                    handle.seek(600 * BLOCK)
                    handle.write(b"\x07" * 100)
                elif change == "rewrite-sent":  # block 0, already sent: found at the end
                    handle.seek(0)
                    handle.write(b"\x07" * 100)
                else:
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"\x07" * BLOCK)

    from nixecs.aws import ebs

    original = ebs.upload

    def upload_with_hook(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **kwargs, on_block=write_midway)

    before = image_identity(disk)
    try:
        ebs.upload = upload_with_hook  # type: ignore[assignment]
        with pytest.raises(ImageChanged, match="while it was uploaded"):
            publish(session, image, poll=0, workers=1)
    finally:
        ebs.upload = original  # type: ignore[assignment]
    assert not recorder.complete  # CompleteSnapshot never called
    (broken,) = _snapshots(moto.url)
    tags = {t["Key"]: t["Value"] for t in broken.get("Tags", [])}
    assert TAG_UPLOADED not in tags
    if change == "rewrite":  # the changed block was never sent
        assert 600 not in sent
    assert moto_client(moto.url, "ec2").describe_images(Owners=["self"])["Images"] == []

    again = publish(Session(region="us-east-1", endpoint_url=moto.url), image, poll=0)
    assert again.snapshot_id != broken["SnapshotId"]  # never "already uploaded"
    assert read_back(moto.url, again.snapshot_id or "") == expected_blocks(disk)
    tags = {t["Key"]: t["Value"] for t in again.tags}
    assert tags["nixecs:image-sha256"] == image_identity(disk) != before


@pytest.mark.moto
def test_a_10_gib_sparse_image_is_published_without_reading_its_holes(
    moto: Any, tmp_path: Path
) -> None:
    image = image_dir_with(tmp_path, None, logical_bytes=str(10 * GIB))
    disk = Path(json.loads((image / "nix-support" / "image-info.json").read_text())["file"])
    with disk.open("wb") as handle:
        handle.truncate(10 * GIB)
        handle.seek(5 * GIB + 4096)
        handle.write(b"nixos" * 1000)
    scanned = scan(disk)
    require(scanned.bytes_read <= BLOCK, "the file system of tmp_path has no SEEK_DATA")
    assert list(scanned.digests) == [5 * GIB // BLOCK]
    result = publish(Session(region="us-east-1", endpoint_url=moto.url), image, poll=0)
    assert read_back(moto.url, result.snapshot_id or "") == expected_blocks_sparse(disk)
    snapshot = moto_client(moto.url, "ec2").describe_snapshots(SnapshotIds=[result.snapshot_id])
    assert snapshot["Snapshots"][0]["VolumeSize"] == 10


def expected_blocks_sparse(disk: Path) -> dict[int, bytes]:
    with disk.open("rb") as handle:
        handle.seek(5 * GIB)
        return {5 * GIB // BLOCK: handle.read(BLOCK)}


def _small_image(tmp_path: Path) -> Path:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\x01" * BLOCK + bytes(BLOCK) + b"\x02" * 100)
    return disk


def _stub_start(
    stubbed: Any, tmp_path: Path, answers: list[tuple[str, str]]
) -> tuple[Path, Any, Any, Any]:
    """A small image scanned, no snapshot found, and StartSnapshot answering `answers`
    ((snapshot id, status) per attempt, with the token of that attempt)."""
    disk = _small_image(tmp_path)
    image = scan(disk)
    ec2, ebs = stubbed("ec2"), stubbed("ebs")
    ec2.add_response("describe_snapshots", {"Snapshots": []})
    request = {"VolumeSize": 1, "Description": "d", "Tags": [], "Timeout": 60}
    for attempt, (snapshot_id, status) in enumerate(answers):
        ebs.add_response(
            "start_snapshot",
            {"SnapshotId": snapshot_id, "Status": status},
            {**request, "ClientToken": client_token(image.identity, request, attempt)},
        )
    return disk, image, ec2, ebs


def test_start_snapshot_answering_a_completed_snapshot_reuses_it(
    stubbed: Any, tmp_path: Path
) -> None:
    """Real AWS returns the original snapshot, whatever its state, to a reused ClientToken
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-direct-api-idempotency.html); moto
    does not model it (DESIGN §8), hence the Stubber."""
    disk, image, ec2, ebs = _stub_start(stubbed, tmp_path, [("snap-1", "completed")])
    ec2.add_response(
        "create_tags",
        {},
        {"Resources": ["snap-1"], "Tags": [{"Key": TAG_UPLOADED, "Value": "true"}]},
    )
    stats = upload(Session(region="us-east-1"), disk, image, [], "d", poll=0)
    assert stats.reused and stats.blocks_sent == 0 and stats.snapshot_id == "snap-1"
    ebs.assert_no_pending_responses()  # no PutSnapshotBlock, no CompleteSnapshot
    ec2.assert_no_pending_responses()


def test_start_snapshot_answering_an_errored_snapshot_starts_a_new_one(
    stubbed: Any, tmp_path: Path
) -> None:
    disk, image, ec2, ebs = _stub_start(
        stubbed, tmp_path, [("snap-old", "error"), ("snap-new", "pending")]
    )
    for _ in image.digests:
        ebs.add_response("put_snapshot_block", {})
    ebs.add_response("complete_snapshot", {"Status": "pending"})
    ec2.add_response(
        "describe_snapshots", {"Snapshots": [{"SnapshotId": "snap-new", "State": "completed"}]}
    )
    ec2.add_response("create_tags", {})
    stats = upload(Session(region="us-east-1"), disk, image, [], "d", poll=0, workers=1)
    assert stats.snapshot_id == "snap-new" and stats.blocks_sent == 2 and not stats.reused
    ebs.assert_no_pending_responses()


def test_the_token_differs_per_identity_and_request() -> None:
    request = {"VolumeSize": 1, "Description": "a", "Tags": [], "Timeout": 60}
    tokens = {
        client_token("a" * 64, request),
        client_token("b" * 64, request),
        client_token("a" * 64, {**request, "Description": "b"}),
        client_token("a" * 64, request, 1),
    }
    assert len(tokens) == 4 and all(len(t) <= 64 for t in tokens)


def test_an_image_changed_between_hash_and_upload_is_refused(tmp_path: Path) -> None:
    disk = _small_image(tmp_path)
    image = scan(disk)
    with disk.open("ab") as handle:
        handle.write(b"\x03")

    class NoAws:
        def client(self, service: str) -> Any:
            class Ec2:
                def describe_snapshots(self, **_: Any) -> dict[str, Any]:
                    return {"Snapshots": []}

            return Ec2() if service == "ec2" else None

    with pytest.raises(ImageChanged, match="after it was hashed"):
        upload(NoAws(), disk, image, [], "d")


def test_scan_reads_only_data(tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as handle:
        handle.truncate(64 * MIB)
        handle.seek(10 * BLOCK)
        handle.write(b"x")
    scanned = scan(disk)
    assert list(scanned.digests) == [10]
    assert scanned.identity == image_identity(disk)
    assert scanned.bytes_read <= BLOCK or scanned.bytes_read == 64 * MIB  # no SEEK_DATA
