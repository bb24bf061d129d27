"""`nixecs apply` ends within its deadline and in bounded memory whatever its input does
(issue 12 items 2 and 4): real processes, real files, a real dripping socket server."""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from host_fixtures import write_rebuild_command
from nixecs.host import boot, imds
from test_host_imds import dripping_server
from test_imds_fuzz import RawServer

NIX = "# nixecs-userdata v1 cluster=prod group=web\n{ ... }: { }\n"


# The child's address space: ample for Python and 2 MiB of input, far below what reading
# /dev/zero to the end needs. (ru_maxrss would not do: it counts the pages of the forked
# test worker before exec.)
ADDRESS_SPACE = 1024 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def apply_process(*args: str, timeout: float = 30) -> tuple[int, str, float, int]:
    """`python -m nixecs apply ARGS` in a child with at most ADDRESS_SPACE of memory:
    (exit code, stderr, seconds, peak RSS KiB as the kernel counts it)."""
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "nixecs", "apply", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_memory,
    ) as process:
        assert process.stderr is not None
        watchdog = threading.Timer(timeout, process.kill)  # a hang fails, it does not hang
        watchdog.start()
        try:
            stderr = process.stderr.read()  # EOF when the child ends
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
            process.returncode = 0  # reaped above: keep Popen from waiting again
        seconds = time.monotonic() - started
        assert seconds < timeout
    return os.waitstatus_to_exitcode(status), stderr, seconds, usage.ru_maxrss


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_input_bound_is_the_imds_bound() -> None:
    assert boot.MAX_INPUT == imds.MAX_RESPONSE


def test_userdata_from_dev_zero_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    code, err, seconds, _ = apply_process("--userdata", "/dev/zero", "--root", str(tmp_path))
    assert code == 2, err
    assert "larger than" in err and "internal error" not in err
    assert seconds < 10  # before: 3.9 GB, then MemoryError here ("internal error")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # RecursionError before
        ('{"version": ' + "9" * 5000 + "}", "not JSON"),  # int-string conversion limit
    ],
    ids=["deep-json", "5000-digit-int"],
)
def test_hostile_json_is_invalid_userdata(tmp_path: Path, body: str, message: str) -> None:
    userdata = tmp_path / "userdata"
    userdata.write_bytes(gzip.compress(f"#nixecs-settings v1\n{body}\n".encode()))
    code, err, _, _ = apply_process("--userdata", str(userdata), "--root", str(tmp_path / "r"))
    assert code == 2, err
    assert message in err and "internal error" not in err


def test_a_dripping_imds_cannot_hold_apply_past_its_deadline(tmp_path: Path) -> None:
    with dripping_server(0.3) as url:
        code, err, seconds, _ = apply_process(
            "--imds", url, "--root", str(tmp_path), "--attempts", "100", "--deadline", "3"
        )
    assert code == 1, err
    assert "the 3s deadline of `nixecs apply` ran out while" in err
    assert seconds < 8
    assert err.count("error:") == 1


def test_script_userdata_runs_within_the_deadline(tmp_path: Path) -> None:
    """A script that never ends is killed with its whole process group."""
    pids = tmp_path / "pids"
    userdata = tmp_path / "userdata"
    # The background child would outlive a plain kill of the script.
    userdata.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pids}\nsleep 60\n")
    code, err, seconds, _ = apply_process(
        "--userdata",
        str(userdata),
        "--root",
        str(tmp_path / "r"),
        "--run-scripts",
        "--deadline",
        "2",
    )
    assert code == 1, err
    assert "deadline of `nixecs apply` ran out while running the script" in err
    assert seconds < 15
    state = tmp_path / "r" / "var/lib/nixecs/applied.json"
    assert not state.exists() or "scripts" not in state.read_text()  # the next boot retries
    child = int(pids.read_text())
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    assert not alive(child)


def test_rebuild_has_its_own_timeout_outside_the_deadline(tmp_path: Path) -> None:
    command, _, _ = write_rebuild_command(tmp_path)
    slow = tmp_path / "slow-rebuild"
    # 2.5 s: longer than --deadline, shorter than --rebuild-timeout: succeeds.
    slow.write_text(f"#!/bin/sh\nsleep 2.5\nexec {command}\n")
    slow.chmod(0o755)
    userdata = tmp_path / "userdata"
    userdata.write_text(NIX)
    root = str(tmp_path / "r")
    code, err, _, _ = apply_process(
        "--userdata",
        str(userdata),
        "--root",
        root,
        "--rebuild-command",
        f"{slow} switch",
        "--deadline",
        "2",
        "--rebuild-timeout",
        "10",
    )
    assert code == 0, err
    # A rebuild over its timeout is killed and not recorded.
    userdata.write_text(NIX.replace("{ }", '{ networking.hostName = "x"; }'))
    code, err, seconds, _ = apply_process(
        "--userdata",
        str(userdata),
        "--root",
        root,
        "--rebuild-command",
        f"{slow} switch",
        "--rebuild-timeout",
        "1",
    )
    assert code == 1, err
    assert "rebuild did not finish within 1s (killed" in err
    assert seconds < 12


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-6\r\nhello!\r\n0\r\n\r\n",
    ],
    ids=["5000-digit-content-length", "negative-chunk"],
)
def test_an_invalid_imds_reply_is_exit_2_with_a_message(tmp_path: Path, reply: bytes) -> None:
    server = RawServer()
    server.reply = reply
    try:
        code, err, seconds, _ = apply_process("--imds", server.url, "--root", str(tmp_path))
    finally:
        server.close()
    assert code == 2, err
    assert "error: cannot get userdata: IMDS" in err and "internal error" not in err
    assert seconds < 10
