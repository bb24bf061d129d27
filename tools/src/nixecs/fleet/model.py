"""The fleet model: what a fleet file declares, validated and typed (DESIGN §4).

Every record keeps `path`, the place in the YAML document it came from, so that later
stages (scaling rules, userdata size) report at the right `file:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import DrainSpec, EcsSettings, HostSettings, SecretSpec
from .images import ImageRef
from .yaml12 import Document, Path

USERDATA_FORMATS = ("settings", "nix")
COMPARISONS = {
    ">=": "GreaterThanOrEqualToThreshold",
    ">": "GreaterThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
    "<": "LessThanThreshold",
}
STATISTICS = ("Average", "Minimum", "Maximum", "Sum", "SampleCount")
ADJUSTMENT_TYPES = ("ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity")
AGGREGATIONS = ("Average", "Minimum", "Maximum")
TARGET_METRICS = {
    "cpu": "ECSServiceAverageCPUUtilization",
    "memory": "ECSServiceAverageMemoryUtilization",
}


@dataclass(frozen=True)
class Capacity:
    min: int
    max: int
    desired: int
    # Whether the fleet file wrote `desired:`. The group starts at `min` whatever it says
    # (no DesiredCapacity in the template, docs/aws.md); a written value draws W204.
    desired_given: bool = False


@dataclass(frozen=True)
class Group:
    name: str
    cluster: str
    host: str
    ami: str
    instance_types: tuple[str, ...]
    capacity: Capacity
    spot: bool
    userdata: str
    ecs: EcsSettings
    secrets: dict[str, SecretSpec]
    drain: DrainSpec | None
    hop_limit: int
    nixos: str | None
    path: Path
    # The customer managed KMS key of the group's secrets (its own `kms_key:` or its
    # cluster's); None: aws/ssm. IAM grants kms:Decrypt on exactly this key.
    kms_key: str | None = None

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.name}"


@dataclass(frozen=True)
class Alarm:
    metric: str
    namespace: str
    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    path: Path
    # (name, value) pairs as written; values may hold `${cluster}` / `${service}`. None:
    # the defaults for AWS/ECS and ECS/ContainerInsights (nixecs.fleet.metrics).
    dimensions: tuple[tuple[str, str], ...] | None = None

    @property
    def is_upper(self) -> bool:
        """True when the alarm fires on high values (`>=` or `>`)."""
        return self.comparison in (">=", ">")


@dataclass(frozen=True)
class Step:
    lower: float | None
    upper: float | None
    change: int
    path: Path


@dataclass(frozen=True)
class StepPolicy:
    name: str
    alarm: Alarm
    adjustment_type: str
    cooldown: int
    aggregation: str
    min_adjustment_magnitude: int | None
    steps: tuple[Step, ...]
    path: Path


@dataclass(frozen=True)
class TargetTracking:
    metric: str
    target: float
    scale_in_cooldown: int
    scale_out_cooldown: int
    disable_scale_in: bool
    path: Path


@dataclass(frozen=True)
class Scaling:
    min: int
    max: int
    target_tracking: TargetTracking | None
    step: tuple[StepPolicy, ...]
    path: Path


@dataclass(frozen=True)
class Service:
    name: str
    cluster: str
    group: str
    image: ImageRef
    cpu: int
    memory: int
    port: int | None
    desired: int
    environment: dict[str, str]
    secrets: dict[str, str]
    scaling: Scaling | None
    path: Path
    # Whether the fleet file wrote `desired:` (a scaled service cannot honour it: W204).
    desired_given: bool = False

    @property
    def start_count(self) -> int:
        """The task count the service starts with. Unscaled: `desired`. Scaled: the template
        has no DesiredCount, so CloudFormation creates the service with 1 task, and
        RegisterScalableTarget at once moves that into [min, max] (docs/aws.md)."""
        if self.scaling is None:
            return self.desired
        return min(max(1, self.scaling.min), self.scaling.max)


@dataclass(frozen=True)
class Cluster:
    name: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]
    groups: dict[str, Group]
    services: dict[str, Service]
    path: Path
    kms_key: str | None = None


@dataclass(frozen=True)
class Fleet:
    version: int
    region: str
    flake: str
    clusters: dict[str, Cluster]
    document: Document = field(repr=False, compare=False)
    template_bucket: str = ""  # S3 bucket for templates over the inline limit (deploy)
    name_prefix: str = ""  # already part of every cluster's name (the loader applies it)

    def group(self, key: str) -> Group:
        """`CLUSTER/GROUP` → the group; KeyError naming what is missing."""
        cluster_name, _, group_name = key.partition("/")
        if cluster_name not in self.clusters:
            raise KeyError(
                f"no cluster {cluster_name!r} (clusters: {', '.join(self.clusters) or 'none'})"
            )
        cluster = self.clusters[cluster_name]
        if group_name not in cluster.groups:
            raise KeyError(
                f"no group {group_name!r} in cluster {cluster_name!r} (groups: {', '.join(cluster.groups) or 'none'})"
            )
        return cluster.groups[group_name]

    def host_settings(self, group: Group) -> HostSettings:
        """What a settings userdata tells this group's hosts."""
        return HostSettings(
            cluster=group.cluster,
            group=group.name,
            flake=self.flake,
            ecs=group.ecs,
            secrets=group.secrets,
            drain=group.drain,
        )
