"""Generated deployment alarms on a routed service's target group (`deployment.alarms`
`http_5xx` / `unhealthy_hosts`; nixecs.fleet.deploy_alarms): CloudWatch alarms on the
AWS/ApplicationELB metrics HTTPCode_Target_5XX_Count (Sum over a minute) and
UnHealthyHostCount (Maximum over a minute), dimensions LoadBalancer and TargetGroup, one alarm per target group of the service ("CloudWatch
metrics for your Application Load Balancer",
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
ECS fails the deployment when one goes into ALARM; missing data (no 5xx at all) is not
breaching."""

from __future__ import annotations

from .. import naming
from ..fleet.model import Service
from ..records import dataclass
from . import loadbalancer
from .context import Context, Resources
from .intrinsics import Json, get_att, ref, tags

# (kind of logical id, policy-like name part, metric, statistic, threshold attribute);
# cloudformation/clashes.py checks the names against the step policies' alarms
ALARMS = (
    ("Http5xxAlarm", "deployment-5xx", "HTTPCode_Target_5XX_Count", "Sum", "alarm_http_5xx"),
    (
        "UnhealthyHostsAlarm",
        "deployment-unhealthy",
        "UnHealthyHostCount",
        "Maximum",
        "alarm_unhealthy_hosts",
    ),
)


@dataclass(frozen=True)
class Generated:
    """One generated alarm: on one routing entry's target group (every entry's is watched:
    a service with several `routing:` entries has a target group each, and an unhealthy
    target in any of them is a failed deployment)."""

    kind: str  # logical id kind: Http5xxAlarm, Http5xxAlarm2, … (ids.SERVICE_KINDS)
    name: str  # the alarm's name part: deployment-5xx, deployment-5xx-2, …
    metric: str
    statistic: str
    threshold: int
    route: int  # index of the routing entry (its target group: loadbalancer.route_kind)
    key: str  # http_5xx | unhealthy_hosts (the fleet key that asks for it)


def generated(service: Service) -> list[Generated]:
    """The alarms `deployment.alarms` generates for `service`, one per routing entry and key
    (the first entry's keep the names a single `routing:` always had)."""
    found = []
    for kind, name, metric, statistic, attribute in ALARMS:
        threshold = getattr(service.deployment, attribute)
        if threshold is None:
            continue
        for index in range(len(service.routes)):
            found.append(
                Generated(
                    loadbalancer.route_kind(kind, index),
                    name if index == 0 else f"{name}-{index + 1}",
                    metric,
                    statistic,
                    threshold,
                    index,
                    attribute.removeprefix("alarm_"),
                )
            )
    return found


def alarm_refs(ctx: Context, service: Service) -> list[Json]:
    """The generated alarms' names (Ref of an AWS::CloudWatch::Alarm is its name)."""
    return [ref(ctx.ids.service(service.name, alarm.kind)) for alarm in generated(service)]


def service_alarms(ctx: Context, service: Service) -> Resources:
    resources: Resources = {}
    lb = ctx.cluster.load_balancer
    for alarm in generated(service):
        kind, name, metric, statistic, threshold = (
            alarm.kind, alarm.name, alarm.metric, alarm.statistic, alarm.threshold,
        )  # fmt: skip
        target_group = ctx.ids.service(
            service.name, loadbalancer.route_kind("TargetGroup", alarm.route)
        )
        resources[ctx.ids.service(service.name, kind)] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": naming.alarm_name(ctx.cluster.name, service.name, name),
                "AlarmDescription": f"nixecs: fails a deployment of service {service.name} "
                f"in cluster {ctx.cluster.name} ({metric} >= {threshold}"
                + (f", routing entry {alarm.route + 1})" if alarm.route else ")"),
                # an NLB's UnHealthyHostCount is AWS/NetworkELB's ("CloudWatch metrics for
                # your Network Load Balancer"; http_5xx is refused there: E184)
                "Namespace": "AWS/NetworkELB"
                if lb is not None and lb.network
                else "AWS/ApplicationELB",
                "MetricName": metric,
                "Dimensions": [
                    {"Name": "LoadBalancer", "Value": loadbalancer.load_balancer_full_name(ctx)},
                    {"Name": "TargetGroup", "Value": get_att(target_group, "TargetGroupFullName")},
                ],
                "Statistic": statistic,
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": threshold,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "Tags": tags(ctx.service_tags(service)),
            },
        }
    return resources
