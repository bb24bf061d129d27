"""ebs.allocated (the upload's progress total) on sparse files whose data extents begin and
end mid-block, as file systems lay them out in 4 KiB pages: it terminates, and counts each
512 KiB block holding data once."""

from __future__ import annotations

import signal
from pathlib import Path

from nixecs.aws.ebs import BLOCK, allocated, data_blocks

MIB = 1024 * 1024


def test_extents_starting_mid_block_are_counted_once(tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as handle:
        handle.truncate(64 * MIB)
        # data from 4 KiB into block 8 up to 4 KiB into block 10, and in block 10 again
        handle.seek(8 * BLOCK + 4096)
        handle.write(b"\x01" * (2 * BLOCK))
        handle.seek(10 * BLOCK + 100_000)
        handle.write(b"\x02" * 4096)
        handle.seek(40 * BLOCK + 65536)
        handle.write(b"\x03" * 4096)
    expected = {index for index, _ in data_blocks(disk)}
    assert expected == {8, 9, 10, 40}

    def hung(*_: object) -> None:
        raise AssertionError("allocated() does not terminate")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        assert allocated(disk) == len(expected) * BLOCK
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
