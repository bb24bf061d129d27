"""`make bench`'s EBS direct upload figures: a generated sparse raw image of 320 MiB (a few
MiB of data at scattered places, the rest holes and one allocated block of zeros, as a
mostly empty NixOS image) written into a snapshot on a moto server on loopback.

Reports bytes sent ÷ image size (what skipping zero blocks saves) and blocks per second
(PutSnapshotBlock calls, 8 in flight). Against moto on loopback this measures our side —
reading, hashing, the HTTP calls — not EBS's throughput.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MIB = 1024 * 1024
IMAGE_SIZE = 320 * MIB
# (offset, length) of the data written into the image: ~24 MiB in all
EXTENTS = [(0, 4 * MIB), (40 * MIB + 4096, 8 * MIB), (150 * MIB, 6 * MIB), (300 * MIB, 6 * MIB)]


def sparse_image(path: Path) -> None:
    from nixecs.aws.ebs import BLOCK

    rng = random.Random(11)
    with path.open("wb") as handle:
        handle.truncate(IMAGE_SIZE)
        for offset, length in EXTENTS:
            handle.seek(offset)
            handle.write(rng.randbytes(length))
        handle.seek(100 * MIB)
        handle.write(bytes(BLOCK))  # allocated zeros: skipped too


def bench_ebs_upload(python: str = sys.executable, workers: int = 8) -> dict[str, float]:
    from demo_aws import FAKE_CREDENTIALS, _free_port, _start_moto, _stop

    from nixecs.aws.ebs import scan, upload
    from nixecs.aws.session import Session

    port = _free_port()
    process = _start_moto(python, port)
    saved = {k: os.environ.get(k) for k in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    try:
        with tempfile.TemporaryDirectory(prefix="nixecs-bench-ebs-") as tmp:
            disk = Path(tmp) / "nixos.raw"
            sparse_image(disk)
            session = Session(region="us-east-1", endpoint_url=f"http://127.0.0.1:{port}")
            start = time.perf_counter()
            stats = upload(
                session, disk, scan(disk), [], "nixecs bench", workers=workers, poll=0.05
            )
            seconds = time.perf_counter() - start
            sparse_seconds = _publish_sparse(session, Path(tmp))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _stop(process)
    return {
        "ebs_image_mib": IMAGE_SIZE / MIB,
        "ebs_blocks_total": stats.blocks_total,
        "ebs_blocks_sent": stats.blocks_sent,
        "ebs_sent_ratio": round(stats.bytes_sent / IMAGE_SIZE, 4),
        "ebs_seconds": round(seconds, 2),
        "ebs_blocks_per_s": round(stats.blocks_sent / seconds, 1),
        "ebs_sparse_10gib_publish_s": round(sparse_seconds, 2),
    }


def _publish_sparse(session: object, root: Path) -> float:
    """`ami publish` (hash, upload, register) of a 10 GiB sparse raw image holding 5 KiB of
    data (DESIGN §12: seconds, not minutes: holes are never read nor hashed)."""
    import json

    from nixecs.aws.ami import publish

    image_dir = root / "sparse"
    (image_dir / "nix-support").mkdir(parents=True)
    disk = image_dir / "nixos-amazon-image-bench-x86_64-linux.raw"
    with disk.open("wb") as handle:
        handle.truncate(10 * 1024 * MIB)
        handle.seek(3 * 1024 * MIB + 4096)
        handle.write(b"nixos" * 1024)
    info = {"label": "bench", "boot_mode": "uefi", "system": "x86_64-linux", "file": str(disk)}
    (image_dir / "nix-support" / "image-info.json").write_text(json.dumps(info))
    start = time.perf_counter()
    publish(session, image_dir, poll=0.05)  # type: ignore[arg-type]
    return time.perf_counter() - start


if __name__ == "__main__":
    print(bench_ebs_upload())
