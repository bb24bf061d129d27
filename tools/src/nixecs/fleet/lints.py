"""Fleet lints: settings that are valid but weaken the hosts (warnings, never errors).

W102: a cpu or memory target tracking target below 1 (a fraction where AWS reads a percentage).
W101: a group's `metadata.hop_limit` above 1 lets IMDSv2 responses travel one hop further,
into containers on Docker bridge networks, and with them the instance role's credentials.
EC2 decrements the response's TTL per hop and 1 keeps it on the instance; AWS raises it to 2
on AL2023 precisely "to allow containerized workloads"
(https://docs.aws.amazon.com/linux/al2023/ug/imdsv2.html,
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html).
ECS tasks get their own role from the agent (169.254.170.2) instead; the host module also drops
containers' IMDS traffic (`nixecs.ecs.allowContainerInstanceMetadata`, modules/ecs-host.nix).
"""

from __future__ import annotations

from ..diagnostics import Diagnostic
from .firelens import lint_firelens
from .image_lints import lint_images
from .model import Distribution, Fleet
from .task_role import lint_task_role
from .volumes import lint_shared_volumes, lint_volumes


def _fractional_targets(fleet: Fleet) -> list[Diagnostic]:
    """W102: a cpu or memory target tracking target below 1: a fraction (0.6) where AWS reads
    a percentage (TargetValue of ECSServiceAverageCPUUtilization is percent: 0.6 is 0.6 %, a
    service that scales out at once and never in)."""
    found = []
    for cluster in fleet.clusters.values():
        for service in cluster.services.values():
            tracking = service.scaling.target_tracking if service.scaling else None
            policies = tracking if isinstance(tracking, (list, tuple)) else [tracking]
            for policy in policies:
                if policy is None:
                    continue
                metric = getattr(policy, "metric", None)
                target = getattr(policy, "target", None)
                if (
                    metric in ("cpu", "memory")
                    and isinstance(target, (int, float))
                    and 0 < target < 1
                ):
                    found.append(
                        Diagnostic(
                            "W102",
                            f"target {target:g} is {target:g} %: target tracking's target is a "
                            f"percentage of the service's {metric}; for {target:.0%} write "
                            f"`target: {round(target * 100)}`",
                            fleet.document.locate((*policy.path, "target")),
                        )
                    )
    return found


def _idle_on_demand_allocation(fleet: Fleet) -> list[Diagnostic]:
    """W193: `on_demand_allocation` where no instance is picked by it: it orders the
    on-demand instance types of a mixed instances policy (InstancesDistribution
    OnDemandAllocationStrategy, "The allocation strategy to apply to your On-Demand Instances
    when they are launched",
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html),
    and a group of one on-demand instance type has no such policy, while a spot group without
    on_demand_base or on_demand_percent launches no on-demand instance (the template leaves
    it out: cloudformation/compute.py). Only a value other than the default is told: the
    default written out says nothing wrong."""
    found = []
    default = Distribution().on_demand_allocation
    for cluster in fleet.clusters.values():
        for group in cluster.groups.values():
            split = group.distribution
            if split.on_demand_allocation == default:
                continue
            if group.spot and not (split.on_demand_base or split.on_demand_percent):
                why = "this spot group launches no on-demand instance (on_demand_base and on_demand_percent are 0)"
            elif not group.spot and len(group.instance_types) == 1:
                why = "this group has one instance type: there is nothing to choose between"
            else:
                continue
            found.append(
                Diagnostic(
                    "W193",
                    f"on_demand_allocation {split.on_demand_allocation!r} has no effect: {why}",
                    fleet.document.locate((*group.path, "on_demand_allocation")),
                )
            )
    return found


def lint_fleet(fleet: Fleet) -> list[Diagnostic]:
    return (
        _task_roles(fleet)
        + _idle_on_demand_allocation(fleet)
        + lint_volumes(fleet)
        + lint_shared_volumes(fleet)
        + lint_images(fleet)
        + lint_firelens(fleet)
        + _fractional_targets(fleet)
        + [
            Diagnostic(
                "W101",
                f"hop_limit {group.hop_limit} lets IMDSv2 responses reach containers (and the "
                "instance role's credentials with them); use 1 unless a container must read "
                "instance metadata (ECS tasks get their own role from 169.254.170.2), and then "
                "also set nixecs.ecs.allowContainerInstanceMetadata on the host",
                fleet.document.locate((*group.path, "metadata", "hop_limit")),
            )
            for cluster in fleet.clusters.values()
            for group in cluster.groups.values()
            if group.hop_limit > 1
        ]
    )


def _task_roles(fleet: Fleet) -> list[Diagnostic]:
    """W140: a task role's `resources: '*'` on an action that can be scoped (fleet/task_role.py)."""
    return [
        found
        for cluster in fleet.clusters.values()
        for service in cluster.task_definitions
        if service.task_role is not None
        for found in lint_task_role(service.task_role, fleet.document)
    ]
