"""The parse-only cache of `nixos:` texts (issue 18, item 4): keyed by content, so an
unchanged text is never parsed twice and a changed one always is."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_tool
from nixecs.nixparse import parse_texts_cached

GOOD = "{ lib, ... }: { boot.kernel.sysctl.x = 1; }\n"
BAD = "{ lib, ... }: { boot.kernel.sysctl.x = ; }\n"


def counting_nix(tmp_path: Path) -> tuple[str, Path]:
    """A nix-instantiate that records each call, then runs the real one."""
    real = require_tool("nix-instantiate")
    calls = tmp_path / "calls"
    wrapper = tmp_path / "nix-instantiate"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), calls


def count(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_results_are_reused_for_the_same_text_only(tmp_path: Path) -> None:
    nix, calls = counting_nix(tmp_path)
    cache = str(tmp_path / "cache")
    first = parse_texts_cached({"a/web": GOOD, "a/bad": BAD}, nix, cache)
    assert set(first) == {"a/bad"}
    assert (first["a/bad"].line, first["a/bad"].column) == (1, 40)
    made = count(calls)
    assert made >= 1

    again = parse_texts_cached({"b/web": GOOD, "b/bad": BAD}, nix, cache)  # same texts
    assert count(calls) == made  # nothing parsed again: the error comes from the cache
    assert {k: (e.message, e.line, e.column) for k, e in again.items()} == {
        "b/bad": (first["a/bad"].message, 1, 40)
    }

    changed = parse_texts_cached({"a/web": GOOD.replace("1", "2")}, nix, cache)
    assert changed == {}
    assert count(calls) == made + 1


def test_an_unwritable_cache_still_parses(tmp_path: Path) -> None:
    nix, calls = counting_nix(tmp_path)
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert set(parse_texts_cached({"x": BAD}, nix, str(blocked / "cache"))) == {"x"}
    assert set(parse_texts_cached({"x": BAD}, nix, str(blocked / "cache"))) == {"x"}
    assert count(calls) == 2


def test_which_finds_what_shutil_which_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from nixecs.nixparse import which

    bin_a, bin_b = tmp_path / "a", tmp_path / "b"
    bin_a.mkdir()
    bin_b.mkdir()
    (bin_a / "tool").write_text("#!/bin/sh\n")  # not executable: skipped
    (bin_b / "tool").write_text("#!/bin/sh\n")
    (bin_b / "tool").chmod(0o755)
    (bin_a / "dir-tool").mkdir()  # a directory: skipped
    for path in (f"{bin_a}:{bin_b}", f"{bin_b}:{bin_a}", "", ":", f"{bin_a}"):
        monkeypatch.setenv("PATH", path)
        for program in ("tool", "dir-tool", "missing", str(bin_b / "tool"), str(bin_a / "tool")):
            assert which(program) == shutil.which(program), (path, program)
    monkeypatch.setenv("PATH", f"{bin_a}:{bin_b}")
    assert which("tool") == str(bin_b / "tool")  # the comparison above found something


@pytest.mark.parametrize(
    "entry",
    [
        '{"error": "x"}',  # no place
        '{"error": "x", "line": "one", "column": 1}',
        '{"error": "x", "line": 0, "column": 1}',
        '{"error": "", "line": 1, "column": 1}',
        '{"error": "x", "line": true, "column": 1}',
        "[]",
        '"ok"',
        "{",
        "fifo",  # a FIFO in the cache: opening it must not wait for a writer
    ],
)
def test_a_damaged_entry_is_a_miss(tmp_path: Path, entry: str) -> None:
    """Whatever sits at a text's place in the cache, validate parses the text again: no
    traceback, no hang, and the right answer."""
    import os

    nix, calls = counting_nix(tmp_path)
    cache = tmp_path / "cache"
    first = parse_texts_cached({"bad": BAD}, nix, str(cache))
    (written,) = list(cache.iterdir())
    written.unlink()
    if entry == "fifo":
        os.mkfifo(written)
    else:
        written.write_text(entry)
    import signal

    def hung(*_: object) -> None:
        raise AssertionError("reading the cache waited on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        again = parse_texts_cached({"bad": BAD}, nix, str(cache))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert {k: (e.message, e.line, e.column) for k, e in again.items()} == {
        "bad": (first["bad"].message, 1, 40)
    }
    assert count(calls) == 2  # parsed again
