"""Scheduled scaling (issue 21, item 3): `scaling.scheduled:`, the scalable target's
ScheduledActions, the schedules as AWS writes them (at, rate, cron, a time zone), and the
engine moving min/max at their times — in `simulate` and in `replay`, whose report shows
where an action changed them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from capacity_fixtures import assert_cfn_lint_clean, errors, line_of, load_text, scaled_fleet
from conftest import MotoServer
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.model import ScheduledAction
from nixecs.fleet.scheduled import fires, modelled, schedule_error
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load
from nixecs.scaling.replay import report, run, text
from nixecs.scaling.sim import Load, PolicySet, replay

CPU = "AWS/ECS/CPUUtilization"


def fleet_text(scheduled: str) -> str:
    return scaled_fleet("target_tracking: {metric: cpu, target: 60}\n" + scheduled)


GOOD = """\
scheduled:
  - {name: business-hours, schedule: "cron(0 8 ? * MON-FRI *)", timezone: Europe/Paris, min: 4, max: 12}
  - {name: night, schedule: "cron(0 20 ? * MON-FRI *)", min: 1}
"""


def action(
    schedule: str, timezone: str = "UTC", low: int | None = 4, high: int | None = None
) -> ScheduledAction:
    return ScheduledAction("a", schedule, timezone, low, high, ())  # fmt: skip


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# -- the fleet and the template ----------------------------------------------------------------


def test_scheduled_actions_render_on_the_scalable_target() -> None:
    fleet = load_text(fleet_text(GOOD))
    scaling = fleet.clusters["prod"].services["web"].scaling
    assert scaling is not None
    assert [(a.name, a.timezone, a.min, a.max) for a in scaling.scheduled] == [
        ("business-hours", "Europe/Paris", 4, 12),
        ("night", "UTC", 1, None),
    ]
    resources: dict[str, Any] = build_stack(fleet, "prod", {"web": b"#x\n"})["Resources"]
    [target] = [r for r in resources.values() if r["Type"].endswith("ScalableTarget")]
    assert target["Properties"]["ScheduledActions"] == [
        {
            "ScheduledActionName": "business-hours",
            "Schedule": "cron(0 8 ? * MON-FRI *)",
            "Timezone": "Europe/Paris",
            "ScalableTargetAction": {"MinCapacity": 4, "MaxCapacity": 12},
        },
        {
            "ScheduledActionName": "night",
            "Schedule": "cron(0 20 ? * MON-FRI *)",
            "Timezone": "UTC",
            "ScalableTargetAction": {"MinCapacity": 1},
        },
    ]


def test_without_scheduled_actions_the_target_has_none() -> None:
    fleet = load_text(fleet_text(""))
    resources: dict[str, Any] = build_stack(fleet, "prod", {"web": b"#x\n"})["Resources"]
    [target] = [r for r in resources.values() if r["Type"].endswith("ScalableTarget")]
    assert "ScheduledActions" not in target["Properties"]


ODD = [
    ('scheduled: [{name: a, schedule: "every day", min: 1}]', "schedule", "E107"),
    ('scheduled: [{name: a, schedule: "cron(0 8 * * MON-FRI *)", min: 1}]', "schedule", "E107"),
    ('scheduled: [{name: a, schedule: "cron(0 8 ? *)", min: 1}]', "schedule", "E107"),
    ('scheduled: [{name: a, schedule: "cron(61 8 ? * MON *)", min: 1}]', "schedule", "E107"),
    ('scheduled: [{name: a, schedule: "at(2026-02-30T08:00:00)", min: 1}]', "schedule", "E107"),
    ('scheduled: [{name: a, schedule: "rate(0 minutes)", min: 1}]', "schedule", "E107"),
    ('scheduled: [{name: a, schedule: "rate(1 hour)", timezone: Mars/Olympus, min: 1}]', "timezone", "E107"),
    ('scheduled: [{name: a, schedule: "rate(1 hour)"}]', "scheduled", "E104"),
    ('scheduled: [{name: a, schedule: "rate(1 hour)", min: -1}]', "scheduled", "E107"),
    ('scheduled: [{name: a, schedule: "rate(1 hour)", max: 10001}]', "scheduled", "E107"),
    ('scheduled: [{schedule: "rate(1 hour)", min: 1}]', "scheduled", "E104"),
    ('scheduled: [{name: a, schedule: "rate(1 hour)", min: 1, at: 3}]', "scheduled", "E101"),
    ('scheduled: [{name: a, schedule: "rate(1 hour)", min: 1}, {name: a, schedule: "rate(2 hours)", min: 2}]', "scheduled", "E107"),
    ("scheduled: []", "scheduled", "E103"),
]  # fmt: skip


@pytest.mark.parametrize(("scheduled", "needle", "code"), ODD, ids=[s for s, _, _ in ODD])
def test_odd_values_are_located_errors(scheduled: str, needle: str, code: str) -> None:
    text = fleet_text(scheduled)
    assert errors(text) == [(line_of(text, needle), code)]


@pytest.mark.parametrize(
    "scheduled",
    # shapes only: "min or max, at least one" is a rule between keys, the loader's alone
    [s for s, _, code in ODD if code == "E101" or "{schedule:" in s or "-1" in s or "10001" in s],
)
def test_the_json_schema_rejects_the_shapes_the_loader_rejects(scheduled: str) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    document = load(fleet_text(scheduled).encode(), "fleet.yml").value
    assert list(validator.iter_errors(document)), scheduled
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")
    good = load(fleet_text(GOOD).encode(), "fleet.yml").value
    assert list(validator.iter_errors(good)) == []


@pytest.mark.cfnlint
def test_cfn_lint_accepts_scheduled_actions(tmp_path: Path) -> None:
    assert_cfn_lint_clean(
        build_stack(load_text(fleet_text(GOOD)), "prod", {"web": b"#x\n"}), tmp_path
    )


# -- when an action runs -----------------------------------------------------------------------


def test_cron_in_a_time_zone() -> None:
    weekdays_8 = action("cron(0 8 ? * MON-FRI *)", "Europe/Paris")
    # 2026-12-07 is a Monday; Paris is UTC+1 in December
    assert fires(weekdays_8, epoch("2026-12-07T07:00"), 1)
    assert not fires(weekdays_8, epoch("2026-12-07T08:00"), 1)
    assert not fires(weekdays_8, epoch("2026-12-06T07:00"), 1)  # Sunday
    assert fires(weekdays_8, epoch("2026-07-06T06:00"), 1)  # summer: UTC+2
    # numbers for days (1 = SUN), lists, steps
    assert fires(action("cron(*/15 9,17 ? * 1 *)"), epoch("2026-12-06T17:45"), 1)
    assert not fires(action("cron(*/15 9,17 ? * 1 *)"), epoch("2026-12-06T17:50"), 1)
    assert fires(action("cron(30 2 1 JAN-MAR ? 2027)"), epoch("2027-02-01T02:30"), 1)
    assert not fires(action("cron(30 2 1 JAN-MAR ? 2027)"), epoch("2026-02-01T02:30"), 1)


def test_at_and_rate() -> None:
    once = action("at(2026-12-07T09:30:00)", "America/New_York")
    assert fires(once, epoch("2026-12-07T14:30"), 5)
    assert not fires(once, epoch("2026-12-07T09:30"), 5)
    hourly = action("rate(2 hours)")
    assert [m for m in range(300) if fires(hourly, 0, m)] == [120, 240]


def test_what_is_not_modelled_is_said_and_never_fires() -> None:
    last_friday = action("cron(0 18 ? * 6L *)")
    assert schedule_error(last_friday.schedule) is None  # AWS accepts it
    assert not modelled(last_friday)
    assert not any(fires(last_friday, epoch("2026-12-25T18:00"), m) for m in range(2))


# -- the engine and the replay report ----------------------------------------------------------


def test_a_scheduled_minimum_raises_the_capacity_and_the_report_shows_it() -> None:
    start = epoch("2026-12-07T06:00")  # Monday, 07:00 in Paris
    fleet = load_text(fleet_text(GOOD))
    scaling = fleet.clusters["prod"].services["web"].scaling
    assert scaling is not None
    policies = PolicySet.from_scaling("proposed", scaling)
    minutes = 180
    load = Load({CPU: [30.0] * minutes}, [1] * minutes, start=start)  # idle: tracking stays
    outcome = replay(policies, load, start_capacity=1)
    # 08:00 Paris = minute 60: min 4 (and max 12) from then on
    assert outcome.desired[59] == 1 and outcome.desired[60] == 4
    assert outcome.maxima[59] == 10 and outcome.maxima[60] == 12
    [event] = [e for e in outcome.events if e.policy.startswith("scheduled:")]
    assert (event.minute, event.policy, event.before, event.after) == (
        60, "scheduled:business-hours", 1, 4,
    )  # fmt: skip
    data = report(run([policies], load, start_delay=1), "prod/web")
    [figures] = data["sets"]  # type: ignore[misc]
    assert figures["scheduled"] == [
        {
            "minute": 60,
            "action": "business-hours",
            "min": {"from": 1, "to": 4},
            "max": {"from": 10, "to": 12},
            "time": "2026-12-07T07:00Z",
        }
    ]
    lines = "\n".join(text(data))
    assert "scheduled 'business-hours' at 2026-12-07T07:00Z: min 1 → 4, max 10 → 12" in lines


def test_a_scheduled_maximum_scales_in_to_it() -> None:
    policies = PolicySet("p", 1, 10, scheduled=(action("rate(1 hour)", low=None, high=2),))
    load = Load({CPU: [30.0] * 90}, [6] * 90)
    outcome = replay(policies, load, start_capacity=6)
    assert outcome.desired[59] == 6 and outcome.desired[60] == 2


@pytest.mark.repo  # docs/ is not in the package's source (its check phase deselects `repo`)
def test_the_replay_example_in_docs_scaling_md_is_the_real_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aws_fixtures import run_cli

    repo = Path(__file__).resolve().parents[2]
    docs = (repo / "docs" / "scaling.md").read_text()
    # written by tools/gen_transcripts.py (scenario replay-scheduled), run here on its own
    block = docs.split("<!-- transcript: replay-scheduled -->", 1)[1]
    block = block.split("```\n", 1)[1].split("```", 1)[0]
    command, _, shown = block.removesuffix("[exit 0]\n").partition("\n")
    argv = command.removeprefix("$ nixecs ").split()
    argv = [str(repo / a) if a.startswith("examples/") else a for a in argv]
    result = run_cli(capsys, argv)
    assert result.code == 0, result.err
    assert result.out == shown
    # the two policies and both scheduled actions are in it
    assert "scheduled 'business-hours'" in shown and "scheduled 'evening'" in shown


def test_moto_keeps_the_rendered_actions_and_policies(moto: MotoServer) -> None:
    """moto's CloudFormation does not create Application Auto Scaling resources (docs/aws.md,
    "What moto lacks"); its API keeps scheduled actions and target tracking policies with a
    customized metric as the template gives them."""
    import boto3

    text = fleet_text(GOOD).replace(
        "target_tracking: {metric: cpu, target: 60}",
        "target_tracking: [{metric: cpu, target: 60}, "
        '{metric: {namespace: Acme, name: Backlog, dimensions: {Service: "${service}"}}, target: 5}]',
    )
    resources: dict[str, Any] = build_stack(load_text(text), "prod", {"web": b"#x\n"})["Resources"]
    [target] = [r["Properties"] for r in resources.values() if r["Type"].endswith("ScalableTarget")]
    policies = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
    ]
    client = boto3.client("application-autoscaling", endpoint_url=moto.url, region_name="us-east-1")
    key = {k: target[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    _, cluster, service = target["ResourceId"].split("/")  # moto wants the ECS service to exist
    ecs = boto3.client("ecs", endpoint_url=moto.url, region_name="us-east-1")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 512}]
    )
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition="web", desiredCount=1)
    client.register_scalable_target(
        **key, MinCapacity=target["MinCapacity"], MaxCapacity=target["MaxCapacity"]
    )
    for action in target["ScheduledActions"]:
        client.put_scheduled_action(**key, **action)
    for policy in policies:
        client.put_scaling_policy(
            **key,
            PolicyName=policy["PolicyName"],
            PolicyType=policy["PolicyType"],
            TargetTrackingScalingPolicyConfiguration=policy[
                "TargetTrackingScalingPolicyConfiguration"
            ],
        )
    described = client.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"]
    assert sorted(
        (a["ScheduledActionName"], a["Schedule"], a["Timezone"], a["ScalableTargetAction"])
        for a in described
    ) == sorted(
        (a["ScheduledActionName"], a["Schedule"], a["Timezone"], a["ScalableTargetAction"])
        for a in target["ScheduledActions"]
    )
    kept = client.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    custom = [
        p["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
        for p in kept
        if "CustomizedMetricSpecification" in p["TargetTrackingScalingPolicyConfiguration"]
    ]
    assert len(kept) == 2
    assert custom == [
        {
            "MetricName": "Backlog",
            "Namespace": "Acme",
            "Dimensions": [{"Name": "Service", "Value": "web"}],
            "Statistic": "Average",
        }
    ]


def test_simulate_runs_scheduled_actions_and_names_the_metrics_its_wave_lacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aws_fixtures import run_cli
    from nixecs.fleet import load_fleet
    from nixecs.scaling.sim import simulate, unsimulated

    example = Path(__file__).resolve().parents[2] / "examples" / "scheduled.yml"
    service = load_fleet(example).clusters["prod"].services["api"]
    # minute 0 is 1970-01-01 00:00 UTC, a Thursday: 08:00 in Paris (UTC+1) is minute 420
    timeline = simulate(service, lambda minute: 10.0, 600)
    assert timeline.desired[419] == 2 and timeline.desired[420] == 4
    assert (420, "scheduled:business-hours", 2) in timeline.actions
    assert unsimulated(service) == ["AWS/ECS/MemoryUtilization"]
    result = run_cli(capsys, ["--output", "json", "scaling", "simulate", str(example), "prod/api"])
    assert result.code == 0 and result.json()["missing_metrics"] == ["AWS/ECS/MemoryUtilization"]
    result = run_cli(capsys, ["scaling", "simulate", str(example), "prod/api"])
    assert "MemoryUtilization reads as missing data" in result.out
    assert "target tracking on it cannot scale" in result.out
    # A step policy on a metric the wave lacks: its alarm (missing data not breaching) stays OK.
    fleet = example.parent / "fleet.yml"
    result = run_cli(capsys, ["scaling", "simulate", str(fleet), "prod/orders"])
    assert result.code == 0, result.err
    assert (
        "note: the simulated wave drives CPU only: AWS/SQS/ApproximateNumberOfMessagesVisible "
        "reads as missing data (a step policy's alarm on it stays OK, so that policy never "
        "acts); `nixecs scaling replay --trace` replays a trace with every metric"
    ) in result.out, result.out
