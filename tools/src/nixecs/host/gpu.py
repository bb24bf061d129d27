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

from ..atomic import open_directory, open_existing_directory, write_atomic
from ..diagnostics import OperationalFailure

GPU_INFO_DIR = "/var/lib/ecs/gpu"
GPU_INFO_FILE = GPU_INFO_DIR + "/nvidia-gpu-info.json"
# ecs-init's FilePerm 0700 (ecs-init/gpu/nvidia_gpu_manager.go WriteToFile: the directory and
# the file); only root (the agent) reads them. The file is not a program: 0600.
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
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
        try:
            removed = remove_stale(root)
        except OSError as error:  # a symlink on the way (UnsafePath), permissions
            raise OperationalFailure(f"cannot remove {GPU_INFO_FILE}: {error}") from None
        if removed:
            return f"no /dev/nvidia* device: removed the stale {GPU_INFO_FILE}"
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
    try:
        save(root, document(driver, ids) + "\n")
    except OSError as error:  # a symlink on the way (UnsafePath), a full disk
        raise OperationalFailure(f"cannot write {GPU_INFO_FILE}: {error}") from None
    return f"{len(ids)} GPU(s), driver {driver}: wrote {GPU_INFO_FILE}"


def save(root: str, text: str) -> None:
    directory_path = os.path.join(root, GPU_INFO_DIR.lstrip("/"))
    directory = open_directory(directory_path, root, last_mode=DIRECTORY_MODE)
    try:  # also one an earlier release created 0755
        os.fchmod(directory, DIRECTORY_MODE)
    finally:
        os.close(directory)
    write_atomic(os.path.join(root, GPU_INFO_FILE.lstrip("/")), text, FILE_MODE, root=root)


def remove_stale(root: str) -> bool:
    """Remove a file left from when the instance had GPUs (its type changed, the root volume
    stayed): ecs-init writes nothing without devices but leaves an old file, which the agent
    would read and register GPUs that are not there. True when one was removed."""
    try:
        directory = open_existing_directory(root, GPU_INFO_DIR.strip("/").split("/"))
    except FileNotFoundError:
        return False
    try:
        os.unlink(os.path.basename(GPU_INFO_FILE), dir_fd=directory)
    except FileNotFoundError:
        return False
    finally:
        os.close(directory)
    return True
