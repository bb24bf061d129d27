"""The mistakes people new to ECS or YAML make get a message naming the likely cause and the
fix, at the usual position with the usual code: a fraction for a percentage, vCPU for CPU
units, memory with a unit, a quoted version, a section whose keys lost their indentation, a
group or service written one level too far left, a cluster's own `region:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_fixtures import FLEET
from nixecs.diagnostics import InvalidInput
from nixecs.fleet.checks import check_fleet_file


def _findings(tmp_path: Path, text: str) -> list[tuple[str, int, str]]:
    path = tmp_path / "fleet.yml"
    path.write_text(text)
    try:
        _, report = check_fleet_file(str(path), nix=False)
    except InvalidInput as error:
        report = error.report
    return [(d.code, d.location.line, d.message) for d in report.items]


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "code", "needle", "says"),
    [
        ("cpu: 256", "cpu: 0.5", "E103", "cpu: 0.5", "0.5 vCPU is `cpu: 512`"),
        ("memory: 512", "memory: 512MB", "E103", "memory: 512MB", "`memory: 512`"),
        ("memory: 512", "memory: 1GiB", "E103", "memory: 1GiB", "`memory: 1024`"),
        ("memory: 512", "memory: lots", "E103", "memory: lots", "number of MiB without a unit"),
        (
            "version: 1",
            'version: "1"',
            "E103",
            'version: "1"',
            "write it as a number, `version: 1`",
        ),
        (
            "        capacity: {min: 1, max: 4}",
            "        capacity:\n        min: 1\n        max: 4",
            "E101",
            "        min: 1",
            "'min' is a key of `capacity:`, which is empty here: indent it under `capacity:`",
        ),
        (
            "        capacity: {min: 1, max: 4}",
            "        capacity:\n        min: 1\n        max: 4",
            "E103",
            "        capacity:",
            "its keys (min, max) are written beside it: indent them under it",
        ),
        (
            "          step:",
            "          target_tracking: {metric: cpu, target: 0.6}\n          step:",
            "W102",
            "target: 0.6",
            "for 60% write `target: 60`",
        ),
        (
            "      apples:\n        group: web",
            "    apples:\n        group: web",
            "E101",
            "    apples:",
            "its keys are those of an entry of `services:`: indent 'apples' under `services:`",
        ),
        (
            "      web:\n        host: ecs-node",
            "    web:\n        host: ecs-node",
            "E101",
            "    web:",
            "its keys are those of an entry of `groups:`: indent 'web' under `groups:`",
        ),
        (
            "    subnets: [subnet-0a1b2c3d]",
            "    region: eu-west-1\n    subnets: [subnet-0a1b2c3d]",
            "E101",
            "    region: eu-west-1",
            "for clusters in another region, declare `environments: {NAME: {region: ...}}`",
        ),
    ],
    ids=[
        "vcpu",
        "memory MB",
        "memory GiB",
        "memory word",
        "quoted version",
        "unindented key",
        "empty section",
        "fraction",
        "dedented service",
        "dedented group",
        "cluster region",
    ],
)
def test_the_likely_cause_is_named(
    tmp_path: Path, old: str, new: str, code: str, needle: str, says: str
) -> None:
    assert old in FLEET
    text = FLEET.replace(old, new, 1)
    found = _findings(tmp_path, text)
    line = _line(text, needle)
    assert any(c == code and n == line and says in m for c, n, m in found), found


def test_right_values_draw_no_hint(tmp_path: Path) -> None:
    """The hints only ever extend a finding: a valid fleet has none, and a wrong type that is
    no unit mistake keeps the plain message."""
    assert [c for c, _, _ in _findings(tmp_path, FLEET)] == []
    found = _findings(tmp_path, FLEET.replace("cpu: 256", "cpu: [1]"))
    assert [m for c, _, m in found if c == "E103"] == ["expected an integer, got list"] * 2
    tracking = FLEET.replace(
        "          step:", "          target_tracking: {metric: cpu, target: 60}\n          step:"
    )
    assert "W102" not in [c for c, _, _ in _findings(tmp_path, tracking)]


def test_an_empty_load_balancer_names_only_its_own_stray_keys(tmp_path: Path) -> None:
    """A cluster has `security_groups` of its own (also a load balancer's key): written beside
    an empty `load_balancer:`, it is the cluster's, not a key that lost its indentation; the
    load balancer's keys the cluster does not have (E101) are."""
    old = "    security_groups: [sg-0a1b2c3d]\n"
    assert old in FLEET
    alone = FLEET.replace(old, old + "    load_balancer:\n", 1)
    found = _findings(tmp_path, alone)
    assert [(c, m) for c, _, m in found] == [
        (
            "E103",
            "expected a mapping, got null (`load_balancer:` has nothing after it): write its "
            "value, or leave the key out",
        )
    ]
    stray = FLEET.replace(old, old + "    load_balancer:\n    vpc: vpc-0a1b2c3d\n", 1)
    found = _findings(tmp_path, stray)
    null = [m for c, _, m in found if c == "E103"]
    assert [c for c, _, _ in found].count("E101") == 1
    assert len(null) == 1 and null[0].endswith(
        "its keys (vpc) are written beside it: indent them under it"
    ), null


def test_a_dedented_group_is_one_error_not_also_every_reference(tmp_path: Path) -> None:
    """The group written beside `groups:` is the cluster's unknown key (E101, with the
    indentation hint; `groups:` left with nothing is E103); the services naming it are not
    also told it does not exist (E108) — with another group left in `groups:` too."""
    old, new = "      web:\n        host: ecs-node", "    web:\n        host: ecs-node"
    assert old in FLEET
    found = _findings(tmp_path, FLEET.replace(old, new, 1))
    assert sorted(c for c, _, _ in found) == ["E101", "E103"], found
    kept = FLEET.replace(old, "      spare:\n        host: ecs-node\n" + new, 1)
    found = _findings(tmp_path, kept)
    assert "E108" not in [c for c, _, _ in found] and "E101" in [c for c, _, _ in found], found
