"""Write examples/load-trace.csv: three days of a web service's load, minute by minute.

Deterministic (a fixed seed), so the file, the README's numbers and docs/scaling-replay.png
only change when this script does. The shape is a working week's: quiet nights, a morning
ramp, a lunchtime peak, an evening tail, noise, one sudden burst on day two and a few minutes
without data (CloudWatch gaps). The service ran a fixed 4 tasks at night and 8 in office hours
(someone scaled it by hand), as running_tasks records; CPUUtilization is the per-task average
that load produced on those tasks.

    python tools/gen_trace.py [OUT]
"""

from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from nixecs.scaling.sim import Load
from nixecs.scaling.trace import write_trace

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
DAYS = 3
CPU = "AWS/ECS/CPUUtilization"


def work(minute: int, rng: random.Random) -> float:
    """CPU % of one task, summed over the service."""
    hour = (minute % 1440) / 60
    day = minute // 1440
    office = math.exp(-(((hour - 13.0) / 3.2) ** 2))  # broad midday hump
    morning = 0.35 * math.exp(-(((hour - 9.5) / 1.0) ** 2))
    evening = 0.25 * math.exp(-(((hour - 19.5) / 1.5) ** 2))
    level = 70 + 520 * (office + morning + evening) * (1.0 + 0.08 * day)
    if day == 1 and 15 * 60 + 10 <= minute % 1440 < 15 * 60 + 55:
        level += 260  # a burst: a marketing mail went out
    return max(level * (1 + rng.gauss(0, 0.06)), 5.0)


def main() -> int:
    out = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parent.parent / "examples" / "load-trace.csv"
    )
    rng = random.Random(20261102)
    minutes = DAYS * 1440
    tasks: list[int | None] = []
    cpu: list[float | None] = []
    for minute in range(minutes):
        hour = (minute % 1440) / 60
        count = 8 if 8 <= hour < 18 else 4
        load = work(minute, rng)
        tasks.append(count)
        cpu.append(round(load / count, 2))
    for gap in (1300, 1301, 2950, 2951, 2952):  # CloudWatch had nothing for these minutes
        cpu[gap] = None
    write_trace(out, Load({CPU: cpu}, tasks, start=START.timestamp()))
    print(f"wrote {out} ({minutes} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
