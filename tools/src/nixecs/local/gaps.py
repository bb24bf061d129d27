"""What the emulator's CloudFormation leaves out, done through the service APIs after a local
deploy, so `status` shows what it would show against AWS.

- An ECS service's `LoadBalancers` (moto 5.2, ecs/models.py
  Service.create_from_cloudformation_json: "TODO: LoadBalancers"): set through ECS
  UpdateService, an API parameter of ECS too, from the template's own values.
- The scaling of services: moto 5.2's CloudFormation has no AWS::ApplicationAutoScaling::*
  resource types at all (no create_from_cloudformation_json in moto/applicationautoscaling),
  and the step policies' alarms name those policies. So the template's scalable targets
  (with their scheduled actions), scaling policies and CloudWatch alarms are made through
  RegisterScalableTarget, PutScheduledAction, PutScalingPolicy and PutMetricAlarm — each an
  upsert, so a second local deploy updates them — from the template's own properties, its
  Refs and GetAtts resolved against the stack's resources. `destroy` deletes the stack, not
  these (AWS deletes them with it; the emulator keeps them until `local stop`).
- The Tags of ECS services and task definitions (moto 5.2's CloudFormation registers both
  untagged: ecs/models.py TaskDefinition/Service.create_from_cloudformation_json pass no
  tags): set through ECS TagResource from the template's own Tags, so `run` and `exec`,
  which only touch what carries this cluster's `nixecs:cluster` tag, work locally as
  against AWS.
"""

from __future__ import annotations

from typing import Any

from .. import naming
from ..fleet.model import Fleet


def _physical(session: Any, cluster: str) -> dict[str, str]:
    """The stack's logical ids → physical ids (moto lists some without ids: left out)."""
    resources = session.client("cloudformation").describe_stack_resources(
        StackName=naming.stack_name(cluster)
    )
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources["StackResources"]
        if "LogicalResourceId" in r and "PhysicalResourceId" in r
    }


class Unresolved(Exception):
    """A template value the stand-ins cannot compute (an intrinsic they do not know)."""


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    """`value` with the intrinsics the scaling resources use resolved: Ref (a resource's
    physical id, or a policy's ARN made here), Fn::Join, and Fn::GetAtt of a load balancer's
    LoadBalancerFullName (`app/NAME/ID`, the part of its ARN after `loadbalancer/`) and a
    target group's TargetGroupFullName (`targetgroup/NAME/ID`, the last part of its ARN) —
    AWS::ElasticLoadBalancingV2::LoadBalancer and ::TargetGroup, Return values."""
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        if value["Ref"] not in ids:
            raise Unresolved(f"Ref {value['Ref']}")
        return ids[value["Ref"]]
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(str(_resolve(p, ids)) for p in parts)
    if set(value) == {"Fn::GetAtt"}:
        logical, attribute = value["Fn::GetAtt"]
        arn = ids.get(logical)
        if arn is None:
            raise Unresolved(f"Fn::GetAtt {logical}.{attribute}")
        if attribute == "LoadBalancerFullName":
            return arn.split(":loadbalancer/", 1)[-1]
        if attribute == "TargetGroupFullName":
            return arn.rsplit(":", 1)[-1]
        raise Unresolved(f"Fn::GetAtt {logical}.{attribute}")
    if any(key.startswith("Fn::") for key in value):
        raise Unresolved(next(key for key in value if key.startswith("Fn::")))
    return {k: _resolve(v, ids) for k, v in value.items()}


_TARGET = ("ServiceNamespace", "ResourceId", "ScalableDimension")


def create_scaling(session: Any, fleet: Fleet) -> list[str]:
    """Make the template's scalable targets, scheduled actions, scaling policies and alarms
    through their own APIs; one line per service (and per resource that could not be made)."""
    from ..cloudformation import build_stack

    aas, cloudwatch = session.client("application-autoscaling"), session.client("cloudwatch")
    done: list[str] = []
    for name in fleet.clusters:
        resources: dict[str, Any] = build_stack(fleet, name)["Resources"]
        ids = _physical(session, name)
        by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for logical, resource in resources.items():
            by_type.setdefault(resource["Type"], []).append((logical, resource["Properties"]))
        made: dict[str, list[str]] = {}
        targets: dict[str, dict[str, Any]] = {}
        for logical, p in by_type.get("AWS::ApplicationAutoScaling::ScalableTarget", []):
            target = {k: p[k] for k in _TARGET}
            aas.register_scalable_target(
                **target, MinCapacity=p["MinCapacity"], MaxCapacity=p["MaxCapacity"]
            )
            targets[logical] = target
            line = made.setdefault(
                target["ResourceId"], [f"{p['MinCapacity']}..{p['MaxCapacity']}"]
            )
            for action in p.get("ScheduledActions", []):
                aas.put_scheduled_action(**target, **_resolve(action, ids))
                line.append(f"scheduled {action['ScheduledActionName']}")
        for logical, p in by_type.get("AWS::ApplicationAutoScaling::ScalingPolicy", []):
            target = targets[p["ScalingTargetId"]["Ref"]]
            policy = {k: v for k, v in p.items() if k != "ScalingTargetId"}
            try:
                arn = aas.put_scaling_policy(**target, **_resolve(policy, ids))["PolicyARN"]
            except Unresolved as error:
                done.append(f"{name}: policy {p['PolicyName']} not made ({error} unresolved)")
                continue
            ids[logical] = arn
            made[target["ResourceId"]].append(f"policy {p['PolicyName']}")
        policies = {
            logical for logical, _ in by_type.get("AWS::ApplicationAutoScaling::ScalingPolicy", [])
        }
        for _logical, p in by_type.get("AWS::CloudWatch::Alarm", []):
            actions = [a.get("Ref") for a in p.get("AlarmActions", []) if isinstance(a, dict)]
            if not policies & set(actions):  # not a step policy's: the stack made it
                continue
            try:
                cloudwatch.put_metric_alarm(**_resolve(p, ids))
            except Unresolved as error:
                done.append(f"{name}: alarm {p['AlarmName']} not made ({error} unresolved)")
                continue
            service = next(
                (t["Value"] for t in p.get("Tags", []) if t["Key"] == naming.TAG_SERVICE), None
            )
            if service is not None and f"service/{name}/{service}" in made:
                made[f"service/{name}/{service}"].append(f"alarm {p['AlarmName']}")
        done += [f"{resource}: {', '.join(parts)}" for resource, parts in made.items()]
    return done


def attach_load_balancers(session: Any, fleet: Fleet) -> list[str]:
    """Give each deployed service the LoadBalancers of its template; one line per service."""
    from ..cloudformation import build_stack

    ecs = session.client("ecs")
    done: list[str] = []
    for name in fleet.clusters:
        template: Any = build_stack(fleet, name)
        physical = _physical(session, name)
        for resource in template["Resources"].values():
            properties = resource["Properties"]
            if resource["Type"] != "AWS::ECS::Service" or "LoadBalancers" not in properties:
                continue
            balancers = [
                {
                    "targetGroupArn": physical[lb["TargetGroupArn"]["Ref"]],
                    "containerName": lb["ContainerName"],
                    "containerPort": lb["ContainerPort"],
                }
                for lb in properties["LoadBalancers"]
                if lb["TargetGroupArn"]["Ref"] in physical
            ]
            if not balancers:
                continue
            ecs.update_service(
                cluster=name, service=properties["ServiceName"], loadBalancers=balancers
            )
            done.append(
                f"{name}/{properties['ServiceName']}: target group "
                + ", ".join(b["targetGroupArn"].rsplit(":", 1)[-1] for b in balancers)
            )
    return done


def tag_ecs_resources(session: Any, fleet: Fleet) -> list[str]:
    """Tag each deployed ECS service and task definition as its template says; one line per
    cluster naming how many were tagged."""
    from ..cloudformation import build_stack

    ecs = session.client("ecs")
    done: list[str] = []
    for name in fleet.clusters:
        template: Any = build_stack(fleet, name)
        physical = _physical(session, name)
        count = 0
        for logical, resource in template["Resources"].items():
            kind = resource["Type"]
            if kind not in ("AWS::ECS::TaskDefinition", "AWS::ECS::Service"):
                continue
            tags = resource["Properties"].get("Tags")
            arn = physical.get(logical, "")
            if not tags or not arn.startswith("arn:"):
                continue
            ecs.tag_resource(
                resourceArn=arn, tags=[{"key": t["Key"], "value": t["Value"]} for t in tags]
            )
            count += 1
        if count:
            done.append(f"{name}: {count} services and task definitions")
    return done
