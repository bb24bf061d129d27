"""`scaling replay --plot F.png`: the load and what each policy set did with it, on one time axis.

Top: the metric each policy set saw (it depends on that set's capacity), with the target or
thresholds. Bottom: the tasks the load needed at the target (grey area) and each set's desired
count, with its scale-out (▲) and scale-in (▼) events on its own line. Every line is labelled
where it ends, so the picture reads without a legend. matplotlib: the `plot` extra.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

from ..atomic import write_atomic
from .sim import SCALES_WITH_TASKS, Load, Outcome

BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85}
COLOURS = ("#1565c0", "#e65100", "#2e7d32", "#6a1b9a")


def plot_replay(load: Load, outcomes: list[Outcome], metric: str, path: str, title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        import click

        raise click.UsageError("--plot needs matplotlib: pip install 'nixecs[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    minutes = load.minutes
    if load.start:
        times: list[object] = [
            datetime.fromtimestamp(load.start + 60 * m, UTC) for m in range(minutes)
        ]
    else:
        times = [m / 60 for m in range(minutes)]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, height_ratios=[2, 3])
    end = times[-1]

    def label(axis: object, y: float, text: str, colour: str) -> None:
        axis.annotate(  # type: ignore[attr-defined]
            text,
            (end, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=colour,
            annotation_clip=False,
        )

    reference = None
    for index, outcome in enumerate(outcomes):
        colour = COLOURS[index % len(COLOURS)]
        seen = [math.nan if v is None else v for v in outcome.seen.get(metric, [])]
        top.plot(times, seen, color=colour, linewidth=0.9)
        last = next((v for v in reversed(seen) if not math.isnan(v)), 0.0)
        label(top, last, f"{outcome.policies.label}: {metric.rpartition('/')[2]} seen", colour)
        for rule in outcome.policies.steps:
            if rule.alarm.metric == metric:
                top.axhline(rule.alarm.threshold, color=colour, linestyle="--", linewidth=0.8)
                top.annotate(
                    f"{outcome.policies.label} {rule.name} {rule.alarm.comparison} {rule.alarm.threshold:g}",
                    (times[0], rule.alarm.threshold),
                    xytext=(2, 2),
                    textcoords="offset points",
                    fontsize=7,
                    color=colour,
                    bbox=BOX,
                )
        for tracking in outcome.policies.tracking:
            if tracking.metric == metric:
                top.axhline(tracking.target, color=colour, linestyle="--", linewidth=0.8)
                top.annotate(
                    f"{outcome.policies.label} target {tracking.target:g}",
                    (times[0], tracking.target),
                    xytext=(2, 2),
                    textcoords="offset points",
                    fontsize=7,
                    color=colour,
                    bbox=BOX,
                )
        reference = reference or outcome.policies.reference(metric)
    top.set_ylabel(metric.rpartition("/")[2])
    top.set_title(title, loc="left", fontsize=11)
    top.grid(color="#eeeeee")

    if metric in SCALES_WITH_TASKS and reference:
        needed = [
            math.nan if (w := load.work(metric, m)) is None else w / reference
            for m in range(minutes)
        ]
        bottom.fill_between(times, needed, color="#cfd8dc", step="post", linewidth=0)
        peak = max((v for v in needed if not math.isnan(v)), default=0.0)
        bottom.annotate(
            f"tasks the load needed at {reference:g}",
            (times[needed.index(peak)] if peak else times[0], peak),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color="#546e7a",
        )
    recorded = [math.nan if t is None else t for t in load.tasks]
    bottom.step(times, recorded, where="post", color="#78909c", linewidth=0.8, linestyle="--")
    last_recorded = next((t for t in reversed(recorded) if not math.isnan(t)), 0)
    label(bottom, last_recorded, "recorded running tasks", "#78909c")
    for index, outcome in enumerate(outcomes):
        colour = COLOURS[index % len(COLOURS)]
        bottom.step(times, outcome.desired, where="post", color=colour, linewidth=1.6)
        label(bottom, outcome.desired[-1], f"{outcome.policies.label}: desired tasks", colour)
        for event, marker in ((e, "^" if e.after > e.before else "v") for e in outcome.events):
            bottom.plot(
                times[event.minute],
                event.after,
                marker=marker,
                color=colour,
                markersize=6,
                linestyle="none",
            )
        bottom.axhline(outcome.policies.max, color=colour, linestyle=":", linewidth=0.8)
        bottom.annotate(
            f"{outcome.policies.label} max {outcome.policies.max}",
            (times[0], outcome.policies.max),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=7,
            color=colour,
        )
    bottom.set_ylabel("tasks   (▲ scale-out, ▼ scale-in)")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylim(bottom=0)
    bottom.grid(color="#eeeeee")
    if load.start:
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%b %d\n%H:%M"))  # type: ignore[no-untyped-call]
        bottom.set_xlabel("time (UTC)")
    else:
        bottom.set_xlabel("hours")
    figure.tight_layout()
    figure.subplots_adjust(right=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
