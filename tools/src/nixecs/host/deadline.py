"""A total deadline for one host command (apply, secrets fetch, drain), on the monotonic clock.

The boot path runs before the ECS agent: a step that hangs keeps the instance out of its
cluster, so every host command ends within a stated time whatever IMDS, AWS or the disk do
(DESIGN §10). Each blocking step asks `remaining()` and waits at most that; when nothing is
left it raises `DeadlineExceeded` naming the step, which the command turns into exit 1 and
one line. On the boot path: imports `time` only.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Agreed with the systemd units (modules/*: TimeoutStartSec is set above these):
APPLY_SECONDS = 120.0  # apply, everything but a nix rebuild
REBUILD_SECONDS = 1800.0  # a nix rebuild, on top of APPLY_SECONDS
SECRETS_SECONDS = 120.0  # secrets fetch
DRAIN_EXTRA_SECONDS = 120.0  # drain: the drain timeout plus this


class DeadlineExceeded(Exception):
    """The command's total deadline ran out during `step`."""

    def __init__(self, command: str, seconds: float, step: str) -> None:
        super().__init__(
            f"out of time: the {seconds:g}s deadline of `{command}` ran out while {step}"
        )
        self.step = step


class Deadline:
    """`seconds` from now (monotonic); `exclude()` gives back the time of a step bounded on its own."""

    def __init__(
        self,
        command: str,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        started: bool = True,
    ) -> None:
        self.command = command
        self.seconds = seconds
        self._clock = clock
        # Not started: unlimited until start() (drain waits for termination first, for as
        # long as the instance lives; its deadline counts from then).
        self.end = clock() + seconds if started else float("inf")

    def start(self) -> None:
        self.end = self._clock() + self.seconds

    def remaining(self) -> float:
        return self.end - self._clock()

    def check(self, step: str) -> float:
        """The seconds left, > 0; DeadlineExceeded naming `step` when none are."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(self.command, self.seconds, step)
        return left

    def expired(self, step: str) -> DeadlineExceeded:
        return DeadlineExceeded(self.command, self.seconds, step)

    def exclude(self, seconds: float) -> None:
        """Time spent in a step bounded on its own (a nix rebuild) does not count."""
        self.end += seconds
