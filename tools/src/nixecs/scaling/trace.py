"""Load traces as CSV: what `scaling export` writes and `scaling replay --trace` reads.

    timestamp,AWS/ECS/CPUUtilization,running_tasks
    2026-11-02T00:00:00Z,41.5,2
    2026-11-02T00:01:00Z,,2

The first column is an ISO 8601 timestamp with its time zone, the last the service's running
task count; every column between is one metric, named `Namespace/MetricName`, holding the
value CloudWatch recorded for that minute (the per-task average for CPUUtilization and
MemoryUtilization). An empty cell is a minute without data. Rows are evenly spaced at a
whole number of minutes, in increasing time; a row spaced at 5 minutes stands for each of its
5 minutes. Parsing is strict: anything else is an error at its `file:line:col` (E301), exit 2.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from pathlib import Path

from ..atomic import read_regular, write_atomic
from ..diagnostics import InvalidInput, Location, Report
from .sim import MINUTE, Load

TIMESTAMP = "timestamp"
TASKS = "running_tasks"
MAX_BYTES = 64 * 1024 * 1024  # a year of minutes with a few metrics is ~30 MB
MAX_MINUTES = 366 * 24 * 60
# Metric values beyond this are refused: percentages, counts, bytes and latencies all fit.
MAX_VALUE = 1e15


class _Fail(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def _invalid(path: str, line: int, column: int, message: str, code: str = "E301") -> InvalidInput:
    report = Report()
    report.add(code, message, Location(path, line, column))
    return InvalidInput(report)


def read_trace(path: str | Path, *, metrics: bool = True) -> Load:
    """Parse a trace; InvalidInput (E301, located) on anything it does not expect. With
    `metrics=False` the file may be only `timestamp,running_tasks` (a `--tasks` series)."""
    name = str(path)
    try:
        data = read_regular(name, MAX_BYTES)
    except OSError as error:
        raise _invalid(name, 1, 1, f"cannot read the trace: {error.strerror}") from None
    if len(data) > MAX_BYTES:
        raise _invalid(name, 1, 1, f"the trace is over {MAX_BYTES // (1024 * 1024)} MiB")
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as spreadsheets write
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _invalid(name, line, 1, "the trace is not UTF-8 text") from None
    try:
        return _parse(text, metrics)
    except _Fail as fail:
        raise _invalid(name, fail.line, fail.column, fail.message) from None


def _cells(line: str) -> list[tuple[int, str]]:
    """(1-based column, text) of each comma-separated cell; quoting is not CSV we write."""
    cells: list[tuple[int, str]] = []
    column = 1
    for cell in line.split(","):
        cells.append((column, cell))
        column += len(cell) + 1
    return cells


def _parse(text: str, need_metrics: bool = True) -> Load:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines:
        raise _Fail(
            1, 1, "empty trace: expected a header `timestamp,<Namespace/Metric>...,running_tasks`"
        )
    header = _cells(lines[0])
    names = [cell for _, cell in header]
    if len(names) < (3 if need_metrics else 2) or names[0] != TIMESTAMP or names[-1] != TASKS:
        raise _Fail(
            1,
            1,
            f"header must be `{TIMESTAMP},<Namespace/Metric>...,{TASKS}` "
            + ("(at least one metric column)" if need_metrics else "(metric columns optional)")
            + f", not {_quote(lines[0])}",
        )
    metrics = names[1:-1]
    seen: set[str] = set()  # linear in the columns: a header may be long
    for column, metric in header[1:-1]:
        namespace, _, metric_name = metric.rpartition("/")
        if not namespace or not metric_name or metric != metric.strip():
            raise _Fail(
                1, column, f"metric column {_quote(metric)} must be named Namespace/MetricName"
            )
        if metric in seen:
            raise _Fail(1, column, f"metric column {_quote(metric)} appears twice")
        seen.add(metric)
    series: dict[str, list[float | None]] = {m: [] for m in metrics}
    tasks: list[int | None] = []
    first: float | None = None
    previous: float | None = None
    step: float | None = None
    for number, line in enumerate(lines[1:], start=2):
        cells = _cells(line)
        if len(cells) != len(names):
            raise _Fail(number, 1, f"{len(cells)} cells, the header has {len(names)}")
        column, stamp = cells[0]
        moment = _timestamp(stamp, number, column)
        if previous is not None:
            gap = moment - previous
            if gap <= 0:
                raise _Fail(
                    number, column, f"timestamp {_quote(stamp)} is not after the row before it"
                )
            if step is None:
                if gap % MINUTE:
                    raise _Fail(
                        number, column, f"rows {gap:g} s apart: the step must be whole minutes"
                    )
                step = gap
            elif gap != step:
                raise _Fail(
                    number,
                    column,
                    f"rows {gap:g} s apart, the rows before were {step:g} s apart: a trace is evenly spaced "
                    "(leave cells empty for minutes without data)",
                )
        else:
            first = moment
        previous = moment
        values = [_value(cell, number, col) for col, cell in cells[1:-1]]
        count = _tasks(cells[-1][1], number, cells[-1][0])
        repeat = int((step or MINUTE) // MINUTE)
        if number == 2:
            repeat = 1
        # The span is checked before the row is expanded: a gap of years between two rows
        # would otherwise allocate its minutes first. Each row stands for `step` minutes.
        assert first is not None
        if (moment - first) // MINUTE + (step or MINUTE) // MINUTE > MAX_MINUTES:
            raise _Fail(number, column, f"the trace is longer than {MAX_MINUTES} minutes (a year)")
        for metric, value in zip(metrics, values, strict=True):
            series[metric].extend([value] * repeat)
        tasks.extend([count] * repeat)
    if not tasks:
        raise _Fail(2, 1, "the trace has a header but no rows")
    # The first row stands for `step` minutes too; it was added once before the step was known.
    if step is not None and step > MINUTE:
        extra = int(step // MINUTE) - 1
        for metric in metrics:
            series[metric][1:1] = [series[metric][0]] * extra
        tasks[1:1] = [tasks[0]] * extra
    assert first is not None
    return Load(series, tasks, start=first)


def _timestamp(text: str, line: int, column: int) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Fail(line, column, f"{_quote(text)} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise _Fail(line, column, f"timestamp {_quote(text)} needs a time zone (e.g. Z)")
    return moment.timestamp()


def _value(text: str, line: int, column: int) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise _Fail(
            line, column, f"{_quote(text)} is not a number (leave the cell empty for no data)"
        ) from None
    if not math.isfinite(value) or text.strip() != text:
        raise _Fail(line, column, f"{_quote(text)} is not a finite number")
    if abs(value) > MAX_VALUE:
        # ±1e308 is finite, but the simulation multiplies and sums these: it would overflow
        # to inf and then to a nonsense decision. No CloudWatch metric of a service gets near.
        raise _Fail(line, column, f"{_quote(text)} is out of range (at most ±{MAX_VALUE:g})")
    return value


def _tasks(text: str, line: int, column: int) -> int | None:
    if text == "":
        return None
    if not text.isdigit() or not text.isascii() or len(text) > 6:
        raise _Fail(
            line, column, f"running tasks {_quote(text)} is not a whole number from 0 to 999999"
        )
    return int(text)


def _quote(text: str, limit: int = 40) -> str:
    """An offending cell as a message quotes it: a short prefix, never the whole (a cell can be
    megabytes, or hold a secret pasted by mistake)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"… ({len(text)} characters)"


def _show(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def format_trace(load: Load) -> str:
    metrics = list(load.metrics)
    out = io.StringIO()
    out.write(",".join([TIMESTAMP, *metrics, TASKS]) + "\n")
    for minute in range(load.minutes):
        stamp = datetime.fromtimestamp(load.start + minute * MINUTE, UTC)
        cells = [stamp.strftime("%Y-%m-%dT%H:%M:%SZ")]
        cells += [_show(load.metrics[m][minute]) for m in metrics]
        count = load.tasks[minute]
        cells.append("" if count is None else str(count))
        out.write(",".join(cells) + "\n")
    return out.getvalue()


def write_trace(path: str | Path, load: Load) -> None:
    write_atomic(str(path), format_trace(load).encode())
