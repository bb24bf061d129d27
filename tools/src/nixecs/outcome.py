"""How a command's outcome reaches the user without click: its lines on stdout/stderr, and
the exit code and one-line message of each of our exceptions.

Shared by the click CLI (`cli.run`) and `validate`'s fast path (`nixecs.fast`), so that the
two cannot disagree on an exit code or a message (issue 18, item 4: `validate` must not pay
for click's import). Standard library only.
"""

from __future__ import annotations

import sys

from .diagnostics import (
    EXIT_FAILURE,
    EXIT_INVALID,
    DeadlineReached,
    InvalidInput,
    OperationalFailure,
    Terminated,
)
from .lazyre import lazy

# click's own pattern for what it strips from output that is not a terminal
# (pallets/click, src/click/_compat.py, `_ansi_re`).
_ANSI = lazy(r"\033\[[0-?]*[ -/]*[@-~]")


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except Exception:  # a stream without a file behind it (as click's `isatty`)
        return False


def echo(message: str, err: bool = False) -> None:
    """`click.echo(message, err=err)` for text: one line, escape sequences removed when the
    stream is not a terminal, flushed at once."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:  # no standard stream at all (click writes nothing either)
        return
    text = message + "\n"
    if "\x1b" in text and not _isatty(stream):
        text = _ANSI.sub("", text)
    stream.write(text)
    stream.flush()


def exit_status(error: BaseException, verbose: bool) -> int:
    """The exit code of a command that raised `error`, after telling the user on stderr.
    Re-raises what is not ours to report: an internal error under -v (its traceback is the
    detail asked for), and SystemExit/GeneratorExit."""
    if isinstance(error, InvalidInput):
        error.report.print(sys.stderr)
        return EXIT_INVALID
    if isinstance(error, (OperationalFailure, DeadlineReached)):
        # DeadlineReached: an operator command's whole deadline (aws/watchdog.py)
        echo(f"nixecs: error: {error}", err=True)
        return EXIT_FAILURE
    if isinstance(error, Terminated):
        echo(f"nixecs: terminated ({error.name})", err=True)
        return 128 + error.signum
    if isinstance(error, KeyboardInterrupt):
        echo("nixecs: interrupted", err=True)
        return 130
    if not isinstance(error, Exception) or verbose:
        raise error
    # A bug: say so plainly; the details only with -v. The message is left out on purpose:
    # it may quote data (an AWS answer, a secret).
    echo(f"nixecs: internal error ({type(error).__name__}); run with -v for details", err=True)
    return EXIT_FAILURE
