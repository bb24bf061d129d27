"""`nixecs gpu-info` writes the file the ECS agent's GPU support reads, in ecs-init's format
(aws/amazon-ecs-agent v1.105.0 ecs-init/gpu/nvidia_gpu_manager.go: json.Marshal of
{DriverVersion string; GPUIDs []string}; read back by agent/gpu/nvidia_gpu_manager_unix.go)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from aws_fixtures import Result, run_cli
from nixecs.diagnostics import OperationalFailure
from nixecs.host.gpu import GPU_INFO_FILE, parse_query

SMI_OUTPUT = (
    "GPU-4d3a1c2b-0000-1111-2222-333344445555, 550.127.05\n"
    "GPU-9e8f7a6b-6666-7777-8888-999900001111, 550.127.05\n"
)


def fake_smi(tmp_path: Path, output: str, status: int = 0) -> Path:
    smi = tmp_path / "nvidia-smi"
    # Prints only for the exact query ecs-init's facts come from.
    smi.write_text(
        "#!/bin/sh\n"
        '[ "$1" = --query-gpu=uuid,driver_version ] && [ "$2" = --format=csv,noheader ] || exit 9\n'
        f"printf '%s' '{output}'\nexit {status}\n"
    )
    smi.chmod(0o755)
    return smi


def gpu_info(
    capsys: pytest.CaptureFixture[str], root: Path, output: str = "", status: int = 1
) -> Result:
    """`nixecs gpu-info` under `root` with a fake nvidia-smi beside it (by default one that
    fails: for the cases that must not run it)."""
    smi = fake_smi(root.parent, output, status)
    return run_cli(capsys, ["gpu-info", "--root", str(root), "--nvidia-smi", str(smi)])


def host_root(tmp_path: Path, devices: bool, gpu_dir_mode: int | None = None) -> Path:
    """A host's root; with `gpu_dir_mode`, /var/lib/ecs/gpu already there in that mode."""
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    if devices:
        (root / "dev" / "nvidia0").touch()
        (root / "dev" / "nvidiactl").touch()
    if gpu_dir_mode is not None:
        gpu_dir = root / GPU_INFO_FILE.lstrip("/")
        gpu_dir.parent.mkdir(parents=True)
        gpu_dir.parent.chmod(gpu_dir_mode)
    return root


def test_writes_the_agents_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = host_root(tmp_path, devices=True)
    result = gpu_info(capsys, root, SMI_OUTPUT, 0)
    assert result.code == 0, result.err
    written = root / GPU_INFO_FILE.lstrip("/")
    assert json.loads(written.read_text()) == {
        "DriverVersion": "550.127.05",
        "GPUIDs": [
            "GPU-4d3a1c2b-0000-1111-2222-333344445555",
            "GPU-9e8f7a6b-6666-7777-8888-999900001111",
        ],
    }
    assert written.read_text().startswith('{"DriverVersion":')  # Go's field order
    assert "2 GPU(s)" in result.err
    # ecs-init's FilePerm 0700 for the directory; the file only readable by root (the agent).
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700


def test_a_directory_an_earlier_release_made_0755_is_tightened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_root(tmp_path, devices=True, gpu_dir_mode=0o755)
    result = gpu_info(capsys, root, SMI_OUTPUT, 0)
    assert result.code == 0, result.err
    assert stat.S_IMODE((root / GPU_INFO_FILE.lstrip("/")).parent.stat().st_mode) == 0o700


def test_without_devices_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_root(tmp_path, devices=False)
    result = gpu_info(capsys, root)  # never run
    assert result.code == 0 and "nothing written" in result.err
    assert not (root / GPU_INFO_FILE.lstrip("/")).exists()


def test_without_devices_a_stale_file_is_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The instance type changed from a GPU type to one without (same root volume): the file
    # of the old GPUs would make the agent register GPUs that are not there.
    root = host_root(tmp_path, devices=False, gpu_dir_mode=0o700)
    stale = root / GPU_INFO_FILE.lstrip("/")
    stale.write_text('{"DriverVersion":"550.127.05","GPUIDs":["GPU-4d3a1c2b"]}\n')
    result = gpu_info(capsys, root)  # never run
    assert result.code == 0 and "removed the stale" in result.err, result.err
    assert not stale.exists() and stale.parent.is_dir()


def test_a_symlinked_gpu_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_root(tmp_path, devices=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "nvidia-gpu-info.json").write_text("{}")
    gpu_dir = root / GPU_INFO_FILE.lstrip("/")
    gpu_dir.parent.parent.mkdir(parents=True)
    gpu_dir.parent.symlink_to(elsewhere)
    result = gpu_info(capsys, root)
    assert result.code == 1 and "cannot remove" in result.err and "Traceback" not in result.err
    assert (elsewhere / "nvidia-gpu-info.json").exists()


def test_a_failing_nvidia_smi_writes_nothing_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_root(tmp_path, devices=True)
    result = gpu_info(capsys, root, "NVIDIA-SMI has failed", 12)
    assert result.code == 1 and "failed (12)" in result.err and "Traceback" not in result.err
    assert not (root / GPU_INFO_FILE.lstrip("/")).exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no GPU"),
        (
            "GPU-4d3a1c2b-0000-1111-2222-333344445555, 1.0\n"
            "GPU-9e8f7a6b-6666-7777-8888-999900001111, 2.0\n",
            "several driver versions",
        ),
        ("GPU-a, 1.0\n", "expected 'GPU-<uuid>, <driver>'"),
        ("GPU-4d3a1c2b-0000-1111-2222-333344445555, 550; rm\n", "expected 'GPU-<uuid>"),
        ("0, 1.0\n", "expected 'GPU-<uuid>, <driver>'"),
        ("GPU-a\n", "expected 'GPU-<uuid>, <driver>'"),
    ],
)
def test_output_it_cannot_read_is_refused(text: str, message: str) -> None:
    with pytest.raises(OperationalFailure) as caught:
        parse_query(text)
    assert message in str(caught.value)
