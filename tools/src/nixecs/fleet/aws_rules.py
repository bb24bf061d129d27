"""Offline checks of what AWS would refuse or silently ignore, run by `validate` and `render`
after the schema (the loader) and the scaling rules (nixecs.scaling).

Each check says where in the fleet file the problem is; docs/aws.md cites the AWS behaviour
behind each code.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..diagnostics import Diagnostic, Location
from ..lazyre import lazy
from ..records import dataclass
from ..settings import GROUP_ATTRIBUTE, duration_seconds, instance_attributes
from .model import Cluster, Fleet, Group, Service
from .yaml12 import Path

Locate = Callable[[Path], Location]

# The Docker reference grammar, from distribution/reference regexp.go (commit 00a09fa3):
# name components are lower-case alphanumerics joined by one `.`, one or two `_` or any
# number of `-`; an optional domain (DNS-like components, or [IPv6]) with optional port;
# an optional `:tag` of `[\w][\w.-]{0,127}` and an optional `@algorithm:hex` digest of at
# least 32 hex digits. (Go's \w is ASCII.) reference.go's NameTotalLengthMax = 255 needs no
# check here: the loader already limits the whole reference to 255 characters.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])"
_NAME = rf"(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE_RE = lazy(rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")


@dataclass(frozen=True)
class InstanceType:
    vcpus: int | None
    memory_mib: int | None
    architectures: frozenset[str]
    gpus: int | None = None  # NVIDIA GPUs (DescribeInstanceTypes GpuInfo); None: not measured


@dataclass(frozen=True)
class Tables:
    """tools/gen_aws_tables.py's output: regions, instance types, per-region offerings."""

    sources: dict[str, str]
    regions: frozenset[str]
    types: Mapping[str, InstanceType]
    offered: Mapping[str, frozenset[str]]


class _Offered(Mapping[str, frozenset[str]]):
    """region → the instance types offered there, decoded from its bit mask when first asked:
    a fleet names one region, and decoding all of them was most of `validate`'s checks."""

    def __init__(self, names: list[str], masks: dict[str, str]) -> None:
        self._names = names
        self._masks = masks
        self._decoded: dict[str, frozenset[str]] = {}

    def __getitem__(self, region: str) -> frozenset[str]:
        found = self._decoded.get(region)
        if found is None:
            bits = int(self._masks[region], 16)
            found = frozenset(n for i, n in enumerate(self._names) if bits >> i & 1)
            self._decoded[region] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)


class _Types(Mapping[str, InstanceType]):
    """name → instance type, each made when first asked: a fleet names a few of the ~900
    types, and making all of them was half of reading the tables (`validate`, issue 18)."""

    def __init__(self, raw: dict[str, list[Any]]) -> None:
        self._raw = raw
        self._made: dict[str, InstanceType] = {}

    def __getitem__(self, name: str) -> InstanceType:
        found = self._made.get(name)
        if found is None:
            vcpus, mib, arch, gpus = self._raw[name]
            found = InstanceType(vcpus, mib, frozenset(a for a in arch.split(",") if a), gpus)
            self._made[name] = found
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@functools.cache
def tables() -> Tables:
    # A plain read next to this module (the package is a directory, in the Nix store too):
    # importlib.resources would cost validate more than the read itself.
    with open(os.path.join(os.path.dirname(__file__), "aws_tables.json"), encoding="utf-8") as f:
        raw = json.load(f)
    names = sorted(raw["types"])
    types = _Types(raw["types"])
    offered = _Offered(names, raw["offered"])
    regions = frozenset(r for partition in raw["regions"].values() for r in partition)
    return Tables(raw["sources"], regions, types, offered)


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib  # only when a finding wants a "did you mean"

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_region(fleet: Fleet, locate: Locate) -> list[Diagnostic]:
    """E127: the fleet's region is one where botocore knows an ECS endpoint."""
    known = tables().regions
    if fleet.region in known:
        return []
    return [
        Diagnostic(
            "E127",
            f"{fleet.region!r} is not an AWS region with ECS (botocore {tables().sources['botocore']})"
            + _did_you_mean(fleet.region, sorted(known)),
            locate(("region",)),
        )
    ]


def check_instance_types(fleet: Fleet, group: Group, locate: Locate) -> list[Diagnostic]:
    """E123 unknown type, E124 not offered in the fleet's region, E129 one group whose
    types need different AMIs (one AMI has one architecture)."""
    data = tables()
    found: list[Diagnostic] = []
    offered = data.offered.get(fleet.region)
    for index, name in enumerate(group.instance_types):
        # a position only for a finding (issue 18, item 4): most types are fine
        where = (*group.path, "instance_types", index)
        if name not in data.types:
            found.append(
                Diagnostic(
                    "E123",
                    f"no EC2 instance type {name!r}" + _did_you_mean(name, sorted(data.types)),
                    locate(where),
                )
            )
        elif offered is not None and name not in offered:
            found.append(
                Diagnostic(
                    "E124",
                    f"instance type {name!r} is not offered in {fleet.region}",
                    locate(where),
                )
            )
    kinds = group_architectures(group)
    if len(kinds) > 1:
        found.append(
            Diagnostic(
                "E129",
                f"group {group.name!r} mixes arm64 and x86_64 instance types, but its one AMI "
                "boots on one architecture only: use one architecture per group",
                locate((*group.path, "instance_types")),
            )
        )
    return found


def group_architectures(group: Group) -> set[str]:
    """The AMI architectures (arm64, x86_64) the group's known instance types boot."""
    data = tables()
    return {
        "arm64" if "arm64" in data.types[n].architectures else "x86_64"
        for n in group.instance_types
        if n in data.types and data.types[n].architectures
    }


def check_task_fits(service: Service, group: Group, locate: Locate) -> list[Diagnostic]:
    """E125: the task's cpu and memory fit none of its group's instance types. An instance
    offers vCPUs × 1024 CPU units, and at most its nominal memory less the group's
    `reserved_memory_mib` (the agent registers a little less still: the check only refuses
    what can certainly never be placed)."""
    data = tables()
    sizes = [
        (name, data.types[name])
        for name in group.instance_types
        if name in data.types and data.types[name].vcpus and data.types[name].memory_mib
    ]
    if not sizes:
        return []
    reserved = group.ecs.reserved_memory_mib

    def fits(size: InstanceType) -> bool:
        assert size.vcpus is not None and size.memory_mib is not None
        return service.cpu <= size.vcpus * 1024 and service.memory <= size.memory_mib - reserved

    if any(fits(size) for _, size in sizes):
        return []
    largest = ", ".join(
        f"{name}: {size.vcpus * 1024} cpu units, {(size.memory_mib or 0) - reserved} MiB"
        for name, size in sizes
        if size.vcpus is not None
    )
    memory_short = all(service.memory > (s.memory_mib or 0) - reserved for _, s in sizes)
    return [
        Diagnostic(
            "E125",
            f"task of service {service.name!r} (cpu {service.cpu}, memory {service.memory} MiB) fits no "
            f"instance type of group {group.name!r} ({largest}, after reserved_memory_mib {reserved})",
            locate((*service.path, "memory" if memory_short else "cpu")),
        )
    ]


def check_image(service: Service, locate: Locate) -> list[Diagnostic]:
    """E126: every container's image reference parses as the Docker reference grammar
    (`{ecr: …}` images: their parts were checked when the fleet was loaded)."""
    found: list[Diagnostic] = []
    for container in service.containers:
        reference = container.image.reference
        if reference is None or REFERENCE_RE.fullmatch(reference) is not None:
            continue
        problem = "is not a valid image reference (lower-case repository, optional registry, :tag, @digest)"
        if reference != reference.lower() and REFERENCE_RE.fullmatch(reference.lower()):
            problem += "; repository names must be lower case"
        found.append(
            Diagnostic("E126", f"image {reference!r} {problem}", locate((*container.path, "image")))
        )
    return found


def check_drain(group: Group, locate: Locate) -> list[Diagnostic]:
    """E128: a drain timeout of zero completes the lifecycle action before ECS can move a
    single task (and the hook's heartbeat would be the bare margin)."""
    if group.drain is None or duration_seconds(group.drain.timeout) > 0:
        return []
    return [
        Diagnostic(
            "E128",
            "drain timeout must be above zero: the host waits this long for its tasks to leave",
            locate((*group.path, "drain", "timeout")),
        )
    ]


def _cluster_checks(fleet: Fleet, cluster: Cluster, locate: Locate) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for group in cluster.groups.values():
        found.extend(check_capacity(group, locate))
        found.extend(check_instance_types(fleet, group, locate))
        found.extend(check_drain(group, locate))
        found.extend(check_gpu_group(group, locate))
        found.extend(check_attribute_count(group, locate))
    # a cluster's `tasks:` run on their group as its services do
    for service in cluster.task_definitions:
        found.extend(check_image(service, locate))
        # every group of the capacity provider strategy may be given the service's tasks
        for name in service.groups:
            if name in cluster.groups:
                found.extend(check_task_fits(service, cluster.groups[name], locate))
                found.extend(check_task_gpus(service, cluster.groups[name], locate))
    return found


# "You can apply up to 10 custom attributes for each resource" (ECS API Reference,
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PutAttributes.html, and its
# AttributeLimitExceededException). The attributes ECS sets itself (ecs.*) are not custom.
MAX_CUSTOM_ATTRIBUTES = 10


def check_attribute_count(group: Group, locate: Locate) -> list[Diagnostic]:
    """E188: the custom attributes a group's container instances register — its own
    `ecs.attributes` and the `nixecs.group` nixecs adds (settings.instance_attributes) —
    within ECS's 10."""
    count = len(instance_attributes(group.name, group.ecs))
    if count <= MAX_CUSTOM_ATTRIBUTES:
        return []
    return [
        Diagnostic(
            "E188",
            f"group {group.name!r} gives its container instances {count} custom attributes "
            f"({count - 1} here and {GROUP_ATTRIBUTE}, which nixecs adds to "
            f"place daemon services); ECS allows {MAX_CUSTOM_ATTRIBUTES} a container instance",
            locate((*group.path, "ecs", "attributes")),
        )
    ]


def check_gpu_group(group: Group, locate: Locate) -> list[Diagnostic]:
    """E166: a `gpu: true` group's instance types all have NVIDIA GPUs (the table's count
    from DescribeInstanceTypes GpuInfo; a type it has not measured is not judged)."""
    if not group.gpu:
        return []
    data = tables()
    return [
        Diagnostic(
            "E166",
            f"group {group.name!r} has `gpu: true`, but instance type {name!r} has no NVIDIA GPU",
            locate((*group.path, "instance_types", index)),
        )
        for index, name in enumerate(group.instance_types)
        if name in data.types and data.types[name].gpus == 0
    ]


def check_task_gpus(service: Service, group: Group, locate: Locate) -> list[Diagnostic]:
    """E167: containers ask for GPUs only on a `gpu: true` group, and the task's total fits
    the largest count among the group's instance types (ECS places a task on one instance:
    "The number of GPUs that's reserved for all containers in a task can't exceed the number
    of available GPUs on the container instance", API_ResourceRequirement)."""
    asking = [c for c in service.containers if c.gpu]
    if not asking:
        return []
    where = locate((*asking[0].path, "gpu"))
    if not group.gpu:
        return [
            Diagnostic(
                "E167",
                f"container {asking[0].name!r} of service {service.name!r} asks for GPUs, but "
                f"group {group.name!r} has no `gpu: true` (its hosts offer no GPUs to ECS)",
                where,
            )
        ]
    data = tables()
    counts = [data.types[n].gpus for n in group.instance_types if n in data.types]
    known = [c for c in counts if c is not None]
    total = sum(c.gpu or 0 for c in asking)
    if known and len(known) == len(counts) and total > max(known):
        return [
            Diagnostic(
                "E167",
                f"the task of service {service.name!r} asks for {total} GPUs; the instance types "
                f"of group {group.name!r} have at most {max(known)}",
                where,
            )
        ]
    return []


def check_capacity(group: Group, locate: Locate) -> list[Diagnostic]:
    """W204: the template has no DesiredCapacity (nixecs.cloudformation.compute says why),
    so a written `capacity.desired` cannot be honoured."""
    capacity = group.capacity
    if not capacity.desired_given:
        return []
    return [
        Diagnostic(
            "W204",
            f"capacity.desired {capacity.desired} is not used: the group starts at min {capacity.min} and the "
            "capacity provider's managed scaling sets its size from the tasks it has to place (a "
            "DesiredCapacity in the template would reset the size on every deploy); remove desired, or "
            "raise min",
            locate((*group.path, "capacity", "desired")),
        )
    ]


def check_fleet(fleet: Fleet) -> list[Diagnostic]:
    """Every offline AWS check for the whole fleet."""
    locate = fleet.document.locate
    found = check_region(fleet, locate)
    for cluster in fleet.clusters.values():
        found.extend(_cluster_checks(fleet, cluster, locate))
    return found
