"""Service auto scaling: the scalable target, a target-tracking policy or step policies, and
each step policy's CloudWatch alarm.

The scalable target has no RoleARN: RegisterScalableTarget then uses (and creates on first
use) the service-linked role AWSServiceRoleForApplicationAutoScaling_ECSService, whose
permissions AWS maintains. Spelling out that role's ARN would add an account-specific path
for nothing; a custom role, as in the article this project started from, is the legacy form
and one more role to keep right. (The deployer needs iam:CreateServiceLinkedRole once.) The validity of steps (overlaps, gaps, bounds) is checked before rendering, by
`nixecs.scaling`; this module only writes them down.
"""

from __future__ import annotations

from .. import naming
from ..fleet import metrics
from ..fleet.model import (
    COMPARISONS,
    TARGET_METRICS,
    Scaling,
    Service,
    Step,
    StepPolicy,
    TargetTracking,
)
from . import loadbalancer
from .context import Context, Resources
from .intrinsics import Json, ref, tags


def alarm_dimensions(ctx: Context, service: Service, policy: StepPolicy) -> list[dict[str, Json]]:
    """The alarm's dimensions: as written, or the defaults of the ECS namespaces (the
    service's own series where the metric has one, else the cluster's — nixecs.fleet.metrics
    cites the sets). Validation (E121) guarantees one or the other exists."""
    alarm = policy.alarm
    pairs = alarm.dimensions or metrics.default_dimensions(alarm.namespace, alarm.metric)
    if not pairs:
        raise ValueError(f"alarm of policy {policy.name!r} has no dimensions (E121 not checked)")
    service_name = naming.service_name(service.name)
    return [
        {"Name": name, "Value": metrics.resolve(value, ctx.ecs_cluster_name, service_name)}
        for name, value in pairs
    ]


def number(value: float) -> int | float:
    """80.0 → 80: the template says what the fleet file said."""
    return int(value) if float(value).is_integer() else value


def _step(step: Step) -> dict[str, Json]:
    adjustment: dict[str, Json] = {}
    # An open bound is infinite, which AWS expresses by omitting it.
    if step.lower is not None:
        adjustment["MetricIntervalLowerBound"] = number(step.lower)
    if step.upper is not None:
        adjustment["MetricIntervalUpperBound"] = number(step.upper)
    adjustment["ScalingAdjustment"] = step.change
    return adjustment


def scalable_target(ctx: Context, service: Service, scaling: Scaling) -> Resources:
    return {
        ctx.ids.service(service.name, "ScalableTarget"): {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            # The ResourceId names the service, so the service must exist first.
            "DependsOn": [ctx.ids.service(service.name, "Service")],
            "Properties": {
                "ServiceNamespace": "ecs",
                "ScalableDimension": "ecs:service:DesiredCount",
                "ResourceId": f"service/{ctx.ecs_cluster_name}/{naming.service_name(service.name)}",
                "MinCapacity": scaling.min,
                "MaxCapacity": scaling.max,
            }
            | _scheduled(scaling),
        }
    }


def _scheduled(scaling: Scaling) -> dict[str, Json]:
    """`scaling.scheduled:` as the target's ScheduledActions (nixecs.fleet.scheduled)."""
    if not scaling.scheduled:
        return {}
    actions: list[Json] = []
    for action in scaling.scheduled:
        bounds: dict[str, Json] = {}
        if action.min is not None:
            bounds["MinCapacity"] = action.min
        if action.max is not None:
            bounds["MaxCapacity"] = action.max
        actions.append(
            {
                "ScheduledActionName": action.name,
                "Schedule": action.schedule,
                "Timezone": action.timezone,
                "ScalableTargetAction": bounds,
            }
        )
    return {"ScheduledActions": actions}


def target_tracking(ctx: Context, service: Service, scaling: Scaling) -> Resources:
    """One ScalingPolicy per `target_tracking:` entry. The first keeps the logical id and name
    it always had (a stack update does not replace it); the n-th is `target-tracking-n`."""
    resources: Resources = {}
    for index, tracking in enumerate(scaling.target_tracking, 1):
        suffix = "" if index == 1 else f"-{index}"
        logical = (
            ctx.ids.service(service.name, "TargetTrackingPolicy")
            if index == 1
            else ctx.ids.policy(service.name, f"target-tracking{suffix}", "TargetTrackingPolicy")
        )
        resources[logical] = _tracking_policy(ctx, service, tracking, suffix)
    return resources


def _metric_specification(ctx: Context, service: Service, tracking: TargetTracking) -> Json:
    custom = tracking.custom
    if custom is not None:
        specification: dict[str, Json] = {
            "Namespace": custom.namespace,
            "MetricName": custom.name,
            "Statistic": custom.statistic,
        }
        if custom.dimensions:
            service_name = naming.service_name(service.name)
            specification["Dimensions"] = [
                {"Name": n, "Value": metrics.resolve(v, ctx.ecs_cluster_name, service_name)}
                for n, v in custom.dimensions
            ]
        return {"CustomizedMetricSpecification": specification}
    return {
        "PredefinedMetricSpecification": {"PredefinedMetricType": TARGET_METRICS[tracking.metric]}
        | (
            # per target group: app/LB/ID/targetgroup/TG/ID (loadbalancer.py)
            {"ResourceLabel": loadbalancer.resource_label(ctx, service)}
            if tracking.metric == "requests"
            else {}
        )
    }


def _tracking_policy(
    ctx: Context, service: Service, tracking: TargetTracking, suffix: str
) -> dict[str, Json]:
    specification = _metric_specification(ctx, service, tracking)
    assert isinstance(specification, dict)
    return {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyName": naming.scaling_policy_name(
                ctx.cluster.name, service.name, naming.TARGET_TRACKING_POLICY + suffix
            ),
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": ref(ctx.ids.service(service.name, "ScalableTarget")),
            "TargetTrackingScalingPolicyConfiguration": specification
            | {
                "TargetValue": number(tracking.target),
                "ScaleInCooldown": tracking.scale_in_cooldown,
                "ScaleOutCooldown": tracking.scale_out_cooldown,
                "DisableScaleIn": tracking.disable_scale_in,
            },
        },
    }


def step_policy(ctx: Context, service: Service, policy: StepPolicy) -> Resources:
    ids = ctx.ids
    policy_id = ids.policy(service.name, policy.name, "StepPolicy")
    configuration: dict[str, Json] = {
        "AdjustmentType": policy.adjustment_type,
        "Cooldown": policy.cooldown,
        "MetricAggregationType": policy.aggregation,
    }
    if policy.min_adjustment_magnitude is not None:
        configuration["MinAdjustmentMagnitude"] = policy.min_adjustment_magnitude
    configuration["StepAdjustments"] = [_step(step) for step in policy.steps]
    alarm = policy.alarm
    alarm_properties: dict[str, Json] = {
        "AlarmName": naming.alarm_name(ctx.cluster.name, service.name, policy.name),
        "AlarmDescription": f"nixecs: step policy {policy.name} of service {service.name} in cluster {ctx.cluster.name}",
        "Namespace": alarm.namespace,
        "MetricName": alarm.metric,
        "Dimensions": alarm_dimensions(ctx, service, policy),
    }
    alarm_properties.update(
        {
            "Statistic": alarm.statistic,
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "Threshold": number(alarm.threshold),
            "ComparisonOperator": COMPARISONS[alarm.comparison],
            # No data (a service with no tasks yet) is no reason to scale.
            "TreatMissingData": "notBreaching",
            "AlarmActions": [ref(policy_id)],
            "Tags": tags(ctx.service_tags(service)),
        }
    )
    return {
        policy_id: {
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Properties": {
                "PolicyName": naming.scaling_policy_name(
                    ctx.cluster.name, service.name, policy.name
                ),
                "PolicyType": "StepScaling",
                "ScalingTargetId": ref(ids.service(service.name, "ScalableTarget")),
                "StepScalingPolicyConfiguration": configuration,
            },
        },
        ids.policy(service.name, policy.name, "Alarm"): {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": alarm_properties,
        },
    }


def service_scaling(ctx: Context, service: Service) -> Resources:
    scaling = service.scaling
    if scaling is None:
        return {}
    resources = scalable_target(ctx, service, scaling)
    resources.update(target_tracking(ctx, service, scaling))
    for policy in scaling.step:
        resources.update(step_policy(ctx, service, policy))
    return resources
