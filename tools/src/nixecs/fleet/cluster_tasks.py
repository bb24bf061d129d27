"""A cluster's `tasks:` (issue 20, item 4): task definitions that are not services —
containers, task role and volumes as a service's — run on a schedule (`schedule:`, an
EventBridge Scheduler schedule) or by hand (E183; a task named as a service: E182, the
checks stage's).

Schedule expressions follow EventBridge Scheduler's grammar ("Schedule types",
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):
`at(yyyy-mm-ddThh:mm:ss)`, `rate(value unit)` with minute(s)/hour(s)/day(s) — singular for 1,
plural above — and `cron(minutes hours day-of-month month day-of-week year)`, where one of
day-of-month and day-of-week is `?`. The timezone is an IANA name.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from .. import settings as s
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from . import volumes
from .decl import Node, as_str, check, keys, member, section, values
from .model import Service
from .yaml12 import Path

CLUSTER_KEYS = ("tasks",)
TASK_KEYS = (
    "group",
    "image",
    "cpu",
    "memory",
    "environment",
    "secrets",
    "containers",
    "network_mode",
    "task_role",
    *volumes.SERVICE_KEYS,
    "schedule",
)
SCHEDULE_KEYS = ("expression", "timezone")
# The keys the loader's task parsing checks itself (as a service's: loader._SERVICE_OWN).
TASK_OWN = ("cpu", "memory", "network_mode", *volumes.SERVICE_KEYS)
RATE_RE = lazy(r"rate\((?P<value>[1-9][0-9]{0,8}) (?P<unit>minutes?|hours?|days?)\)")
AT_RE = lazy(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
CRON_RE = lazy(r"cron\((?P<fields>[^()]*)\)")
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# (name, low, high, names, extra forms) of the six cron fields.
CRON_FIELDS = (
    ("minutes", 0, 59, "", ""),
    ("hours", 0, 23, "", ""),
    ("day-of-month", 1, 31, "", r"|L|LW|[0-9]{1,2}W"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, r"|L|[1-7]L|(?:[1-7]|" + _DAYS + r")#[1-5]"),
    ("year", 1970, 2199, "", ""),
)
EXPRESSION_RULE = (
    "at(yyyy-mm-ddThh:mm:ss), rate(N minutes|hours|days) or "
    "cron(minutes hours day-of-month month day-of-week year)"
)
EXPRESSION_FORMS = f"a schedule expression is {EXPRESSION_RULE}"
# The expression's form, declared (so the JSON Schema refuses what is none of the three, and
# a rate of 0): the three forms check_expression tells apart; what it checks inside them (a
# real date, cron's fields and ranges, a rate's singular or plural unit) stays its own.
EXPRESSION_PATTERN = (
    r"rate\([1-9][0-9]{0,8} (?:minutes?|hours?|days?)\)"
    r"|at\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\)"
    r"|cron\([^()]*\)"
)


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str | None
    path: Path


@dataclass(frozen=True)
class ScheduledTask:
    """A task of the cluster: its task definition as a Service record (containers, roles,
    volumes; never an ECS service) and its schedule, if any."""

    task: Service
    schedule: Schedule | None


def _timezones() -> set[str]:
    # Imported here: zoneinfo costs milliseconds (it reads sysconfig) that only a fleet
    # naming a time zone needs (`validate`, issue 18 item 4).
    import zoneinfo

    return zoneinfo.available_timezones()


def _cron_field(text: str, low: int, high: int, names: str, extra: str) -> bool:
    value = rf"(?:[0-9]{{1,4}}{('|' + names) if names else ''})"
    item = rf"(?:\*|{value}(?:-{value})?)(?:/[0-9]{{1,4}})?{extra}"
    if not re.fullmatch(rf"{item}(?:,{item})*", text, re.IGNORECASE):
        return False
    # every number but a step (/N) or an nth weekday (#N) is a value of the field
    return all(low <= int(n) <= high for n in re.findall(r"(?<![/#0-9])[0-9]+", text))


def check_expression(text: str, path: Path, issues: list[Issue]) -> bool:
    if (rate := RATE_RE.fullmatch(text)) is not None:
        if (rate["value"] == "1") != (not rate["unit"].endswith("s")):
            issues.append(
                Issue(
                    path,
                    "E183",
                    f"{text!r}: the unit is singular for 1 and plural above (rate(1 hour), rate(5 minutes))",
                )
            )
            return False
        return True
    if (at := AT_RE.fullmatch(text)) is not None:
        try:
            datetime.datetime.fromisoformat(at[1])
        except ValueError:
            issues.append(Issue(path, "E183", f"{text!r}: not a date and time"))
            return False
        return True
    if (cron := CRON_RE.fullmatch(text)) is not None:
        fields = cron["fields"].split()
        if len(fields) != 6:
            issues.append(
                Issue(
                    path,
                    "E183",
                    f"{text!r}: cron takes six fields (minutes hours day-of-month month day-of-week year), not {len(fields)}",
                )
            )
            return False
        for value, (name, low, high, names, extra) in zip(fields, CRON_FIELDS, strict=True):
            if value == "?" and name in ("day-of-month", "day-of-week"):
                continue
            if not _cron_field(value, low, high, names, extra):
                issues.append(
                    Issue(
                        path,
                        "E183",
                        f"{text!r}: {value!r} is not a valid {name} field ({low}-{high})",
                    )
                )
                return False
        if (fields[2] == "?") == (fields[4] == "?"):
            issues.append(
                Issue(
                    path,
                    "E183",
                    f"{text!r}: one of day-of-month and day-of-week must be ? (and only one)",
                )
            )
            return False
        return True
    issues.append(Issue(path, "E183", f"{text!r} is not a schedule expression: {EXPRESSION_RULE}"))
    return False


def _schedule(value: object, path: Path, issues: list[Issue], node: Node) -> Schedule | None:
    """`schedule:`, an expression or {expression, timezone} (`node`: the mapping's
    declaration)."""
    if isinstance(value, str):
        if check(node.keys["expression"], value, path, issues) is None:
            return None  # not one of the three forms (the declared pattern)
        return Schedule(value, None, path) if check_expression(value, path, issues) else None
    m = section(node, value, path, issues, "an expression or {expression, timezone}")
    if m is None or "expression" not in m:
        return None
    expression = as_str(m["expression"])
    timezone = m.get("timezone")
    if isinstance(timezone, str) and timezone not in _timezones():
        issues.append(
            Issue(
                (*path, "timezone"),
                s.E_VALUE,
                f"{timezone!r} is not an IANA time zone (e.g. Europe/Paris)",
            )
        )
        return None
    if not check_expression(expression, (*path, "expression"), issues):
        return None
    return Schedule(expression, as_str(timezone) if timezone is not None else None, path)


def parse_tasks(
    builder: Any,
    tasks: Node,
    cluster: str,
    m: dict[str, object],
    path: Path,
    groups: dict[str, object],
) -> dict[str, ScheduledTask]:
    """`tasks: {NAME: {group, containers | image+memory, task_role, volumes, schedule}}`,
    each checked against its declaration (`tasks`: fleet/schema.py's, which imports this
    module) and parsed with the loader's
    own task parsing (`builder.task`). A task named as a service is the checks stage's
    (E182, checks.task_names)."""
    if "tasks" not in m:
        return {}
    node = member(tasks)
    schedule_node = next(a for a in node.keys["schedule"].any_of if a.kind == "object")
    found: dict[str, ScheduledTask] = {}
    issues: list[Issue] = builder.issues
    for name, value in builder.named_mapping(tasks, m["tasks"], (*path, "tasks"), "tasks").items():
        where: Path = (*path, "tasks", name)
        written = keys(node, value, where, issues)
        if written is None:
            continue
        before = len(issues)
        t = values(node, written, where, issues, own=TASK_OWN)
        group = t.get("group")
        if isinstance(group, str) and group not in groups:
            issues.append(
                Issue((*where, "group"), "E108", f"no group {group!r} in cluster {cluster!r}")
            )
        parsed = builder.task(name, t, where)
        schedule = (
            _schedule(t["schedule"], (*where, "schedule"), issues, schedule_node)
            if "schedule" in t
            else None
        )
        if len(issues) != before or parsed is None or not isinstance(group, str):
            continue
        containers, mode, role, task_cpu, task_memory = parsed
        task = Service(
            name=name,
            cluster=cluster,
            group=group,
            image=containers[0].image,
            cpu=task_cpu if task_cpu is not None else sum(c.cpu for c in containers),
            memory=task_memory
            if task_memory is not None
            else sum(c.reserved_memory for c in containers),
            port=None,
            desired=0,
            environment=containers[0].environment,
            secrets=containers[0].secrets,
            scaling=None,
            path=where,
            containers=containers,
            network_mode=mode,
            task_role=role,
            task_cpu=task_cpu,
            task_memory=task_memory,
            scheduling="task",
        )
        found[name] = ScheduledTask(volumes.with_volumes(t, where, task, issues), schedule)
    return found
