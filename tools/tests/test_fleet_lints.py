"""W101: a group whose IMDS hop limit lets instance metadata reach containers (issue 8, item 13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES, REPO
from nixecs.cloudformation import build_stack
from nixecs.fleet import load_fleet


def validate(fleet: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nixecs", "--output", "json", "validate", str(fleet)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def with_hop_limit(tmp_path: Path, value: int) -> Path:
    text = (EXAMPLES / "fleet.yml").read_text()
    assert text.count("metadata: {hop_limit: 1} ") == 1
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text.replace("metadata: {hop_limit: 1} ", f"metadata: {{hop_limit: {value}}}"))
    return fleet


def test_example_fleet_keeps_imds_on_the_instance() -> None:
    result = validate(EXAMPLES / "fleet.yml")
    assert result.returncode == 0, result.stderr
    assert all(d["code"] != "W101" for d in json.loads(result.stdout)["diagnostics"])


def test_hop_limit_above_one_warns_at_the_value(tmp_path: Path) -> None:
    fleet = with_hop_limit(tmp_path, 2)
    result = validate(fleet)
    assert result.returncode == 0, result.stderr  # a warning, not an error
    # W501: the fleet's `flake:` is a remote reference, whose hosts validate cannot read
    diagnostics = [d for d in json.loads(result.stdout)["diagnostics"] if d["code"] != "W501"]
    assert [d["code"] for d in diagnostics] == ["W101"], diagnostics
    line = next(i for i, t in enumerate(fleet.read_text().splitlines(), 1) if "hop_limit" in t)
    column = fleet.read_text().splitlines()[line - 1].index("2}") + 1
    assert (diagnostics[0]["line"], diagnostics[0]["column"]) == (line, column)
    assert diagnostics[0]["severity"] == "warning"
    assert "allowContainerInstanceMetadata" in diagnostics[0]["message"]


def test_hop_limit_one_is_silent_and_rendered_as_written(tmp_path: Path) -> None:
    for value, warns in ((1, False), (3, True)):
        fleet = with_hop_limit(tmp_path, value)
        diagnostics = json.loads(validate(fleet).stdout)["diagnostics"]
        assert any(d["code"] == "W101" for d in diagnostics) is warns, diagnostics
        model = load_fleet(fleet)
        template = build_stack(model, model.clusters["prod"])
        options = [
            r["Properties"]["LaunchTemplateData"]["MetadataOptions"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::EC2::LaunchTemplate"
        ]
        # web sets it, workers keep the default 1.
        assert sorted(o["HttpPutResponseHopLimit"] for o in options) == sorted([value, 1])
