"""`nixecs status --plot`: the picture is drawn from status's data, and shows what differs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from aws_fixtures import run_cli
from conftest import require
from nixecs.aws.plot import _rows, plot_status


@pytest.fixture(autouse=True)
def _matplotlib() -> None:
    require(
        importlib.util.find_spec("matplotlib") is not None,
        "matplotlib (the plot extra) is not installed",
    )


DATA = {
    "region": "us-east-1",
    "clusters": [
        {
            "name": "prod",
            "stack_status": "UPDATE_COMPLETE",
            "groups": [
                {"name": "web", "min": 2, "max": 10, "desired": 4, "in_service": 3, "instances": 4}
            ],
            "services": [
                {
                    "name": "bananas",
                    "desired": 6,
                    "running": 4,
                    "pending": 1,
                    "scaling": {"min": 2, "max": 6},
                },
                {"name": "apples", "desired": 1, "running": 1, "pending": 0, "scaling": None},
            ],
        },
        {"name": "staging", "stack_status": "CREATE_COMPLETE", "groups": [], "services": []},
    ],
}


def test_rows_carry_bounds_progress_and_desired():
    rows = _rows(DATA["clusters"][0])
    assert [r["label"] for r in rows] == ["group web", "bananas", "apples"]
    assert rows[0] == {
        "label": "group web",
        "low": 2,
        "high": 10,
        "done": 3,
        "waiting": 1,
        "desired": 4,
    }
    assert rows[1] == {
        "label": "bananas",
        "low": 2,
        "high": 6,
        "done": 4,
        "waiting": 1,
        "desired": 6,
    }
    assert (rows[2]["low"], rows[2]["high"]) == (None, None)


def test_plot_writes_a_png_that_changes_with_the_data(tmp_path: Path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    plot_status(DATA, first)
    changed = json.loads(json.dumps(DATA))
    changed["clusters"][0]["services"][0]["running"] = 6
    plot_status(changed, second)
    for path in (first, second):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert first.read_bytes() != second.read_bytes()


@pytest.mark.moto
def test_status_plot_against_moto(moto, capsys, tmp_path: Path):
    target = tmp_path / "status.png"
    result = run_cli(
        capsys,
        ["--endpoint-url", moto.url, "--region", "us-east-1", "status", "--plot", str(target)],
    )
    assert result.code == 0, result.err
    assert f"wrote {target}" in result.err and target.read_bytes()[:4] == b"\x89PNG"
