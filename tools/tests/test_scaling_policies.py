"""Several target tracking policies and customized metrics (issue 21, item 3): the fleet
keys, the template, cfn-lint, the JSON Schema agreeing, and the engine's rule for several
policies (scale out when any asks, in only when all agree; cited in scaling_sim.py
[AAS-MULTI])."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import require
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.model import Fleet
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load
from nixecs.scaling_sim import Load, PolicySet, TrackingRule, replay

CPU = "AWS/ECS/CPUUtilization"
MEMORY = "AWS/ECS/MemoryUtilization"


def fleet_text(scaling: str) -> str:
    body = "\n".join("          " + line for line in scaling.strip("\n").splitlines())
    return f"""\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  prod:
    subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]
    security_groups: [sg-0a1b2c3d]
    groups:
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 1, max: 4}}
    services:
      web:
        group: web
        image: nginx:1.27
        memory: 512
        scaling:
          min: 1
          max: 10
{body}
"""


TWO = """\
target_tracking:
  - {metric: cpu, target: 60}
  - metric: {namespace: Acme, name: Backlog, dimensions: {Service: "${service}", Cluster: "${cluster}"}, statistic: Maximum}
    target: 20
    disable_scale_in: true
"""


def load_text(text: str) -> Fleet:
    return parse(text, "fleet.yml")


def errors(text: str) -> list[tuple[int, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    return [(d.location.line, d.code) for d in caught.value.report.sorted()]


def line_of(text: str, needle: str) -> int:
    return next(i for i, text_line in enumerate(text.splitlines(), 1) if needle in text_line)


def resources(text: str) -> dict[str, Any]:
    fleet = load_text(text)
    return build_stack(fleet, "prod", {"web": b"#x\n"})["Resources"]  # type: ignore[no-any-return]


def policies_of(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in found.items()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
    }


# -- the model and the template ----------------------------------------------------------------


def test_the_single_mapping_stays_accepted_and_renders_as_before() -> None:
    text = fleet_text("target_tracking: {metric: cpu, target: 60}")
    [tracking] = load_text(text).clusters["prod"].services["web"].scaling.target_tracking  # type: ignore[union-attr]
    assert (tracking.metric, tracking.target, tracking.custom) == ("cpu", 60, None)
    [(logical, properties)] = policies_of(resources(text)).items()
    assert logical == "WebTargetTrackingPolicy"
    assert properties["PolicyName"].endswith("target-tracking")
    assert properties["TargetTrackingScalingPolicyConfiguration"][
        "PredefinedMetricSpecification"
    ] == {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}


def test_a_list_renders_one_policy_each_with_a_customized_metric() -> None:
    text = fleet_text(TWO)
    scaling = load_text(text).clusters["prod"].services["web"].scaling
    assert scaling is not None
    assert [t.metric_key for t in scaling.target_tracking] == ["cpu", "Acme/Backlog"]
    found = policies_of(resources(text))
    assert len(found) == 2
    first = found.pop("WebTargetTrackingPolicy")
    [(logical, second)] = found.items()
    assert logical != "WebTargetTrackingPolicy"
    assert second["PolicyName"].endswith("target-tracking-2")
    assert first["PolicyName"] != second["PolicyName"]
    configuration = second["TargetTrackingScalingPolicyConfiguration"]
    assert configuration["CustomizedMetricSpecification"] == {
        "Namespace": "Acme",
        "MetricName": "Backlog",
        "Statistic": "Maximum",
        # placeholders resolved to the AWS names, as for alarms
        "Dimensions": [
            {"Name": "Cluster", "Value": "prod"},
            {"Name": "Service", "Value": "web"},
        ],
    }
    assert configuration["TargetValue"] == 20 and configuration["DisableScaleIn"] is True
    assert "PredefinedMetricSpecification" not in configuration


# -- odd values --------------------------------------------------------------------------------

ODD = [
    ("target_tracking: []", "target_tracking", "E107"),
    ("target_tracking: [cpu]", "target_tracking", "E103"),
    ("target_tracking: {metric: disk, target: 60}", "metric", "E107"),
    ("target_tracking: {metric: {namespace: Acme}, target: 60}", "metric", "E104"),
    ("target_tracking: {metric: {namespace: Acme, name: X, statistic: p99}, target: 60}", "metric", "E107"),
    ("target_tracking: {metric: {namespace: Acme, name: X, colour: red}, target: 60}", "metric", "E101"),
    ("target_tracking: {metric: {namespace: Acme, name: X}, target: 0}", "target", "E107"),
    ("target_tracking: [{metric: cpu, target: 160}]", "target_tracking", "E107"),
]  # fmt: skip


@pytest.mark.parametrize(("scaling", "needle", "code"), ODD, ids=[s for s, _, _ in ODD])
def test_odd_values_are_located_errors(scaling: str, needle: str, code: str) -> None:
    text = fleet_text(scaling)
    assert errors(text) == [(line_of(text, needle), code)]


SHAPES = [s for s, _, code in ODD if code in ("E101", "E103", "E104") or "disk" in s or "p99" in s]


@pytest.mark.parametrize("scaling", SHAPES)
def test_the_json_schema_rejects_the_shapes_the_loader_rejects(scaling: str) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    document = load(fleet_text(scaling).encode(), "fleet.yml").value
    assert list(validator.iter_errors(document)), scaling
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")
    good = load(fleet_text(TWO).encode(), "fleet.yml").value
    assert list(validator.iter_errors(good)) == []


@pytest.mark.cfnlint
def test_cfn_lint_accepts_two_policies(tmp_path: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    fleet = load_text(fleet_text(TWO))
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(build_stack(fleet, "prod", {"web": b"#x\n"})))
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--include-checks", "I", "--regions",
         "us-east-1", "--", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


# -- the engine: out when any asks, in only when all agree -------------------------------------


def two(*, memory_in: bool = True) -> PolicySet:
    return PolicySet(
        "two",
        1,
        20,
        tracking=(
            TrackingRule(CPU, 50, 0, 0, False),
            TrackingRule(MEMORY, 50, 0, 0, not memory_in),
        ),
    )


def load_of(cpu: list[float], memory: list[float], tasks: int) -> Load:
    return Load({CPU: list(cpu), MEMORY: list(memory)}, [tasks] * len(cpu))


def test_any_policy_scales_out() -> None:
    # memory well below its target, cpu above: cpu's scale-out wins (3 of 3 minutes)
    outcome = replay(two(), load_of([100] * 4, [10] * 4, tasks=2), start_capacity=2)
    assert outcome.events[0].minute == 2 and outcome.events[0].after == 4
    assert outcome.events[0].policy == f"target-tracking:{CPU}"


def test_scale_in_only_when_every_policy_agrees() -> None:
    # cpu low for 20 minutes, memory at its target: no scale-in
    held = replay(two(), load_of([20] * 20, [50] * 20, tasks=4), start_capacity=4)
    assert held.events == []
    # both low: scale in, to the larger capacity the two ask for (ceil(4×20/50)=2, ceil(4×30/50)=3)
    both = replay(two(), load_of([20] * 20, [30] * 20, tasks=4), start_capacity=4)
    assert both.events[0].minute == 14 and both.events[0].after == 3
    # a policy with scale-in disabled has no vote
    alone = replay(two(memory_in=False), load_of([20] * 20, [50] * 20, tasks=4), start_capacity=4)
    assert alone.events[0].minute == 14 and alone.events[0].after == 2


def test_the_fleets_policies_reach_the_engine() -> None:
    scaling = load_text(fleet_text(TWO)).clusters["prod"].services["web"].scaling
    assert scaling is not None
    policies = PolicySet.from_scaling("p", scaling)
    assert [t.metric for t in policies.tracking] == [CPU, "Acme/Backlog"]
    assert [t.disable_scale_in for t in policies.tracking] == [False, True]
