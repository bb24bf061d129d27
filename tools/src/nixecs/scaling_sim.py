"""Simulate a service's auto scaling against a synthetic load, minute by minute.

A model, not AWS: CPU utilisation is demand divided by the running tasks; an alarm is in
ALARM when its comparison held for `evaluation_periods` consecutive periods of `period`
seconds (the metric averaged over each period); a step policy acts on the step whose
interval contains the metric's offset from the threshold (AWS's inclusivity), then waits
its cooldown; target tracking sets capacity to ceil(capacity × metric / target), scaling in
only below 90 % of the target. Its purpose is a picture of what the policies will do —
the article's policy climbs and never comes down (W201/W202) — not a forecast.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .atomic import write_atomic
from .fleet.model import Service, StepPolicy
from .scaling import step_is_reachable

MINUTE = 60


@dataclass
class Timeline:
    """Per-minute series of one simulation."""

    minutes: list[int] = field(default_factory=list)
    demand: list[float] = field(default_factory=list)  # CPU % of one task, summed over tasks
    cpu: list[float] = field(default_factory=list)  # average CPU % per task
    desired: list[int] = field(default_factory=list)
    actions: list[tuple[int, str, int]] = field(default_factory=list)  # (minute, policy, change)


def wave(hours: float, base: float = 60.0, peak: float = 400.0) -> Callable[[int], float]:
    """Demand that rises from `base` to `peak` and falls back once over `hours`."""
    span = hours * 60

    def demand(minute: int) -> float:
        phase = min(max(minute / span, 0.0), 1.0)
        return base + (peak - base) * math.sin(math.pi * phase) ** 2

    return demand


def _step_change(policy: StepPolicy, offset: float, current: int) -> int | None:
    above = policy.alarm.is_upper
    for step in policy.steps:
        lower = -math.inf if step.lower is None else step.lower
        upper = math.inf if step.upper is None else step.upper
        inside = lower <= offset < upper if above else lower < offset <= upper
        if not inside or not step_is_reachable(step, policy.alarm):
            continue
        if policy.adjustment_type == "ExactCapacity":
            return step.change
        if policy.adjustment_type == "PercentChangeInCapacity":
            delta = int(current * step.change / 100)
            magnitude = policy.min_adjustment_magnitude or 1
            if step.change and abs(delta) < magnitude:
                delta = magnitude if step.change > 0 else -magnitude
            return current + delta
        return current + step.change
    return None


def _compare(value: float, comparison: str, threshold: float) -> bool:
    return {
        ">=": value >= threshold,
        ">": value > threshold,
        "<=": value <= threshold,
        "<": value < threshold,
    }[comparison]


def simulate(service: Service, demand: Callable[[int], float], minutes: int) -> Timeline:
    """Run the service's scaling policies over `minutes` of `demand`."""
    scaling = service.scaling
    if scaling is None:
        raise ValueError(f"service {service.name!r} has no scaling")
    low, high = scaling.min, scaling.max
    desired = service.start_count
    timeline = Timeline()
    history: list[float] = []
    next_allowed: dict[str, int] = {}
    breaches: dict[str, int] = {p.name: 0 for p in scaling.step}
    for minute in range(minutes):
        load = demand(minute)
        cpu = load / max(desired, 1)
        history.append(cpu)
        timeline.minutes.append(minute)
        timeline.demand.append(load)
        timeline.cpu.append(cpu)
        new = desired
        for policy in scaling.step:
            alarm = policy.alarm
            per = max(alarm.period // MINUTE, 1)
            if (minute + 1) % per:
                continue
            window = history[-per:]
            metric = sum(window) / len(window)
            breaches[policy.name] = (
                breaches[policy.name] + 1
                if _compare(metric, alarm.comparison, alarm.threshold)
                else 0
            )
            if breaches[policy.name] < alarm.evaluation_periods or minute < next_allowed.get(
                policy.name, 0
            ):
                continue
            target = _step_change(policy, metric - alarm.threshold, new)
            if target is not None and target != new:
                new = target
                next_allowed[policy.name] = minute + max(policy.cooldown // MINUTE, 1)
        tracking = scaling.target_tracking
        if tracking is not None:
            wanted = math.ceil(new * cpu / tracking.target)
            if wanted > new and minute >= next_allowed.get("out", 0):
                new = wanted
                next_allowed["out"] = minute + max(tracking.scale_out_cooldown // MINUTE, 1)
            elif (
                cpu < 0.9 * tracking.target
                and not tracking.disable_scale_in
                and minute >= next_allowed.get("in", 0)
            ):
                wanted = max(math.ceil(new * cpu / tracking.target), low)
                if wanted < new:
                    new = wanted
                    next_allowed["in"] = minute + max(tracking.scale_in_cooldown // MINUTE, 1)
        new = min(max(new, low), high)
        if new != desired:
            timeline.actions.append((minute, "scale", new - desired))
        desired = new
        timeline.desired.append(desired)
    return timeline


def plot(service: Service, timeline: Timeline, path: str, title: str) -> None:
    """A PNG: CPU per task with the alarm thresholds or target above, tasks below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scaling = service.scaling
    assert scaling is not None
    hours = [m / 60 for m in timeline.minutes]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 2])
    top.plot(hours, timeline.cpu, color="tab:blue", label="CPU per task (%)")
    for policy in scaling.step:
        colour = "tab:red" if policy.alarm.is_upper else "tab:green"
        top.axhline(
            policy.alarm.threshold,
            color=colour,
            linestyle="--",
            label=f"{policy.name}: {policy.alarm.comparison} {policy.alarm.threshold:g}",
        )
    if scaling.target_tracking is not None:
        top.axhline(
            scaling.target_tracking.target,
            color="tab:purple",
            linestyle="--",
            label=f"target {scaling.target_tracking.target:g}",
        )
    top.set_ylabel("CPU %")
    top.legend(loc="upper right", fontsize="small")
    top.set_title(title)
    bottom.step(hours, timeline.desired, where="post", color="tab:orange", label="desired tasks")
    bottom.axhline(scaling.max, color="grey", linestyle=":", label=f"max {scaling.max}")
    bottom.axhline(scaling.min, color="grey", linestyle="-.", label=f"min {scaling.min}")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("tasks")
    bottom.set_xlabel("hours")
    bottom.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
