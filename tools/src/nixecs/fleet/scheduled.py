"""Scheduled scaling: `scaling.scheduled: [{name, schedule, timezone, min, max}]`, the
ScheduledActions of the service's scalable target (issue 21, item 3).

AWS's rules (Application Auto Scaling API Reference, PutScheduledAction and ScheduledAction,
https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScheduledAction.html):
the schedule is `at(yyyy-mm-ddThh:mm:ss)`, `rate(value unit)` (minute(s), hour(s), day(s))
or `cron(fields)` with six fields (minutes hours day-of-month month day-of-week year);
Timezone is an IANA time zone (default UTC); ScalableTargetAction sets the new MinCapacity,
MaxCapacity, or both. When it runs: "If the current capacity is below the new minimum,
Application Auto Scaling scales out to the new minimum; above the new maximum, it scales in to
the new maximum" (User Guide, "Scheduled scaling for Application Auto Scaling",
https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-scheduled-scaling.html).

`fires` tells the engine (scaling/sim.py) whether an action runs in a given minute: `at` in
its minute, `rate` every `value` units from the start of the replay, `cron` when every field
matches the local time (numbers, names, `*`, `?`, lists, ranges and `/` steps; a field with
`L`, `W` or `#` is not modelled: such an action never fires in the replay, and the report
says so).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, tzinfo

from .. import settings as s
from ..lazyre import lazy
from ..settings import Issue
from .decl import as_int, as_str, section
from .model import MAX_SCHEDULED_ACTIONS as MAX_ACTIONS
from .model import SCALING, SCHEDULED_ACTION, ScheduledAction
from .yaml12 import Path

AT_RE = lazy(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)")
RATE_RE = lazy(r"rate\(([1-9][0-9]{0,5}) (minute|minutes|hour|hours|day|days)\)")
CRON_RE = lazy(r"cron\(([^()]+)\)")
CRON_FIELD_RE = lazy(r"[0-9A-Za-z*?,/#LW-]+")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (low, high, names) of cron's six fields; day-of-week 1-7 is SUN-SAT
_FIELDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, _MONTHS),
    (1, 7, _DAYS),
    (1970, 2199, ()),
)
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


def parse(value: object, path: Path, issues: list[Issue]) -> tuple[ScheduledAction, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_ACTIONS:
        issues.append(Issue(path, s.E_TYPE, f"expected {SCALING.keys['scheduled'].what}"))
        return ()
    actions: list[ScheduledAction] = []
    for index, item in enumerate(value):
        action = _action(item, (*path, index), issues)
        if action is None:
            continue
        if action.name in {a.name for a in actions}:
            issues.append(
                Issue(
                    (*action.path, "name"),
                    s.E_VALUE,
                    f"scheduled action {action.name!r} is named twice",
                )
            )
        actions.append(action)
    return tuple(actions)


def _action(value: object, path: Path, issues: list[Issue]) -> ScheduledAction | None:
    before = len(issues)
    m = section(SCHEDULED_ACTION, value, path, issues)
    if m is None or len(issues) != before:
        return None
    name, schedule, zone = as_str(m["name"]), as_str(m["schedule"]), as_str(m["timezone"])
    error = schedule_error(schedule)
    if error is not None:
        issues.append(Issue((*path, "schedule"), s.E_VALUE, error))
    if not _zone_exists(zone):
        issues.append(
            Issue(
                (*path, "timezone"),
                s.E_VALUE,
                f"{zone!r} is not an IANA time zone (e.g. Europe/Paris)",
            )
        )
    low = as_int(m["min"]) if "min" in m else None
    high = as_int(m["max"]) if "max" in m else None
    if low is None and high is None:
        issues.append(
            Issue(
                path,
                s.E_MISSING,
                "a scheduled action sets `min`, `max` or both (ScalableTargetAction)",
            )
        )
    if len(issues) != before:
        return None
    return ScheduledAction(name, schedule, zone, low, high, path)


@functools.cache
def _zone(name: str) -> tzinfo | None:
    """The time zone `name`, None when this host has no such zone. zoneinfo is imported
    here: it costs milliseconds (it reads sysconfig) that only a fleet naming a time zone
    needs (`validate`, issue 18 item 4)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _zone_exists(name: str) -> bool:
    return _zone(name) is not None


def schedule_error(text: str) -> str | None:
    """Why `text` is not a schedule AWS accepts (None: it is)."""
    if AT_RE.fullmatch(text):
        try:
            datetime.strptime(text[3:-1], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return f"{text!r}: not a date and time"
        return None
    if RATE_RE.fullmatch(text):
        return None
    match = CRON_RE.fullmatch(text)
    if match is None:
        return (
            f"{text!r} is not a schedule: at(yyyy-mm-ddThh:mm:ss), rate(N minutes|hours|days) "
            "or cron(minutes hours day-of-month month day-of-week year)"
        )
    fields = match[1].split()
    if len(fields) != 6 or not all(CRON_FIELD_RE.fullmatch(f) for f in fields):
        return (
            f"{text!r}: cron takes six fields (minutes hours day-of-month month day-of-week year)"
        )
    if "?" not in (fields[2], fields[4]):
        return f"{text!r}: one of day-of-month and day-of-week must be ? (AWS cron)"
    for field_text, (low, high, names) in zip(fields, _FIELDS, strict=True):
        if _values(field_text, low, high, names) is None and not re.search(r"[LW#]", field_text):
            return f"{text!r}: {field_text!r} is not a field of {low}-{high}"
    return None


def _values(text: str, low: int, high: int, names: tuple[str, ...]) -> set[int] | None:
    """The values a cron field matches; None when it cannot be modelled or is invalid."""
    if text == "?":
        return set(range(low, high + 1))
    found: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            return None
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start_value, end_value = _number(first, names, low), _number(last, names, low)
            if start_value is None or end_value is None:
                return None
            start, end = start_value, end_value
        else:
            single = _number(body, names, low)
            if single is None:
                return None
            start, end = single, (high if step else single)
        if not low <= start <= high or not low <= end <= high or start > end:
            return None
        found.update(range(start, end + 1, step or 1))
    return found


def _number(text: str, names: tuple[str, ...], low: int) -> int | None:
    if text.isdigit():
        return int(text)
    if text.upper() in names:
        return names.index(text.upper()) + low
    return None


def modelled(action: ScheduledAction) -> bool:
    """Whether the engine can tell when the action runs (see the module doc)."""
    match = CRON_RE.fullmatch(action.schedule)
    if match is None:
        return True
    return all(
        _values(f, low, high, names) is not None
        for f, (low, high, names) in zip(match[1].split(), _FIELDS, strict=True)
    )


def fires(action: ScheduledAction, epoch: float, minute: int) -> bool:
    """Whether the action runs in the minute that starts at `epoch` (UTC seconds), the
    `minute`-th of the replay."""
    zone = _zone(action.timezone)
    if zone is None:  # a deployed action's zone this host lacks
        return False
    local = datetime.fromtimestamp(epoch, UTC).astimezone(zone)
    at = AT_RE.fullmatch(action.schedule)
    if at is not None:
        when = datetime.strptime(action.schedule[3:-1], "%Y-%m-%dT%H:%M:%S")
        return (local.year, local.month, local.day, local.hour, local.minute) == (
            when.year, when.month, when.day, when.hour, when.minute,
        )  # fmt: skip
    rate = RATE_RE.fullmatch(action.schedule)
    if rate is not None:
        every = int(rate[1]) * _UNIT_MINUTES[rate[2].rstrip("s")]
        return minute > 0 and minute % every == 0
    match = CRON_RE.fullmatch(action.schedule)
    if match is None or not modelled(action):
        return False
    fields = match[1].split()
    values = [
        _values(f, low, high, names) for f, (low, high, names) in zip(fields, _FIELDS, strict=True)
    ]
    weekday = (local.weekday() + 1) % 7 + 1  # Monday 0 → 2; Sunday 6 → 1 (cron: SUN=1)
    actual = (local.minute, local.hour, local.day, local.month, weekday, local.year)
    return all(v is not None and a in v for v, a in zip(values, actual, strict=True))
