"""`nixecs status --plot FILE.png`: where each service and group stands within its bounds.

One panel per cluster. Each service is a row: its scaling range (min..max) as a pale band,
running tasks as a solid bar, pending tasks stacked after them (hatched), desired as a black
tick. Groups likewise: min..max, instances in service, desired. A glance shows what a table
hides: services short of their desired count, and services pressed against their maximum.
matplotlib comes with the `plot` extra (`pip install 'nixecs[plot]'`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _rows(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for group in cluster["groups"]:
        rows.append(
            {
                "label": f"group {group['name']}",
                "low": group.get("min"),
                "high": group.get("max"),
                "done": group.get("in_service") or 0,
                "waiting": max((group.get("instances") or 0) - (group.get("in_service") or 0), 0),
                "desired": group.get("desired") or 0,
            }
        )
    for service in cluster["services"]:
        scaling = service.get("scaling") or {}
        rows.append(
            {
                "label": service["name"],
                "low": scaling.get("min"),
                "high": scaling.get("max"),
                "done": service.get("running") or 0,
                "waiting": service.get("pending") or 0,
                "desired": service.get("desired") or 0,
            }
        )
    return rows


def plot_status(data: dict[str, Any], path: Path) -> None:
    """Draw `status`'s data (as `collect()` returns it) to a PNG file."""
    try:
        import matplotlib
    except ImportError:
        raise click.UsageError("--plot needs matplotlib: pip install 'nixecs[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    clusters = data["clusters"] or [{"name": "(no clusters)", "groups": [], "services": []}]
    heights = [max(len(_rows(c)), 1) * 0.45 + 1.2 for c in clusters]
    figure, axes = plt.subplots(
        len(clusters),
        1,
        figsize=(9, sum(heights)),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for axis, cluster in zip(axes[:, 0], clusters, strict=True):
        rows = _rows(cluster)
        labels = [row["label"] for row in rows]
        for y, row in enumerate(rows):
            if row["low"] is not None and row["high"] is not None:
                axis.barh(
                    y,
                    row["high"] - row["low"],
                    left=row["low"],
                    height=0.8,
                    color="#dde6f0",
                    zorder=1,
                )
            axis.barh(y, row["done"], height=0.45, color="#2e7d32", zorder=2)
            if row["waiting"]:
                axis.barh(
                    y,
                    row["waiting"],
                    left=row["done"],
                    height=0.45,
                    color="#f9a825",
                    hatch="//",
                    zorder=2,
                )
            axis.plot(
                [row["desired"]] * 2, [y - 0.35, y + 0.35], color="black", linewidth=2.5, zorder=3
            )
            notes = []
            if row["done"] < row["desired"]:
                notes.append(f"{row['desired'] - row['done']} short")
            if row["high"] is not None and row["desired"] >= row["high"]:
                notes.append("at max")
            if notes:
                axis.annotate(
                    ", ".join(notes),
                    (row["desired"], y),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                    color="#b71c1c",
                )
        axis.set_yticks(range(len(rows)), labels)
        axis.invert_yaxis()
        axis.set_xlim(left=0)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(axis="x", color="#eeeeee", zorder=0)
        stack = cluster.get("stack_status", "")
        axis.set_title(
            f"cluster {cluster['name']}  ({stack})" if stack else f"cluster {cluster['name']}",
            loc="left",
        )
        if not rows:
            axis.text(
                0.5,
                0.5,
                "no groups or services",
                transform=axis.transAxes,
                ha="center",
                va="center",
            )
    axes[-1, 0].set_xlabel("tasks (services) / instances (groups)")
    figure.legend(
        handles=[
            Patch(color="#dde6f0", label="min..max"),
            Patch(color="#2e7d32", label="running / in service"),
            Patch(facecolor="#f9a825", hatch="//", label="pending"),
            Patch(color="black", label="desired"),
        ],
        loc="upper right",
        ncols=4,
        fontsize=8,
        frameon=False,
    )
    figure.suptitle(
        f"nixecs status — {data.get('region') or 'region?'}", x=0.01, ha="left", fontsize=11
    )
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=110)
    plt.close(figure)
