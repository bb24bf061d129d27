"""Every error of a fleet file at once: the checks stage's rules on one service or task (E171,
E174, E182) are reported beside a loader error elsewhere in the file, not hidden by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLES
from nixecs.diagnostics import InvalidInput
from nixecs.fleet.checks import check_fleet_file

WORKLOADS = (EXAMPLES / "workloads.yml").read_text()
# A loader error (E101) in another service than the rule's finding.
TYPO = ("        port: 9100\n", "        prot: 9100\n")


def _codes(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    path = tmp_path / "fleet.yml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        check_fleet_file(str(path), nix=False)
    return [(d.code, d.location.line) for d in caught.value.report.sorted()]


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "code", "below"),
    [
        ("{volume: cache, path: /var/cache/nginx}", "{volume: cache, path: /srv/media}", "E171", 0),
        ("cache: {docker: {}}", "cache: {docker: {autoprovision: true}}", "E174", 0),
        # located at the task's mapping, the line below its name
        ("      migrate:  #", "      files:  #", "E182", 1),
    ],
)
def test_a_rule_on_one_service_is_reported_with_a_loader_error(
    tmp_path: Path, old: str, new: str, code: str, below: int
) -> None:
    assert old in WORKLOADS and TYPO[0] in WORKLOADS
    text = WORKLOADS.replace(old, new, 1).replace(*TYPO, 1)
    at = _line(text, new) + below
    assert sorted(_codes(tmp_path, text)) == sorted([(code, at), ("E101", _line(text, "prot:"))])
    # alone, each is the one finding (the rule is the checks stage's)
    assert _codes(tmp_path, WORKLOADS.replace(old, new, 1)) == [(code, at)]
