"""A container definition's LinuxParameters, DockerLabels and Privileged (fleet/linux.py)."""

from __future__ import annotations

from ..fleet.containers import Container
from .intrinsics import Json


def container_linux(c: Container) -> dict[str, Json]:
    out: dict[str, Json] = {}
    linux = c.linux
    if linux is not None:
        parameters: dict[str, Json] = {}
        if linux.init_process is not None:
            parameters["InitProcessEnabled"] = linux.init_process
        if linux.add or linux.drop:
            capabilities: dict[str, Json] = {}
            if linux.add:
                capabilities["Add"] = list(linux.add)
            if linux.drop:
                capabilities["Drop"] = list(linux.drop)
            parameters["Capabilities"] = capabilities
        if linux.shared_memory_mib is not None:
            parameters["SharedMemorySize"] = linux.shared_memory_mib
        if linux.tmpfs:
            parameters["Tmpfs"] = [
                {"ContainerPath": t.container_path, "Size": t.size_mib}
                | ({"MountOptions": list(t.options)} if t.options else {})
                for t in linux.tmpfs
            ]
        if linux.devices:
            parameters["Devices"] = [
                {"HostPath": d.host_path}
                | ({"ContainerPath": d.container_path} if d.container_path else {})
                | ({"Permissions": list(d.permissions)} if d.permissions else {})
                for d in linux.devices
            ]
        if parameters:
            out["LinuxParameters"] = parameters
    if c.docker_labels:
        out["DockerLabels"] = dict(c.docker_labels)
    if c.privileged:
        out["Privileged"] = True
    return out
