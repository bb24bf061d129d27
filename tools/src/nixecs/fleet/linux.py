"""A container's Linux parameters, Docker labels and privileged mode (issue 20, item 5):
`linux: {init_process, capabilities: {add, drop}, shared_memory_mib, tmpfs, devices}`,
`docker_labels:` and `privileged:` (E179, E180; paths E171/E172 as for mounts).

The values are the ECS API's: KernelCapabilities add/drop "Valid values" (API_KernelCapabilities),
Tmpfs mountOptions "Valid values" (API_Tmpfs; the options mode, uid, gid, nr_inodes,
nr_blocks and mpol take `=VALUE`), Device permissions read, write, mknod (API_Device).
`privileged: true` runs only where the agent allows it (ECS_DISABLE_PRIVILEGED false: the
group's `ecs.privileged: true`); elsewhere ECS would never place the task (E180).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import settings as s
from ..lazyre import lazy
from ..settings import Issue
from .volumes import ABSOLUTE_PATH_RE, ABSOLUTE_PATH_RULE
from .yaml12 import Path

if TYPE_CHECKING:
    from .model import Cluster

CONTAINER_KEYS = ("linux", "docker_labels", "privileged")
LINUX_KEYS = ("init_process", "capabilities", "shared_memory_mib", "tmpfs", "devices")
TMPFS_KEYS = ("path", "size_mib", "options")
DEVICE_KEYS = ("host_path", "container_path", "permissions")
# API_KernelCapabilities, add/drop "Valid values".
CAPABILITIES = (
    "ALL", "AUDIT_CONTROL", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE",
    "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN",
    "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE",
    "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
)  # fmt: skip
# API_Tmpfs mountOptions "Valid values"; the last six take a value.
TMPFS_OPTIONS = (
    "defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync",
    "async", "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime",
    "nodiratime", "bind", "rbind", "unbindable", "runbindable", "private", "rprivate",
    "shared", "rshared", "slave", "rslave", "relatime", "norelatime", "strictatime",
    "nostrictatime", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol",
)  # fmt: skip
VALUED_OPTIONS = ("mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
TMPFS_OPTION_RE = lazy(
    "|".join(o for o in TMPFS_OPTIONS if o not in VALUED_OPTIONS)
    + "|(?:"
    + "|".join(VALUED_OPTIONS)
    + r")(?:=[A-Za-z0-9:,._-]{1,64})?"
)
PERMISSIONS = ("read", "write", "mknod")
SIZE_MAX = 1048576  # MiB, the bound of a container's memory
LABEL_KEY_RE = lazy(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")


@dataclass(frozen=True)
class Tmpfs:
    container_path: str
    size_mib: int
    options: tuple[str, ...]
    path: Path

    @property
    def writable(self) -> bool:
        return "ro" not in self.options


@dataclass(frozen=True)
class Device:
    host_path: str
    container_path: str | None
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class LinuxParameters:
    init_process: bool | None = None
    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    shared_memory_mib: int | None = None
    tmpfs: tuple[Tmpfs, ...] = ()
    devices: tuple[Device, ...] = ()


def _list(value: object, path: Path, issues: list[Issue], what: str) -> list[object]:
    if isinstance(value, list):
        return value
    issues.append(Issue(path, s.E_TYPE, f"expected a list of {what}, got {s.type_name(value)}"))
    return []


def _capabilities(
    value: object, path: Path, issues: list[Issue]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    m = s.check_mapping(value, path, issues, ("add", "drop"))
    if m is None:
        return (), ()
    found: dict[str, list[str]] = {"add": [], "drop": []}
    for key in ("add", "drop"):
        for index, item in enumerate(_list(m.get(key, []), (*path, key), issues, "capabilities")):
            where: Path = (*path, key, index)
            name = s.check_enum(item, where, issues, CAPABILITIES)
            if name is None:
                continue
            if name in found[key]:
                issues.append(Issue(where, "E179", f"capability {name} is listed twice"))
                continue
            other = "drop" if key == "add" else "add"
            if key == "drop" and name in found[other]:
                issues.append(Issue(where, "E179", f"capability {name} is both added and dropped"))
                continue
            found[key].append(name)
    return tuple(found["add"]), tuple(found["drop"])


def _tmpfs(value: object, path: Path, issues: list[Issue]) -> tuple[Tmpfs, ...]:
    found: list[Tmpfs] = []
    for index, item in enumerate(_list(value, path, issues, "tmpfs mounts")):
        where: Path = (*path, index)
        m = s.check_mapping(item, where, issues, TMPFS_KEYS, ("path", "size_mib"))
        if m is None or "path" not in m or "size_mib" not in m:
            continue
        target = s.check_pattern(
            m["path"], (*where, "path"), issues, ABSOLUTE_PATH_RE, ABSOLUTE_PATH_RULE, "E172"
        )
        size = s.check_int(m["size_mib"], (*where, "size_mib"), issues, 1, SIZE_MAX)
        options: list[str] = []
        for n, option in enumerate(
            _list(m.get("options", []), (*where, "options"), issues, "mount options")
        ):
            got = s.check_pattern(
                option, (*where, "options", n), issues, TMPFS_OPTION_RE,
                f"a tmpfs mount option ECS allows: {', '.join(TMPFS_OPTIONS)} (mode=1777 and the like)",
            )  # fmt: skip
            if got is not None:
                options.append(got)
        if target is not None and size is not None:
            found.append(Tmpfs(target, size, tuple(options), where))
    return tuple(found)


def _devices(value: object, path: Path, issues: list[Issue]) -> tuple[Device, ...]:
    found: list[Device] = []
    for index, item in enumerate(_list(value, path, issues, "devices")):
        where: Path = (*path, index)
        m = s.check_mapping(item, where, issues, DEVICE_KEYS, ("host_path",))
        if m is None or "host_path" not in m:
            continue
        host = s.check_pattern(
            m["host_path"],
            (*where, "host_path"),
            issues,
            ABSOLUTE_PATH_RE,
            ABSOLUTE_PATH_RULE,
            "E172",
        )
        inside = (
            s.check_pattern(m["container_path"], (*where, "container_path"), issues, ABSOLUTE_PATH_RE, ABSOLUTE_PATH_RULE, "E172")
            if "container_path" in m
            else None
        )  # fmt: skip
        permissions: list[str] = []
        for n, item2 in enumerate(
            _list(m.get("permissions", []), (*where, "permissions"), issues, "permissions")
        ):
            got = s.check_enum(item2, (*where, "permissions", n), issues, PERMISSIONS)
            if got is not None and got not in permissions:
                permissions.append(got)
        if host is not None:
            found.append(Device(host, inside, tuple(permissions)))
    return tuple(found)


def parse_linux(
    m: dict[str, object], path: Path, issues: list[Issue]
) -> tuple[LinuxParameters | None, tuple[tuple[str, str], ...], bool]:
    """A container's `linux:`, `docker_labels:` and `privileged:` (a tmpfs on a path a mount
    takes is the checks stage's: volumes.check_mount_paths)."""
    linux: LinuxParameters | None = None
    if "linux" in m:
        where: Path = (*path, "linux")
        got = s.check_mapping(m["linux"], where, issues, LINUX_KEYS)
        if got is not None:
            init = (
                s.check_bool(got["init_process"], (*where, "init_process"), issues)
                if "init_process" in got
                else None
            )
            add, drop = (
                _capabilities(got["capabilities"], (*where, "capabilities"), issues)
                if "capabilities" in got
                else ((), ())
            )
            shm = (
                s.check_int(
                    got["shared_memory_mib"], (*where, "shared_memory_mib"), issues, 1, SIZE_MAX
                )
                if "shared_memory_mib" in got
                else None
            )
            tmpfs = _tmpfs(got["tmpfs"], (*where, "tmpfs"), issues) if "tmpfs" in got else ()
            devices = (
                _devices(got["devices"], (*where, "devices"), issues) if "devices" in got else ()
            )
            linux = LinuxParameters(init, add, drop, shm, tmpfs, devices)
    labels = s.check_string_map(
        m.get("docker_labels", {}),
        (*path, "docker_labels"),
        issues,
        key_rule=(LABEL_KEY_RE, "1-255 letters, digits, . _ / -"),
        value_max=4096,
        printable=True,
    )
    privileged = s.check_bool(m.get("privileged", False), (*path, "privileged"), issues)
    return linux, tuple(sorted((labels or {}).items())), bool(privileged)


def check_privileged(clusters: Mapping[str, Cluster], issues: list[Issue]) -> None:
    """E180: a privileged container on a group whose agent refuses privileged containers
    (every group of the service's capacity provider strategy may run it)."""
    for cluster in clusters.values():
        tasks = [scheduled.task for scheduled in cluster.tasks.values()]
        for service in [*cluster.services.values(), *tasks]:
            group = next(
                (
                    cluster.groups[name]
                    for name in service.groups
                    if name in cluster.groups and not cluster.groups[name].ecs.privileged
                ),
                None,
            )
            if group is None:
                continue
            for c in service.containers:
                if c.privileged:
                    issues.append(
                        Issue(
                            (*c.path, "privileged"),
                            "E180",
                            f"group {group.name!r} does not allow privileged containers "
                            "(ECS_DISABLE_PRIVILEGED): set its `ecs.privileged: true`, or drop this",
                        )
                    )
