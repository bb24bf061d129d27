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
import re
import subprocess

from ..atomic import open_directory, open_existing_directory, write_atomic
from ..diagnostics import OperationalFailure
from ..signals import terminating

GPU_INFO_DIR = "/var/lib/ecs/gpu"
GPU_INFO_FILE = GPU_INFO_DIR + "/nvidia-gpu-info.json"
# ecs-init's FilePerm 0700 (ecs-init/gpu/nvidia_gpu_manager.go WriteToFile: the directory and
# the file); only root (the agent) reads them. The file is not a program: 0600.
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
DEVICE_PATTERN = "/dev/nvidia*"  # ecs-init's NvidiaGPUDeviceFilePattern
QUERY = ("--query-gpu=uuid,driver_version", "--format=csv,noheader")
NVIDIA_SMI_SECONDS = 60
# NVML's UUID form (nvmlDeviceGetUUID: "GPU-" and a hex UUID) and a driver version (digits
# and dots, e.g. 550.127.05): anything else is not nvidia-smi's answer to the query.
UUID_RE = re.compile(r"GPU-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
DRIVER_RE = re.compile(r"[0-9]+(?:\.[0-9]+){0,3}")
MAX_OUTPUT = 1 << 20  # bytes of nvidia-smi output read at most (a line a GPU is expected)


def parse_query(text: str) -> tuple[str, list[str]]:
    """(driver version, GPU UUIDs) from `nvidia-smi --query-gpu=uuid,driver_version` CSV."""
    ids: list[str] = []
    drivers: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if (
            len(fields) != 2
            or not UUID_RE.fullmatch(fields[0])
            or not DRIVER_RE.fullmatch(fields[1])
        ):
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


def _query(nvidia_smi: str, seconds: float = NVIDIA_SMI_SECONDS) -> str:
    """nvidia-smi's answer, bounded: at most MAX_OUTPUT bytes read (a few lines a GPU are
    expected; more is refused without holding it in memory) and `seconds` to answer, after
    which it is killed. Bytes that are not UTF-8 are replaced (parse_query then refuses them)."""
    import selectors
    import time

    try:
        process = subprocess.Popen(
            [nvidia_smi, *QUERY], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as error:
        raise OperationalFailure(f"cannot run {nvidia_smi}: {error}") from None
    with process, terminating():
        assert process.stdout is not None and process.stderr is not None
        chunks: dict[int, list[bytes]] = {1: [], 2: []}
        sizes = {1: 0, 2: 0}
        end = time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, 1)
            selector.register(process.stderr, selectors.EVENT_READ, 2)
            try:
                while selector.get_map():
                    left = end - time.monotonic()
                    if left <= 0:
                        raise OperationalFailure(
                            f"{nvidia_smi} did not answer within {seconds:g}s: killed"
                        )
                    for key, _ in selector.select(left):
                        data = os.read(key.fd, 65536)
                        if not data:
                            selector.unregister(key.fileobj)
                            continue
                        sizes[key.data] += len(data)
                        if sizes[key.data] > MAX_OUTPUT:
                            raise OperationalFailure(
                                f"{nvidia_smi} wrote over {MAX_OUTPUT} bytes: not its answer "
                                "to the query; killed"
                            )
                        chunks[key.data].append(data)
                code = process.wait(max(end - time.monotonic(), 0.1))
            except BaseException:
                process.kill()  # also on SIGINT/SIGTERM: no nvidia-smi left behind
                raise
    out, err = (b"".join(chunks[n]).decode("utf-8", "replace") for n in (1, 2))
    if code != 0:
        last = (err.strip().splitlines() or ["no output"])[-1][:200]
        raise OperationalFailure(f"{nvidia_smi} failed ({code}): {last}")
    return out


def _check_directory(root: str, directory: str) -> None:
    """The file's directory, reached without following symlinks under `root`, must be ours
    and writable by nobody else: whoever can rename entries there can swap the file the agent
    trusts for GPU ids (as for the secrets directory, host/secrets.py)."""
    fd = open_directory(directory, root, 0o755, last_mode=DIRECTORY_MODE)
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o022:
            raise OperationalFailure(
                f"{directory} is owned by uid {info.st_uid} with mode "
                f"{info.st_mode & 0o7777:04o}: it must belong to uid {os.geteuid()} and be "
                "writable by no one else; not writing the GPU file there"
            )
        os.fchmod(fd, DIRECTORY_MODE)  # ecs-init's 0700, also where a release made it 0755
    finally:
        os.close(fd)


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
    driver, ids = parse_query(_query(nvidia_smi))
    target = os.path.join(root, GPU_INFO_FILE.lstrip("/"))
    try:
        _check_directory(root, os.path.dirname(target))
        write_atomic(target, document(driver, ids) + "\n", FILE_MODE, root=root)
    except OSError as error:  # a symlinked directory on the way (UnsafePath), a full disk
        raise OperationalFailure(f"cannot write {target}: {error.strerror or error}") from None
    return f"{len(ids)} GPU(s), driver {driver}: wrote {GPU_INFO_FILE}"


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
