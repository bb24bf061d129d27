"""`deployment.alarms: {names: [...], rollback: true}`: CloudWatch alarms that fail a
service's rolling deployment (issue 21, item 4).

ECS watches the named alarms during a deployment and "sets the deployment to failed when it
detects that a specified CloudWatch alarm has gone into the ALARM state", optionally rolling
back to the last completed deployment ("How CloudWatch alarms detect Amazon ECS deployment
failures",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html;
DeploymentConfiguration `alarms`: alarmNames, enable, rollback, API_DeploymentAlarms.html).
The names are CloudWatch alarm names (PutMetricAlarm AlarmName: 1-255 characters); a comma
is refused because the API reads "Use a ',' to separate the alarms".
"""

from __future__ import annotations

from dataclasses import replace

from .. import settings as s
from ..records import dataclass
from ..settings import Issue
from .decl import as_int, refused, section, texts
from .model import DEPLOYMENT, Deployment
from .yaml12 import Path

GENERATED = ("http_5xx", "unhealthy_hosts")
ALARMS = DEPLOYMENT.keys["alarms"]


@dataclass(frozen=True)
class DeploymentAlarms:
    names: tuple[str, ...]
    rollback: bool
    http_5xx: int | None  # threshold: target 5xx responses in a minute
    unhealthy_hosts: int | None  # threshold: unhealthy targets


def parse(value: object, path: Path, issues: list[Issue], routed: bool) -> DeploymentAlarms | None:
    """The alarms written, or None with the errors in `issues`. `http_5xx` and
    `unhealthy_hosts` generate alarms on the service's target group: only with routing."""
    before = len(issues)
    m = section(ALARMS, value, path, issues)
    if m is None:
        return None
    for key in GENERATED:
        if key in m and not routed:
            issues.append(
                Issue(
                    (*path, key),
                    "E112",
                    f"`{key}` watches the service's target group: add routing or remove it",
                )
            )
    if not any(key in m for key in ALARMS.one_of) and not any(
        refused(issues, (*path, key)) for key in ALARMS.one_of
    ):
        issues.append(
            Issue(
                path,
                s.E_MISSING,
                "name alarms (`names`) or generate some (http_5xx, unhealthy_hosts)",
            )
        )
        return None
    names = texts(ALARMS, m, "names", path, issues) if "names" in m else ()
    if len(set(names)) != len(names):
        issues.append(Issue((*path, "names"), s.E_VALUE, "an alarm is named twice"))
    if len(issues) != before:
        return None
    generated = {key: as_int(m[key]) if key in m else None for key in GENERATED}
    return DeploymentAlarms(
        names,
        m["rollback"] is True,
        generated["http_5xx"],
        generated["unhealthy_hosts"],
    )


def apply(deployment: Deployment, alarms: DeploymentAlarms | None) -> Deployment:
    if alarms is None:
        return deployment
    return replace(
        deployment,
        alarms=alarms.names,
        alarm_rollback=alarms.rollback,
        alarm_http_5xx=alarms.http_5xx,
        alarm_unhealthy_hosts=alarms.unhealthy_hosts,
    )
