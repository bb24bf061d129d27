"""AWS names two fleet subjects would share.

`naming` joins names with `-`, which names may contain themselves: group `eu-web` of cluster
`prod` and group `web` of cluster `prod-eu` both get the Auto Scaling group, launch template
and capacity provider `nixecs-prod-eu-web`; step policy `b-alarm` of service `a` and policy
`alarm` of service `a-b` both get the alarm `nixecs-prod-a-b-alarm`. Those names must be
unique in an account and region, so such a fleet would fail at deploy time, half-way
through. Capacity provider names allow no character outside the fleet's own name alphabet,
so no separator could make the join unambiguous; `nixecs validate` reports the clash
instead, before anything is rendered.

Generated names take part too: the deployment alarms `deployment.alarms.http_5xx` /
`unhealthy_hosts` generate (`nixecs-CLUSTER-SERVICE-deployment-5xx|unhealthy`, with `-2`,
`-3`, … for the target groups of further routing entries, deploy_alarms.py) against the step policies' alarms (a step policy named `deployment-5xx`),
and the target tracking policies' names (`target-tracking`, `target-tracking-2`, ...,
scaling.py) against the service's step policy names: a scaling policy's name is unique per
scalable target (PutScalingPolicy with an existing name replaces that policy). The
generated name is registered first, so the error points at the name the user chose.
"""

from __future__ import annotations

from .. import naming
from ..fleet.model import Fleet
from ..fleet.yaml12 import Path
from ..records import dataclass
from . import deploy_alarms


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
            owner = f"{cluster.name}/{service.name}"
            for alarm in deploy_alarms.generated(service):
                alarms.setdefault(
                    naming.alarm_name(cluster.name, service.name, alarm.name), []
                ).append(
                    (
                        f"{owner} deployment.alarms.{alarm.key}",
                        (*service.path, "deployment", "alarms", alarm.key),
                    )
                )
            for policy in service.scaling.step if service.scaling else ():
                alarms.setdefault(
                    naming.alarm_name(cluster.name, service.name, policy.name), []
                ).append((f"{owner}/{policy.name}", policy.path))
    clashes = [
        NameClash(what, name, tuple(o for o, _ in owners), tuple(p for _, p in owners))
        for what, names in kinds.items()
        for name, owners in names.items()
        if len(owners) > 1
    ]
    return clashes + _policy_clashes(fleet)


def _policy_clashes(fleet: Fleet) -> list[NameClash]:
    """A step policy named as one of the service's generated target tracking policies (per
    scalable target: the same service only)."""
    found = []
    for cluster in fleet.clusters.values():
        for service in cluster.services.values():
            scaling = service.scaling
            if scaling is None:
                continue
            owner = f"{cluster.name}/{service.name}"
            names: dict[str, list[tuple[str, Path]]] = {}
            for index, tracking in enumerate(scaling.target_tracking, 1):
                part = naming.TARGET_TRACKING_POLICY + ("" if index == 1 else f"-{index}")
                names.setdefault(part, []).append(
                    (f"{owner} target_tracking policy {index}", tracking.path)
                )
            for policy in scaling.step:
                names.setdefault(policy.name, []).append((f"{owner}/{policy.name}", policy.path))
            found += [
                NameClash(
                    "Application Auto Scaling policy",
                    naming.scaling_policy_name(cluster.name, service.name, name),
                    tuple(o for o, _ in owners),
                    tuple(p for _, p in owners),
                )
                for name, owners in names.items()
                if len(owners) > 1
            ]
    return found
