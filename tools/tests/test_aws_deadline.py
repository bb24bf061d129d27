"""Every operator AWS command keeps a whole-command deadline (issue 16 items 7 and 9), even
when the endpoint accepts the connection and then stalls, or drips its answer a byte at a time
(each byte renews botocore's read timeout). The endpoint is the fault proxy
(nixecs.testing.faultproxy) in front of the moto server; NIXECS_DEADLINE shortens the deadline.

| peer                                         | command                              | outcome        |
|----------------------------------------------|--------------------------------------|----------------|
| stalled: accepts, reads, never answers       | status, secret get, validate --aws,  | exit 1 "out of |
|                                              | deploy --plan, destroy, ami publish  | time" at the   |
| dripping: one byte every 0.5 s               | status, validate --aws, deploy --plan| deadline       |
| a pool thread stuck past the deadline        | (watchdog)                           | process ends   |
|                                              |                                      | GRACE_S later  |
| NIXECS_DEADLINE not a positive number        | status                               | exit 2         |
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, MotoServer
from nixecs.aws.watchdog import GRACE_S
from nixecs.testing.faultproxy import FaultPlan, FaultProxy

SRC = Path(__file__).resolve().parents[1] / "src"
DEADLINE = 3.0
FLEET = str(EXAMPLES / "fleet.yml")


def nixecs(endpoint: str, *args: str, deadline: str = str(DEADLINE)) -> tuple[int, str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "NIXECS_DEADLINE": deadline,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "nixecs", "--endpoint-url", endpoint, "--region", "us-east-1",
         *args],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return done.returncode, done.stderr, time.monotonic() - start


def image_dir(root: Path) -> Path:
    out = root / "result"
    (out / "nix-support").mkdir(parents=True)
    disk = out / "nixos.raw"
    disk.write_bytes(b"\x01" * 4096)
    info = {"label": "x", "boot_mode": "uefi", "system": "x86_64-linux", "file": str(disk)}
    (out / "nix-support" / "image-info.json").write_text(json.dumps(info))
    return out


COMMANDS = {
    "status": ["status"],
    "secret get": ["secret", "get", "/nixecs/prod/x"],
    "validate --aws": ["validate", FLEET, "--aws"],
    "deploy --plan": ["deploy", FLEET, "--plan"],
    "destroy": ["destroy", "prod", "--yes"],
}


@pytest.mark.moto
@pytest.mark.parametrize(
    ("kind", "command"),
    [("stall", c) for c in [*COMMANDS, "ami publish"]]
    + [("drip", c) for c in ("status", "validate --aws", "deploy --plan")],
)
def test_a_stalled_or_dripping_endpoint_meets_the_deadline(
    moto: MotoServer, tmp_path: Path, kind: str, command: str
) -> None:
    plan = FaultPlan(rate=1.0, kinds=(kind,), max_consecutive=10**6, drip_interval=0.5)
    args = COMMANDS.get(command) or ["ami", "publish", str(image_dir(tmp_path))]
    with FaultProxy(moto.url, plan) as proxy:
        code, err, seconds = nixecs(proxy.url, *args)
    assert code == 1, err
    assert "out of time" in err and "Traceback" not in err, err
    # Interpreter start and imports (~1-2 s here) on top of the deadline; never the 60 s
    # read timeout × 11 attempts botocore would otherwise spend.
    assert seconds < DEADLINE + GRACE_S, seconds
    assert proxy.stats.total_faults >= 1


def test_a_pool_thread_stuck_past_the_deadline_cannot_keep_the_process() -> None:
    script = textwrap.dedent(
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor
        from nixecs.aws import watchdog
        from nixecs.diagnostics import DeadlineReached
        watchdog.arm("test", 0.5)
        forever = threading.Event()
        try:
            with ThreadPoolExecutor(1) as pool:  # its exit waits for the stuck thread
                pool.submit(forever.wait)
                forever.wait()
        except DeadlineReached:
            pass
        print("unreachable")
        """
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "out of time" in done.stderr
    assert "unreachable" not in done.stdout
    assert time.monotonic() - start < 0.5 + GRACE_S + 10


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf"])
def test_a_bad_deadline_is_a_usage_error(value: str) -> None:
    code, err, _ = nixecs("http://127.0.0.1:9", "status", deadline=value)
    assert code == 2 and "NIXECS_DEADLINE" in err
