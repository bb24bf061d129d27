"""`scaling replay` and `scaling export` against CloudWatch and Application Auto Scaling on
the moto server: a history put with PutMetricData is read back (GetMetricData, batched and
paged) and replayed; the deployed policies are read and replayed beside the proposed ones."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import counting, run_cli
from nixecs.aws import metrics
from nixecs.aws.session import Session
from nixecs.scaling.sim import Load, replay
from nixecs.scaling.trace import read_trace

pytestmark = pytest.mark.moto

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REQUESTS = "target_tracking: {metric: requests, target: 500,"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> str:
    """examples/fleet.yml with bananas tracking CPU at 75 % instead of requests per target:
    these tests replay the AWS/ECS CPUUtilization history they put into CloudWatch."""
    text = (EXAMPLES / "fleet.yml").read_text()
    assert REQUESTS in text
    path = tmp_path_factory.mktemp("fleet") / "fleet.yml"
    path.write_text(text.replace(REQUESTS, "target_tracking: {metric: cpu, target: 75,"))
    return str(path)


SERVICE = [{"Name": "ClusterName", "Value": "prod"}, {"Name": "ServiceName", "Value": "bananas"}]


def put_history(session: Session, start: float, minutes: int) -> None:
    """A load that needs 6 tasks at 75 %: 4 tasks ran at 112 % for the whole window."""
    client = session.client("cloudwatch")
    data: list[dict[str, Any]] = []
    for minute in range(minutes):
        stamp = datetime.fromtimestamp(start + 60 * minute, UTC)
        data.append(
            {
                "MetricName": "CPUUtilization",
                "Dimensions": SERVICE,
                "Timestamp": stamp,
                "Value": 112.0,
                "Unit": "Percent",
            }
        )
    for first in range(0, len(data), 20):
        client.put_metric_data(Namespace="AWS/ECS", MetricData=data[first : first + 20])
    tasks = [
        {
            "MetricName": "RunningTaskCount",
            "Dimensions": SERVICE,
            "Timestamp": datetime.fromtimestamp(start + 60 * minute, UTC),
            "Value": 4.0,
        }
        for minute in range(minutes)
    ]
    for first in range(0, len(tasks), 20):
        client.put_metric_data(
            Namespace="ECS/ContainerInsights", MetricData=tasks[first : first + 20]
        )


def window(hours: int = 3) -> tuple[float, float]:
    end = (time.time() // 60) * 60 - 120
    return end - hours * 3600, end


def test_history_put_into_cloudwatch_is_read_back_and_replayed(
    fleet: str, moto: Any, capsys: Any
) -> None:
    session = Session(region="us-east-1", endpoint_url=moto.url)
    start, end = window()
    put_history(session, start, int((end - start) // 60))
    result = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "--output",
            "json",
            "scaling",
            "replay",
            fleet,
            "prod/bananas",
            "--from",
            datetime.fromtimestamp(start, UTC).isoformat(),
            "--to",
            datetime.fromtimestamp(end, UTC).isoformat(),
        ],
    )
    assert result.code == 0, result.err
    data = result.json()
    assert [s["policies"] for s in data["sets"]] == ["proposed"]  # nothing deployed
    proposed = data["sets"][0]
    # 4 × 112 = 448 of work: target tracking at 75 settles on ceil(448 / 75) = 6 tasks.
    assert proposed["scale_outs"] >= 1 and proposed["end"] == 6
    assert data["minutes"] >= 170


def test_deployed_policies_replay_beside_the_proposed_ones(
    fleet: str, moto: Any, capsys: Any
) -> None:
    session = Session(region="us-east-1", endpoint_url=moto.url)
    start, end = window()
    put_history(session, start, int((end - start) // 60))
    ecs = session.client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="bananas", containerDefinitions=[{"name": "app", "image": "nginx", "memory": 512}]
    )
    ecs.create_service(
        cluster="prod", serviceName="bananas", taskDefinition="bananas", desiredCount=4
    )
    aas = session.client("application-autoscaling")
    resource = "service/prod/bananas"
    aas.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1,
        MaxCapacity=5,
    )
    aas.put_scaling_policy(
        PolicyName="old-cpu",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 90.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
            },
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 300,
        },
    )
    result = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "--output",
            "json",
            "scaling",
            "replay",
            fleet,
            "prod/bananas",
            "--since",
            "3h",
        ],
    )
    assert result.code == 0, result.err
    proposed, deployed = result.json()["sets"]
    assert deployed["policies"] == "deployed"
    assert deployed["end"] == 5 and deployed["minutes_at_max"] > 0  # max 5 < the 6 needed
    assert proposed["end"] == 6 and proposed["minutes_at_max"] == 0


def test_export_writes_a_trace_that_replays(
    fleet: str, moto: Any, capsys: Any, tmp_path: Path
) -> None:
    session = Session(region="us-east-1", endpoint_url=moto.url)
    start, end = window(2)
    put_history(session, start, int((end - start) // 60))
    out = tmp_path / "bananas.csv"
    result = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "scaling",
            "export",
            fleet,
            "prod/bananas",
            "-o",
            str(out),
            "--since",
            "2h",
        ],
    )
    assert result.code == 0, result.err
    load = read_trace(out)
    present = [v for v in load.metrics["AWS/ECS/CPUUtilization"] if v is not None]
    assert present and set(present) == {112.0}
    assert {t for t in load.tasks if t is not None} == {4}
    result = run_cli(capsys, ["scaling", "replay", fleet, "prod/bananas", "--trace", str(out)])
    assert result.code == 0, result.err


def test_no_running_task_count_asks_for_tasks(fleet: str, moto: Any, capsys: Any) -> None:
    result = run_cli(
        capsys,
        ["--endpoint-url", moto.url, "scaling", "replay", fleet, "prod/bananas", "--since", "2h"],
    )
    assert result.code == 2 and "--tasks" in result.err
    # Container Insights may be on and have recorded nothing yet (or an emulator, nothing)
    said = " ".join(result.err.split())
    assert "Container Insights is off, or recorded nothing there" in said, said
    assert "replay a recorded trace with --trace FILE.csv" in said


def test_queries_go_in_batches_of_500(moto: Any) -> None:
    session = Session(region="us-east-1", endpoint_url=moto.url)
    start, end = window(1)
    queries = [
        metrics.Query(f"Custom/M{i}", "Custom", f"M{i}", (("Name", "x"),)) for i in range(501)
    ]
    with counting(session, ("cloudwatch",)) as counter:
        found = metrics.fetch(session, queries, start, end, 60)
    assert counter.of("GetMetricData") == 2
    assert len(found) == 501 and all(len(s) == 60 for s in found.values())


def test_the_period_follows_cloudwatch_retention() -> None:
    now = 1_800_000_000.0
    day = 86400
    assert metrics.choose_period(now - 14 * day, now) == 60
    assert metrics.choose_period(now - 30 * day, now) == 300
    assert metrics.choose_period(now - 100 * day, now) == 3600
    with pytest.raises(ValueError):
        metrics.choose_period(now - 500 * day, now)


def _service_on_moto(moto: Any) -> Session:
    """A session on moto with ECS service prod/bananas (Application Auto Scaling wants it)."""
    session = Session(region="us-east-1", endpoint_url=moto.url)
    ecs = session.client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="bananas", containerDefinitions=[{"name": "app", "image": "nginx", "memory": 512}]
    )
    ecs.create_service(
        cluster="prod", serviceName="bananas", taskDefinition="bananas", desiredCount=1
    )
    return session


def test_deployed_step_policies_are_read_with_their_alarms(moto: Any) -> None:
    session = _service_on_moto(moto)
    aas = session.client("application-autoscaling")
    resource = "service/prod/bananas"
    aas.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1,
        MaxCapacity=5,
    )
    arn = aas.put_scaling_policy(
        PolicyName="cpu-high",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity",
            "Cooldown": 120,
            "MetricAggregationType": "Maximum",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}],
        },
    )["PolicyARN"]
    session.client("cloudwatch").put_metric_alarm(
        AlarmName="cpu-high-alarm",
        Namespace="AWS/ECS",
        MetricName="CPUUtilization",
        Dimensions=SERVICE,
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=70,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="breaching",
        AlarmActions=[arn],
    )
    policies = metrics.deployed(session, "prod", "bananas")
    assert policies is not None and (policies.min, policies.max) == (1, 5)
    (rule,) = policies.steps
    assert (rule.name, rule.cooldown, rule.aggregation, rule.steps) == (
        "cpu-high",
        120,
        "Maximum",
        ((0, None, 2),),
    )
    alarm = rule.alarm
    assert (alarm.metric, alarm.period, alarm.evaluation_periods, alarm.datapoints_to_alarm) == (
        "AWS/ECS/CPUUtilization",
        60,
        3,
        2,
    )
    assert (alarm.threshold, alarm.comparison, alarm.missing) == (70.0, ">=", "breaching")
    assert dict(alarm.dimensions) == {"ClusterName": "prod", "ServiceName": "bananas"}
    assert metrics.deployed(session, "prod", "apples") is None


def test_without_container_insights_tasks_come_from_the_option(
    fleet: str, moto: Any, capsys: Any, tmp_path: Path
) -> None:
    session = Session(region="us-east-1", endpoint_url=moto.url)
    start, end = window(2)
    client = session.client("cloudwatch")
    data = [
        {
            "MetricName": "CPUUtilization",
            "Dimensions": SERVICE,
            "Timestamp": datetime.fromtimestamp(start + 60 * m, UTC),
            "Value": 90.0,
        }
        for m in range(int((end - start) // 60))
    ]
    for first in range(0, len(data), 20):
        client.put_metric_data(Namespace="AWS/ECS", MetricData=data[first : first + 20])
    base = ["--endpoint-url", moto.url, "--output", "json", "scaling", "replay", fleet]
    window_args = [
        "prod/bananas",
        "--from",
        datetime.fromtimestamp(start, UTC).isoformat(),
        "--to",
        datetime.fromtimestamp(end, UTC).isoformat(),
        "--no-deployed",
    ]
    result = run_cli(capsys, [*base, *window_args, "--tasks", "5"])
    assert result.code == 0, result.err
    assert result.json()["sets"][0]["end"] == 6  # ceil(5 × 90 / 75)
    series = tmp_path / "tasks.csv"
    stamp = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    series.write_text(f"timestamp,running_tasks\n{stamp},10\n")
    result = run_cli(capsys, [*base, *window_args, "--tasks", str(series)])
    assert result.code == 0, result.err
    assert result.json()["sets"][0]["start"] == 10  # the series' first count
    series.write_text("timestamp,running_tasks\nnoon,10\n")
    result = run_cli(capsys, [*base, *window_args, "--tasks", str(series)])
    assert result.code == 2 and f"{series}:2:1: error[E301]" in result.err


def test_deployed_scheduled_actions_are_read_and_run(moto: Any) -> None:
    """DescribeScheduledActions: the deployed set runs the target's scheduled actions too."""
    session = _service_on_moto(moto)
    aas = session.client("application-autoscaling")
    key = {
        "ServiceNamespace": "ecs",
        "ResourceId": "service/prod/bananas",
        "ScalableDimension": "ecs:service:DesiredCount",
    }
    aas.register_scalable_target(**key, MinCapacity=1, MaxCapacity=5)
    aas.put_scheduled_action(
        **key,
        ScheduledActionName="morning",
        Schedule="cron(0 8 * * ? *)",
        Timezone="Europe/Paris",
        ScalableTargetAction={"MinCapacity": 3},
    )
    policies = metrics.deployed(session, "prod", "bananas")
    assert policies is not None
    [action] = policies.scheduled
    assert (action.name, action.schedule, action.timezone, action.min, action.max) == (
        "morning", "cron(0 8 * * ? *)", "Europe/Paris", 3, None,
    )  # fmt: skip
    start = datetime(2026, 12, 7, 6, 0, tzinfo=UTC).timestamp()  # 07:00 in Paris
    load = Load({"AWS/ECS/CPUUtilization": [10.0] * 120}, [1] * 120, start=start)
    outcome = replay(policies, load, start_capacity=1)
    assert outcome.desired[59] == 1 and outcome.desired[60] == 3
