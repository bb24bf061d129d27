"""Daemon services (issue 20, item 3): `scheduling: daemon` runs one task on every container
instance of the service's group (E178).

ECS's DAEMON strategy places one task on each active container instance that meets the
service's placement constraints, and "Daemon services don't support placement strategies"
nor a desired count (ECS developer guide, ecs_services "Daemon";
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html). It uses no
capacity provider strategy either (CreateService capacityProviderStrategy: "not supported
with the daemon scheduling strategy"), so the task definition runs with launch type EC2, and
a memberOf constraint on the attribute every fleet host registers with its group's name
(settings.GROUP_ATTRIBUTE) keeps it on its own group's instances. Managed scaling does not
reserve room for daemon tasks: they take what the replica tasks leave (docs/aws.md).
"""

from __future__ import annotations

import dataclasses

from .. import settings as s
from ..settings import Issue
from .model import Service
from .yaml12 import Path

SERVICE_KEYS = ("scheduling",)
SCHEDULING = ("replica", "daemon")
# A daemon's deployment replaces the task on each instance in turn: it cannot start a second
# copy beside the first (maximumPercent stays at 100, ECS's default for daemon services, whose
# minimumHealthyPercent defaults to 0; DeploymentConfiguration, ECS API reference). Without
# `deployment:` a daemon gets those two.


def with_scheduling(
    written: dict[str, object], path: Path, service: Service, issues: list[Issue]
) -> Service:
    """`service` with its scheduling, from the keys as written. A daemon's model leaves out
    what it does not write: the default placement strategies, and a deployment's
    maximum_percent above 100 (check_daemon refuses what it does write: E178)."""
    if "scheduling" not in written:
        return service
    scheduling = s.check_enum(written["scheduling"], (*path, "scheduling"), issues, SCHEDULING)
    if scheduling != "daemon":
        return service
    placement = written.get("placement")
    if not (isinstance(placement, dict) and "strategy" in placement):
        service = dataclasses.replace(
            service, placement=dataclasses.replace(service.placement, strategies=())
        )
    deployment = written.get("deployment")
    deployment_of = service.deployment
    if not (isinstance(deployment, dict) and "maximum_percent" in deployment):
        deployment_of = dataclasses.replace(deployment_of, maximum_percent=100)
    if deployment is None:
        deployment_of = dataclasses.replace(deployment_of, minimum_healthy_percent=0)
    return dataclasses.replace(service, scheduling="daemon", deployment=deployment_of)


def check_daemon(service: Service, issues: list[Issue]) -> None:
    """E178: a daemon refuses desired, scaling and placement strategies, and a deployment that
    would run two tasks on one instance (a rule between keys: fleet/checks.py runs it)."""
    if service.scheduling != "daemon":
        return
    path = service.path
    if service.desired_given:
        issues.append(
            Issue(
                (*path, "desired"),
                "E178",
                "`desired` with scheduling daemon: a daemon runs one task on every instance of its group",
            )
        )
    if service.scaling is not None:
        issues.append(
            Issue(
                (*path, "scaling"),
                "E178",
                "`scaling` with scheduling daemon: a daemon's count follows its group's instances",
            )
        )
    if service.placement.strategies:
        issues.append(
            Issue(
                (*path, "placement", "strategy"),
                "E178",
                "daemon services take no placement strategy (one task on every instance)",
            )
        )
    if service.deployment.maximum_percent != 100:
        issues.append(
            Issue(
                (*path, "deployment", "maximum_percent"),
                "E178",
                "a daemon runs one task per instance: maximum_percent must be 100",
            )
        )
