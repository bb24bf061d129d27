"""`scaling replay` and `scaling export`: a service's real load, its policies replayed on it.

The load comes from a trace (scaling_trace) or CloudWatch (aws.metrics); the proposed policies
from the fleet file, the deployed ones from Application Auto Scaling; the engine
(scaling_sim.replay) runs each set over the same load, and this module reports them side by side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..fleet.model import Fleet, Service
from .sim import MINUTE, SCALES_WITH_TASKS, Load, Outcome, PolicySet, replay, summary

_SINCE = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> int:
    """`14d`, `36h`, `90m` → seconds; ValueError otherwise."""
    match = _SINCE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 14d, 36h or 90m")
    return int(match.group(1)) * _UNIT[match.group(2)]


def parse_time(text: str) -> float:
    """An ISO 8601 time with a zone → epoch seconds; ValueError otherwise."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} needs a time zone (e.g. 2026-11-02T00:00:00Z)")
    return moment.timestamp()


def find_service(fleet: Fleet, target: str) -> Service | None:
    cluster_name, _, service_name = target.partition("/")
    cluster = fleet.clusters.get(cluster_name)
    service = cluster.services.get(service_name) if cluster else None
    return service if service is not None and service.scaling is not None else None


def proposed(service: Service, label: str = "proposed") -> PolicySet:
    assert service.scaling is not None
    return PolicySet.from_scaling(label, service.scaling, service.cluster, service.name)


@dataclass
class Replay:
    load: Load
    outcomes: list[Outcome]
    metric: str  # the metric the plot shows
    as_given: list[str]  # metrics replayed as recorded (they do not scale with tasks)
    missing: list[str]  # metrics the policies use that the load does not carry


def run(sets: list[PolicySet], load: Load, start_delay: int) -> Replay:
    used = list(dict.fromkeys(m for s in sets for m in s.metrics))
    missing = [m for m in used if m not in load.metrics]
    for metric in missing:  # no data at all: the alarm sees missing data (and says so)
        load.metrics[metric] = [None] * load.minutes
    outcomes = [replay(s, load, start_delay=start_delay) for s in sets]
    scaled = [m for m in used if m in SCALES_WITH_TASKS]
    return Replay(
        load,
        outcomes,
        metric=(scaled or used or list(load.metrics))[0],
        as_given=[m for m in used if m not in SCALES_WITH_TASKS],
        missing=missing,
    )


def report(result: Replay, target: str) -> dict[str, object]:
    load = result.load
    sets = []
    for outcome in result.outcomes:
        figures = summary(outcome, load)
        for event in [*figures["events"], *figures["scheduled"]]:  # type: ignore[misc]
            event["time"] = _stamp(load, event["minute"])
        gap = figures["largest_gap"]
        if isinstance(gap, dict) and gap.get("minute") is not None:
            gap["time"] = _stamp(load, gap["minute"])
        sets.append(figures)
    return {
        "service": target,
        "from": _stamp(load, 0),
        "to": _stamp(load, load.minutes),
        "minutes": load.minutes,
        "replayed_as_given": result.as_given,
        "missing_metrics": result.missing,
        "sets": sets,
    }


def _stamp(load: Load, minute: int) -> str | None:
    if not load.start:
        return None
    from datetime import UTC

    return datetime.fromtimestamp(load.start + minute * MINUTE, UTC).strftime("%Y-%m-%dT%H:%MZ")


def text(data: dict[str, object]) -> list[str]:
    """The report as lines for a terminal."""
    lines = [
        f"{data['service']}: replay over {int(data['minutes']) / 60:.1f} h"  # type: ignore[call-overload]
        + (f" ({data['from']} → {data['to']})" if data["from"] else "")
    ]
    for figures in data["sets"]:  # type: ignore[attr-defined]
        above = ", ".join(
            f"{m.rpartition('/')[2]} {v} min" for m, v in figures["minutes_above"].items()
        )
        gap = figures["largest_gap"]
        name = figures["policies"]
        lines.append(
            f"  {name}: {figures['scale_outs']} scale-outs, {figures['scale_ins']} scale-ins; "
            f"tasks {figures['start']} → peak {figures['peak']} → {figures['end']}"
            + ("; never scaled in" if figures["scale_outs"] and not figures["scale_ins"] else "")
        )
        lines.append(
            f"  {' ' * len(name)}  {figures['task_hours']} task-hours; {figures['minutes_at_max']} min at max; "
            f"above target/threshold: {above or '-'}; largest shortfall {gap['tasks']} task(s)"
            + (f" at {gap['time']}" if gap.get("time") else "")
        )
        for change in figures["scheduled"]:
            when = change["time"] or f"minute {change['minute']}"
            lines.append(
                f"  {' ' * len(name)}  scheduled {change['action']!r} at {when}: "
                f"min {change['min']['from']} → {change['min']['to']}, "
                f"max {change['max']['from']} → {change['max']['to']}"
            )
        for action in figures["not_modelled"]:
            lines.append(
                f"  {' ' * len(name)}  note: scheduled {action!r} uses L, W or # in its cron "
                "expression, which the replay does not model: it never runs here"
            )
    for metric in data["replayed_as_given"]:  # type: ignore[attr-defined]
        lines.append(
            f"  note: {metric} replayed as recorded: it does not change with the task count, so the "
            "replayed capacity cannot move it"
        )
    for metric in data["missing_metrics"]:  # type: ignore[attr-defined]
        lines.append(f"  note: the load has no {metric}: its alarms saw missing data throughout")
    return lines
