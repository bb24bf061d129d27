"""`nixecs render -o OUT` in a hostile output directory (issue 16 items 8 and 9):

| state of OUT before the render                       | outcome                                   |
|------------------------------------------------------|-------------------------------------------|
| a cluster directory is a symlink out of OUT          | exit 1 naming it; nothing written outside |
| a cluster's `groups` directory is a symlink          | exit 1; nothing written outside           |
| a symlink planted at stack.yaml                      | replaced by the file; its target intact   |
| a stale file edited since the render that wrote it   | kept (its hash is not the manifest's)     |
| a stale file replaced by a symlink to the same bytes | kept, and the target too                  |
| a manifest listing `../x` or `a/../../x` with x's    | x kept                                    |
|   true hash                                          |                                           |
| a stale file under a symlinked directory             | kept                                      |
| manifest.json a FIFO (no writer)                     | no hang; nothing removed; render written  |
| manifest.json a symlink to a foreign manifest        | not read; nothing removed                 |
| manifest.json truncated (killed midway)              | nothing removed; render written           |
| a stale file with the manifest's hash                | removed, and its emptied directories      |
| temporaries a killed render left (an hour old)       | removed; a fresh one (a render running    |
|                                                      |   now) and other names kept               |
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import run_cli
from test_cli_render import _TWO_CLUSTERS

TWO_CLUSTERS = _TWO_CLUSTERS  # prod (web, batch) and old (web)
ONE_CLUSTER = TWO_CLUSTERS.split("  old:")[0]


def render(capsys: Any, fleet_text: str, root: Path) -> Any:
    fleet = root / "fleet.yml"
    fleet.write_text(fleet_text)
    return run_cli(capsys, ["render", str(fleet), "-o", str(root / "out")])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("link", ["prod", "prod/groups"])
def test_a_symlinked_directory_in_out_is_never_written_through(
    capsys: Any, tmp_path: Path, link: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    (out / link).symlink_to(elsewhere)
    result = render(capsys, ONE_CLUSTER, tmp_path)
    assert result.code == 1 and "symbolic link" in result.err, result.err
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_planted_at_a_file_is_replaced(capsys: Any, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep")
    (tmp_path / "out" / "prod").mkdir(parents=True)
    (tmp_path / "out" / "prod" / "stack.yaml").symlink_to(target)
    assert render(capsys, ONE_CLUSTER, tmp_path).code == 0
    assert not (tmp_path / "out" / "prod" / "stack.yaml").is_symlink()
    assert target.read_text() == "keep"


def _first_render(capsys: Any, tmp_path: Path) -> Path:
    result = render(capsys, TWO_CLUSTERS, tmp_path)
    assert result.code == 0, result.err
    return tmp_path / "out"


def test_a_stale_file_edited_since_is_kept_and_an_unchanged_one_removed(
    capsys: Any, tmp_path: Path
) -> None:
    out = _first_render(capsys, tmp_path)
    (out / "old" / "stack.yaml").write_text("# my edit\n")
    assert render(capsys, ONE_CLUSTER, tmp_path).code == 0
    assert (out / "old" / "stack.yaml").read_text() == "# my edit\n"
    assert not (out / "old" / "groups").exists()  # unchanged userdata removed, dir emptied


def test_a_stale_file_swapped_for_a_symlink_is_kept(capsys: Any, tmp_path: Path) -> None:
    out = _first_render(capsys, tmp_path)
    stale = out / "old" / "stack.yaml"
    copy = tmp_path / "copy.yaml"
    copy.write_bytes(stale.read_bytes())  # the very bytes the manifest's hash names
    stale.unlink()
    stale.symlink_to(copy)
    assert render(capsys, ONE_CLUSTER, tmp_path).code == 0
    assert stale.is_symlink() and copy.is_file()


@pytest.mark.parametrize("listed", ["../victim.txt", "old/../../victim.txt"])
def test_a_manifest_path_out_of_out_is_ignored(capsys: Any, tmp_path: Path, listed: str) -> None:
    out = _first_render(capsys, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("not render's")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["clusters"]["old"]["stack"] = listed
    manifest["clusters"]["old"]["stack_sha256"] = sha(victim.read_bytes())
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert render(capsys, ONE_CLUSTER, tmp_path).code == 0
    assert victim.read_text() == "not render's"


def test_a_stale_file_under_a_symlinked_directory_is_kept(capsys: Any, tmp_path: Path) -> None:
    out = _first_render(capsys, tmp_path)
    moved = tmp_path / "moved"
    (out / "old").rename(moved)
    (out / "old").symlink_to(moved)
    assert render(capsys, ONE_CLUSTER, tmp_path).code == 0
    assert (moved / "stack.yaml").is_file() and (moved / "groups" / "web.userdata").is_file()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "truncated"])
def test_a_hostile_manifest_removes_nothing(capsys: Any, tmp_path: Path, kind: str) -> None:
    out = _first_render(capsys, tmp_path)
    manifest = out / "manifest.json"
    text = manifest.read_bytes()
    manifest.unlink()
    if kind == "fifo":
        os.mkfifo(manifest)
    elif kind == "symlink":
        foreign = tmp_path / "foreign.json"
        foreign.write_bytes(text)
        manifest.symlink_to(foreign)
    else:
        manifest.write_bytes(text[: len(text) // 2])
    start = time.monotonic()
    result = render(capsys, ONE_CLUSTER, tmp_path)
    assert result.code == 0, result.err
    assert time.monotonic() - start < 30
    assert (out / "old" / "stack.yaml").is_file()  # not known to be ours: kept
    assert json.loads(manifest.read_text())["clusters"].keys() == {"prod"}
    assert not manifest.is_symlink()


def test_a_killed_renders_temporaries_are_removed_and_a_running_ones_kept(
    capsys: Any, tmp_path: Path
) -> None:
    """Each directory is opened once for all its files (render._write_files): its stale
    temporaries, for every file written there, are found in one scan of it."""
    from nixecs.atomic import TEMP_MARK

    out = _first_render(capsys, tmp_path)
    old = [
        out / "prod" / f".stack.yaml{TEMP_MARK}{'ab' * 8}",
        out / "prod" / "groups" / f".web.userdata{TEMP_MARK}{'cd' * 8}",
        out / "prod" / "groups" / f".batch.userdata{TEMP_MARK}{'ef' * 8}",
    ]
    fresh = out / "prod" / "groups" / f".web.userdata{TEMP_MARK}{'12' * 8}"
    unrelated = out / "prod" / "groups" / f".notes{TEMP_MARK}{'34' * 8}"
    for path in [*old, fresh, unrelated]:
        path.write_text("partial")
    for path in old:
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    result = render(capsys, TWO_CLUSTERS, tmp_path)
    assert result.code == 0, result.err
    assert [p for p in old if p.exists()] == []
    assert fresh.exists() and unrelated.exists()
