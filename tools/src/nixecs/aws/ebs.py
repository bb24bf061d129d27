"""A raw disk image straight into an EBS snapshot with the EBS direct APIs — no S3 bucket, no
VM Import role, no import job (the approach of awslabs/coldsnap, src/upload.rs).

AWS facts relied on (EBS direct APIs reference and user guide):

- Blocks are 512 KiB; a block's index is its offset / 524288
  (https://docs.aws.amazon.com/ebs/latest/userguide/ebsapi-elements.html). StartSnapshot
  answers the `BlockSize` to use; a snapshot's `VolumeSize` is whole GiB.
- PutSnapshotBlock must carry a base64 SHA-256 checksum of the block (`ChecksumAlgorithm
  SHA256`), which EBS verifies; the block data is not covered by SigV4
  (https://docs.aws.amazon.com/ebs/latest/userguide/ebsapis-using-checksums.html).
- CompleteSnapshot takes `ChangedBlocksCount` (the blocks written) and optionally the aggregate
  checksum, `LINEAR`: the SHA-256 of the blocks' checksums in ascending block-index order
  (API reference, CompleteSnapshot; coldsnap hashes the raw 32-byte digests, and so do we).
- Blocks never written read as zeros, so all-zero blocks are skipped (coldsnap does the same):
  a NixOS image is mostly empty, and only its data crosses the network.
- StartSnapshot's `ClientToken` makes a retried start return the same snapshot; a snapshot
  that is neither written to nor completed for `Timeout` minutes is cancelled by EBS.

A rerun after any failure finds the completed snapshot of the same image (tag
`nixecs:image-sha256`) and does not upload again.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import naming
from ..diagnostics import OperationalFailure
from .progress import Progress, sleep

BLOCK = 512 * 1024
GIB = 1024**3
# Minutes EBS keeps an unfinished snapshot before cancelling it.
SNAPSHOT_TIMEOUT_MIN = 60
DEFAULT_WORKERS = 8
TAG_UPLOADED = "nixecs:uploaded"


@dataclass
class UploadStats:
    snapshot_id: str
    blocks_total: int
    blocks_sent: int
    bytes_sent: int
    reused: bool


class ImageChanged(OperationalFailure):
    """The image is not the one that was hashed: written to, grown or shrunk while read."""


class EmptyImage(ValueError):
    """An image with no data: nothing to boot (bad input, not an AWS failure)."""


def fingerprint(path: Path) -> tuple[int, int, int, int, int]:
    """What changes when a file is written to, replaced, grown or truncated."""
    info = path.stat()
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@dataclass(frozen=True)
class BlockMap:
    """The image as EBS stores it: its size and the SHA-256 of each non-zero 512 KiB block.

    Its `identity` names the image everywhere (the AMI name, the `nixecs:image-sha256` tag,
    the idempotency tokens): the SHA-256 of a versioned header, the size, and each non-zero
    block's (index, digest) in block order. Two files with the same bytes have the same
    identity however sparse they are, and holes are never read to compute it."""

    size: int
    digests: dict[int, bytes]
    fingerprint: tuple[int, int, int, int, int]
    bytes_read: int = 0

    @property
    def identity(self) -> str:
        return identity_of(self.size, self.digests)

    @property
    def blocks_total(self) -> int:
        return -(-self.size // BLOCK)


def identity_of(size: int, digests: dict[int, bytes]) -> str:
    digest = hashlib.sha256(b"nixecs-image-v1\0" + size.to_bytes(8, "big"))
    for index in sorted(digests):
        digest.update(index.to_bytes(8, "big") + digests[index])
    return digest.hexdigest()


def scan(path: Path, on_read: Callable[[int], None] | None = None) -> BlockMap:
    """Hash the image's data blocks (holes are skipped unread); refuse an empty image and one
    that changes while it is read."""
    before = fingerprint(path)
    if before[2] == 0:
        raise EmptyImage(f"{path}: the disk image is empty (0 bytes)")
    digests: dict[int, bytes] = {}
    read = [0]
    for index, block in data_blocks(path, read):
        digests[index] = hashlib.sha256(block).digest()
        if on_read is not None:
            on_read(len(block))
    if fingerprint(path) != before:
        raise ImageChanged(f"{path}: the disk image changed while it was hashed; build it again")
    if not digests:
        raise EmptyImage(f"{path}: the disk image holds no data (every block is zero)")
    return BlockMap(before[2], digests, before, read[0])


def client_token(identity: str, request: dict[str, Any], attempt: int = 0) -> str:
    """StartSnapshot's idempotency token (at most 64 characters): one per image identity and
    request. AWS answers ConflictException to a reused token with other parameters
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-direct-api-idempotency.html), so
    the parameters (description, tags, size) are part of it; `attempt` moves past a token
    whose snapshot ended in `error`."""
    key = json.dumps([identity, request, attempt], sort_keys=True).encode()
    return f"nixecs-ebs-{hashlib.sha256(key).hexdigest()[:52]}"


def data_blocks(path: Path, read: list[int] | None = None) -> Iterator[tuple[int, bytes]]:
    """(index, block) for every block of the file that is not all zeros, the last one padded
    to a whole block. Holes of a sparse file are skipped without reading them (SEEK_DATA,
    lseek(2)); where the file system lacks it, every block is read and compared. `read[0]`
    counts the bytes actually read."""
    zero = bytes(BLOCK)
    size = path.stat().st_size
    seek_data = True
    with path.open("rb", buffering=0) as handle:
        offset = 0
        while offset < size:
            if seek_data:
                try:
                    offset = os.lseek(handle.fileno(), offset, os.SEEK_DATA) // BLOCK * BLOCK
                except OSError as error:
                    if error.errno == errno.ENXIO:  # nothing but a hole up to the end
                        return
                    seek_data = False  # EINVAL: not supported here
            handle.seek(offset)
            block = handle.read(BLOCK)
            if not block:
                return
            if read is not None:
                read[0] += len(block)
            if len(block) < BLOCK:
                block += bytes(BLOCK - len(block))
            if block != zero:
                yield offset // BLOCK, block
            offset += BLOCK


def allocated(path: Path) -> int:
    """Bytes of the file's data extents, in whole blocks (SEEK_DATA/SEEK_HOLE); the file's
    size where the file system cannot tell."""
    size = path.stat().st_size
    total = 0
    with path.open("rb", buffering=0) as handle:
        fd, offset = handle.fileno(), 0
        try:
            while offset < size:
                data = os.lseek(fd, offset, os.SEEK_DATA)
                # The hole after the data itself: from the block start, which may lie in the
                # hole before an extent that begins mid-block, SEEK_HOLE would answer that
                # very offset and the loop would never advance. Never below `offset`
                # either: the previous extent's last block is counted once.
                start = max(offset, data // BLOCK * BLOCK)
                end = os.lseek(fd, data, os.SEEK_HOLE)
                end = min(size, -(-end // BLOCK) * BLOCK)
                total += end - start
                offset = end
        except OSError as error:
            if error.errno != errno.ENXIO:
                return size
    return total


def find_snapshot(ec2: Any, sha: str) -> dict[str, Any] | None:
    """A completed snapshot of ours holding this image content (marked uploaded by us)."""
    snapshots = ec2.describe_snapshots(
        OwnerIds=["self"],
        Filters=[
            {"Name": f"tag:{naming.TAG_IMAGE_SHA256}", "Values": [sha]},
            {"Name": f"tag:{TAG_UPLOADED}", "Values": ["true"]},
        ],
    )["Snapshots"]
    done = [s for s in snapshots if s.get("State") == "completed"]
    return dict(done[0]) if done else None


# Attempts with fresh tokens when a reused token answers a snapshot in `error`.
START_ATTEMPTS = 3


def _start(
    ebs: Any, image: BlockMap, tags: list[dict[str, str]], description: str
) -> dict[str, Any]:
    """StartSnapshot; a token reused after a lost answer or an earlier run may return the
    snapshot it started then, in any state (pending, completed or error: API reference,
    StartSnapshot `Status`). An errored one is never written to again: a new token starts
    a new snapshot."""
    request: dict[str, Any] = {
        "VolumeSize": max(1, -(-image.size // GIB)),
        "Description": description[:255],
        "Tags": tags,
        "Timeout": SNAPSHOT_TIMEOUT_MIN,
    }
    for attempt in range(START_ATTEMPTS):
        token = client_token(image.identity, request, attempt)
        started = dict(ebs.start_snapshot(**request, ClientToken=token))
        if started.get("Status") != "error":
            return started
    raise OperationalFailure(
        f"StartSnapshot answered {START_ATTEMPTS} snapshots in state error for this image "
        f"(last {started.get('SnapshotId')}); delete them and retry later"
    )


def upload(
    session: Any,
    path: Path,
    image: BlockMap,
    tags: list[dict[str, str]],
    description: str,
    *,
    workers: int = DEFAULT_WORKERS,
    poll: float = 5.0,
    on_block: Callable[[int], None] | None = None,
) -> UploadStats:
    """Upload `path` (a raw disk image) into a new EBS snapshot; reuse a finished one.

    `image` is the block map `scan` made of `path`. Every block is hashed as it is read for
    sending, and a block whose digest is not the map's (or a block the map does not have, or
    lacks) stops the upload *before* it is sent: the snapshot only ever holds blocks of this
    identity, and it is completed (and marked uploaded) only when every block of the map was
    sent and the file is unchanged. The aggregate checksum and the identity checked at the
    end are computed from the digests of the blocks sent."""
    ec2 = session.client("ec2")
    ebs = session.client("ebs")
    sha = image.identity
    existing = find_snapshot(ec2, sha)
    if existing is not None:
        return UploadStats(str(existing["SnapshotId"]), image.blocks_total, 0, 0, True)
    if fingerprint(path) != image.fingerprint:
        raise ImageChanged(f"{path}: the disk image changed after it was hashed; run again")
    started = _start(ebs, image, tags, description)
    # Blocks are 512 KiB by AWS's definition; StartSnapshot's `BlockSize` is not consulted
    # (the moto server answers 512 there).
    snapshot_id = str(started["SnapshotId"])
    if started.get("Status") == "completed":
        # Our token: only a run that sent every block of this identity and passed the LINEAR
        # checksum (which EBS verifies) completes it. The answer of that run was lost.
        _mark_uploaded(ec2, snapshot_id)
        return UploadStats(snapshot_id, image.blocks_total, 0, 0, True)
    sent: dict[int, bytes] = {}
    lock = threading.Lock()

    def put(index: int, block: bytes, digest: bytes) -> None:
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=index,
            BlockData=block,
            DataLength=BLOCK,
            Checksum=base64.b64encode(digest).decode(),
            ChecksumAlgorithm="SHA256",
        )
        with lock:
            sent[index] = digest
            progress.advance(BLOCK)
        if on_block is not None:
            on_block(index)

    def changed(what: str) -> ImageChanged:
        return ImageChanged(
            f"{path}: {what} while it was uploaded; snapshot {snapshot_id} is left incomplete "
            f"(EBS cancels it after {SNAPSHOT_TIMEOUT_MIN} min) — rebuild or stop writing to "
            "the image and run again"
        )

    # The bar counts bytes actually sent, out of the image's data blocks.
    progress = Progress(
        f"upload {path.name} → {snapshot_id}", total=len(image.digests) * BLOCK, unit="bytes"
    )
    read: set[int] = set()
    # At most 2 × workers blocks are read ahead of the uploads (512 KiB each).
    with progress, ThreadPoolExecutor(max_workers=workers) as pool:
        pending: set[Future[None]] = set()
        try:
            for index, block in data_blocks(path):
                digest = hashlib.sha256(block).digest()
                if image.digests.get(index) != digest:
                    raise changed(f"block {index} changed")
                read.add(index)
                while len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()  # the first failure stops the upload
                pending.add(pool.submit(put, index, block, digest))
            for future in pending:
                future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        progress.update(
            len(sent) * BLOCK,
            total=len(sent) * BLOCK,
            status=f"{len(sent)} of {image.blocks_total} blocks sent",
        )
    if read != set(image.digests):
        missing = sorted(set(image.digests) - read)
        raise changed(f"block {missing[0]} became zeros" if missing else "its blocks changed")
    if fingerprint(path) != image.fingerprint:
        raise changed("the file was written to or changed size")
    if identity_of(image.size, sent) != sha:  # pragma: no cover - guarded block by block
        raise changed("the blocks sent are not the image hashed")
    aggregate = hashlib.sha256(b"".join(sent[i] for i in sorted(sent))).digest()
    ebs.complete_snapshot(
        SnapshotId=snapshot_id,
        ChangedBlocksCount=len(sent),
        Checksum=base64.b64encode(aggregate).decode(),
        ChecksumAlgorithm="SHA256",
        ChecksumAggregationMethod="LINEAR",
    )
    _wait_snapshot(ec2, snapshot_id, poll)
    _mark_uploaded(ec2, snapshot_id)
    return UploadStats(snapshot_id, image.blocks_total, len(sent), len(sent) * BLOCK, False)


def _mark_uploaded(ec2: Any, snapshot_id: str) -> None:
    """Our own mark that every block is in: only such a snapshot is ever reused. (EC2's state
    alone cannot tell: the moto server shows a snapshot `completed` from its start.)"""
    ec2.create_tags(Resources=[snapshot_id], Tags=[{"Key": TAG_UPLOADED, "Value": "true"}])


def _wait_snapshot(ec2: Any, snapshot_id: str, poll: float) -> None:
    """After CompleteSnapshot EC2 still shows the snapshot `pending` for a while."""
    with Progress(f"snapshot {snapshot_id}", total=None) as progress:
        while True:
            snapshots = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
            state = str(snapshots[0].get("State")) if snapshots else "missing"
            progress.update(status=state)
            if state == "completed":
                return
            if state != "pending":
                message = snapshots[0].get("StateMessage", "") if snapshots else ""
                raise OperationalFailure(
                    f"snapshot {snapshot_id} is {state}{': ' + message if message else ''}"
                )
            sleep(poll)
