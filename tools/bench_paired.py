"""Paired, interleaved CPU-time ratios of two commands (`make bench`, DESIGN §10).

The machine `make bench` runs on is often shared: another process's load slows every run
in the same moment. Each sample is therefore a PAIR, the measured command and its baseline
spawned one right after the other by one small launcher interpreter, and the figure is the
median over the pairs of (command CPU ÷ baseline CPU): contention that lasts longer than a
pair cancels out of each ratio. CPU time (user + system of the child, from `os.wait4`) rather
than wall time, so that time spent waiting for a core is not counted at all.

Bytecode: this workplace sets PYTHONDONTWRITEBYTECODE, which would make every run compile
every module again; the runs get a private bytecode cache (PYTHONPYCACHEPREFIX) warmed by one
untimed pair first — as on a host, where the package's `.pyc` files come from the Nix store.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Runs the pairs of argv lists in sys.argv[1] (JSON: [[target, baseline], ...]) RUNS+1 times,
# the first untimed, alternating which of the two goes first, and prints
# [[target_cpu_s, baseline_cpu_s], ...].
_LAUNCHER = """
import json, os, sys
target, baseline = json.loads(sys.argv[1])
runs = int(sys.argv[2])
null = os.open(os.devnull, os.O_WRONLY)
quiet = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
def cpu(argv):
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv}: exit status {os.waitstatus_to_exitcode(status)}")
    return usage.ru_utime + usage.ru_stime
pairs = []
for index in range(runs + 1):
    if index % 2:
        t = cpu(target); b = cpu(baseline)
    else:
        b = cpu(baseline); t = cpu(target)
    if index:
        pairs.append([t, b])
print(json.dumps(pairs))
"""


@dataclass(frozen=True)
class Paired:
    """Median CPU seconds of each command and the median of the per-pair ratios."""

    target_s: float
    baseline_s: float
    ratio: float
    runs: int


def paired_cpu(
    python: str,
    target: Sequence[str],
    baseline: Sequence[str],
    runs: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Paired:
    """Spawn `target` and `baseline` in `runs` interleaved pairs (after one untimed pair)."""
    launcher = [
        python,
        "-S",
        "-c",
        _LAUNCHER,
        json.dumps([list(target), list(baseline)]),
        str(runs),
    ]
    process = subprocess.run(
        launcher, capture_output=True, text=True, env=dict(env or os.environ), cwd=cwd, check=False
    )
    if process.returncode != 0:
        raise RuntimeError(f"paired benchmark failed: {process.stderr.strip()[-800:]}")
    pairs: list[list[float]] = json.loads(process.stdout)
    return Paired(
        target_s=statistics.median(t for t, _ in pairs),
        baseline_s=statistics.median(b for _, b in pairs),
        ratio=statistics.median(t / b for t, b in pairs if b > 0),
        runs=len(pairs),
    )


def bench_env(pycache: str) -> dict[str, str]:
    """The environment of the measured runs: a private, warmed bytecode cache."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env
