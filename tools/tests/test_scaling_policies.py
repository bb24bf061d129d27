"""Several target tracking policies and customized metrics (issue 21, item 3): the fleet
keys, the template, cfn-lint, the JSON Schema agreeing, and the engine's rule for several
policies (scale out when any asks, in only when all agree; cited in scaling/sim.py
[AAS-MULTI])."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from capacity_fixtures import assert_cfn_lint_clean, errors, line_of, load_text, scaled_fleet
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load
from nixecs.scaling.sim import Load, PolicySet, TrackingRule, replay

CPU = "AWS/ECS/CPUUtilization"
MEMORY = "AWS/ECS/MemoryUtilization"


def fleet_text(scaling: str) -> str:
    return scaled_fleet(scaling)


TWO = """\
target_tracking:
  - {metric: cpu, target: 60}
  - metric: {namespace: Acme, name: Backlog, dimensions: {Service: "${service}", Cluster: "${cluster}"}, statistic: Maximum}
    target: 20
    disable_scale_in: true
"""


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
    fleet = load_text(fleet_text(TWO))
    assert_cfn_lint_clean(build_stack(fleet, "prod", {"web": b"#x\n"}), tmp_path)


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


def test_replay_reads_a_customized_metric_with_its_own_dimensions() -> None:
    from nixecs.aws.metrics import queries_for

    scaling = load_text(fleet_text(TWO)).clusters["prod"].services["web"].scaling
    assert scaling is not None
    policies = PolicySet.from_scaling("p", scaling, "nixecs-prod", "web")
    queries = {q.key: q for q in queries_for([policies], "nixecs-prod", "web")}
    assert queries[CPU].dimensions == (("ClusterName", "nixecs-prod"), ("ServiceName", "web"))
    backlog = queries["Acme/Backlog"]
    assert (backlog.namespace, backlog.metric, backlog.statistic) == ("Acme", "Backlog", "Maximum")
    assert backlog.dimensions == (("Cluster", "nixecs-prod"), ("Service", "web"))
