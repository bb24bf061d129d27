"""A whole-command deadline for the operator's AWS commands (issue 16 item 7).

botocore bounds each socket operation (`connect_timeout`, `read_timeout`) and the number of
attempts, not a call's total time: an endpoint that accepts the connection and then sends one
byte every few seconds ("drips") renews the read timeout forever, and one that stalls after
the answer's headers holds a call for `read_timeout` × attempts. So the command as a whole
gets a deadline on the process's real-time interval timer (setitimer(2), ITIMER_REAL): when
it fires, SIGALRM interrupts whatever the main thread waits on — a socket read, a lock, a
sleep — and raises `DeadlineReached` there (PEP 475: a signal handler that raises ends the
interrupted system call). A thread of a pool (EBS blocks, region copies) cannot be
interrupted that way; a daemon thread therefore ends the process GRACE_S after the deadline
if the unwinding has not finished by then. The first Session a command makes arms it
(Session.from_globals); cli.run disarms it.

Deadlines per command (seconds), long enough for what the command waits on by design, and
overridable with NIXECS_DEADLINE: CloudFormation stack operations for deploy/roll/destroy;
snapshots, AMI registration and copies for `ami publish`; skopeo's 30-minute push.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

import click

from ..diagnostics import DeadlineReached

DEFAULT_S = 1800.0
BY_COMMAND = {
    "validate": 300.0,
    "status": 300.0,
    "secret": 300.0,
    "image": 3600.0,
    "deploy": 4 * 3600.0,
    "roll": 4 * 3600.0,
    "destroy": 4 * 3600.0,
    "ami": 6 * 3600.0,
}
GRACE_S = 10.0
ENV = "NIXECS_DEADLINE"

_armed: dict[str, object] = {}


def seconds_for(command: str) -> float:
    text = os.environ.get(ENV)
    if text:
        try:
            value = float(text)
        except ValueError:
            raise click.UsageError(f"{ENV} must be a number of seconds, not {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise click.UsageError(f"{ENV} must be a positive number of seconds, not {text!r}")
        return value
    return BY_COMMAND.get(command, DEFAULT_S)


def arm_for_current_command() -> None:
    """Arm the deadline of the click command now running (once per process run)."""
    context = click.get_current_context(silent=True)
    if context is None:
        return
    path = context.command_path.split()
    command = path[1] if len(path) > 1 else (path[0] if path else "nixecs")
    arm(" ".join(path) or "nixecs", seconds_for(command))


def arm(command: str, seconds: float) -> None:
    if _armed or threading.current_thread() is not threading.main_thread():
        return

    unwound = threading.Event()  # set by disarm(): the command has unwound in time

    def fire(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=_hard_exit, args=(command, seconds, unwound), daemon=True).start()
        raise DeadlineReached(
            f"{command}: out of time: the command's {seconds:g}s deadline passed "
            f"(an endpoint that stalls or answers too slowly; {ENV} sets another)"
        )

    _armed["previous"] = signal.signal(signal.SIGALRM, fire)
    _armed["unwound"] = unwound
    signal.setitimer(signal.ITIMER_REAL, seconds)


def disarm() -> None:
    if not _armed:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    unwound = _armed.get("unwound")
    if isinstance(unwound, threading.Event):
        unwound.set()
    previous = _armed.get("previous")
    signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)  # type: ignore[arg-type]
    _armed.clear()


def _hard_exit(command: str, seconds: float, unwound: threading.Event) -> None:
    """The main thread unwinds; a pool thread stuck in a dripping read would keep the process
    alive at exit (the pool's threads are joined, and ThreadPoolExecutor's `with` waits for
    them): end the process GRACE_S later unless cli.run has disarmed by then."""
    if unwound.wait(GRACE_S):
        return
    sys.stderr.write(
        f"nixecs: error: {command}: out of time ({seconds:g}s deadline, "
        f"{GRACE_S:g}s grace for the clean-up)\n"
    )
    sys.stderr.flush()
    os._exit(1)
