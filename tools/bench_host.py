"""`make bench`: `nixecs apply` latency and memory (DESIGN §10: ≤ 60 ms median, ≤ 40 MB).

Settings userdata (no secrets, nothing to build) is served by the IMDSv2 emulator on
loopback; each run is a fresh interpreter, `python -m nixecs apply --imds URL --root TMP`,
timed from spawn to exit.

Peak RSS is each child's own `ru_maxrss` from `os.wait4`. Linux counts the memory a child
shared with its parent before `exec` in that figure, so the runs are spawned by a small
launcher interpreter (`python -S`, smaller than the process measured) rather than by this
process, which holds the emulator, and in `make bench` much else. The launcher also times
`python -c pass` the same way, to show how much of the figure is interpreter start.

Bytecode: on a host the package comes from the Nix store with its `.pyc` files compiled at
build time. This workplace sets PYTHONDONTWRITEBYTECODE, which would make every run compile
every module again, so the runs here get a private bytecode cache (PYTHONPYCACHEPREFIX)
warmed by one untimed run first.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nixecs.settings import DrainSpec, EcsSettings, HostSettings, dumps
from nixecs.testing.imds import ImdsEmulator


def _settings_userdata() -> bytes:
    settings = HostSettings(
        cluster="prod",
        group="web",
        flake="github:acme/infra",
        ecs=EcsSettings(attributes={"tier": "web"}, tags={"team": "payments"}, spot_draining=True),
        drain=DrainSpec("15m"),
    )
    return dumps(settings).encode()


# Runs ARGV (JSON) RUNS+1 times, the first untimed, and prints [[ms, maxrss_kib], ...].
_LAUNCHER = """
import json, os, sys, time
argv, runs = json.loads(sys.argv[1]), int(sys.argv[2])
null = os.open(os.devnull, os.O_WRONLY)
quiet = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
samples = []
for index in range(runs + 1):
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    elapsed = (time.perf_counter() - started) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"exit status {os.waitstatus_to_exitcode(status)}")
    if index:
        samples.append([elapsed, usage.ru_maxrss])
print(json.dumps(samples))
"""


def _spawn_runs(python: str, argv: list[str], runs: int, env: dict[str, str]) -> list[list[float]]:
    launcher = [python, "-S", "-c", _LAUNCHER, json.dumps(argv), str(runs)]
    process = subprocess.run(launcher, capture_output=True, text=True, env=env, check=False)
    if process.returncode != 0:
        detail = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        raise RuntimeError(
            f"benchmark run failed ({process.stderr.strip()}): {detail.stderr.strip()}"
        )
    samples: list[list[float]] = json.loads(process.stdout)
    return samples


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(fraction * len(ordered)) - 1)]


@contextmanager
def bench_imds() -> Iterator[str]:
    """The IMDSv2 emulator serving the benchmark's settings userdata; yields its URL."""
    with ImdsEmulator(_settings_userdata()) as imds:
        yield imds.url


def apply_argv(python: str, imds_url: str, root: Path) -> list[str]:
    return [python, "-m", "nixecs", "apply", "--imds", imds_url, "--root", str(root)]


def bench_apply(python: str, runs: int = 30) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="nixecs-bench-") as scratch,
        ImdsEmulator(_settings_userdata()) as imds,
    ):
        work = Path(scratch)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        argv = apply_argv(python, imds.url, work / "root")
        samples = _spawn_runs(python, argv, runs, env)
        if not (work / "root/run/nixecs/ecs.env").exists():
            raise RuntimeError("nixecs apply wrote no ecs.env during the benchmark")
        baseline = _spawn_runs(python, [python, "-c", "pass"], runs, env)
    times = [ms for ms, _ in samples]
    return {
        "median_ms": statistics.median(times),
        "p90_ms": _percentile(times, 0.9),
        "peak_rss_mb": max(kib for _, kib in samples) / 1024,  # Linux reports KiB
        "python_startup_median_ms": statistics.median(ms for ms, _ in baseline),
        "runs": float(runs),
    }


if __name__ == "__main__":
    import sys

    result = bench_apply(sys.executable)
    print(
        f"nixecs apply: median {result['median_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, "
        f"peak RSS {result['peak_rss_mb']:.1f} MB over {int(result['runs'])} runs "
        f"(python -c pass: median {result['python_startup_median_ms']:.1f} ms)"
    )
