"""The fleet model: what a fleet file declares, validated and typed (DESIGN §4).

Every record keeps `path`, the place in the YAML document it came from, so that later
stages (scaling rules, userdata size) report at the right `file:line:col`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import naming
from .. import settings as s
from ..records import dataclass, field
from ..settings import DrainSpec, EcsSettings, HostSettings, SecretSpec
from .containers import Container
from .decl import (
    Node,
    boolean,
    default_of,
    either,
    enum,
    integer,
    mapping,
    number,
    obj,
    one_of,
    req,
    string,
    strings,
)
from .host_ami import AmiByHost
from .images import ImageRef
from .infra import DEFAULT_LOG_RETENTION_DAYS, Override, RootVolume
from .notifications import Notifications
from .task_role import TaskRole
from .volumes import Volume

if TYPE_CHECKING:
    from .cluster_tasks import ScheduledTask
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


NAME_RULE = "1-64 letters, digits, _ and -, starting with a letter or digit"
# CloudWatch: metric names and namespaces of 1-255 characters, no control characters;
# at most 30 dimensions (PutMetricAlarm).
METRIC = r"[^\x00-\x1f]{1,255}"
MAX_DIMENSIONS = 30
# PutMetricAlarm's Dimension: a name of 1-255 and a value of 1-1024 characters.
DIMENSION_NAME = METRIC
DIMENSION_VALUE = r"[^\x00-\x1f]{1,1024}"
# A deployment alarm's name: PutMetricAlarm AlarmName (1-255 characters), no comma
# (DeploymentAlarms: "Use a ',' to separate the alarms"; fleet/deploy_alarms.py).
DEPLOY_ALARM_NAME = r"[^\x00-\x1f,]{1,255}"


@dataclass(frozen=True)
class Capacity:
    min: int
    max: int
    desired: int
    # Whether the fleet file wrote `desired:`. The group starts at `min` whatever it says
    # (no DesiredCapacity in the template, docs/aws.md); a written value draws W204.
    desired_given: bool = False


@dataclass(frozen=True)
class ManagedScaling:
    """The group's capacity provider's managed scaling (ECS ManagedScaling; None: AWS's
    default: 1 and 10000 instances a step, 300 s warm-up; nixecs.fleet.capacity)."""

    target_capacity: int = 100
    minimum_step: int | None = None
    maximum_step: int | None = None
    instance_warmup: int | None = None


@dataclass(frozen=True)
class Distribution:
    """A mixed instances policy's InstancesDistribution (nixecs.fleet.capacity). The
    defaults are the ones nixecs always used: a spot group all spot, price-capacity-optimized;
    on-demand instance types in the order written."""

    on_demand_base: int = 0
    on_demand_percent: int = 0
    spot_allocation: str = "price-capacity-optimized"
    on_demand_allocation: str = "prioritized"


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
    # nixecs.fleet.capacity: the capacity provider's managed scaling, and how a mixed group
    # splits on-demand and spot.
    managed_scaling: ManagedScaling = field(default_factory=ManagedScaling)
    distribution: Distribution = field(default_factory=Distribution)
    # `ami: {host: web}`: `ami` holds a placeholder until deploy resolves this per region
    # (aws/host_amis.py) to the newest AMI `nixecs ami publish --host web` tagged.
    ami_host: AmiByHost | None = None

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.name}"


def _dimensions(doc: str, example: dict[str, str]) -> Node:
    """A metric's `{Name: value}` dimensions (a step policy's alarm, a customized metric);
    the loader's `dimensions` checks them."""
    return mapping(
        doc,
        DIMENSION_NAME,
        string(
            "a dimension value",
            pattern=DIMENSION_VALUE,
            rule="a dimension value of 1-1024 characters",
        ),
        min_items=1,  # left out for none; written, at least one (the loader's `dimensions`)
        max_items=MAX_DIMENSIONS,
        rule="dimension name {name!r} is not valid: 1-255 characters, no control characters",
        code=s.E_NAME,
        what="a non-empty mapping of dimension names to values",
        aws=f"PutMetricAlarm: at most {MAX_DIMENSIONS} dimensions",
        example=example,
    )


SCALING_ALARM = obj(
    "the CloudWatch alarm of a step policy",
    order=(
        "metric",
        "namespace",
        "statistic",
        "period",
        "evaluation_periods",
        "threshold",
        "comparison",
        "dimensions",
    ),
    metric=req(
        string(
            "the metric name",
            pattern=METRIC,
            rule="a CloudWatch metric name",
            aws="PutMetricAlarm MetricName: 1-255 characters",
            example="CPUUtilization",
        )
    ),
    namespace=string(
        "the metric's namespace",
        default="AWS/ECS",
        pattern=METRIC,
        rule="a CloudWatch namespace",
        example="AWS/ECS",
    ),
    statistic=enum("the statistic", STATISTICS, default="Average", example="Average"),
    period=integer(
        "seconds: 10, 20, 30 or a multiple of 60",
        10,
        86400,
        default=60,
        aws="PutMetricAlarm Period",
        example=60,
    ),
    evaluation_periods=integer(
        "periods to evaluate (period × this at most one day)", 1, 100, default=1, example=3
    ),
    threshold=req(number("the threshold", example=70)),
    comparison=req(enum("the comparison", tuple(COMPARISONS), example=">=")),
    dimensions=_dimensions(
        "dimensions (default: the service's ClusterName and ServiceName); `${cluster}` and `${service}` are replaced",
        {"ClusterName": "${cluster}", "ServiceName": "${service}"},
    ),
)
# Application Auto Scaling quotas per scalable target: scaling policies, scheduled actions
# (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-limits.html)
MAX_TRACKING_POLICIES = 50
MAX_SCHEDULED_ACTIONS = 200
# TargetTrackingScalingPolicyConfiguration TargetValue: 8.515920e-109 to 6.174271e+107
# (API_TargetTrackingScalingPolicyConfiguration.html; fleet/tracking.py)
TARGET_MAX = 6.174271e107
CUSTOM_METRIC = obj(
    "a customized metric (CustomizedMetricSpecification)",
    order=("namespace", "name", "dimensions", "statistic"),
    namespace=req(
        string(
            "the metric's namespace", pattern=METRIC, rule="a CloudWatch namespace", example="Acme"
        )
    ),
    name=req(
        string(
            "the metric's name",
            pattern=METRIC,
            rule="a CloudWatch metric name",
            example="QueueDepthPerTask",
        )
    ),
    dimensions=_dimensions(
        "the metric's dimensions (none when left out); `${cluster}` and `${service}` are replaced",
        {"ServiceName": "${service}"},
    ),
    statistic=enum("the statistic", STATISTICS, default="Average", example="Average"),
)
TRACKING = obj(
    "a target tracking policy",
    order=(
        "metric",
        "target",
        "scale_in_cooldown",
        "scale_out_cooldown",
        "disable_scale_in",
    ),
    metric=req(
        either(
            "the tracked metric: cpu, memory, requests, or a customized metric",
            enum("a predefined metric", tuple(TARGET_METRICS), example="cpu"),
            CUSTOM_METRIC,
        )
    ),
    target=req(
        number(
            "target value: a percentage (cpu, memory), requests per target, or the customized "
            "metric's value",
            example=75,
        )
    ),
    scale_in_cooldown=integer("seconds", 0, 86400, default=300, example=300),
    scale_out_cooldown=integer("seconds", 0, 86400, default=60, example=60),
    disable_scale_in=boolean("never scale in", False, example=False),
)
SCHEDULED_ACTION = obj(
    "a ScheduledAction of the scalable target (fleet/scheduled.py checks the schedule)",
    order=("name", "schedule", "timezone", "min", "max"),
    name=req(
        string(
            "the action's name",
            pattern=s.NAME_RE.pattern,
            rule=NAME_RULE,
            code=s.E_NAME,
            example="business-hours",
        )
    ),
    # The patterns are the values' shapes, for the JSON Schema (an editor flags `8am`); their
    # grammar and whether the zone exists are fleet/scheduled.py's, with the same words.
    schedule=req(
        string(
            "at(yyyy-mm-ddThh:mm:ss), rate(N minutes|hours|days) or cron(minutes hours "
            "day-of-month month day-of-week year)",
            pattern=r"at\([^()]*\)|rate\([^()]*\)|cron\([^()]*\)",
            rule="{value!r} is not a schedule: at(yyyy-mm-ddThh:mm:ss), rate(N minutes|hours|days) "
            "or cron(minutes hours day-of-month month day-of-week year)",
            aws="PutScheduledAction Schedule",
            example="cron(0 8 ? * MON-FRI *)",
        )
    ),
    timezone=string(
        "an IANA time zone",
        default="UTC",
        pattern=r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*",
        rule="{value!r} is not an IANA time zone (e.g. Europe/Paris)",
        example="Europe/Paris",
    ),
    min=integer("the new minimum task count", 0, 10000, example=4),
    max=integer("the new maximum task count", 0, 10000, example=10),
)
SCALING = obj(
    "Application Auto Scaling of the service's desired count",
    order=("min", "max", "target_tracking", "step", "scheduled"),
    min=req(integer("minimum tasks", 0, 10000, example=1)),
    max=req(integer("maximum tasks", 0, 10000, example=4)),
    target_tracking=either(
        "a target tracking policy, or a list of them (each on its own metric: AWS scales out "
        "when any asks, in only when all agree)",
        TRACKING,
        strings(
            "target tracking policies",
            TRACKING,
            min_items=1,
            max_items=MAX_TRACKING_POLICIES,
            aws=f"at most {MAX_TRACKING_POLICIES} scaling policies per scalable target",
            example=[
                {"metric": "cpu", "target": 60},
                {
                    "metric": {"namespace": "Acme", "name": "QueueDepthPerTask"},
                    "target": 20,
                },
            ],
        ),
        what="a target tracking policy {metric, target} or a list of them",
    ),
    scheduled=strings(
        "scheduled actions: at a time, set the minimum and/or maximum task count",
        SCHEDULED_ACTION,
        min_items=1,
        max_items=MAX_SCHEDULED_ACTIONS,
        aws=f"at most {MAX_SCHEDULED_ACTIONS} scheduled actions per scalable target",
        what=f"a list of 1 to {MAX_SCHEDULED_ACTIONS} scheduled actions",
    ),
    step=strings(
        "step scaling policies",
        obj(
            "a step scaling policy",
            order=(
                "name",
                "alarm",
                "adjustment_type",
                "cooldown",
                "aggregation",
                "min_adjustment_magnitude",
                "steps",
            ),
            name=req(
                string(
                    "the policy's name",
                    pattern=s.NAME_RE.pattern,
                    rule=NAME_RULE,
                    code=s.E_NAME,
                    example="cpu-high",
                )
            ),
            alarm=req(SCALING_ALARM),
            adjustment_type=enum(
                "how `change` applies",
                ADJUSTMENT_TYPES,
                default="ChangeInCapacity",
                example="PercentChangeInCapacity",
            ),
            cooldown=integer("seconds", 0, 86400, default=300, example=60),
            aggregation=enum(
                "MetricAggregationType", AGGREGATIONS, default="Average", example="Average"
            ),
            min_adjustment_magnitude=integer(
                "with PercentChangeInCapacity only", 1, 10000, example=1
            ),
            steps=req(
                strings(
                    "step adjustments (bounds relative to the threshold)",
                    obj(
                        "a step adjustment",
                        order=("lower", "upper", "change"),
                        lower=number("lower bound (open when omitted)"),
                        upper=number("upper bound (open when omitted)"),
                        change=req(integer("the adjustment", -100000, 100000)),
                    ),
                    min_items=1,
                    aws="at most 20 step adjustments",
                )
            ),
        ),
        min_items=1,
        what="a non-empty list of step policies",
    ),
)


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
class CustomMetric:
    """A target tracking policy's customized metric (CustomizedMetricSpecification):
    dimension values may hold `${cluster}` / `${service}` (nixecs.fleet.metrics)."""

    namespace: str
    name: str
    statistic: str
    dimensions: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class TargetTracking:
    metric: str  # a TARGET_METRICS key, or "custom" (then `custom` is set)
    target: float
    scale_in_cooldown: int
    scale_out_cooldown: int
    disable_scale_in: bool
    path: Path
    custom: CustomMetric | None = None

    @property
    def metric_key(self) -> str:
        """What the policy tracks: `cpu`, `memory`, `requests`, or NAMESPACE/NAME."""
        return self.custom.key if self.custom is not None else self.metric


@dataclass(frozen=True)
class ScheduledAction:
    """A ScheduledAction of the scalable target (nixecs.fleet.scheduled): at `schedule` (in
    `timezone`), set the minimum and/or maximum task count."""

    name: str
    schedule: str
    timezone: str
    min: int | None
    max: int | None
    path: Path


@dataclass(frozen=True)
class Scaling:
    min: int
    max: int
    # Several policies (issue 21): AWS scales out when any asks, in only when all agree.
    target_tracking: tuple[TargetTracking, ...]
    step: tuple[StepPolicy, ...]
    path: Path
    scheduled: tuple[ScheduledAction, ...] = ()


@dataclass(frozen=True)
class HealthCheck:
    """The target group's health check (CreateTargetGroup's HealthCheck* parameters).
    (Its defaults are the declaration's: loadbalancing.ROUTING; a Network Load Balancer's
    protocol, matcher and timeout defaults are AWS's for it: loadbalancing.health_check_of.)"""

    path: str
    matcher: str
    interval: int
    timeout: int
    healthy_threshold: int
    unhealthy_threshold: int
    protocol: str = "HTTP"  # HTTP | HTTPS | TCP (TCP: a Network Load Balancer's only)


@dataclass(frozen=True)
class Listener:
    """A Network Load Balancer listener a routing entry owns (it forwards to the entry's
    target group alone: an NLB listener has no rules)."""

    port: int
    protocol: str  # TCP | TLS | UDP | TCP_UDP
    certificate_arn: str | None = None  # TLS
    ssl_policy: str | None = None  # TLS

    @property
    def target_protocol(self) -> str:
        """The target group's protocol: TLS is terminated at the load balancer."""
        return "TCP" if self.protocol == "TLS" else self.protocol


@dataclass(frozen=True)
class Routing:
    """One `routing:` entry of a service: a target group, and a listener rule on the cluster's
    Application Load Balancer or a listener of its Network Load Balancer
    (nixecs.fleet.loadbalancing)."""

    container: str
    port: int
    priority: int
    path_patterns: tuple[str, ...]
    host_headers: tuple[str, ...]
    health_check: HealthCheck
    deregistration_delay: int
    path: Path
    listener: Listener | None = None  # a Network Load Balancer's (priority etc. unused then)
    # the container port's fixed host port (0: dynamic), and whether it maps it over UDP
    host_port: int = 0
    udp: bool = False


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


DEPLOYMENT = obj(
    "rolling deployment settings",
    order=(
        "minimum_healthy_percent",
        "maximum_percent",
        "circuit_breaker",
        "health_check_grace_period",
        "alarms",
    ),
    minimum_healthy_percent=integer("percent", 0, 100, default=100, example=50),
    maximum_percent=integer(
        "percent",
        100,
        2000,
        default=200,
        # 200 is AWS's default, not a limit: the ECS API's DeploymentConfiguration and
        # CloudFormation's AWS::ECS::Service schema (cfn-lint's copy) bound it nowhere.
        aws="DeploymentConfiguration.maximumPercent: default 200, no AWS maximum (2000: nixecs's typo guard)",
        example=150,
    ),
    circuit_breaker=obj(
        "the deployment circuit breaker",
        order=("enable", "rollback"),
        enable=boolean("stop a failing deployment", True, example=True),
        rollback=boolean("roll a failed deployment back", True, example=True),
    ),
    health_check_grace_period=integer(
        "seconds the load balancer's health checks are ignored (with routing)",
        0,
        2147483647,
        aws="CreateService healthCheckGracePeriodSeconds: 0-2147483647",
        example=60,
    ),
    alarms=one_of(
        obj(
            "CloudWatch alarms that fail a deployment (DeploymentConfiguration alarms): name "
            "some, generate some, or both (fleet/deploy_alarms.py)",
            order=("names", "rollback", "http_5xx", "unhealthy_hosts"),
            names=strings(
                "names of CloudWatch alarms of yours",
                string(
                    "a CloudWatch alarm name",
                    pattern=DEPLOY_ALARM_NAME,
                    rule="a CloudWatch alarm name (1-255 characters, no comma)",
                ),
                min_items=1,
                aws="DeploymentAlarms alarmNames; PutMetricAlarm AlarmName 1-255 characters",
                example=["web-5xx"],
            ),
            rollback=boolean("roll a failed deployment back", True, example=True),
            http_5xx=integer(
                "generate an alarm: target 5xx responses in a minute at or above this (with routing)",
                1,
                1000000,
                example=10,
            ),
            unhealthy_hosts=integer(
                "generate an alarm: unhealthy targets at or above this (with routing)",
                1,
                1000000,
                example=1,
            ),
        ),
        ("names", "http_5xx", "unhealthy_hosts"),
    ),
)


@dataclass(frozen=True)
class Deployment:
    """`deployment:`, declared by DEPLOYMENT (its defaults are the declaration's)."""

    minimum_healthy_percent: int
    maximum_percent: int
    circuit_breaker: bool
    rollback: bool
    # HealthCheckGracePeriodSeconds; only with routing (None: not load balanced)
    health_check_grace_period: int | None
    # `alarms:` (nixecs.fleet.deploy_alarms): CloudWatch alarms that fail a deployment
    alarms: tuple[str, ...] = ()
    alarm_rollback: bool = True
    # generated alarms on the service's target group (thresholds; None: not generated)
    alarm_http_5xx: int | None = None
    alarm_unhealthy_hosts: int | None = None


def declared_deployment() -> Deployment:
    """A service's deployment when its `deployment:` is left out (one, shared: frozen)."""
    global _DECLARED_DEPLOYMENT
    if _DECLARED_DEPLOYMENT is None:
        _DECLARED_DEPLOYMENT = _deployment_defaults()
    return _DECLARED_DEPLOYMENT


_DECLARED_DEPLOYMENT: Deployment | None = None


def _deployment_defaults() -> Deployment:
    breaker = DEPLOYMENT.keys["circuit_breaker"]
    return Deployment(
        default_of(DEPLOYMENT, "minimum_healthy_percent", int),
        default_of(DEPLOYMENT, "maximum_percent", int),
        default_of(breaker, "enable", bool),
        default_of(breaker, "rollback", bool),
        None,
    )


@dataclass(frozen=True)
class LoadBalancer:
    """A cluster's load balancer: an Application Load Balancer created (`listener_arn` None)
    or an existing listener to attach rules to; or a Network Load Balancer (`type:
    network`), whose listeners the routing entries own."""

    security_groups: tuple[str, ...]
    path: Path
    type: str = "application"  # application | network
    vpc: str | None = None
    scheme: str = "internet-facing"
    subnets: tuple[str, ...] = ()
    http: bool = True
    certificate_arn: str | None = None
    ssl_policy: str | None = None
    redirect_http_to_https: bool = False
    listener_arn: str | None = None
    # `access_logs: {bucket, prefix}` (None: off) and `deletion_protection:`.
    access_logs: tuple[str, str] | None = None
    deletion_protection: bool = False

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None

    @property
    def network(self) -> bool:
        return self.type == "network"


@dataclass(frozen=True)
class StrategyItem:
    """One entry of a capacity provider strategy: a group (its capacity provider), the tasks
    it runs first (`base`) and its share of the rest (`weight`) (nixecs.fleet.strategy)."""

    group: str
    base: int
    weight: int
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
    # nixecs.fleet.loadbalancing: load balancing (`routing:`, one entry or several: one
    # target group each), placement and deployment
    routes: tuple[Routing, ...] = ()
    placement: Placement = DEFAULT_PLACEMENT
    deployment: Deployment = field(default_factory=declared_deployment)
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
    # group (fleet/daemon.py); "task" for a cluster's `tasks:` (fleet/cluster_tasks.py)
    scheduling: str = "replica"
    # The capacity provider strategy (nixecs.fleet.strategy). `group:` as one name is the
    # one-entry strategy (base 0, weight 1); `group` above is the strategy's first group.
    strategy: tuple[StrategyItem, ...] = ()

    @property
    def routing(self) -> Routing | None:
        """The first `routing:` entry: the target group the service's request-count scaling
        and generated deployment alarms watch."""
        return self.routes[0] if self.routes else None

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group the service's tasks may run on, in the order written."""
        return tuple(item.group for item in self.strategy) or (self.group,)

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
    # `tasks:` — task definitions that are not services (fleet/cluster_tasks.py)
    tasks: dict[str, ScheduledTask] = field(default_factory=dict)
    # `default_strategy:` (nixecs.fleet.capacity): the cluster's default capacity provider
    # strategy; empty: the first group of the file.
    default_strategy: tuple[StrategyItem, ...] = ()
    # `notifications:` (nixecs.fleet.notifications): ECS events to an SNS topic
    notifications: Notifications | None = None

    @property
    def task_definitions(self) -> tuple[Service, ...]:
        """Every task definition the cluster registers: its services' and its `tasks:`'
        (scheduled and one-off), for whatever reads containers, images or secrets."""
        return (*self.services.values(), *(t.task for t in self.tasks.values()))


@dataclass(frozen=True)
class Fleet:
    version: int
    region: str
    flake: str
    clusters: dict[str, Cluster]
    document: Document = field(repr=False, compare=False)
    template_bucket: str = ""  # S3 bucket for templates over the inline limit (deploy)
    name_prefix: str = ""  # already part of every cluster's name (the loader applies it)
    parameter_prefix: str = ""  # an SSM path whose parameters are the fleet's (secret put/rm)
    environment: str = ""  # the `environments:` entry chosen with --env (fleet/environments.py)

    @property
    def identity(self) -> str:
        """The fleet's identity: the value of the `nixecs:fleet` tag on everything it creates,
        checked before every destructive or adopting call (aws/ownership.py): its name prefix
        (or `default`), and its environment, so that two environments of one file sharing an
        account never act on each other's stacks."""
        return naming.fleet_id(self.name_prefix, self.environment)

    def owns_parameter(self, name: str) -> bool:
        """Whether `secret put/rm NAME` may act without --outside-fleet: the fleet references
        NAME, or NAME is below the `parameter_prefix:` it declares (a whole level: /acme owns
        /acme/db, not /acme-other)."""
        prefix = self.parameter_prefix
        return name in self.parameter_uses() or bool(prefix and name.startswith(prefix + "/"))

    def parameter_uses(self) -> dict[str, list[Path]]:
        """Every SSM parameter the fleet references (groups' `secrets:`, containers'
        `secrets:`) → where: the fleet's own parameters (`secret put/rm`, preflight E132)."""
        uses: dict[str, list[Path]] = {}
        for cluster in self.clusters.values():
            for group in cluster.groups.values():
                for key, spec in group.secrets.items():
                    uses.setdefault(spec.parameter, []).append(
                        (*group.path, "secrets", key, "parameter")
                    )
            for service in cluster.task_definitions:
                for where, parameter in service.secret_uses():
                    uses.setdefault(parameter, []).append(where)
        return uses

    def parameter_tags(self, name: str) -> dict[str, str]:
        """The tags `secret put` gives the fleet's own parameter NAME, as the stacks tag what
        they make: naming.TAG_FLEET (its identity, the ownership mark `secret rm` checks) and
        naming.TAG_CLUSTER when exactly one cluster references NAME (a tag holds one value;
        a parameter shared by clusters, or only below `parameter_prefix:`, has none)."""
        tags = {naming.TAG_FLEET: self.identity}
        clusters = [
            cluster.name
            for cluster in self.clusters.values()
            if any(
                name == spec.parameter
                for g in cluster.groups.values()
                for spec in g.secrets.values()
            )
            or any(
                name == parameter
                for s in cluster.task_definitions  # services and the cluster's `tasks:`
                for _, parameter in s.secret_uses()
            )
        ]
        if len(clusters) == 1:
            tags[naming.TAG_CLUSTER] = clusters[0]
        return tags

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
