"""AWS names two fleet subjects would share.

`naming` joins names with `-`, which names may contain themselves: group `eu-web` of cluster
`prod` and group `web` of cluster `prod-eu` both get the Auto Scaling group, launch template
and capacity provider `nixecs-prod-eu-web`; step policy `b-alarm` of service `a` and policy
`alarm` of service `a-b` both get the alarm `nixecs-prod-a-b-alarm`. Those names must be
unique in an account and region, so such a fleet would fail at deploy time, half-way
through. Capacity provider names allow no character outside the fleet's own name alphabet,
so no separator could make the join unambiguous; `nixecs validate` reports the clash
instead, before anything is rendered.
"""

from __future__ import annotations

from .. import naming
from ..fleet.model import Fleet
from ..fleet.yaml12 import Path
from ..records import dataclass


@dataclass(frozen=True)
class NameClash:
    what: str  # the kind of AWS resource
    name: str
    owners: tuple[str, ...]  # `cluster/group`, `cluster/service/policy`, in fleet order
    paths: tuple[Path, ...]  # the owners' places in the fleet file, same order

    @property
    def message(self) -> str:
        return f"{self.what} name {self.name!r} would be shared by {' and '.join(self.owners)}; rename one of them"


def name_clashes(fleet: Fleet) -> list[NameClash]:
    """Every AWS name (unique per account and region) that two subjects of the fleet would
    both get, in fleet order."""
    kinds: dict[str, dict[str, list[tuple[str, Path]]]] = {
        "Auto Scaling group, launch template and capacity provider": {},
        "task definition family": {},
        "CloudWatch alarm": {},
    }
    groups, families, alarms = kinds.values()
    for cluster in fleet.clusters.values():
        for group in cluster.groups.values():
            groups.setdefault(naming.group_resource_name(cluster.name, group.name), []).append(
                (group.key, group.path)
            )
        for service in cluster.task_definitions:
            families.setdefault(naming.task_family(cluster.name, service.name), []).append(
                (f"{cluster.name}/{service.name}", service.path)
            )
            for policy in service.scaling.step if service.scaling else ():
                alarms.setdefault(
                    naming.alarm_name(cluster.name, service.name, policy.name), []
                ).append((f"{cluster.name}/{service.name}/{policy.name}", policy.path))
    return [
        NameClash(what, name, tuple(o for o, _ in owners), tuple(p for _, p in owners))
        for what, names in kinds.items()
        for name, owners in names.items()
        if len(owners) > 1
    ]
