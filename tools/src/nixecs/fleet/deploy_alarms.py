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

import re

from .. import settings as s
from ..settings import Issue
from .yaml12 import Path

KEYS = ("names", "rollback")
ALARM_NAME_RE = re.compile(r"[^\x00-\x1f,]{1,255}")


def parse(value: object, path: Path, issues: list[Issue]) -> tuple[tuple[str, ...], bool] | None:
    """(alarm names, rollback), or None with the errors in `issues`."""
    m = s.check_mapping(value, path, issues, KEYS, ("names",))
    if m is None or "names" not in m:
        return None
    before = len(issues)
    raw = m["names"]
    if not isinstance(raw, list) or not raw:
        issues.append(Issue((*path, "names"), s.E_TYPE, "expected a non-empty list of alarm names"))
        return None
    names = [
        s.check_pattern(
            item,
            (*path, "names", index),
            issues,
            ALARM_NAME_RE,
            "a CloudWatch alarm name (1-255 characters, no comma)",
        )
        for index, item in enumerate(raw)
    ]
    if len(set(names)) != len(names):
        issues.append(Issue((*path, "names"), s.E_VALUE, "an alarm is named twice"))
    rollback = s.check_bool(m.get("rollback", True), (*path, "rollback"), issues)
    if len(issues) != before or rollback is None:
        return None
    return tuple(n for n in names if n is not None), rollback
