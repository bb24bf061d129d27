"""SIGTERM and SIGHUP as exceptions, for commands that hold something to clean up (a child
process, a temporary file): raised like KeyboardInterrupt, so every `finally` runs, and the
CLI exits 128 + the signal's number (cli.run, diagnostics.Terminated)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from .diagnostics import Terminated


@contextlib.contextmanager
def terminating() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Terminated for the duration (a systemd stop, a closed
    terminal), as SIGINT raises KeyboardInterrupt; the previous handlers come back after.
    Only the main thread can install handlers: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise Terminated(signum, signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
