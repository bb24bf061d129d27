"""`nixecs gpu-info` against hostile input (docs/security.md): what nvidia-smi answers, the
directory and file it writes, and signals. The table names each case and its outcome; the
tests after it prove each row.

| input                                          | outcome                                            |
|------------------------------------------------|----------------------------------------------------|
| nvidia-smi answers nothing (empty)             | exit 1 "listed no GPU"; nothing written            |
| a truncated line (`GPU-…` without the driver)  | exit 1 "expected 'GPU-<uuid>, <driver>'"; nothing  |
| huge output (2 MiB)                            | exit 1 "wrote over 1048576 bytes", nvidia-smi      |
|                                                |   killed; at most the limit read                   |
| bytes that are not UTF-8                       | exit 1, one line, no traceback; nothing written    |
| stalled nvidia-smi (never answers)             | exit 1 "did not answer within" the limit; killed   |
| the file a symlink (to a file elsewhere)       | replaced by a regular file; the link's target      |
|                                                |   unchanged                                        |
| the file a FIFO                                | replaced (renamed over, never opened): no block    |
| the directory a symlink                        | exit 1 "refusing to follow it"; nothing written    |
|                                                |   through it                                       |
| foreign owner: the directory another uid's, or | exit 1 "writable by no one else"; nothing written  |
|   writable by group/others                     |                                                    |
| /dev/nvidia* devices                           | only their existence is looked at: never opened    |
| killed midway: SIGTERM / SIGINT while          | exit 143 / 130, nvidia-smi killed, no file and no  |
|   nvidia-smi runs                              |   temporary left                                   |
| lost answer, stalled AWS peer, throttling      | not applicable: the command calls no AWS API       |
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aws_fixtures import run_cli
from nixecs.host import gpu
from nixecs.host.gpu import GPU_INFO_FILE, MAX_OUTPUT
from test_host_gpu import SMI_OUTPUT, fake_smi, host_root

SRC = Path(__file__).resolve().parents[1] / "src"


def script(tmp_path: Path, body: str) -> Path:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + body)
    smi.chmod(0o755)
    return smi


def gpu_info(capsys: pytest.CaptureFixture[str], root: Path, smi: Path) -> object:
    return run_cli(capsys, ["gpu-info", "--root", str(root), "--nvidia-smi", str(smi)])


def left_in(root: Path) -> list[str]:
    directory = root / GPU_INFO_FILE.lstrip("/")
    return sorted(p.name for p in directory.parent.iterdir()) if directory.parent.exists() else []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("exit 0\n", "listed no GPU"),
        ("printf 'GPU-4d3a1c2b-0000-1111-2222-333344445555\\n'\n", "expected 'GPU-<uuid>"),
        (f"head -c {2 * MAX_OUTPUT} /dev/zero | tr '\\0' x\n", f"wrote over {MAX_OUTPUT} bytes"),
        ("printf 'GPU-\\377\\376, 550\\n'\n", "expected 'GPU-<uuid>"),
        ("printf 'GPU-\\377\\376\\n'\n", "expected 'GPU-<uuid>"),
    ],
    ids=["empty", "truncated", "huge", "not-utf8", "not-utf8-truncated"],
)
def test_answers_it_cannot_trust_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, says: str
) -> None:
    root = host_root(tmp_path, devices=True)
    done = gpu_info(capsys, root, script(tmp_path, body))
    assert done.code == 1 and says in done.err and "Traceback" not in done.err, done.err
    assert len(done.err.splitlines()) == 1
    assert left_in(root) == []


def test_a_stalled_nvidia_smi_is_killed_at_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu, "NVIDIA_SMI_SECONDS", 0.5)
    monkeypatch.setattr(gpu._query, "__defaults__", (0.5,))
    root = host_root(tmp_path, devices=True)
    pid_file = tmp_path / "pid"
    smi = script(tmp_path, f"echo $$ > {pid_file}\nexec sleep 30\n")
    start = time.monotonic()
    done = gpu_info(capsys, root, smi)
    assert done.code == 1 and "did not answer within 0.5s" in done.err, done.err
    assert time.monotonic() - start < 10
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # killed and reaped
    assert left_in(root) == []


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_planted_file_is_replaced_never_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    root = host_root(tmp_path, devices=True)
    target = root / GPU_INFO_FILE.lstrip("/")
    target.parent.mkdir(parents=True, mode=0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep")
    if kind == "symlink":
        target.symlink_to(elsewhere)
    else:
        os.mkfifo(target)  # opening it to write would block until a reader comes
    done = gpu_info(capsys, root, fake_smi(tmp_path, SMI_OUTPUT))
    assert done.code == 0, done.err
    assert target.is_file() and not target.is_symlink()
    assert target.read_text().startswith('{"DriverVersion":"550.127.05"')
    assert elsewhere.read_text() == "keep"


def test_a_symlinked_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_root(tmp_path, devices=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "var" / "lib" / "ecs").mkdir(parents=True)
    (root / "var" / "lib" / "ecs" / "gpu").symlink_to(outside)
    done = gpu_info(capsys, root, fake_smi(tmp_path, SMI_OUTPUT))
    assert done.code == 1 and "refusing to follow it" in done.err, done.err
    assert "Traceback" not in done.err and list(outside.iterdir()) == []


@pytest.mark.parametrize("foreign", ["world-writable", "group-writable", "another-uid"])
def test_a_directory_others_can_write_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], foreign: str
) -> None:
    root = host_root(tmp_path, devices=True)
    directory = (root / GPU_INFO_FILE.lstrip("/")).parent
    directory.mkdir(parents=True)
    if foreign == "another-uid":
        if os.geteuid() != 0:
            pytest.fail("the another-uid row needs root to chown (the tests run as root)")
        directory.chmod(0o755)
        os.chown(directory, 65534, 65534)
    else:
        directory.chmod(0o777 if foreign == "world-writable" else 0o775)
    done = gpu_info(capsys, root, fake_smi(tmp_path, SMI_OUTPUT))
    assert done.code == 1 and "writable by no one else" in done.err, done.err
    assert list(directory.iterdir()) == []


def test_devices_are_never_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO named like a device would block any open: only its name is looked at."""
    root = host_root(tmp_path, devices=False)
    os.mkfifo(root / "dev" / "nvidia0")
    done = gpu_info(capsys, root, fake_smi(tmp_path, SMI_OUTPUT))
    assert done.code == 0 and (root / GPU_INFO_FILE.lstrip("/")).exists(), done.err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_killed_midway_leaves_nothing(tmp_path: Path, signum: int, code: int) -> None:
    root = host_root(tmp_path, devices=True)
    pid_file = tmp_path / "pid"
    smi = script(tmp_path, f"echo $$ > {pid_file}\nexec sleep 30\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    argv = [sys.executable, "-m", "nixecs", "gpu-info", "--root", str(root), "--nvidia-smi"]
    process = subprocess.Popen(
        [*argv, str(smi)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == code and "Traceback" not in err, err
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert left_in(root) == []
