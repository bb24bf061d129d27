"""A daemon service's AWS::ECS::Service (fleet/daemon.py): SchedulingStrategy DAEMON with
launch type EC2 and no capacity provider strategy, desired count or placement strategy, and a
memberOf constraint on its group's attribute."""

from __future__ import annotations

from .. import settings
from ..fleet.model import Service
from .intrinsics import Json


def group_expression(group: str) -> str:
    """The cluster query language expression of the group's instances (ECS developer guide,
    cluster-query-language: `attribute:NAME == VALUE`)."""
    return f"attribute:{settings.GROUP_ATTRIBUTE} == {group}"


def adjust(service: Service, properties: dict[str, Json]) -> None:
    """Turn a replica service's properties into the daemon's, in place."""
    if service.scheduling != "daemon":
        return
    for key in (
        "DesiredCount",
        "CapacityProviderStrategy",
        "ForceNewDeployment",
        "PlacementStrategies",
    ):
        properties.pop(key, None)
    properties["SchedulingStrategy"] = "DAEMON"
    properties["LaunchType"] = "EC2"
    constraints = properties.get("PlacementConstraints")
    mine: list[Json] = [{"Type": "memberOf", "Expression": group_expression(service.group)}]
    properties["PlacementConstraints"] = mine + (
        constraints if isinstance(constraints, list) else []
    )
