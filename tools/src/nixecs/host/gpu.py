"""`nixecs gpu-info`: the NVIDIA GPU file the ECS agent reads, written as ecs-init writes it.

On the ECS-optimized GPU AMI, ecs-init (aws/amazon-ecs-agent v1.105.0
ecs-init/gpu/nvidia_gpu_manager.go `Setup`) looks for /dev/nvidia* devices (none: nothing
to do), asks NVML for the driver version and each GPU's UUID, and saves
`{"DriverVersion": ..., "GPUIDs": [...]}` (Go's json.Marshal of NvidiaGPUManager) to
/var/lib/ecs/gpu/nvidia-gpu-info.json. With ECS_ENABLE_GPU_SUPPORT the agent reads that file
at start (agent/gpu/nvidia_gpu_manager_unix.go `Initialize`) and registers those GPU ids;
without it, no GPUs, and a file it cannot parse stops it (agent/app/agent.go). Here the same
two facts come from `nvidia-smi --query-gpu=uuid,driver_version` (NVML's own front end).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess

from ..atomic import write_atomic
from ..diagnostics import OperationalFailure

GPU_INFO_FILE = "/var/lib/ecs/gpu/nvidia-gpu-info.json"
DEVICE_PATTERN = "/dev/nvidia*"  # ecs-init's NvidiaGPUDeviceFilePattern
QUERY = ("--query-gpu=uuid,driver_version", "--format=csv,noheader")
NVIDIA_SMI_SECONDS = 60


def parse_query(text: str) -> tuple[str, list[str]]:
    """(driver version, GPU UUIDs) from `nvidia-smi --query-gpu=uuid,driver_version` CSV."""
    ids: list[str] = []
    drivers: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 2 or not fields[0].startswith("GPU-") or not fields[1]:
            raise OperationalFailure(f"nvidia-smi line {number}: expected 'GPU-<uuid>, <driver>'")
        ids.append(fields[0])
        drivers.add(fields[1])
    if not ids:
        raise OperationalFailure("nvidia-smi listed no GPU, though /dev/nvidia* exists")
    if len(drivers) != 1:
        raise OperationalFailure(f"nvidia-smi reports several driver versions: {sorted(drivers)}")
    return drivers.pop(), ids


def document(driver: str, ids: list[str]) -> str:
    # Key names and order of ecs-init's struct; compact, as json.Marshal writes it.
    return json.dumps({"DriverVersion": driver, "GPUIDs": ids}, separators=(",", ":"))


def write_gpu_info(root: str, nvidia_smi: str) -> str:
    """Write the file under `root` ("/" on a host); what was done, for the journal."""
    if not glob.glob(os.path.join(root, DEVICE_PATTERN.lstrip("/"))):
        return "no /dev/nvidia* device: nothing written (as ecs-init)"
    try:
        done = subprocess.run(
            [nvidia_smi, *QUERY],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OperationalFailure(f"cannot run {nvidia_smi}: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OperationalFailure(f"{nvidia_smi} failed ({done.returncode}): {last}")
    driver, ids = parse_query(done.stdout)
    target = os.path.join(root, GPU_INFO_FILE.lstrip("/"))
    write_atomic(target, document(driver, ids) + "\n", 0o644, root=root)
    return f"{len(ids)} GPU(s), driver {driver}: wrote {GPU_INFO_FILE}"
