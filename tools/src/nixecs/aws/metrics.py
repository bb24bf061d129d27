"""A service's history from CloudWatch, and its deployed scaling policies, for `scaling replay`.

GetMetricData (CloudWatch API Reference, GetMetricData,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html):
"can retrieve as many as 500 different metrics in a single request, with a total of as many
as 100,800 data points" — queries go in batches of 500 and every batch is paged with
NextToken. Retention, same page: 60-second data points "are available for 15 days", 300-second
ones "for 63 days", 3600-second ones "for 455 days (15 months)" — the period is the finest one
that still covers the start of the window.

Running tasks: ECS/ContainerInsights RunningTaskCount (ClusterName, ServiceName), published
only with Container Insights on (nixecs.fleet.metrics cites the table); without it the caller
passes `--tasks`.

Deployed policies: Application Auto Scaling DescribeScalableTargets (min, max),
DescribeScalingPolicies (step configuration and its alarms, or the target tracking
configuration), CloudWatch DescribeAlarms (the step alarms' metric, period, evaluation periods,
DatapointsToAlarm — PutMetricAlarm: "This is used only if you are setting an 'M out of N'
alarm. In that case, this value is the M", so without it the alarm is N of N — threshold,
comparison and TreatMissingData, whose default is `missing`: "If TreatMissingData is omitted,
the default behavior of missing is used").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..fleet.model import ScheduledAction
from ..scaling.sim import MINUTE, AlarmRule, Load, PolicySet, StepRule, TrackingRule
from .session import Session

BATCH = 500  # GetMetricData: metrics per request
DAY = 86400
RETENTION = ((15 * DAY, 60), (63 * DAY, 300), (455 * DAY, 3600))
RUNNING_TASKS = "ECS/ContainerInsights/RunningTaskCount"

COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanOrEqualToThreshold": "<=",
    "LessThanThreshold": "<",
}
PREDEFINED = {
    "ECSServiceAverageCPUUtilization": "AWS/ECS/CPUUtilization",
    "ECSServiceAverageMemoryUtilization": "AWS/ECS/MemoryUtilization",
}


def choose_period(start: float, now: float) -> int:
    """The finest period CloudWatch still keeps for data as old as `start`."""
    age = now - start
    for keep, period in RETENTION:
        if age <= keep:
            return period
    raise ValueError("CloudWatch keeps no data older than 455 days")


@dataclass(frozen=True)
class Query:
    key: str  # Namespace/MetricName, the Load's column
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str = "Average"


def queries_for(sets: list[PolicySet], cluster: str, service: str) -> list[Query]:
    """One query per metric the policy sets use: a step alarm's own metric, statistic and
    dimensions; target tracking's service metric (ClusterName, ServiceName)."""
    found: dict[str, Query] = {}
    for policies in sets:
        for rule in policies.steps:
            namespace, _, name = rule.alarm.metric.rpartition("/")
            found.setdefault(
                rule.alarm.metric,
                Query(
                    rule.alarm.metric, namespace, name, rule.alarm.dimensions, rule.alarm.statistic
                ),
            )
        for tracking in policies.tracking:
            namespace, _, name = tracking.metric.rpartition("/")
            found.setdefault(
                tracking.metric,
                Query(
                    tracking.metric,
                    namespace,
                    name,
                    (("ClusterName", cluster), ("ServiceName", service))
                    if tracking.dimensions is None
                    else tracking.dimensions,
                    tracking.statistic,
                ),
            )
    return list(found.values())


def fetch(
    session: Session, queries: list[Query], start: float, end: float, period: int
) -> dict[str, list[float | None]]:
    """Per-minute series of each query over [start, end): GetMetricData in batches of 500,
    paged; a period of P seconds fills P/60 minutes with its value."""
    from datetime import UTC, datetime

    client = session.client("cloudwatch")
    minutes = int((end - start) // MINUTE)
    found: dict[str, list[float | None]] = {q.key: [None] * minutes for q in queries}
    for first in range(0, len(queries), BATCH):
        batch = queries[first : first + BATCH]
        request: dict[str, Any] = {
            "MetricDataQueries": [
                {
                    "Id": f"m{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": q.namespace,
                            "MetricName": q.metric,
                            "Dimensions": [{"Name": n, "Value": v} for n, v in q.dimensions],
                        },
                        "Period": period,
                        "Stat": q.statistic,
                    },
                    "ReturnData": True,
                }
                for index, q in enumerate(batch)
            ],
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
            "ScanBy": "TimestampAscending",
        }
        while True:
            page = client.get_metric_data(**request)
            for result in page.get("MetricDataResults", []):
                query = batch[int(result["Id"][1:])]
                series = found[query.key]
                for stamp, value in zip(
                    result.get("Timestamps", []), result.get("Values", []), strict=False
                ):
                    offset = int((stamp.timestamp() - start) // MINUTE)
                    for minute in range(max(offset, 0), min(offset + period // MINUTE, minutes)):
                        series[minute] = float(value)
            token = page.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        request.pop("NextToken", None)
    return found


def history(
    session: Session,
    queries: list[Query],
    cluster: str,
    service: str,
    start: float,
    end: float,
    now: float,
    tasks: int | Load | None = None,
) -> tuple[Load, bool]:
    """The Load over [start, end) and whether running tasks came from Container Insights.
    With `tasks` (a constant count, or a series read from a CSV), it replaces a missing
    RunningTaskCount."""
    period = choose_period(start, now)
    start = math.floor(start / period) * period
    running = Query(
        RUNNING_TASKS,
        "ECS/ContainerInsights",
        "RunningTaskCount",
        (("ClusterName", cluster), ("ServiceName", service)),
    )
    series = fetch(session, [*queries, running], start, end, period)
    counts = series.pop(RUNNING_TASKS)
    insights = any(v is not None for v in counts)
    if not insights and tasks is None:
        raise LookupError(
            f"no ECS/ContainerInsights RunningTaskCount for {cluster}/{service} in the window: "
            "Container Insights is off, or recorded nothing there (it records from when it is "
            "turned on; an emulator records nothing): pass --tasks N (the count that ran over "
            "the window) or --tasks FILE.csv (timestamp,running_tasks), or replay a recorded "
            "trace with --trace FILE.csv"
        )
    task_series: list[int | None]
    if insights:
        task_series = [None if v is None else round(v) for v in counts]
    elif isinstance(tasks, Load):
        offset = round((start - tasks.start) / MINUTE)
        task_series = [
            tasks.tasks[m + offset] if 0 <= m + offset < tasks.minutes else None
            for m in range(len(counts))
        ]
    else:
        task_series = [tasks] * len(counts)
    return Load(series, task_series, start=start), insights


def deployed(session: Session, cluster: str, service: str) -> PolicySet | None:
    """The policies Application Auto Scaling holds for the service; None when not scaled."""
    aas = session.client("application-autoscaling")
    resource = f"service/{cluster}/{service}"
    targets = aas.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource], ScalableDimension="ecs:service:DesiredCount"
    ).get("ScalableTargets", [])
    if not targets:
        return None
    low, high = int(targets[0]["MinCapacity"]), int(targets[0]["MaxCapacity"])
    policies: list[dict[str, Any]] = []
    for page in aas.get_paginator("describe_scaling_policies").paginate(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension="ecs:service:DesiredCount"
    ):
        policies.extend(page.get("ScalingPolicies", []))
    names = [
        a["AlarmName"]
        for p in policies
        if p.get("PolicyType") == "StepScaling"
        for a in p.get("Alarms", [])
    ]
    alarms = _alarms(session, names)
    for policy in policies:
        if policy.get("PolicyType") == "StepScaling" and not policy.get("Alarms"):
            policy["Alarms"] = _alarms_acting_on(session, policy["PolicyARN"], alarms)
    steps: list[StepRule] = []
    tracking: list[TrackingRule] = []
    for policy in policies:
        if policy.get("PolicyType") == "StepScaling":
            config = policy.get("StepScalingPolicyConfiguration", {})
            for alarm in (alarms.get(a["AlarmName"]) for a in policy.get("Alarms", [])):
                if alarm is None:
                    continue
                steps.append(
                    StepRule(
                        name=policy["PolicyName"],
                        alarm=alarm,
                        adjustment_type=config.get("AdjustmentType", "ChangeInCapacity"),
                        cooldown=int(config.get("Cooldown", 300)),
                        aggregation=config.get("MetricAggregationType", "Average"),
                        min_adjustment_magnitude=config.get("MinAdjustmentMagnitude"),
                        steps=tuple(
                            (
                                s.get("MetricIntervalLowerBound"),
                                s.get("MetricIntervalUpperBound"),
                                int(s["ScalingAdjustment"]),
                            )
                            for s in config.get("StepAdjustments", [])
                        ),
                    )
                )
        elif policy.get("PolicyType") == "TargetTrackingScaling":
            config = policy.get("TargetTrackingScalingPolicyConfiguration", {})
            predefined = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
            custom = config.get("CustomizedMetricSpecification", {})
            metric = PREDEFINED.get(predefined or "") or (
                f"{custom.get('Namespace')}/{custom.get('MetricName')}" if custom else None
            )
            if metric is None:
                continue
            tracking.append(
                TrackingRule(
                    metric=metric,
                    target=float(config["TargetValue"]),
                    scale_in_cooldown=int(config.get("ScaleInCooldown", 300)),
                    scale_out_cooldown=int(config.get("ScaleOutCooldown", 300)),
                    disable_scale_in=bool(config.get("DisableScaleIn", False)),
                    dimensions=tuple((d["Name"], d["Value"]) for d in custom.get("Dimensions", []))
                    if custom and not predefined
                    else None,
                    statistic=custom.get("Statistic", "Average") if custom else "Average",
                )
            )
    return PolicySet(
        "deployed", low, high, tuple(steps), tuple(tracking), _scheduled(aas, resource)
    )


def _scheduled(aas: Any, resource: str) -> tuple[ScheduledAction, ...]:
    """The target's scheduled actions (DescribeScheduledActions), for the engine to run."""
    found: list[ScheduledAction] = []
    for page in aas.get_paginator("describe_scheduled_actions").paginate(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension="ecs:service:DesiredCount"
    ):
        for action in page.get("ScheduledActions", []):
            bounds = action.get("ScalableTargetAction") or {}
            found.append(
                ScheduledAction(
                    name=action["ScheduledActionName"],
                    schedule=action["Schedule"],
                    timezone=action.get("Timezone") or "UTC",
                    min=bounds.get("MinCapacity"),
                    max=bounds.get("MaxCapacity"),
                    path=(),
                )
            )
    return tuple(found)


def _alarms_acting_on(
    session: Session, arn: str, found: dict[str, AlarmRule]
) -> list[dict[str, str]]:
    """The alarms whose actions invoke the policy `arn` (DescribeAlarms ActionPrefix), for an
    answer whose policy lists no Alarms (moto's does not; AWS's does)."""
    client = session.client("cloudwatch")
    names: list[str] = []
    for page in client.get_paginator("describe_alarms").paginate(ActionPrefix=arn):
        for alarm in page.get("MetricAlarms", []):
            if arn in alarm.get("AlarmActions", []):
                names.append(alarm["AlarmName"])
    found.update(_alarms(session, [n for n in names if n not in found]))
    return [{"AlarmName": n} for n in names]


def _alarms(session: Session, names: list[str]) -> dict[str, AlarmRule]:
    client = session.client("cloudwatch")
    found: dict[str, AlarmRule] = {}
    for first in range(0, len(names), 100):  # DescribeAlarms: at most 100 names a call
        page = client.describe_alarms(AlarmNames=names[first : first + 100])
        for alarm in page.get("MetricAlarms", []):
            periods = int(alarm["EvaluationPeriods"])
            found[alarm["AlarmName"]] = AlarmRule(
                metric=f"{alarm['Namespace']}/{alarm['MetricName']}",
                statistic=alarm.get("Statistic", "Average"),
                period=int(alarm["Period"]),
                evaluation_periods=periods,
                datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or periods),
                threshold=float(alarm["Threshold"]),
                comparison=COMPARISONS[alarm["ComparisonOperator"]],
                missing=alarm.get("TreatMissingData", "missing"),
                dimensions=tuple((d["Name"], d["Value"]) for d in alarm.get("Dimensions", [])),
            )
    return found
