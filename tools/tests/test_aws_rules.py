"""Issue 9, items 1-3 and 6: alarms that watch a metric that exists (E121, E122), target
tracking beside step policies (W203), and desired counts that a template cannot honour
(W204, no DesiredCount / DesiredCapacity). docs/aws.md cites the AWS behaviour behind each."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import example_fleets, require
from nixecs.cloudformation import build_stack, dump_template
from nixecs.diagnostics import InvalidInput, Report
from nixecs.fleet import load_fleet, parse
from nixecs.fleet.checks import SCALING_RULES, check, check_fleet_file
from nixecs.fleet.model import Fleet


def check_fleet(fleet: Fleet) -> Report:
    """The scaling rules of the checks stage (what `nixecs scaling check` runs)."""
    return check(fleet, only=SCALING_RULES)


FLEET = """\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web: {{ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {{min: 1, max: 3}}}}
    services:
      api:
        group: web
        image: nginx
        memory: 256
        scaling:
          min: 2
          max: 8
{scaling}
"""


def alarm(metric: str, namespace: str = "AWS/ECS", dimensions: dict[str, str] | None = None) -> str:
    body: dict[str, Any] = {
        "metric": metric,
        "namespace": namespace,
        "threshold": 80,
        "comparison": ">=",
    }
    if dimensions is not None:
        body["dimensions"] = dimensions
    return json.dumps(body)


def step_policy(name: str, alarm_text: str, steps: str = '[{"lower": 0, "change": 1}]') -> str:
    return f"    - name: {name}\n      alarm: {alarm_text}\n      steps: {steps}\n"


def fleet_text(*policies: str, tracking: str | None = None) -> str:
    lines = ""
    if tracking is not None:
        lines += f"target_tracking: {tracking}\n"
    if policies:
        lines += "step:\n" + "".join(policies)
    return FLEET.format(scaling=textwrap.indent(lines, " " * 10))


def findings(text: str) -> list[tuple[str, str]]:
    return sorted((d.code, d.message) for d in check_fleet(parse(text, "f.yml")).items)


def errors(text: str) -> list[tuple[str, str]]:
    return [(code, message) for code, message in findings(text) if code.startswith("E")]


def codes(text: str) -> list[str]:
    return [code for code, _ in findings(text)]


def alarm_properties(text: str) -> list[dict[str, Any]]:
    fleet = parse(text, "f.yml")
    template = build_stack(fleet, "prod")
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]


# --- item 1: dimensions -------------------------------------------------------------------


def test_misspelt_ecs_metric_is_refused_with_did_you_mean() -> None:
    [(code, message)] = errors(fleet_text(step_policy("up", alarm("CPUUtilisation"))))
    assert code == "E122"
    assert "did you mean 'CPUUtilization'?" in message
    [(code, message)] = errors(
        fleet_text(step_policy("up", alarm("RunningTasks", "ECS/ContainerInsights")))
    )
    assert code == "E122" and "'RunningTaskCount'" in message


def test_alarm_outside_the_ecs_namespaces_needs_dimensions() -> None:
    sqs = step_policy("queue", alarm("ApproximateNumberOfMessagesVisible", "AWS/SQS"))
    [(code, message)] = errors(fleet_text(sqs))
    assert code == "E121" and "dimensions" in message
    # The located error points at the alarm in the file.
    with_dims = step_policy(
        "queue",
        alarm("ApproximateNumberOfMessagesVisible", "AWS/SQS", {"QueueName": "jobs"}),
    )
    assert codes(fleet_text(with_dims)) == ["W202"]  # scales out only: the usual lint
    [props] = alarm_properties(fleet_text(with_dims))
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": "jobs"}]


def test_ecs_defaults_service_metrics_per_service_and_cluster_metrics_per_cluster() -> None:
    text = fleet_text(
        step_policy("cpu", alarm("CPUUtilization")),
        step_policy("reserved", alarm("CPUReservation")),
        step_policy("running", alarm("RunningTaskCount", "ECS/ContainerInsights")),
        step_policy("instances", alarm("ContainerInstanceCount", "ECS/ContainerInsights")),
    )
    dims = {p["MetricName"]: p["Dimensions"] for p in alarm_properties(text)}
    service = [
        {"Name": "ClusterName", "Value": "prod"},
        {"Name": "ServiceName", "Value": "api"},
    ]
    cluster = [{"Name": "ClusterName", "Value": "prod"}]
    assert dims == {
        "CPUUtilization": service,
        "CPUReservation": cluster,  # never carries ServiceName (it does not exist per service)
        "RunningTaskCount": service,
        "ContainerInstanceCount": cluster,
    }


def test_explicit_dimensions_must_be_a_set_the_metric_is_published_with() -> None:
    wrong = step_policy(
        "reserved",
        alarm("CPUReservation", dimensions={"ClusterName": "${cluster}", "ServiceName": "x"}),
    )
    [(code, message)] = errors(fleet_text(wrong))
    assert code == "E121" and "{ClusterName}" in message
    # Cluster-level CPUUtilization on request, with the placeholder resolved.
    cluster_cpu = step_policy(
        "cluster-cpu", alarm("CPUUtilization", dimensions={"ClusterName": "${cluster}"})
    )
    assert codes(fleet_text(cluster_cpu)) == ["W202"]
    [props] = alarm_properties(fleet_text(cluster_cpu))
    assert props["Dimensions"] == [{"Name": "ClusterName", "Value": "prod"}]


def test_unknown_placeholder_is_a_located_error() -> None:
    text = fleet_text(
        step_policy("q", alarm("Depth", "Custom/App", {"Queue": "${queue}"})),
    )
    with pytest.raises(InvalidInput) as caught:
        parse(text, "f.yml")
    [error] = caught.value.report.errors
    assert error.code == "E107" and "${queue}" in error.message
    assert (
        error.location.line
        == text.splitlines().index(next(line for line in text.splitlines() if "${queue}" in line))
        + 1
    )


@pytest.mark.cfnlint
def test_alarms_with_dimensions_are_cfn_lint_clean(tmp_path: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    text = fleet_text(
        step_policy(
            "queue", alarm("ApproximateNumberOfMessagesVisible", "AWS/SQS", {"QueueName": "jobs"})
        ),
        step_policy("reserved", alarm("MemoryReservation")),
        step_policy(
            "low",
            json.dumps({"metric": "CPUUtilization", "threshold": 20, "comparison": "<="}),
            '[{"upper": 0, "change": -1}]',
        ),
    )
    out = tmp_path / "stack.yaml"
    out.write_text(dump_template(build_stack(parse(text, "f.yml"), "prod")))
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--include-checks", "I", "--", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


# --- item 2: target tracking with step policies -------------------------------------------

SCALE_IN = step_policy(
    "low",
    json.dumps({"metric": "CPUUtilization", "threshold": 20, "comparison": "<="}),
    '[{"upper": 0, "change": -1}]',
)
SCALE_OUT = step_policy("high", alarm("CPUUtilization"))


def test_tracking_with_steps_is_allowed_and_only_a_fighting_scale_in_warns() -> None:
    tracking = "{metric: cpu, target: 60}"
    # Scale-out steps beside tracking: AWS takes the larger capacity; nothing to warn about.
    assert codes(fleet_text(SCALE_OUT, tracking=tracking)) == []
    # A step scale-in beside tracking's own scale-in: W203, at the step policy.
    [(code, message)] = findings(fleet_text(SCALE_OUT, SCALE_IN, tracking=tracking))
    assert code == "W203" and "'low'" in message and "disable_scale_in" in message
    # Tracking with scale-in disabled leaves scale-in to the steps, as AWS documents.
    quiet = "{metric: cpu, target: 60, disable_scale_in: true}"
    assert codes(fleet_text(SCALE_OUT, SCALE_IN, tracking=quiet)) == []


def test_tracking_with_steps_renders_both_policies() -> None:
    text = fleet_text(SCALE_OUT, tracking="{metric: memory, target: 60}")
    template = build_stack(parse(text, "f.yml"), "prod")
    kinds = sorted(
        r["Properties"]["PolicyType"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
    )
    assert kinds == ["StepScaling", "TargetTrackingScaling"]


# --- items 3 and 6: desired counts ----------------------------------------------------------


def test_scaled_service_has_no_desired_count_and_a_written_desired_warns() -> None:
    text = fleet_text(tracking="{metric: cpu, target: 60}")
    fleet = parse(text, "f.yml")
    service = fleet.clusters["prod"].services["api"]
    assert service.start_count == 2  # created with 1, moved into [2, 8] by the scalable target
    template = build_stack(fleet, "prod")
    [ecs_service] = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ECS::Service"
    ]
    assert "DesiredCount" not in ecs_service
    with_desired = text.replace(
        "        memory: 256\n", "        memory: 256\n        desired: 5\n"
    )
    [(code, message)] = findings(with_desired)
    assert code == "W204" and "starts with 2 task(s)" in message


def test_group_desired_capacity_is_not_in_the_template_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    text = fleet_text(tracking="{metric: cpu, target: 60}").replace(
        "capacity: {min: 1, max: 3}", "capacity: {min: 1, max: 3, desired: 2}"
    )
    path.write_text(text)
    fleet, report = check_fleet_file(str(path), nix=False)
    # (its `image: nginx` also draws W171: test_image_lints.py)
    [warning] = [d for d in report.items if d.code == "W204"]
    assert warning.code == "W204" and "starts at min 1" in warning.message
    assert warning.location.line == 9
    template = build_stack(fleet, "prod")
    [group] = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    ]
    assert "DesiredCapacity" not in group and group["MinSize"] == "1"


def test_examples_have_no_desired_that_cannot_be_honoured() -> None:
    for path, env in example_fleets():
        fleet = load_fleet(path, env)
        assert not any(
            g.capacity.desired_given for c in fleet.clusters.values() for g in c.groups.values()
        ), path
