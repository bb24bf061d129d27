"""A service's data volumes (`volumes:`) and its containers' `mounts:` and `volumes_from:`
(issue 20, item 1), with the checks ECS would otherwise make at RegisterTaskDefinition or the
agent at task start (E170-E174, W170).

A volume is one of:

- `host_path: /abs/path`: a bind mount of the instance's directory (Volume.host.sourcePath;
  Docker creates it when missing, and it outlives the task);
- `docker: {scope, driver, autoprovision, driver_opts, labels}`: a Docker volume
  (DockerVolumeConfiguration; `scope: task`, the default, is removed with the task);
- `efs: {file_system_id, root_directory}`: an Amazon EFS file system mounted over NFS.

EFS: without the ECS volume plugin the agent mounts an EFS volume through Docker's `local`
driver as plain NFS 4.1 (`type: nfs`, `addr=FS.efs.REGION.amazonaws.com`,
aws/amazon-ecs-agent@8dfceca6 agent/taskresource/volume/dockervolume_efs.go
getDockerLocalDriverOptions; GetDriverOptions picks the plugin only when
ECS_VOLUME_PLUGIN_CAPABILITIES lists `efsAuth`, agent/config/parse.go), and a Linux agent
always advertises `ecs.capability.efs` (agent/app/agent_capability_unix.go
appendEFSCapabilities). Transit encryption (TLS), IAM authorisation and access points are
mount options of the plugin only (getVolumePluginDriverOptions: `tls`, `iam`, `accesspoint`),
which the nixecs host does not ship: ECS would never place such a task (it requires
`ecs.capability.efsAuth`), so they are refused (E173) with the reason. An access point also
needs transit encryption ("If an access point is used, transit encryption must be on",
AWS::ECS::TaskDefinition AuthorizationConfig.AccessPointId).
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import TYPE_CHECKING

from .. import settings as s
from ..diagnostics import Diagnostic
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from .decl import (
    Node,
    as_str,
    boolean,
    check,
    complete,
    either,
    entries,
    enum,
    keys,
    mapping,
    member,
    obj,
    one_of,
    refused,
    req,
    section,
    string,
    strings,
    values,
)
from .yaml12 import Document, Path

if TYPE_CHECKING:
    from .containers import Container
    from .model import Fleet, Service

SERVICE_KEYS = ("volumes",)
CONTAINER_KEYS = ("mounts", "volumes_from")
VOLUME_KEYS = ("host_path", "docker", "efs")
DOCKER_KEYS = ("scope", "driver", "autoprovision", "driver_opts", "labels")
EFS_KEYS = ("file_system_id", "root_directory", "transit_encryption", "iam", "access_point")
MOUNT_KEYS = ("volume", "path", "read_only")
VOLUME_FROM_KEYS = ("container", "read_only")
# DockerVolumeConfiguration.scope (ECS API reference, API_DockerVolumeConfiguration).
SCOPES = ("task", "shared")
# Volume.name: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and
# hyphens are allowed" (ECS API reference, API_Volume).
VOLUME_NAME_RE = lazy(r"[A-Za-z0-9_-]{1,255}")
VOLUME_NAME_RULE = "a volume name: 1-255 letters, digits, _ and -"
# A container's name has the same rule (ContainerDefinition.name, containers.py)
CONTAINER_NAME_RULE = "a container name: 1-255 letters, digits, _ and -"
# An absolute path without control characters: a host path (HostVolumeProperties.sourcePath),
# a container path (MountPoint.containerPath) or an EFS root directory. Docker refuses a
# relative bind source or mount destination ("invalid mount config": must be absolute).
ABSOLUTE_PATH_RE = lazy(r"/[^\x00-\x1f]{0,4095}")
ABSOLUTE_PATH_RULE = "an absolute path (starting with /)"
# EFS FileSystemId and AccessPointId (EFS API reference: fs-[0-9a-f]{8,40},
# fsap-[0-9a-f]{8,40}).
FILE_SYSTEM_RE = lazy(r"fs-[0-9a-f]{8,40}")
ACCESS_POINT_RE = lazy(r"fsap-[0-9a-f]{8,40}")
# A Docker volume driver name as `docker plugin ls` shows it (name[:tag]).
DRIVER_RE = lazy(r"[A-Za-z0-9][A-Za-z0-9_./:-]{0,254}")
NEEDS_PLUGIN = (
    "needs the ECS volume plugin (amazon-ecs-volume-plugin, ECS_VOLUME_PLUGIN_CAPABILITIES "
    "efsAuth), which the nixecs host does not provide yet: ECS would never place the task. "
    "Plain EFS (NFS, without TLS or IAM) works with the agent alone"
)


def absolute_path(doc: str, **kw: object) -> Node:
    """A declared absolute path (E172 outside it): a host path, a container path, an EFS
    root directory, a tmpfs or a device."""
    return string(doc, pattern=ABSOLUTE_PATH_RE.pattern, rule=ABSOLUTE_PATH_RULE, code="E172", **kw)


# The declaration (fleet/decl.py) of `volumes:`; parse_volumes checks it, as it relates the
# keys (exactly one source, autoprovision with its scope).
VOLUMES = mapping(
    "the task's data volumes by name: exactly one of host_path, docker or efs each",
    VOLUME_NAME_RE.pattern,
    obj(
        "a data volume",
        order=VOLUME_KEYS,
        host_path=absolute_path(
            "a directory of the instance, bind-mounted (Docker creates it; it outlives the task)",
            aws="Volume.host.sourcePath",
            example="/var/lib/app",
        ),
        docker=obj(
            "a Docker volume",
            order=DOCKER_KEYS,
            scope=enum(
                "task: removed with the task; shared: kept on the instance",
                SCOPES,
                default="task",
                example="shared",
            ),
            driver=string(
                "the volume driver (default: Docker's local); others must be installed on the host",
                pattern=DRIVER_RE.pattern,
                rule="a Docker volume driver name",
                example="local",
            ),
            autoprovision=boolean(
                "create a shared volume when missing (only with `scope: shared`, else E174)",
                False,
                aws="DockerVolumeConfiguration.autoprovision: only used if the scope is shared",
            ),
            driver_opts=mapping(
                "driver options",
                None,
                string("option value"),
                example={"type": "tmpfs", "device": "tmpfs"},
            ),
            labels=mapping(
                "labels of the volume", None, string("label value"), example={"team": "payments"}
            ),
        ),
        efs=obj(
            "an Amazon EFS file system, mounted over NFS 4.1 by the agent (no TLS or IAM: E173)",
            order=EFS_KEYS,
            file_system_id=req(
                string(
                    "the file system",
                    pattern=FILE_SYSTEM_RE.pattern,
                    rule="fs- and 8-40 hex digits",
                    example="fs-0a1b2c3d",
                )
            ),
            root_directory=absolute_path(
                "the directory of the file system to mount (default: its root)",
                example="/app",
            ),
            transit_encryption=boolean(
                "TLS to the file system: needs the ECS volume plugin, not on the host yet (E173)",
                False,
                example=False,
            ),
            iam=boolean(
                "IAM authorisation with the task role: needs the ECS volume plugin (E173)",
                False,
                example=False,
            ),
            access_point=string(
                "an access point: needs transit encryption, so the ECS volume plugin (E173)",
                pattern=ACCESS_POINT_RE.pattern,
                rule="fsap- and 8-40 hex digits",
                aws="AuthorizationConfig.AccessPointId: transit encryption must be on",
            ),
        ),
    ),
    rule="volume name {name!r} is not valid: 1-255 letters, digits, _ and -",
    code=s.E_NAME,
    min_items=1,
    aws="ECS Volume.name: 1-255 letters, digits, _ and -",
    example={"data": {"host_path": "/var/lib/app"}},
    what="a non-empty mapping of volume names to volumes",
)
VOLUME = one_of(member(VOLUMES), VOLUME_KEYS, only=True)  # parse_volumes' E104 / E102
DOCKER, EFS = VOLUME.keys["docker"], VOLUME.keys["efs"]
MOUNTS = strings(
    "volumes of the service mounted in this container",
    obj(
        "a mount point",
        order=MOUNT_KEYS,
        volume=req(
            string(
                "a volume of the service",
                pattern=VOLUME_NAME_RE.pattern,
                rule=VOLUME_NAME_RULE,
                code=s.E_NAME,
                example="data",
            )
        ),
        path=req(
            absolute_path(
                "where it appears in the container (absolute; one mount per path, else E171)",
                example="/var/lib/app",
            )
        ),
        read_only=boolean("mount it read-only", False, example=False),
    ),
    aws="ECS MountPoint: sourceVolume names a Volume of the task definition",
    example=[{"volume": "data", "path": "/var/lib/app"}],
)
_CONTAINER = string(
    "a container of the task",
    pattern=VOLUME_NAME_RE.pattern,  # ContainerDefinition.name has the same rule
    rule=CONTAINER_NAME_RULE,
    code=s.E_NAME,
    example="log-router",
)
VOLUMES_FROM = strings(
    "containers of the task whose volumes this one mounts too (each once, else E171)",
    either(
        "a container name, or {container, read_only}",
        _CONTAINER,
        obj(
            "a container and how",
            order=VOLUME_FROM_KEYS,
            container=req(_CONTAINER),
            read_only=boolean("mount its volumes read-only", False, example=True),
        ),
    ),
    aws="ECS VolumeFrom",
)
MOUNT = member(MOUNTS)
_SOURCE = member(VOLUMES_FROM).any_of[1]


@dataclass(frozen=True)
class DockerVolume:
    scope: str  # task: removed with the task; shared: kept on the instance
    driver: str | None  # None: Docker's `local`
    autoprovision: bool
    driver_opts: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EfsVolume:
    file_system_id: str
    root_directory: str | None


@dataclass(frozen=True)
class Volume:
    name: str
    host_path: str | None
    docker: DockerVolume | None
    efs: EfsVolume | None
    path: Path


@dataclass(frozen=True)
class Mount:
    volume: str
    container_path: str
    read_only: bool
    path: Path


@dataclass(frozen=True)
class VolumeFrom:
    container: str
    read_only: bool
    path: Path  # where the container is named (E170 points there)


def _string_map(value: object, path: Path, issues: list[Issue]) -> tuple[tuple[str, str], ...]:
    got = s.check_string_map(value, path, issues, value_max=4096, printable=True)
    return tuple(sorted((got or {}).items()))


def _docker(value: object, path: Path, issues: list[Issue]) -> DockerVolume | None:
    before = len(issues)
    m = section(DOCKER, value, path, issues)
    if m is None:
        return None
    driver_opts = _string_map(m.get("driver_opts", {}), (*path, "driver_opts"), issues)
    labels = _string_map(m.get("labels", {}), (*path, "labels"), issues)
    if len(issues) != before or not complete(DOCKER, m):
        return None
    driver = m.get("driver")
    return DockerVolume(
        as_str(m["scope"]),
        as_str(driver) if driver is not None else None,
        m["autoprovision"] is True,
        driver_opts,
        labels,
    )


def _efs(value: object, path: Path, issues: list[Issue]) -> EfsVolume | None:
    before = len(issues)
    m = section(EFS, value, path, issues)
    if m is None:
        return None
    for key in ("transit_encryption", "iam"):
        if m.get(key) is True:
            issues.append(Issue((*path, key), "E173", f"EFS `{key}: true` {NEEDS_PLUGIN}"))
    if "access_point" in m:
        issues.append(
            Issue(
                (*path, "access_point"),
                "E173",
                f"an EFS access point requires transit encryption, which {NEEDS_PLUGIN}",
            )
        )
    if len(issues) != before or "file_system_id" not in m:
        return None
    root = m.get("root_directory")
    return EfsVolume(as_str(m["file_system_id"]), as_str(root) if root is not None else None)


def parse_volumes(value: object, path: Path, issues: list[Issue]) -> tuple[Volume, ...]:
    """`volumes: {NAME: {host_path | docker | efs}}`."""
    named = entries(VOLUMES, value, path, issues, VOLUMES.what)
    result: list[Volume] = []
    for name, item in (named or {}).items():
        where: Path = (*path, name)
        m = keys(VOLUME, item, where, issues)
        if m is None:
            continue
        kinds = [key for key in VOLUME_KEYS if key in m]
        if not kinds and any(refused(issues, (*where, key)) for key in VOLUME_KEYS):
            continue  # the kind written null is the one error
        if len(kinds) != 1:
            # A Volume holds one of host, dockerVolumeConfiguration, efsVolumeConfiguration
            # (AWS::ECS::TaskDefinition Volume).
            issues.append(
                Issue(
                    (*where, kinds[1]) if kinds else where,
                    "E102" if kinds else s.E_MISSING,
                    f"a volume is exactly one of: {', '.join(VOLUME_KEYS)}"
                    + (f" (this one has {' and '.join(kinds)})" if kinds else ""),
                )
            )
            continue
        v = values(VOLUME, m, where, issues)
        host = v.get("host_path")
        docker = _docker(m["docker"], (*where, "docker"), issues) if "docker" in m else None
        efs = _efs(m["efs"], (*where, "efs"), issues) if "efs" in m else None
        if host or docker or efs:
            result.append(
                Volume(name, as_str(host) if host is not None else None, docker, efs, where)
            )
    return tuple(result)


def _list(
    m: dict[str, object], key: str, path: Path, issues: list[Issue], what: str
) -> list[object]:
    raw = m.get(key, [])
    if isinstance(raw, list):
        return raw
    issues.append(
        Issue((*path, key), s.E_TYPE, f"expected a list of {what}, got {s.type_name(raw)}")
    )
    return []


def parse_mounts(
    m: dict[str, object], path: Path, issues: list[Issue]
) -> tuple[tuple[Mount, ...], tuple[VolumeFrom, ...]]:
    """A container's `mounts: [{volume, path, read_only}]` and `volumes_from: [NAME |
    {container, read_only}]` (MountPoint, VolumeFrom), checked against their declarations
    (MOUNTS, VOLUMES_FROM). Whether the names are the task's (E170) and whether two mounts
    take one path (E171) are rules between keys: fleet/checks.py."""
    mounts: list[Mount] = []
    for index, item in enumerate(_list(m, "mounts", path, issues, "mounts")):
        where: Path = (*path, "mounts", index)
        got = section(MOUNT, item, where, issues)
        if got is not None and complete(MOUNT, got):
            mounts.append(
                Mount(as_str(got["volume"]), as_str(got["path"]), got["read_only"] is True, where)
            )
    sources: list[VolumeFrom] = []
    for index, item in enumerate(_list(m, "volumes_from", path, issues, "container names")):
        where = (*path, "volumes_from", index)
        if isinstance(item, dict):
            got = section(_SOURCE, item, where, issues)
            if got is not None and complete(_SOURCE, got):
                named: Path = (*where, "container")
                sources.append(
                    VolumeFrom(as_str(got["container"]), got["read_only"] is True, named)
                )
        else:
            name = check(_SOURCE.keys["container"], item, where, issues)
            if name is not None:
                sources.append(VolumeFrom(as_str(name), False, where))
    return tuple(mounts), tuple(sources)


def mount_target(path: str) -> str:
    """A mount destination as Docker reads it: lexically cleaned (Go's path.Clean: repeated
    slashes, `.` and `..` resolved; moby volume/mounts/linux_parser.go cleans the target before
    it compares or mounts), so `/srv/../tmp`, `//tmp` and `/tmp/.` are all `/tmp`."""
    return posixpath.normpath("/" + path.lstrip("/"))


def check_mount_paths(service: Service, issues: list[Issue]) -> None:
    """E171: two mounts or tmpfs mounts (fleet/linux.py) on one path of a container (Docker
    refuses a duplicate mount point), a mount on the container's root (Docker: "invalid
    specification: destination can't be '/'", for `/`, `//` and `/..` alike: moby
    integration/container/create_test.go TestCreateTmpfsMountsTarget), or volumes_from
    naming one container twice."""
    for c in service.containers:
        seen: set[str] = set()
        targets = [(mount.container_path, mount.path) for mount in c.mounts]
        if c.linux is not None:
            targets += [(tmpfs.container_path, tmpfs.path) for tmpfs in c.linux.tmpfs]
        for target, where in targets:
            normal = mount_target(target)
            if normal == "/":
                issues.append(
                    Issue(
                        (*where, "path"),
                        "E171",
                        f"a mount on {target} is on the container's root: Docker refuses "
                        "the destination /",
                    )
                )
                continue
            if normal in seen:
                issues.append(
                    Issue((*where, "path"), "E171", f"two mounts on {normal} in one container")
                )
            seen.add(normal)
        names: set[str] = set()
        for source in c.volumes_from:
            if source.container in names:
                issues.append(
                    Issue(
                        source.path,
                        "E171",
                        f"volumes_from names container {source.container!r} twice",
                    )
                )
            names.add(source.container)


def check_autoprovision(service: Service, issues: list[Issue]) -> None:
    """E174: autoprovision on a task-scoped Docker volume. "This field is only used if the
    scope is shared" (DockerVolumeConfiguration.autoprovision, ECS API reference);
    RegisterTaskDefinition refuses it with task scope."""
    for volume in service.volumes:
        if (
            volume.docker is not None
            and volume.docker.autoprovision
            and volume.docker.scope == "task"
        ):
            issues.append(
                Issue(
                    (*volume.path, "docker", "autoprovision"),
                    "E174",
                    "autoprovision applies to shared volumes only: set `scope: shared` or remove it",
                )
            )


def with_volumes(
    m: dict[str, object], path: Path, service: Service, issues: list[Issue]
) -> Service:
    """`service` with its `volumes:`."""
    volumes = parse_volumes(m["volumes"], (*path, "volumes"), issues) if "volumes" in m else ()
    return dataclasses.replace(service, volumes=volumes)


def check_references(service: Service, issues: list[Issue]) -> None:
    """E170: every mount names a volume of the service, every volumes_from another container
    of the task (a rule between keys: fleet/checks.py runs it on the loaded fleet)."""
    names = {volume.name for volume in service.volumes}
    containers = {c.name for c in service.containers}
    for c in service.containers:
        for mount in c.mounts:
            if mount.volume not in names:
                issues.append(
                    Issue(
                        (*mount.path, "volume"),
                        "E170",
                        f"no volume {mount.volume!r} in this service"
                        f" (volumes: {', '.join(sorted(names)) or 'none'})",
                    )
                )
        for source in c.volumes_from:
            if source.container == c.name:
                issues.append(
                    Issue(source.path, "E170", f"container {c.name!r} takes volumes from itself")
                )
            elif source.container not in containers:
                issues.append(
                    Issue(
                        source.path,
                        "E170",
                        f"no container {source.container!r} in this service"
                        f" (containers: {', '.join(sorted(containers))})",
                    )
                )


def writable(container: Container, by_name: dict[str, Container]) -> bool:
    """Whether the container can write anywhere but its root filesystem: a writable mount or
    tmpfs (fleet/linux.py), or a writable volumes_from of a container with a writable mount."""
    if any(not mount.read_only for mount in container.mounts):
        return True
    if container.linux is not None and any(t.writable for t in container.linux.tmpfs):
        return True
    return any(
        not source.read_only
        and source.container in by_name
        and any(not mount.read_only for mount in by_name[source.container].mounts)
        for source in container.volumes_from
    )


def lint_volumes(fleet: Fleet) -> list[Diagnostic]:
    """W170: `read_only_root_filesystem: true` and nothing writable mounted: the container
    cannot write anywhere, not even /tmp."""
    return [
        _w170(service, c, fleet.document)
        for cluster in fleet.clusters.values()
        for service in cluster.task_definitions
        for c in service.containers
        if c.read_only_root_filesystem
        and not writable(c, {other.name: other for other in service.containers})
    ]


def lint_shared_volumes(fleet: Fleet) -> list[Diagnostic]:
    """W173, W174: a shared Docker volume is one Docker volume per instance, found by its name
    alone. The agent uses one that exists as it is; only when it is missing does it create it,
    and then only with autoprovision ("initialize volume: volume detection failed, volume
    '%s' does not exist and autoprovision is set to false"); whether an existing volume's
    labels and driver options match the task's is checked only under
    ECS_SHARED_VOLUME_MATCH_FULL_CONFIG, which defaults to false ("only requiring shared
    volumes to match on name, which is default docker behavior"): aws/amazon-ecs-agent
    agent/api/task/task.go addSharedVolumes, agent/config/config_unix.go DefaultConfig.

    - W173: no task definition on the volume's groups autoprovisions it: nixecs hosts create
      no Docker volumes, so the task fails to start on every instance where nothing else has.
    - W174: task definitions that can share an instance (a group in common) declare one
      shared volume name with different driver, options or labels: whichever task starts
      first on an instance makes the volume, and the others get it as it is."""
    found: list[Diagnostic] = []
    for cluster in fleet.clusters.values():
        shared = [
            (service, volume, volume.docker)
            for service in cluster.task_definitions
            for volume in service.volumes
            if volume.docker is not None and volume.docker.scope == "shared"
        ]
        for service, volume, docker in shared:
            others = [
                (other, v, d)
                for other, v, d in shared
                if v.name == volume.name and set(other.groups) & set(service.groups)
            ]
            if not any(d.autoprovision for _, _, d in others):
                found.append(
                    Diagnostic(
                        "W173",
                        f"shared Docker volume {volume.name!r} is not autoprovisioned, and no "
                        "task on its group creates it: the agent starts the task only where "
                        "the volume already exists, and nixecs hosts make none",
                        fleet.document.locate((*volume.path, "docker")),
                    )
                )
            config = (docker.driver or "local", docker.driver_opts, docker.labels)
            differ = sorted(
                {
                    other.name
                    for other, _, d in others
                    if other is not service
                    and (d.driver or "local", d.driver_opts, d.labels) != config
                }
            )
            if differ:
                found.append(
                    Diagnostic(
                        "W174",
                        f"shared Docker volume {volume.name!r} is declared with another driver, "
                        f"options or labels by {', '.join(differ)} on the same group: an "
                        "instance has one volume of that name, made by whichever task starts "
                        "there first, and the agent matches it by name only",
                        fleet.document.locate((*volume.path, "docker")),
                    )
                )
    return found


def _w170(service: Service, c: Container, document: Document) -> Diagnostic:
    return Diagnostic(
        "W170",
        f"container {c.name!r} has a read-only root filesystem and no writable mount: it "
        "cannot write anywhere, not even /tmp; mount a volume (e.g. `docker: {}`, removed "
        "with the task) where it writes",
        document.locate((*c.path, "read_only_root_filesystem")),
    )
