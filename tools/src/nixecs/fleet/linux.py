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
from typing import TYPE_CHECKING

from .. import settings as s
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from .decl import (
    Node,
    as_int,
    as_str,
    boolean,
    check,
    complete,
    enum,
    integer,
    member,
    obj,
    req,
    section,
    string,
    strings,
)
from .volumes import absolute_path
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
TMPFS_OPTION_RULE = (
    f"a tmpfs mount option ECS allows: {', '.join(TMPFS_OPTIONS)} (mode=1777 and the like)"
)

LINUX = obj(
    "Linux parameters of the container (ECS LinuxParameters)",
    order=LINUX_KEYS,
    init_process=boolean(
        "run an init process that reaps zombies and forwards signals (--init)", None, example=True
    ),
    capabilities=obj(
        "kernel capabilities added to or dropped from Docker's default set (API_KernelCapabilities values; each once, not in both: E179)",
        order=("add", "drop"),
        add=strings(
            "capabilities to add",
            enum("a capability", CAPABILITIES),
            unique=True,  # E179: a capability listed twice
            example=["NET_ADMIN"],
            what="a list of capabilities",
        ),
        drop=strings(
            "capabilities to drop",
            enum("a capability", CAPABILITIES),
            unique=True,  # E179: a capability listed twice
            example=["ALL"],
            what="a list of capabilities",
        ),
    ),
    shared_memory_mib=integer(
        "/dev/shm size (MiB)", 1, SIZE_MAX, aws="LinuxParameters.sharedMemorySize", example=64
    ),
    tmpfs=strings(
        "tmpfs mounts (writable: they answer W170)",
        obj(
            "a tmpfs mount",
            order=TMPFS_KEYS,
            path=req(
                absolute_path(
                    "where (absolute; not a path a mount takes: E171)",
                    example="/tmp",
                )
            ),
            size_mib=req(integer("its size (MiB)", 1, SIZE_MAX, example=64)),
            options=strings(
                "mount options",
                string(
                    "an option ECS allows (mode=1777 and the like)",
                    pattern=TMPFS_OPTION_RE.pattern,
                    rule=TMPFS_OPTION_RULE,
                ),
                aws="API_Tmpfs mountOptions: the valid values",
                example=["noexec", "mode=1777"],
            ),
        ),
        example=[{"path": "/tmp", "size_mib": 64}],
    ),
    devices=strings(
        "host devices exposed to the container",
        obj(
            "a device",
            order=DEVICE_KEYS,
            host_path=req(
                absolute_path(
                    "the device on the host",
                    example="/dev/fuse",
                )
            ),
            container_path=absolute_path(
                "where in the container (default: the same)",
                example="/dev/fuse",
            ),
            permissions=strings(
                "read, write, mknod (default: all three)",
                enum("a permission", PERMISSIONS),
                example=["read", "write"],
            ),
        ),
    ),
)
CAPABILITY_LISTS = LINUX.keys["capabilities"]
TMPFS = member(LINUX.keys["tmpfs"])
DEVICE = member(LINUX.keys["devices"])


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
    m = section(CAPABILITY_LISTS, value, path, issues)
    if m is None:
        return (), ()
    found: dict[str, list[str]] = {"add": [], "drop": []}
    for key in ("add", "drop"):
        item_node = member(CAPABILITY_LISTS.keys[key])
        for index, item in enumerate(_list(m.get(key, []), (*path, key), issues, "capabilities")):
            where: Path = (*path, key, index)
            checked = check(item_node, item, where, issues)
            if checked is None:
                continue
            name = as_str(checked)
            # each list's own rule (its items), and add against drop
            if name in found[key]:
                issues.append(Issue(where, "E179", f"capability {name} is listed twice"))
                continue
            other = "drop" if key == "add" else "add"
            if key == "drop" and name in found[other]:
                issues.append(Issue(where, "E179", f"capability {name} is both added and dropped"))
                continue
            found[key].append(name)
    return tuple(found["add"]), tuple(found["drop"])


def _strings(
    m: dict[str, object], node: Node, key: str, path: Path, issues: list[Issue], what: str
) -> tuple[str, ...]:
    """The items of list `key` of a declared object `node` that pass their declaration."""
    item = member(node.keys[key])
    found = [
        check(item, value, (*path, key, n), issues)
        for n, value in enumerate(_list(m.get(key, []), (*path, key), issues, what))
    ]
    return tuple(as_str(f) for f in found if f is not None)


def _tmpfs(value: object, path: Path, issues: list[Issue]) -> tuple[Tmpfs, ...]:
    found: list[Tmpfs] = []
    for index, item in enumerate(_list(value, path, issues, "tmpfs mounts")):
        where: Path = (*path, index)
        m = section(TMPFS, item, where, issues)
        if m is None:
            continue
        options = _strings(m, TMPFS, "options", where, issues, "mount options")
        if complete(TMPFS, m):
            found.append(Tmpfs(as_str(m["path"]), as_int(m["size_mib"]), options, where))
    return tuple(found)


def _devices(value: object, path: Path, issues: list[Issue]) -> tuple[Device, ...]:
    found: list[Device] = []
    for index, item in enumerate(_list(value, path, issues, "devices")):
        where: Path = (*path, index)
        m = section(DEVICE, item, where, issues)
        if m is None:
            continue
        # a permission written twice is given once
        permissions = tuple(
            dict.fromkeys(_strings(m, DEVICE, "permissions", where, issues, "permissions"))
        )
        inside = m.get("container_path")
        if complete(DEVICE, m):
            found.append(
                Device(
                    as_str(m["host_path"]),
                    as_str(inside) if inside is not None else None,
                    permissions,
                )
            )
    return tuple(found)


def parse_linux(
    v: dict[str, object], path: Path, issues: list[Issue]
) -> tuple[LinuxParameters | None, tuple[tuple[str, str], ...], bool]:
    """A container's `linux:`, `docker_labels:` and `privileged:` (`v`: the container's
    values checked against its declaration; a tmpfs on a path a mount takes is the checks
    stage's: volumes.check_mount_paths)."""
    linux: LinuxParameters | None = None
    if "linux" in v:
        where: Path = (*path, "linux")
        got = section(LINUX, v["linux"], where, issues)
        if got is not None:
            init, shm = got.get("init_process"), got.get("shared_memory_mib")
            add, drop = (
                _capabilities(got["capabilities"], (*where, "capabilities"), issues)
                if "capabilities" in got
                else ((), ())
            )
            tmpfs = _tmpfs(got["tmpfs"], (*where, "tmpfs"), issues) if "tmpfs" in got else ()
            devices = (
                _devices(got["devices"], (*where, "devices"), issues) if "devices" in got else ()
            )
            linux = LinuxParameters(
                init if isinstance(init, bool) else None,
                add,
                drop,
                as_int(shm) if shm is not None else None,
                tmpfs,
                devices,
            )
    # docker_labels: settings' string map (control characters, lengths) with the declared
    # key pattern
    labels = s.check_string_map(
        v.get("docker_labels", {}),
        (*path, "docker_labels"),
        issues,
        key_rule=(LABEL_KEY_RE, "1-255 letters, digits, . _ / -"),
        value_max=4096,
        printable=True,
    )
    return linux, tuple(sorted((labels or {}).items())), v.get("privileged") is True


def check_privileged(clusters: Mapping[str, Cluster], issues: list[Issue]) -> None:
    """E180: a privileged container on a group whose agent refuses privileged containers
    (every group of the service's capacity provider strategy may run it)."""
    for cluster in clusters.values():
        for service in cluster.task_definitions:
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
