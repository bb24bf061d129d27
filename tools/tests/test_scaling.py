"""AWS's step-scaling rules (E2xx) and the semantic lints (W2xx), one case per rule.

The rules are Application Auto Scaling's documented ones for StepAdjustment: no overlaps,
no gaps, at most one open lower and one open upper bound, never both open in one step,
a negative lower (positive upper) bound needs an open lower (upper) bound, at most 20 steps.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

import pytest

from conftest import EXAMPLES
from nixecs.diagnostics import Report
from nixecs.fleet import load_fleet, parse
from nixecs.fleet.checks import SCALING_RULES, check
from nixecs.fleet.model import Fleet


def check_fleet(fleet: Fleet) -> Report:
    """The scaling rules of the checks stage (what `nixecs scaling check` runs)."""
    return check(fleet, only=SCALING_RULES)


BASE = """\
version: 1
region: us-east-1
clusters:
  c:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      g: {{ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {{min: 1, max: 3}}}}
    services:
      s:
        group: g
        image: nginx
        memory: 256
{desired}        scaling:
{scaling}
"""


def fleet_text(scaling: str, desired: int | None = None) -> str:
    line = "" if desired is None else f"        desired: {desired}\n"
    return BASE.format(desired=line, scaling=textwrap.indent(textwrap.dedent(scaling), " " * 10))


def policy(
    steps: list[dict[str, float]],
    comparison: str = ">=",
    threshold: float = 80,
    adjustment: str = "ChangeInCapacity",
    name: str = "p",
    metric: str = "CPUUtilization",
) -> str:
    alarm = {
        "metric": metric,
        "namespace": "AWS/ECS",
        "statistic": "Average",
        "period": 60,
        "evaluation_periods": 1,
        "threshold": threshold,
        "comparison": comparison,
    }
    return f"- name: {name}\n  alarm: {json.dumps(alarm)}\n  adjustment_type: {adjustment}\n  steps: {json.dumps(steps)}\n"


def step_block(*policies: str, low: int = 1, high: int = 10) -> str:
    body = "".join(textwrap.indent(p, "  ") for p in policies)
    return f"min: {low}\nmax: {high}\nstep:\n{body}"


def codes(text: str) -> list[str]:
    return sorted(d.code for d in check_fleet(parse(text, "f.yml")).items)


SCALE_IN = policy([{"upper": 0, "change": -1}], comparison="<=", threshold=20, name="low")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # AWS's user-guide example: [0,10) 0, [10,20) +10%, [20,∞) +30% — valid.
        (
            [
                {"lower": 0, "upper": 10, "change": 0},
                {"lower": 10, "upper": 20, "change": 1},
                {"lower": 20, "change": 3},
            ],
            [],
        ),
        ([{"lower": 0, "upper": 15, "change": 1}, {"lower": 10, "change": 2}], ["E201"]),  # overlap
        ([{"lower": 0, "upper": 10, "change": 1}, {"lower": 20, "change": 2}], ["E202"]),  # gap
        ([{"change": 1}], ["E203"]),  # both bounds open
        (
            [{"lower": 0, "upper": 10, "change": 1}],
            ["E203"],
        ),  # positive upper without an open upper
        (
            [{"lower": 0, "change": 1}, {"lower": 10, "change": 2}],
            ["E201", "E203"],
        ),  # two open uppers
        (
            [{"lower": 10, "upper": 10, "change": 1}, {"lower": 10, "change": 2}],
            ["E201"],
        ),  # empty interval
        (
            [{"lower": i, "upper": i + 1, "change": 1} for i in range(20)]
            + [{"lower": 20, "change": 2}],
            ["E204"],
        ),
    ],
)
def test_aws_rules_for_scale_out_steps(steps: list[dict[str, float]], expected: list[str]) -> None:
    assert codes(fleet_text(step_block(policy(steps), SCALE_IN))) == expected


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([{"upper": 0, "change": -1}], []),
        (
            [{"lower": -10, "upper": 0, "change": -1}],
            ["E203"],
        ),  # negative lower without an open lower
        ([{"upper": -10, "change": -2}, {"lower": -10, "upper": 0, "change": -1}], []),
        (
            [{"upper": -10, "change": -2}, {"upper": 0, "change": -1}],
            ["E201", "E203"],
        ),  # two open lowers
    ],
)
def test_aws_rules_for_scale_in_steps(steps: list[dict[str, float]], expected: list[str]) -> None:
    scale_out = policy([{"lower": 0, "change": 1}], name="high")
    text = fleet_text(
        step_block(scale_out, policy(steps, comparison="<=", threshold=20, name="low"))
    )
    assert codes(text) == expected


def test_exact_capacity_cannot_be_negative() -> None:
    text = fleet_text(step_block(policy([{"lower": 0, "change": -1}], adjustment="ExactCapacity")))
    assert codes(text) == ["E206"]


def test_min_max_and_desired() -> None:
    tracking = "target_tracking: {metric: cpu, target: 70}\n"
    assert codes(fleet_text(f"min: 5\nmax: 2\n{tracking}")) == ["E205"]
    assert codes(fleet_text(f"min: 2\nmax: 5\n{tracking}")) == []
    # A scaled service's desired cannot be honoured (auto scaling owns the count): W204,
    # whatever its value, and no longer a range error.
    assert codes(fleet_text(f"min: 2\nmax: 5\n{tracking}", desired=9)) == ["W204"]
    assert codes(fleet_text(f"min: 2\nmax: 5\n{tracking}", desired=3)) == ["W204"]


def test_the_articles_policy_warns_w201_and_w202() -> None:
    report = check_fleet(load_fleet(EXAMPLES / "blog.yml"))
    found = {d.code: d for d in report.items}
    assert sorted(found) == ["W201", "W202"]
    # W201 points at the -1 step itself: line 41 of blog.yml is `- {upper: 0, change: -1}`.
    w201 = found["W201"]
    line = (EXAMPLES / "blog.yml").read_text().splitlines()[w201.location.line - 1]
    assert "change: -1" in line and w201.location.column == line.index("{") + 1
    assert ">= 80" in w201.message


def test_correct_pair_and_target_tracking_have_no_findings() -> None:
    assert check_fleet(load_fleet(EXAMPLES / "fleet.yml")).items == []


@pytest.mark.parametrize(
    ("comparison", "steps", "reachable"),
    [
        (">=", [{"lower": 0, "change": 1}, {"upper": 0, "change": -1}], [True, False]),
        (">", [{"lower": 0, "change": 1}, {"upper": 0, "change": -1}], [True, False]),
        (">=", [{"upper": 5, "change": 1}, {"lower": 5, "change": 2}], [True, True]),
        ("<=", [{"upper": 0, "change": -1}, {"lower": 0, "change": 1}], [True, False]),
        ("<", [{"upper": 0, "change": -1}, {"lower": 0, "change": 1}], [True, False]),
        # CPUUtilization is never negative: below a threshold of 20, offsets under -20 cannot occur.
        (
            "<=",
            [{"upper": -25, "change": -2}, {"lower": -25, "upper": 0, "change": -1}],
            [False, True],
        ),
        (
            "<=",
            [{"upper": -20, "change": -2}, {"lower": -20, "upper": 0, "change": -1}],
            [True, True],
        ),
    ],
)
def test_w201_reachability(
    comparison: str, steps: list[dict[str, float]], reachable: list[bool]
) -> None:
    text = fleet_text(step_block(policy(steps, comparison=comparison, threshold=20)))
    report = check_fleet(parse(text, "f.yml"))
    unreachable_lines = {d.location.line for d in report.items if d.code == "W201"}
    assert len(unreachable_lines) == reachable.count(False)


def test_w202_scale_out_only() -> None:
    only_out = fleet_text(step_block(policy([{"lower": 0, "change": 1}])))
    assert codes(only_out) == ["W202"]
    no_scale_in = fleet_text(
        "min: 1\nmax: 5\ntarget_tracking: {metric: cpu, target: 70, disable_scale_in: true}\n"
    )
    assert codes(no_scale_in) == ["W202"]
    tracking = fleet_text("min: 1\nmax: 5\ntarget_tracking: {metric: memory, target: 70}\n")
    assert codes(tracking) == []


def test_warnings_do_not_fail_validation_but_errors_do(tmp_path: object) -> None:
    from nixecs.cli import run

    assert run(["scaling", "check", str(EXAMPLES / "blog.yml")]) == 0
    assert run(["scaling", "check", "--strict", str(EXAMPLES / "blog.yml")]) == 2


def test_simulation_shows_the_article_never_scaling_in_and_the_pair_returning() -> None:
    from nixecs.scaling.sim import simulate, wave

    blog = load_fleet(EXAMPLES / "blog.yml").clusters["blog"].services["app"]
    timeline = simulate(blog, wave(12, 40, 400), 15 * 60)
    assert max(timeline.desired) > timeline.desired[0]
    assert all(b >= a for a, b in itertools.pairwise(timeline.desired)), (
        "the article's policy must never scale in"
    )
    reports = load_fleet(EXAMPLES / "fleet.yml").clusters["prod"].services["reports"]
    timeline = simulate(reports, wave(12, 40, 400), 15 * 60)
    assert max(timeline.desired) > 1 and timeline.desired[-1] == reports.scaling.min  # type: ignore[union-attr]
    assert all(1 <= d <= 12 for d in timeline.desired)


def test_simulate_command_writes_a_png(tmp_path: Path) -> None:
    from nixecs.cli import run

    target = tmp_path / "blog.png"
    assert (
        run(["scaling", "simulate", str(EXAMPLES / "blog.yml"), "blog/app", "--plot", str(target)])
        == 0
    )
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert run(["scaling", "simulate", str(EXAMPLES / "blog.yml"), "blog/nope"]) == 2


def test_simulate_refuses_policies_aws_would_refuse(tmp_path: Path) -> None:
    from nixecs.cli import run

    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        fleet_text(
            step_block(
                policy([{"lower": 0, "upper": 15, "change": 1}, {"lower": 10, "change": 2}]),
                SCALE_IN,
            )
        )
    )
    assert run(["scaling", "simulate", str(fleet), "c/s"]) == 2
