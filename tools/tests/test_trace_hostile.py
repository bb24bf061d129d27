"""`scaling replay --trace FILE` against hostile traces (issue 16 items 7 and 9). Every row is
a located E301 at exit 2 with no traceback, or is read as stated:

| input                                      | outcome                                            |
|--------------------------------------------|----------------------------------------------------|
| FIFO (no writer)                           | E301 "not a regular file", at once (never blocks)  |
| device (/dev/zero: endless)                | E301 "not a regular file"                          |
| symlink to a trace                         | followed: read like the file                       |
| directory                                  | exit 2 "is a directory" (click's own check)      |
| empty                                      | E301 "empty trace"                                 |
| truncated mid-row                          | E301 naming the cell count                         |
| huge: over 64 MiB                          | E301 "over 64 MiB", only 64 MiB + 1 byte read      |
| header of 200,000 columns, one repeated    | E301 "appears twice", in linear time               |
| two rows ten years apart                   | E301 "longer than … minutes" before any expansion  |
| ±1e308 (finite) and other extreme values   | E301 "out of range"                                |
| a UTF-8 byte order mark                    | accepted                                           |
| a cell of a megabyte                       | E301 quoting at most 40 characters of it           |
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest

from aws_fixtures import run_cli
from nixecs.scaling.trace import MAX_BYTES, read_trace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLEET = str(EXAMPLES / "fleet.yml")
HEADER = "timestamp,AWS/ECS/CPUUtilization,running_tasks\n"
ROW = "2026-11-02T00:00:00Z,12,2\n"


def replay(capsys: pytest.CaptureFixture[str], path: Path | str) -> tuple[int, str]:
    result = run_cli(capsys, ["scaling", "replay", FLEET, "prod/bananas", "--trace", str(path)])
    assert "Traceback" not in result.err
    return result.code, result.err


def test_a_fifo_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "trace.csv"
    os.mkfifo(fifo)
    start = time.monotonic()
    code, err = replay(capsys, fifo)
    assert code == 2 and f"{fifo}:1:1: error[E301]" in err and "not a regular file" in err
    assert time.monotonic() - start < 10  # an open() without O_NONBLOCK would never return


@pytest.mark.parametrize("target", ["/dev/zero", "directory"])
def test_a_device_or_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    path: Path | str = tmp_path if target == "directory" else target
    code, err = replay(capsys, path)
    # the device: our E301; the directory: click's own check of the option, also exit 2
    assert code == 2 and ("error[E301]" in err or "is a directory" in err)


def test_a_symlinked_trace_is_read(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text(HEADER + ROW)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert read_trace(link).tasks == [2]


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"", 1, "empty trace"),
        ((HEADER + ROW + "2026-11-02T00:01:00Z,1").encode(), 3, "2 cells"),
        (b"\xef\xbb\xbf" + (HEADER + ROW).encode(), 0, ""),  # BOM: accepted
    ],
    ids=["empty", "truncated", "bom"],
)
def test_small_hostile_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, line: int, words: str
) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(data)
    code, err = replay(capsys, path)
    if not words:
        assert code == 0, err
        return
    assert code == 2 and f"{path}:{line}:" in err and words in err


def test_a_huge_trace_is_refused_after_reading_its_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.csv"
    with path.open("wb") as handle:
        handle.truncate(MAX_BYTES * 4)  # sparse: cheap to make
    code, err = replay(capsys, path)
    assert code == 2 and "over 64 MiB" in err


def test_a_wide_header_is_checked_in_linear_time(tmp_path: Path) -> None:
    columns = [f"NS/M{i}" for i in range(200_000)] + ["NS/M0"]
    path = tmp_path / "trace.csv"
    path.write_text("timestamp," + ",".join(columns) + ",running_tasks\n" + ROW)
    start = time.process_time()
    with pytest.raises(Exception, match="appears twice"):
        read_trace(path)
    # list.count per column took minutes here (2 × 10^10 comparisons); a set takes < 1 s.
    assert time.process_time() - start < 10


def test_a_gap_of_years_is_refused_before_it_is_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(HEADER + ROW + "2036-11-02T00:00:00Z,12,2\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, err = replay(capsys, path)
    assert code == 2 and f"{path}:3:1: error[E301]" in err and "longer than" in err
    # Expanding ten years of minutes first would take > 40 MB (5 million list slots).
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 40_000


@pytest.mark.parametrize("value", ["1e308", "-1e308", "1.7976931348623157e308", "1e16"])
def test_extreme_finite_values_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(HEADER + f"2026-11-02T00:00:00Z,{value},2\n")
    code, err = replay(capsys, path)
    assert code == 2 and f"{path}:2:22: error[E301]" in err and "out of range" in err


def test_a_large_but_plausible_value_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(HEADER + "2026-11-02T00:00:00Z,1e15,2\n2026-11-02T00:01:00Z,-1e15,2\n")
    code, err = replay(capsys, path)
    assert code == 0, err


def test_messages_quote_only_a_prefix_of_a_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trace.csv"
    secret = "s3cr3t" * 200_000  # 1.2 MB in one cell
    path.write_text(HEADER + f"2026-11-02T00:00:00Z,{secret},2\n")
    code, err = replay(capsys, path)
    assert code == 2 and "not a number" in err
    assert len(err) < 1000 and "(1200000 characters)" in err
