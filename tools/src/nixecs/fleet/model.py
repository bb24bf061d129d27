"""The fleet model: what a fleet file declares, validated and typed (DESIGN §4).

Every record keeps `path`, the place in the YAML document it came from, so that later
stages (scaling rules, userdata size) report at the right `file:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..settings import DrainSpec, EcsSettings, HostSettings, SecretSpec
from .containers import Container
from .images import ImageRef
from .infra import DEFAULT_LOG_RETENTION_DAYS, Override, RootVolume
from .task_role import TaskRole
from .volumes import Volume

if TYPE_CHECKING:
    from .scheduled import ScheduledTask
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
    # needs `routing:` (E156): the metric is per target group (Application Auto Scaling's
    # PredefinedMetricSpecification, ResourceLabel; nixecs.cloudformation.scaling)
    "requests": "ALBRequestCountPerTarget",
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
    # The root EBS volume (always encrypted; fleet/infra.py) and an optional EC2 key pair
    # (Session Manager stays the recommended way in: docs/aws.md).
    root_volume: RootVolume = field(default_factory=RootVolume)
    key_pair: str | None = None
    # `exec: true`: the group's host has ECS Exec (nixecs.ecs.exec.enable), so its services
    # may set enable_execute_command (elsewhere E157).
    exec: bool = False
    # `gpu: true`: the group's host runs GPU tasks (NVIDIA): its instance types must have GPUs
    # (E166), and only its services' containers may ask for them (`gpu: N`, else E167).
    gpu: bool = False

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
class HealthCheck:
    """The target group's HTTP health check (CreateTargetGroup's HealthCheck* parameters)."""

    path: str = "/"
    matcher: str = "200"
    interval: int = 30
    timeout: int = 5
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2


@dataclass(frozen=True)
class Routing:
    """A service behind its cluster's load balancer: one listener rule and one target group
    (nixecs.fleet.loadbalancing)."""

    container: str
    port: int
    priority: int
    path_patterns: tuple[str, ...]
    host_headers: tuple[str, ...]
    health_check: HealthCheck
    deregistration_delay: int
    path: Path


@dataclass(frozen=True)
class Placement:
    strategies: tuple[tuple[str, str | None], ...]  # (type, field)
    constraints: tuple[tuple[str, str | None], ...]  # (type, expression)


# Today's placement: survive the loss of an Availability Zone first, then pack by memory so
# managed scaling can empty and remove instances.
DEFAULT_PLACEMENT = Placement(
    strategies=(("spread", "attribute:ecs.availability-zone"), ("binpack", "memory")),
    constraints=(),
)


@dataclass(frozen=True)
class Deployment:
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    circuit_breaker: bool = True
    rollback: bool = True
    # HealthCheckGracePeriodSeconds; only with routing (None: not load balanced)
    health_check_grace_period: int | None = None


@dataclass(frozen=True)
class LoadBalancer:
    """A cluster's Application Load Balancer: created (`listener_arn` None) or an existing
    listener to attach rules to."""

    security_groups: tuple[str, ...]
    path: Path
    vpc: str | None = None
    scheme: str = "internet-facing"
    subnets: tuple[str, ...] = ()
    http: bool = True
    certificate_arn: str | None = None
    ssl_policy: str | None = None
    redirect_http_to_https: bool = False
    listener_arn: str | None = None

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None


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
    # nixecs.fleet.loadbalancing: load balancing, placement and deployment
    routing: Routing | None = None
    placement: Placement = DEFAULT_PLACEMENT
    deployment: Deployment = field(default_factory=Deployment)
    # The task's containers (nixecs.fleet.containers). The shorthand (image, cpu, memory,
    # port, environment, secrets on the service) is one container named after the service;
    # with `containers:`, image/port/environment/secrets above are the first container's and
    # cpu/memory the task's (its own `cpu:`/`memory:`, or what its containers reserve).
    containers: tuple[Container, ...] = ()
    network_mode: str = "bridge"
    task_role: TaskRole | None = None
    # ECS Exec (EnableExecuteCommand); only on a group with `exec: true` (E157).
    enable_execute_command: bool = False
    # Task-level cpu and memory as written in the `containers:` form (None: not set).
    task_cpu: int | None = None
    task_memory: int | None = None
    # The task's data volumes (fleet/volumes.py), mounted by its containers.
    volumes: tuple[Volume, ...] = ()
    # "replica" (a desired count, or scaled) or "daemon": one task on every instance of its
    # group (fleet/daemon.py); "task" for a cluster's `tasks:` (fleet/scheduled.py)
    scheduling: str = "replica"

    def secret_uses(self) -> list[tuple[Path, str]]:
        """(where it is written, SSM parameter) of every secret of every container."""
        return [
            ((*c.path, "secrets", name), parameter)
            for c in self.containers
            for name, parameter in sorted(c.secrets.items())
        ]

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
    load_balancer: LoadBalancer | None = None
    # fleet/infra.py: ECS containerInsights, the services' log groups, and the `overrides:`
    # applied last to the rendered template (cloudformation/overrides.py).
    container_insights: str = "enabled"
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    log_kms_key: str | None = None
    overrides: tuple[Override, ...] = ()
    # `tasks:` — task definitions that are not services (fleet/scheduled.py)
    tasks: dict[str, ScheduledTask] = field(default_factory=dict)


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
