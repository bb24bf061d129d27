"""A task definition's data volumes and its containers' mount points (fleet/volumes.py):
AWS::ECS::TaskDefinition Volume, MountPoint and VolumeFrom."""

from __future__ import annotations

from ..fleet.containers import Container
from ..fleet.model import Service
from ..fleet.volumes import Volume
from .intrinsics import Json


def _volume(volume: Volume) -> dict[str, Json]:
    out: dict[str, Json] = {"Name": volume.name}
    if volume.host_path is not None:
        out["Host"] = {"SourcePath": volume.host_path}
    elif volume.docker is not None:
        docker = volume.docker
        config: dict[str, Json] = {"Scope": docker.scope}
        if docker.scope == "shared":
            config["Autoprovision"] = docker.autoprovision
        if docker.driver is not None:
            config["Driver"] = docker.driver
        if docker.driver_opts:
            config["DriverOpts"] = dict(docker.driver_opts)
        if docker.labels:
            config["Labels"] = dict(docker.labels)
        out["DockerVolumeConfiguration"] = config
    elif volume.efs is not None:
        # Plain NFS: no TransitEncryption, AuthorizationConfig (fleet/volumes.py, E173).
        efs: dict[str, Json] = {"FilesystemId": volume.efs.file_system_id}
        if volume.efs.root_directory is not None:
            efs["RootDirectory"] = volume.efs.root_directory
        out["EFSVolumeConfiguration"] = efs
    return out


def task_volumes(service: Service) -> dict[str, Json]:
    """The task definition's `Volumes`, when it has any."""
    if not service.volumes:
        return {}
    return {"Volumes": [_volume(v) for v in service.volumes]}


def container_mounts(c: Container) -> dict[str, Json]:
    """A container definition's `MountPoints` and `VolumesFrom`, when it has any."""
    out: dict[str, Json] = {}
    if c.mounts:
        out["MountPoints"] = [
            {"SourceVolume": m.volume, "ContainerPath": m.container_path, "ReadOnly": m.read_only}
            for m in c.mounts
        ]
    if c.volumes_from:
        out["VolumesFrom"] = [
            {"SourceContainer": v.container, "ReadOnly": v.read_only} for v in c.volumes_from
        ]
    return out
