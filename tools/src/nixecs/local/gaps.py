"""What the emulator's CloudFormation leaves out, done through the service APIs after a local
deploy, so `status` shows what it would show against AWS.

- An ECS service's `LoadBalancers` (moto 5.2, ecs/models.py
  Service.create_from_cloudformation_json: "TODO: LoadBalancers"): set through ECS
  UpdateService, an API parameter of ECS too, from the template's own values.
"""

from __future__ import annotations

from typing import Any

from .. import naming
from ..fleet.model import Fleet


def attach_load_balancers(session: Any, fleet: Fleet) -> list[str]:
    """Give each deployed service the LoadBalancers of its template; one line per service."""
    from ..cloudformation import build_stack

    cloudformation, ecs = session.client("cloudformation"), session.client("ecs")
    done: list[str] = []
    for name in fleet.clusters:
        template: Any = build_stack(fleet, name)
        resources = cloudformation.describe_stack_resources(StackName=naming.stack_name(name))
        physical = {  # moto lists some resources without their ids: those are skipped
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in resources["StackResources"]
            if "LogicalResourceId" in r and "PhysicalResourceId" in r
        }
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
