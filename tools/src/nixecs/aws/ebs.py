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


def client_token(sha: str) -> str:
    """StartSnapshot's idempotency token: one per image content (at most 64 characters)."""
    return f"nixecs-ebs-{sha[:52]}"


def data_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(index, block) for every block of the file that is not all zeros, the last one padded
    to a whole block. Holes of a sparse file are skipped without reading them (SEEK_DATA,
    lseek(2)); where the file system lacks it, every block is read and compared."""
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
    """A completed snapshot of ours holding this image content."""
    snapshots = ec2.describe_snapshots(
        OwnerIds=["self"],
        Filters=[
            {"Name": f"tag:{naming.TAG_IMAGE_SHA256}", "Values": [sha]},
            {"Name": f"tag:{TAG_UPLOADED}", "Values": ["true"]},
        ],
    )["Snapshots"]
    done = [s for s in snapshots if s.get("State") == "completed"]
    return dict(done[0]) if done else None


def upload(
    session: Any,
    path: Path,
    sha: str,
    tags: list[dict[str, str]],
    description: str,
    *,
    workers: int = DEFAULT_WORKERS,
    poll: float = 5.0,
    on_block: Callable[[int], None] | None = None,
) -> UploadStats:
    """Upload `path` (a raw disk image) into a new EBS snapshot; reuse a finished one."""
    ec2 = session.client("ec2")
    ebs = session.client("ebs")
    size = path.stat().st_size
    blocks_total = -(-size // BLOCK)
    existing = find_snapshot(ec2, sha)
    if existing is not None:
        return UploadStats(str(existing["SnapshotId"]), blocks_total, 0, 0, True)
    started = ebs.start_snapshot(
        VolumeSize=max(1, -(-size // GIB)),
        ClientToken=client_token(sha),
        Description=description[:255],
        Tags=tags,
        Timeout=SNAPSHOT_TIMEOUT_MIN,
    )
    # Blocks are 512 KiB by AWS's definition; StartSnapshot's `BlockSize` is not consulted
    # (the moto server answers 512 there).
    snapshot_id = str(started["SnapshotId"])
    digests: dict[int, bytes] = {}
    lock = threading.Lock()

    def put(index: int, block: bytes) -> None:
        digest = hashlib.sha256(block).digest()
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=index,
            BlockData=block,
            DataLength=BLOCK,
            Checksum=base64.b64encode(digest).decode(),
            ChecksumAlgorithm="SHA256",
        )
        with lock:
            digests[index] = digest
            progress.advance(BLOCK)
        if on_block is not None:
            on_block(index)

    # The bar counts bytes actually sent, out of the image's allocated data (an upper bound
    # of what will be sent: allocated blocks of zeros are skipped too).
    progress = Progress(f"upload {path.name} → {snapshot_id}", total=allocated(path), unit="bytes")
    # At most 2 × workers blocks are read ahead of the uploads (512 KiB each).
    with progress, ThreadPoolExecutor(max_workers=workers) as pool:
        pending: set[Future[None]] = set()
        for index, block in data_blocks(path):
            while len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # the first failure stops the upload
            pending.add(pool.submit(put, index, block))
        for future in pending:
            future.result()
        progress.update(
            len(digests) * BLOCK,
            total=len(digests) * BLOCK,
            status=f"{len(digests)} of {blocks_total} blocks sent",
        )
    aggregate = hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()
    ebs.complete_snapshot(
        SnapshotId=snapshot_id,
        ChangedBlocksCount=len(digests),
        Checksum=base64.b64encode(aggregate).decode(),
        ChecksumAlgorithm="SHA256",
        ChecksumAggregationMethod="LINEAR",
    )
    _wait_snapshot(ec2, snapshot_id, poll)
    # Our own mark that every block is in: only such a snapshot is ever reused. (EC2's state
    # alone cannot tell: the moto server shows a snapshot `completed` from its start.)
    ec2.create_tags(Resources=[snapshot_id], Tags=[{"Key": TAG_UPLOADED, "Value": "true"}])
    return UploadStats(snapshot_id, blocks_total, len(digests), len(digests) * BLOCK, False)


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
