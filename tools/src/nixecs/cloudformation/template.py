"""One CloudFormation template per cluster (DESIGN §7), assembled from the builders.

Resources are emitted in a fixed order — the cluster, then groups and then services each
sorted by name, each subject's resources in a fixed order — so the same fleet gives the
same template, and moving a group or service within the fleet file changes nothing but
(for the first group) the default capacity provider.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..collector import paused
from ..fleet.model import Cluster, Fleet
from . import (
    cluster_tasks,
    compute,
    deploy_alarms,
    iam,
    loadbalancer,
    notifications,
    overrides,
    scaling,
    services,
)
from .context import Context, Resources
from .ids import (
    CLUSTER,
    LOAD_BALANCER,
    OUTPUT_CLUSTER_ARN,
    OUTPUT_CLUSTER_NAME,
    OUTPUT_LOAD_BALANCER_DNS,
    LogicalIds,
)
from .intrinsics import Json, get_att, ref

FORMAT_VERSION = "2010-09-09"
DESCRIPTION_MAX = 1024


def _userdata(
    fleet: Fleet, cluster: Cluster, userdata: Mapping[str, bytes] | None
) -> Mapping[str, bytes]:
    if userdata is not None:
        missing = [name for name in cluster.groups if name not in userdata]
        if missing:
            raise KeyError(
                f"no userdata for group(s) {', '.join(missing)} of cluster {cluster.name}"
            )
        return userdata
    # Imported here: a caller that already has the bytes (`nixecs render`) does not render
    # them twice.
    from ..userdata import render_userdata

    return {name: render_userdata(fleet, group) for name, group in cluster.groups.items()}


def _outputs(ctx: Context) -> dict[str, Json]:
    ids = ctx.ids
    outputs: dict[str, Json] = {
        OUTPUT_CLUSTER_NAME: {"Description": "ECS cluster name", "Value": ref(CLUSTER)},
        OUTPUT_CLUSTER_ARN: {"Description": "ECS cluster ARN", "Value": get_att(CLUSTER, "Arn")},
    }
    for name in sorted(ctx.cluster.groups):
        outputs[ids.group(name, "AutoScalingGroupName")] = {
            "Description": f"Auto Scaling group of group {name}",
            "Value": ref(ids.group(name, "AutoScalingGroup")),
        }
        outputs[ids.group(name, "CapacityProviderName")] = {
            "Description": f"Capacity provider of group {name}",
            "Value": ref(ids.group(name, "CapacityProvider")),
        }
    if loadbalancer.created(ctx.cluster) is not None:
        outputs[OUTPUT_LOAD_BALANCER_DNS] = {
            "Description": "DNS name of the cluster's load balancer",
            "Value": get_att(LOAD_BALANCER, "DNSName"),
        }
    for name in sorted(ctx.cluster.services):
        outputs[ids.service(name, "ServiceName")] = {
            "Description": f"ECS service {name}",
            "Value": get_att(ids.service(name, "Service"), "Name"),
        }
    return outputs


def build_stack(
    fleet: Fleet, cluster: Cluster | str, userdata: Mapping[str, bytes] | None = None
) -> dict[str, Json]:
    """The template of one cluster's stack, as JSON-shaped data.

    `userdata` maps each group's name to the bytes EC2 receives (`render_userdata`'s
    output); without it they are rendered here."""
    if isinstance(cluster, str):
        cluster = fleet.clusters[cluster]
    data = _userdata(fleet, cluster, userdata)
    # Building allocates tens of thousands of small dicts and lists and no reference cycle
    # (nixecs.collector).
    with paused():
        return _build(fleet, cluster, data)


def _build(fleet: Fleet, cluster: Cluster, data: Mapping[str, bytes]) -> dict[str, Json]:
    ctx = Context(fleet, cluster, LogicalIds.for_cluster(cluster))

    resources: Resources = compute.cluster(ctx)
    for name in sorted(cluster.groups):
        group = cluster.groups[name]
        resources.update(iam.instance_role(ctx, group))
        resources.update(compute.launch_template(ctx, group, data[name]))
        resources.update(compute.auto_scaling_group(ctx, group))
        resources.update(compute.drain_hook(ctx, group))
        resources.update(compute.capacity_provider(ctx, group))
    resources.update(compute.capacity_provider_associations(ctx, next(iter(cluster.groups), None)))
    resources.update(loadbalancer.load_balancer(ctx))
    for name in sorted(cluster.services):
        service = cluster.services[name]
        resources.update(services.log_group(ctx, service))
        resources.update(iam.execution_role(ctx, service))
        resources.update(iam.task_role(ctx, service))
        resources.update(services.task_definition(ctx, service))
        resources.update(loadbalancer.service_routing(ctx, service))
        resources.update(services.ecs_service(ctx, service))
        resources.update(deploy_alarms.service_alarms(ctx, service))
        resources.update(scaling.service_scaling(ctx, service))
    for name in sorted(cluster.tasks):
        resources.update(cluster_tasks.resources(ctx, cluster.tasks[name]))
    resources.update(notifications.notifications(ctx))
    # The user's escape hatch, after everything else: OverrideError when one does not fit.
    overrides.apply(resources, cluster.overrides)

    description = (
        f"nixecs: ECS cluster {cluster.name} of the fleet of {fleet.flake or '(no flake)'}"
        f" ({fleet.region}); generated by `nixecs render`, do not edit"
    )
    return {
        "AWSTemplateFormatVersion": FORMAT_VERSION,
        "Description": description[:DESCRIPTION_MAX],
        "Resources": resources,
        "Outputs": _outputs(ctx),
    }
