"""`scaling check` for issue 21 (item 6): a scheduled min above its max (E194), two target
tracking policies on one metric (E195), a strategy base above the service's maximum (W205);
each located, with exit codes as for the other scaling rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_fixtures import run_cli
from capacity_fixtures import GROUP_WEB, HEAD, line_of
from nixecs.fleet import parse
from nixecs.fleet.checks import SCALING_RULES, check


def fleet_text(group: str = "web", service: str = "") -> str:
    return (
        HEAD
        + GROUP_WEB
        + f"""\
      spot:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 0, max: 4}}
        spot: true
    services:
      web:
        group: {group}
        image: nginx:1.27
        memory: 512
{service}"""
    )


SCALED = """\
        scaling:
          min: 1
          max: 6
          target_tracking:
            - {metric: cpu, target: 60}
            - {metric: memory, target: 70}
          scheduled:
            - {name: day, schedule: "cron(0 8 ? * MON-FRI *)", min: 3, max: 6}
"""


def found(text: str) -> list[tuple[str, int]]:
    report = check(parse(text, "fleet.yml"), only=SCALING_RULES)
    return [(d.code, d.location.line) for d in report.sorted()]


def test_a_clean_fleet_has_nothing_to_say() -> None:
    assert found(fleet_text(service=SCALED)) == []
    assert (
        found(fleet_text("[{group: web, base: 6, weight: 1}, {group: spot, weight: 1}]", SCALED))
        == []
    )


def test_a_scheduled_min_above_its_max_is_e194() -> None:
    text = fleet_text(service=SCALED.replace("min: 3, max: 6", "min: 5, max: 2"))
    assert found(text) == [("E194", line_of(text, "name: day"))]


@pytest.mark.parametrize(
    ("actions", "needle"),
    [
        # min only, above the target's max 6 and every scheduled max
        ('{name: peak, schedule: "rate(1 day)", min: 8}', "name: peak"),
        # max only, below the target's min 1 and every scheduled min
        ('{name: night, schedule: "rate(1 day)", max: 0}', "name: night"),
    ],
)
def test_a_one_sided_action_beyond_every_other_bound_is_e194(actions: str, needle: str) -> None:
    """AWS: with only one size given, "you must include both sizes to ensure that the new
    minimum capacity is not greater than the maximum capacity, or the new maximum capacity is
    not less than the minimum capacity" (scheduled-scaling-policy-overview.html)."""
    text = fleet_text(service=SCALED + f"            - {actions}\n")
    assert found(text) == [("E194", line_of(text, needle))]


@pytest.mark.parametrize(
    "actions",
    [
        # min 8 without a max is held by another action's max 10, min 0 likewise
        '{name: peak, schedule: "rate(1 day)", min: 8}\n            - {name: wide, schedule: "rate(2 days)", min: 0, max: 10}',
        '{name: peak, schedule: "rate(1 day)", min: 6}',  # equal to the max: holds
        '{name: night, schedule: "rate(1 day)", max: 1}',  # equal to the min: holds
    ],
)
def test_a_one_sided_action_some_bound_holds_is_accepted(actions: str) -> None:
    assert found(fleet_text(service=SCALED + f"            - {actions}\n")) == []


@pytest.mark.parametrize(
    "second",
    ["{metric: cpu, target: 80}", "{metric: {namespace: Acme, name: X}, target: 1}"],
)
def test_two_policies_on_one_metric_is_e195(second: str) -> None:
    first = second if "Acme" in second else "{metric: cpu, target: 60}"
    text = fleet_text(
        service=SCALED.replace("{metric: cpu, target: 60}", first).replace(
            "{metric: memory, target: 70}", second
        )
    )
    # located at the second policy's metric (the list's second line)
    assert found(text) == [("E195", line_of(text, "target_tracking:") + 2)]


@pytest.mark.parametrize(
    ("service", "base"),
    [(SCALED, 7), ("        desired: 2\n", 3)],
)
def test_a_base_above_the_services_maximum_is_w205(service: str, base: int) -> None:
    text = fleet_text(
        f"[{{group: web, base: {base}, weight: 1}}, {{group: spot, weight: 1}}]", service
    )
    assert found(text) == [("W205", line_of(text, "group: ["))]


def test_the_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(fleet_text(service=SCALED.replace("min: 3, max: 6", "min: 5, max: 2")))
    result = run_cli(capsys, ["scaling", "check", str(bad)])
    assert result.code == 2 and "error[E194]" in result.out + result.err
    assert f"{bad}:{line_of(bad.read_text(), 'name: day')}:" in result.out + result.err
    warned = tmp_path / "warned.yml"
    warned.write_text(
        fleet_text("[{group: web, base: 9, weight: 1}, {group: spot, weight: 1}]", SCALED)
    )
    result = run_cli(capsys, ["scaling", "check", str(warned)])
    assert "warning[W205]" in result.out + result.err and "Traceback" not in result.err
