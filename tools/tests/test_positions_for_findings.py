"""Positions are looked up only for findings (issue 18, item 4): loading, checking and
rendering a fleet without findings walks the YAML nodes for no position at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from nixecs.fleet.checks import check_fleet_file
from nixecs.fleet.yaml12 import Document
from nixecs.render import render_fleet
from nixecs.testing.fleetgen import generate_fleet


def test_a_fleet_without_findings_locates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet_file = tmp_path / "fleet.yml"
    fleet_file.write_text(generate_fleet(3, 4, 4))
    located: list[object] = []
    real = Document.locate

    def counting(self: Document, at: object, **kwargs: bool) -> object:
        located.append(at)
        return real(self, at, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Document, "locate", counting)
    model, report = check_fleet_file(str(fleet_file), nix=False)
    rendered = render_fleet(model)
    assert report.items == [] and rendered.warnings() == []
    assert sum(len(c.groups) for c in model.clusters.values()) == 12  # the fleet is real
    assert located == []
    # and a finding still gets its position
    assert model.document.locate(("clusters",), key=True).line >= 1
    assert located == [("clusters",)]
