"""Offline checks of what AWS would refuse or silently ignore, run by `validate` and `render`
after the schema (the loader) and the scaling rules (nixecs.scaling).

Each check says where in the fleet file the problem is; docs/aws.md cites the AWS behaviour
behind each code.
"""

from __future__ import annotations

from collections.abc import Callable

from ..diagnostics import Diagnostic, Location
from .model import Fleet, Group
from .yaml12 import Path

Locate = Callable[[Path], Location]


def check_capacity(group: Group, locate: Locate) -> list[Diagnostic]:
    """W204: the template has no DesiredCapacity (nixecs.cloudformation.compute says why),
    so a written `capacity.desired` cannot be honoured."""
    capacity = group.capacity
    if not capacity.desired_given:
        return []
    return [
        Diagnostic(
            "W204",
            f"capacity.desired {capacity.desired} is not used: the group starts at min {capacity.min} and the "
            "capacity provider's managed scaling sets its size from the tasks it has to place (a "
            "DesiredCapacity in the template would reset the size on every deploy); remove desired, or "
            "raise min",
            locate((*group.path, "capacity", "desired")),
        )
    ]


def check_fleet(fleet: Fleet) -> list[Diagnostic]:
    """Every offline AWS check for the whole fleet."""
    locate = fleet.document.locate
    found: list[Diagnostic] = []
    for cluster in fleet.clusters.values():
        for group in cluster.groups.values():
            found.extend(check_capacity(group, locate))
    return found
