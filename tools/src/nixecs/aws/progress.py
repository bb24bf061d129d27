"""Progress on stderr for long waits: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """One task's progress. `update()` sets the completed amount (and optionally the total and a
    status word); `log()` prints a line above the bar. Without a terminal, a plain line is
    printed when the status changes or the percentage moves by at least `step` points."""

    def __init__(
        self,
        description: str,
        total: float | None = None,
        *,
        unit: str = "",
        stream: TextIO | None = None,
        step: float = 10.0,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.step = step
        self.completed = 0.0
        self.status = ""
        self._rich: Any = None
        self._task: Any = None
        self._last_percent = -100.0
        self._last_status: str | None = None
        self._last_line = ""

    def __enter__(self) -> Progress:
        if is_tty(self.stream):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                SpinnerColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
            columns.append(DownloadColumn() if self.unit == "bytes" else TaskProgressColumn())
            columns += [TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
            self._rich = RichProgress(*columns, console=Console(file=self.stream), transient=False)
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, status="")
        else:
            self._plain(force=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
        elif kind is None:
            self._plain(force=self._last_percent < 100.0 and self.total is not None)

    def update(
        self,
        completed: float | None = None,
        *,
        total: float | None = None,
        status: str | None = None,
    ) -> None:
        if total is not None:
            self.total = total
        if completed is not None:
            self.completed = completed
        if status is not None:
            self.status = status
        if self._rich is not None:
            self._rich.update(
                self._task, completed=self.completed, total=self.total, status=self.status
            )
        else:
            self._plain()

    def advance(self, amount: float) -> None:
        self.update(self.completed + amount)

    def log(self, line: str) -> None:
        if self._rich is not None:
            self._rich.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stream, flush=True)

    def _percent(self) -> float | None:
        if not self.total:
            return None
        return min(100.0, 100.0 * self.completed / self.total)

    def _plain(self, force: bool = False) -> None:
        percent = self._percent()
        moved = percent is not None and percent - self._last_percent >= self.step
        changed = self.status != self._last_status
        if not (force or moved or changed):
            return
        parts = [self.description]
        if percent is not None:
            parts.append(f"{percent:.0f}%")
            self._last_percent = percent
        if self.status:
            parts.append(f"({self.status})")
        self._last_status = self.status
        line = " ".join(parts)
        if line != self._last_line:
            self._last_line = line
            print(line, file=self.stream, flush=True)


def sleep(seconds: float) -> None:
    """time.sleep, named so tests can see the module's waits (and keep them tiny)."""
    if seconds > 0:
        time.sleep(seconds)
