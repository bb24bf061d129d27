"""The fleet file (`validate`, `render`, every fleet command) against hostile inputs (issue 16
items 7 and 9). Every row is a located error at exit 2 with no traceback, or is read as stated:

| input                                      | outcome                                              |
|--------------------------------------------|------------------------------------------------------|
| FIFO (no writer)                           | E100 "not a regular file", at once (never blocks)    |
| device (/dev/zero: endless)                | E100 "not a regular file"                            |
| symlink to a fleet file                    | followed: validated like the file                    |
| empty                                      | E103 (not a mapping)                                 |
| truncated mid-flow (an unclosed `[`)       | E100 at the end, located                             |
| huge: over 64 MiB                          | E100 "over 64 MiB", only 64 MiB + 1 byte read        |
| 2 KB alias bomb (also inside `overrides:`) | E100 "aliases expand", in well under a second        |
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from aws_fixtures import run_cli
from conftest import EXAMPLES

FLEET = EXAMPLES / "fleet.yml"


def validate(capsys: pytest.CaptureFixture[str], path: Path | str) -> tuple[int, str]:
    result = run_cli(capsys, ["validate", str(path)])
    assert "Traceback" not in result.err
    return result.code, result.err


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "fleet.yml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    start = time.monotonic()
    code, err = validate(capsys, path)
    assert code == 2 and f"{path}:1:1: error[E100]" in err and "not a regular file" in err
    assert time.monotonic() - start < 10


def test_a_symlinked_fleet_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "fleet.yml"
    link.symlink_to(FLEET)
    code, err = validate(capsys, link)
    assert code == 0, err


@pytest.mark.parametrize(
    ("data", "code_word"),
    [(b"", "E103"), (b"version: 1\nclusters: [a, b\n", "E100")],
    ids=["empty", "truncated"],
)
def test_empty_and_truncated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, code_word: str
) -> None:
    path = tmp_path / "fleet.yml"
    path.write_bytes(data)
    code, err = validate(capsys, path)
    assert code == 2 and f"error[{code_word}]" in err and str(path) in err


def test_a_huge_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.yml"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: cheap to make, 200 MiB to read
    start = time.process_time()
    code, err = validate(capsys, path)
    assert code == 2 and "over 64 MiB" in err
    assert time.process_time() - start < 10


def test_an_alias_bomb_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "fleet.yml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 2048
    start = time.process_time()
    code, err = validate(capsys, path)
    assert code == 2 and "aliases expand" in err
    assert time.process_time() - start < 1.0
