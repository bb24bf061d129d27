"""Fleet file → validated model, or every error of the file with its position.

Each value is checked against its declaration (fleet/schema.py, fleet/decl.py): type,
required/default, allowed values, bounds, pattern; what is written here are the rules between
the keys of one section it builds (min <= desired <= max, ...); the rules across sections,
services and clusters are the checks stage's (fleet/checks.py). A group's `ecs`, `secrets` and `drain` sections are declared in host_sections.py, which
builds the settings records the host reads back at boot.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import yaml

from .. import settings as s
from ..atomic import read_regular
from ..diagnostics import Diagnostic, InvalidInput, Location, Report
from ..lazyre import lazy
from ..settings import Issue
from . import capacity as providers
from . import (
    cluster_tasks,
    daemon,
    environments,
    host_sections,
    infra,
    loadbalancing,
    metrics,
    notifications,
    scheduled,
    strategy,
    tracking,
    volumes,
)
from .containers import (
    CPU_MAX,
    NETWORK_MODES,
    SHORTHAND_CPU,
    TASK_CPU_MIN,
    Container,
    parse_container,
    parse_containers,
)
from .decl import (
    NULL_ADVICE,
    Node,
    as_float,
    as_int,
    as_str,
    check,
    complete,
    entries,
    keys,
    member,
    refused,
    section,
    texts,
    values,
)
from .hints import hint
from .host_ami import AMI_RE as AMI_RE  # re-exported (the schema used to read it here)
from .host_ami import HOST_RE as HOST_RE
from .host_ami import parse_group_ami
from .model import (
    MAX_DIMENSIONS,
    SCALING,
    SCALING_ALARM,
    TRACKING,
    Alarm,
    Capacity,
    Cluster,
    Fleet,
    Group,
    Scaling,
    Service,
    Step,
    StepPolicy,
    TargetTracking,
)
from .schema import CLUSTER, FLEET, GROUP, SERVICE
from .task_role import TaskRole, parse_task_role
from .yaml12 import Document, Path, YamlError, load

PLACEHOLDER_RE = lazy(r"\$\{[^}]*\}?")
# A fleet of 10,000 groups and services renders from ~5 MB of YAML; far more is a mistake.
MAX_FLEET_BYTES = 64 * 1024 * 1024
# The service's keys: the shorthand's (one container) and the task's.
SHORTHAND_KEYS = ("image", "port", "environment", "secrets")
# CloudWatch periods: 10, 20, 30 (high resolution) or a multiple of 60.
VALID_PERIODS = "10, 20, 30 or a multiple of 60 seconds"


# A group's keys its modules check themselves (infra.py, capacity.py, host_ami.py).
_GROUP_OWN = (*infra.GROUP_KEYS, *providers.GROUP_KEYS, "ami")
# group: a name looked up (E108) or a strategy (strategy.py); cpu, memory, port: the shorthand container's or the task's
# (containers.py); network_mode: awsvpc has its own code (E146); enable_execute_command:
# loadbalancing.service_extras's
_SERVICE_OWN = (
    "group",
    "cpu",
    "memory",
    "port",
    "network_mode",
    "enable_execute_command",
    *volumes.SERVICE_KEYS,  # volumes.with_volumes
    *daemon.SERVICE_KEYS,  # daemon.with_scheduling
)
# The service's own `port:` and `memory:` (their bounds the declaration's: fleet/schema.py).
_PORT = SERVICE.keys["port"]
_MEMORY = SERVICE.keys["memory"]
_STEP_POLICY = member(SCALING.keys["step"])
_STEP = member(_STEP_POLICY.keys["steps"])
_DIMENSIONS = SCALING_ALARM.keys["dimensions"]


class _AnyGroup(dict[str, object]):
    """The groups of a cluster whose `groups:` was refused: every name is in it, so that a
    service's or task's reference is not reported as unknown too (one mistake, one error)."""

    def __contains__(self, key: object) -> bool:
        return True


class _Builder:
    def __init__(self, document: Document) -> None:
        self.doc = document
        self.issues: list[Issue] = []
        # The clusters built so far, as a fleet: what the checks stage's per-service rules
        # run on when other errors stop the load (`parse`).
        self.partial: Fleet | None = None

    # -- small helpers over settings.check_* --------------------------------------------
    def error(self, path: Path, code: str, message: str) -> None:
        self.issues.append(Issue(path, code, message))

    def mapping(
        self, value: object, path: Path, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, object] | None:
        return s.check_mapping(value, path, self.issues, allowed, required)

    def named_mapping(self, node: Node, value: object, path: Path, what: str) -> dict[str, object]:
        """A map of resources by name (`node`'s declaration): bad names are reported and
        dropped."""
        return entries(node, value, path, self.issues, f"a mapping of {what}") or {}

    # -- the document --------------------------------------------------------------------
    def fleet(self) -> Fleet | None:
        path: Path = ()
        top = section(FLEET, self.doc.value, path, self.issues, what="a fleet mapping")
        if top is None:
            return None
        region = top.get("region")
        # Recorded in tags and the nix userdata's header comment: one word, no control characters.
        flake = top.get("flake", "")
        # S3 bucket for templates over CloudFormation's inline limit (deploy; E130).
        template_bucket = top.get("template_bucket", "")
        # An SSM path the fleet declares its own: `secret put/rm` act on any parameter under
        # it, besides those the fleet references (Fleet.owns_parameter). Its pattern is
        # settings.PARAMETER_RE's, which a JSON Schema cannot carry (ECMA-262 has no `\Z`):
        # checked here, the declaration gives its type.
        parameter_prefix = (
            s.check_pattern(
                top["parameter_prefix"],
                ("parameter_prefix",),
                self.issues,
                s.PARAMETER_RE,
                s.PARAMETER_RULE,
            )
            if isinstance(top.get("parameter_prefix"), str)
            else ""
        )
        # Two fleets in one account and region: with `name_prefix: acme` cluster `prod` is
        # `acme-prod` in every AWS name (stack, ECS cluster, groups, roles, log groups, alarms,
        # the host's ECS_CLUSTER) and on the command line; the key in the file stays `prod`.
        prefix = top.get("name_prefix", "")
        assert isinstance(prefix, str)
        clusters: dict[str, Cluster] = {}
        for name, value in self.named_mapping(
            FLEET.keys["clusters"], top.get("clusters", {}), ("clusters",), "clusters"
        ).items():
            aws_name = f"{prefix}-{name}" if prefix else name
            if not s.NAME_RE.fullmatch(aws_name):
                self.error(
                    ("clusters", name),
                    s.E_NAME,
                    f"with name_prefix {prefix!r} the cluster's name {aws_name!r} is over 64 "
                    "characters: shorten the cluster's key or the prefix",
                )
                continue
            cluster = self.cluster(aws_name, value, ("clusters", name))
            if cluster is not None:
                clusters[aws_name] = cluster
        if self.issues:
            self.partial = Fleet(
                version=1, region="", flake="", clusters=clusters, document=self.doc
            )
            return None
        return Fleet(
            version=1,
            region=as_str(region),
            flake=as_str(flake),
            clusters=clusters,
            document=self.doc,
            template_bucket=as_str(template_bucket),
            name_prefix=prefix,
            parameter_prefix=parameter_prefix or "",
        )

    def cluster(self, name: str, value: object, path: Path) -> Cluster | None:
        m = section(
            CLUSTER,
            value,
            path,
            self.issues,
            own=(
                *infra.CLUSTER_KEYS,
                *providers.CLUSTER_KEYS,
                "notifications",
                *cluster_tasks.CLUSTER_KEYS,
            ),
        )
        if m is None:
            return None
        extra = infra.cluster_keys(m, path, self.issues)
        provider_keys = providers.cluster_keys(m, path, self.issues, name)
        notify = (
            notifications.parse(m["notifications"], (*path, "notifications"), self.issues)
            if m.get("notifications") is not None
            else None
        )
        kms_key = m.get("kms_key")
        assert kms_key is None or isinstance(kms_key, str)
        subnets = texts(CLUSTER, m, "subnets", path, self.issues)
        security_groups = texts(CLUSTER, m, "security_groups", path, self.issues)
        groups: dict[str, Group] = {}
        for group_name, group_value in self.named_mapping(
            CLUSTER.keys["groups"], m.get("groups", {}), (*path, "groups"), "groups"
        ).items():
            group = self.group(
                name, group_name, group_value, (*path, "groups", group_name), kms_key
            )
            if group is not None:
                groups[group_name] = group
        services: dict[str, Service] = {}
        # References are checked against every key written, so a badly named group is
        # reported once (E105), not again by each service that uses it.
        # A `groups:` refused itself (null, not a mapping, left out: reported there) names no
        # group to check against: every reference is taken as known, not reported again.
        declared = m.get("groups")
        raw_groups: dict[str, object] = declared if isinstance(declared, dict) else _AnyGroup()
        if isinstance(declared, dict) and isinstance(value, dict):
            # A group written one level too far left is the cluster's unknown key (E101,
            # with the indentation hint): references to it are not reported again.
            raw_groups = {
                **{
                    k: v
                    for k, v in value.items()
                    if isinstance(k, str) and k not in CLUSTER.keys and isinstance(v, dict)
                },
                **declared,
            }
        for service_name, service_value in self.named_mapping(
            CLUSTER.keys["services"], m.get("services", {}), (*path, "services"), "services"
        ).items():
            service = self.service(
                name, service_name, service_value, (*path, "services", service_name), raw_groups
            )
            if service is not None:
                services[service_name] = service
        tasks = cluster_tasks.parse_tasks(self, CLUSTER.keys["tasks"], name, m, path, raw_groups)
        load_balancer = (
            loadbalancing.load_balancer(m["load_balancer"], (*path, "load_balancer"), self.issues)
            if m.get("load_balancer") is not None
            else None
        )
        cluster = Cluster(
            name,
            subnets,
            security_groups,
            groups,
            services,
            path,
            kms_key,
            load_balancer=load_balancer,
            tasks=tasks,
            **extra,
            **provider_keys,
            notifications=notify,
        )
        return cluster

    def group(
        self, cluster: str, name: str, value: object, path: Path, cluster_key: str | None = None
    ) -> Group | None:
        written = keys(GROUP, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(GROUP, written, path, self.issues, own=_GROUP_OWN)
        extra = infra.group_keys(m, path, self.issues)
        provider = providers.group_keys(m, path, self.issues)
        # `ami: {host: H}` sets the group's host when `host:` is not written (its declared
        # default is not a choice the two could disagree on).
        chosen = {k: v for k, v in m.items() if k != "host" or "host" in written}
        host, ami, ami_host = parse_group_ami(chosen, path, self.issues, m.get("host"))  # type: ignore[arg-type]
        instance_types = texts(GROUP, m, "instance_types", path, self.issues)
        if len(set(instance_types)) != len(instance_types):
            self.error((*path, "instance_types"), s.E_VALUE, "instance types must not repeat")
        capacity = self.capacity(m["capacity"], (*path, "capacity")) if "capacity" in m else None
        spot = m.get("spot")
        exec_enabled, gpu = m.get("exec"), m.get("gpu")
        ecs = host_sections.parse_ecs(
            m.get("ecs", {}), (*path, "ecs"), self.issues, spot is True, gpu=gpu is True
        )
        secrets = host_sections.parse_secrets(m.get("secrets", {}), (*path, "secrets"), self.issues)
        drain = (
            host_sections.parse_drain(m["drain"], (*path, "drain"), self.issues)
            if "drain" in m
            else None
        )
        metadata = section(
            GROUP.keys["metadata"], m.get("metadata", {}), (*path, "metadata"), self.issues
        )
        nixos = m.get("nixos")
        if (
            "nixos" in m
            and m.get("userdata") != "nix"
            and not refused(self.issues, (*path, "userdata"))
        ):
            self.error(
                (*path, "nixos"),
                "E112",
                "nixos module text is only used with `userdata: nix`; set it or move these options into the host configuration",
            )
        if (
            len(self.issues) != before
            or capacity is None
            or ecs is None
            or secrets is None
            or metadata is None
            or not complete(GROUP, m, _GROUP_OWN)
            or host is None
            or ami is None
            or not complete(GROUP.keys["metadata"], metadata)
        ):
            return None
        kms_key = m.get("kms_key", cluster_key)
        return Group(
            name=name,
            cluster=cluster,
            host=host,
            ami=ami,
            ami_host=ami_host,
            instance_types=instance_types,
            capacity=capacity,
            spot=spot is True,
            userdata=as_str(m["userdata"]),
            ecs=ecs,
            secrets=secrets,
            drain=drain,
            hop_limit=as_int(metadata["hop_limit"]),
            nixos=as_str(nixos) if nixos is not None else None,
            path=path,
            kms_key=as_str(kms_key) if kms_key is not None else None,
            exec=exec_enabled is True,
            gpu=gpu is True,
            **extra,
            **provider,
        )

    def capacity(self, value: object, path: Path) -> Capacity | None:
        node = GROUP.keys["capacity"]
        written = keys(node, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(node, written, path, self.issues)
        if len(self.issues) != before or not complete(node, m):
            return None
        low, high = as_int(m["min"]), as_int(m["max"])
        desired = as_int(m.get("desired", low))  # DesiredCapacity defaults to MinSize
        if low > high:
            self.error((*path, "min"), "E109", f"min {low} is greater than max {high}")
            return None
        if not low <= desired <= high:
            self.error(
                (*path, "desired"), "E109", f"desired {desired} is outside [min {low}, max {high}]"
            )
            return None
        return Capacity(low, high, desired, desired_given="desired" in written)

    def service(
        self, cluster: str, name: str, value: object, path: Path, groups: dict[str, object]
    ) -> Service | None:
        written = keys(SERVICE, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(SERVICE, written, path, self.issues, own=_SERVICE_OWN)
        plan = (
            strategy.parse_strategy(m["group"], (*path, "group"), self.issues, cluster, groups)
            if "group" in m
            else None
        )
        group = plan[0].group if plan else None
        desired = m.get("desired")
        task = self.task(name, m, path)
        scaling = (
            self.scaling(m["scaling"], (*path, "scaling")) if m.get("scaling") is not None else None
        )
        if (
            len(self.issues) != before
            or group is None
            or task is None
            or not complete(SERVICE, m, _SERVICE_OWN)
        ):
            return None
        containers, mode, role, task_cpu, task_memory = task
        first = containers[0]
        port = next((p.container_port for c in containers for p in c.ports), None)
        service = Service(
            name=name,
            cluster=cluster,
            group=group,
            image=first.image,
            # What the task reserves on an instance: the task's own cpu/memory, else the sum of
            # its containers' (memoryReservation where given, else memory).
            cpu=task_cpu if task_cpu is not None else sum(c.cpu for c in containers),
            memory=task_memory
            if task_memory is not None
            else sum(c.reserved_memory for c in containers),
            port=port,
            desired=as_int(desired),
            environment=first.environment,
            secrets=first.secrets,
            scaling=scaling,
            path=path,
            desired_given="desired" in written,
            containers=containers,
            network_mode=mode,
            task_role=role,
            task_cpu=task_cpu,
            task_memory=task_memory,
            strategy=plan or (),
        )
        service = volumes.with_volumes(m, path, service, self.issues)
        extended = loadbalancing.service_extras(m, path, service, self.issues)
        # what is written: `values` fills in the default `desired`, which a daemon has none of
        return daemon.with_scheduling(written, path, extended, self.issues) if extended else None

    def task(
        self, name: str, m: dict[str, object], path: Path
    ) -> tuple[tuple[Container, ...], str, TaskRole | None, int | None, int | None] | None:
        """The task definition's part of a service: its containers (the `containers:` map, or
        the one-container shorthand), network mode and task role."""
        before = len(self.issues)
        mode = s.check_str(
            m.get("network_mode", SERVICE.keys["network_mode"].default),
            (*path, "network_mode"),
            self.issues,
        )
        if mode == "awsvpc":
            self.error(
                (*path, "network_mode"),
                "E146",
                "awsvpc needs the ECS CNI plugins (ecs-bridge, ecs-eni, ecs-ipam) on the host, and "
                "the nixecs image does not ship them yet: use bridge (the default) or host",
            )
            mode = None
        elif mode is not None and mode not in NETWORK_MODES:
            self.error(
                (*path, "network_mode"),
                s.E_VALUE,
                f"{mode!r} is not one of: {', '.join(NETWORK_MODES)}",
            )
            mode = None
        role = (
            parse_task_role(m["task_role"], (*path, "task_role"), self.issues)
            if m.get("task_role") is not None
            else None
        )
        containers: tuple[Container, ...] | None = None
        task_cpu: int | None = None
        task_memory: int | None = None
        if "containers" in m:
            for key in SHORTHAND_KEYS:
                if key in m:
                    self.error(
                        (*path, key),
                        "E112",
                        f"`{key}` belongs in a container when the service lists `containers:`",
                    )
            # Task cpu on EC2: "Supported values are between 128 CPU units (0.125 vCPUs) and
            # 196608 CPU units (192 vCPUs)" (RegisterTaskDefinition cpu, ECS API reference).
            task_cpu = (
                s.check_int(m["cpu"], (*path, "cpu"), self.issues, TASK_CPU_MIN, CPU_MAX)
                if m.get("cpu") is not None
                else None
            )
            if m.get("memory") is not None:
                memory = check(_MEMORY, m["memory"], (*path, "memory"), self.issues)
                task_memory = as_int(memory) if memory is not None else None
            # Parsed even when the network mode is wrong, so that every error of the file
            # is reported at once (as bridge, the default).
            containers = parse_containers(
                m["containers"], (*path, "containers"), self.issues, mode or "bridge"
            )
        else:
            for key in ("image", "memory"):
                # a refused `containers:` or `image:` null is the one error
                if key not in m and not any(
                    refused(self.issues, (*path, k)) for k in (key, "containers")
                ):
                    self.error(
                        path,
                        s.E_MISSING,
                        f"missing required key {key!r}",
                    )
            if "image" in m and "memory" in m:
                containers = self.shorthand(name, m, path, mode or "bridge")
        if len(self.issues) != before or containers is None or mode is None:
            return None
        return containers, mode, role, task_cpu, task_memory

    def shorthand(
        self, name: str, m: dict[str, object], path: Path, mode: str
    ) -> tuple[Container, ...] | None:
        """image/cpu/memory/port/environment/secrets on the service: one essential container
        named after the service, with a hard memory limit, 256 cpu units unless told, and
        its one port mapped to a dynamic host port (bridge) or the same port (host)."""
        item: dict[str, object] = {
            key: m[key] for key in ("image", "memory", "environment", "secrets") if key in m
        }
        item["cpu"] = m.get("cpu", SHORTHAND_CPU)
        before = len(self.issues)
        if m.get("port") is not None:
            # Checked here, so that an error points at `port:` itself.
            port = check(_PORT, m["port"], (*path, "port"), self.issues)
            if port is not None:
                item["ports"] = [port]
        # Parsed as a container at the service's own path, so each diagnostic points at the
        # key the user wrote (`port:` reported at its value, being the list's only item).
        container = parse_container(name, item, path, self.issues, mode)
        if container is None or len(self.issues) != before:
            return None
        if container.ports:
            where = (*path, "port")
            container = replace(
                container, ports=tuple(replace(p, path=where) for p in container.ports)
            )
        return (container,)

    def scaling(self, value: object, path: Path) -> Scaling | None:
        written = keys(SCALING, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(SCALING, written, path, self.issues)
        policies = (
            tracking.policies(
                m["target_tracking"], (*path, "target_tracking"), self.issues, self.target_tracking
            )
            if "target_tracking" in m
            else ()
        )
        steps: list[StepPolicy] = []
        if "step" in m:
            raw = m["step"]
            if not isinstance(raw, list) or not raw:
                self.error((*path, "step"), s.E_TYPE, f"expected {SCALING.keys['step'].what}")
            else:
                names: set[str] = set()
                for index, item in enumerate(raw):
                    policy = self.step_policy(item, (*path, "step", index))
                    if policy is not None:
                        if policy.name in names:
                            self.error(
                                (*path, "step", index, "name"),
                                s.E_VALUE,
                                f"step policy name {policy.name!r} is used twice",
                            )
                        names.add(policy.name)
                        steps.append(policy)
        # Target tracking and step policies together are allowed, as AWS allows them on one
        # scalable target; what is dangerous about the pair is linted (W203, nixecs.scaling).
        if len(self.issues) != before or not complete(SCALING, m):
            return None
        plan = (
            scheduled.parse(m["scheduled"], (*path, "scheduled"), self.issues)
            if "scheduled" in m
            else ()
        )
        if len(self.issues) != before:
            return None
        return Scaling(as_int(m["min"]), as_int(m["max"]), policies, tuple(steps), path, plan)

    def target_tracking(self, value: object, path: Path) -> TargetTracking | None:
        written = keys(TRACKING, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(TRACKING, written, path, self.issues, own=("metric",))
        metric, custom = (
            tracking.metric(m["metric"], (*path, "metric"), self.issues, self.dimensions)
            if "metric" in m
            else (None, None)
        )
        target = m.get("target")
        if isinstance(target, float) and metric is not None:
            tracking.check_target(metric, target, (*path, "target"), self.issues)
        if len(self.issues) != before or metric is None or not complete(TRACKING, m, ("metric",)):
            return None
        return TargetTracking(
            metric,
            as_float(m["target"]),
            as_int(m["scale_in_cooldown"]),
            as_int(m["scale_out_cooldown"]),
            m["disable_scale_in"] is True,
            path,
            custom,
        )

    def step_policy(self, value: object, path: Path) -> StepPolicy | None:
        written = keys(_STEP_POLICY, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(_STEP_POLICY, written, path, self.issues)
        alarm = self.alarm(m["alarm"], (*path, "alarm")) if "alarm" in m else None
        if (
            "min_adjustment_magnitude" in written
            and m.get("adjustment_type") != "PercentChangeInCapacity"
        ):
            self.error(
                (*path, "min_adjustment_magnitude"),
                "E112",
                "min_adjustment_magnitude is only valid with adjustment_type PercentChangeInCapacity",
            )
        steps: list[Step] = []
        raw = m.get("steps")
        if "steps" in m:
            if not isinstance(raw, list) or not raw:
                self.error((*path, "steps"), s.E_TYPE, "expected a non-empty list of steps")
            else:
                for index, item in enumerate(raw):
                    step = self.step(item, (*path, "steps", index))
                    if step is not None:
                        steps.append(step)
        if len(self.issues) != before or alarm is None or not complete(_STEP_POLICY, m):
            return None
        magnitude = m.get("min_adjustment_magnitude")
        return StepPolicy(
            as_str(m["name"]),
            alarm,
            as_str(m["adjustment_type"]),
            as_int(m["cooldown"]),
            as_str(m["aggregation"]),
            magnitude if isinstance(magnitude, int) else None,
            tuple(steps),
            path,
        )

    def step(self, value: object, path: Path) -> Step | None:
        written = keys(_STEP, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(_STEP, written, path, self.issues)
        if len(self.issues) != before or not complete(_STEP, m):
            return None
        lower, upper = m.get("lower"), m.get("upper")
        return Step(
            lower if isinstance(lower, float) else None,
            upper if isinstance(upper, float) else None,
            as_int(m["change"]),
            path,
        )

    def alarm(self, value: object, path: Path) -> Alarm | None:
        written = keys(SCALING_ALARM, value, path, self.issues)
        if written is None:
            return None
        before = len(self.issues)
        m = values(SCALING_ALARM, written, path, self.issues)
        period, evaluation_periods = m.get("period"), m.get("evaluation_periods")
        if isinstance(period, int) and period not in (10, 20, 30) and period % 60:
            self.error(
                (*path, "period"), s.E_VALUE, f"period {period} is not valid: use {VALID_PERIODS}"
            )
        if (
            isinstance(period, int)
            and isinstance(evaluation_periods, int)
            and period * evaluation_periods > 86400
        ):
            self.error(
                (*path, "evaluation_periods"),
                s.E_VALUE,
                "period × evaluation_periods must not exceed one day (86400 s)",
            )
        dimensions = (
            self.dimensions(m["dimensions"], (*path, "dimensions"))
            if m.get("dimensions") is not None
            else None
        )
        if len(self.issues) != before or not complete(SCALING_ALARM, m):
            return None
        return Alarm(
            as_str(m["metric"]),
            as_str(m["namespace"]),
            as_str(m["statistic"]),
            as_int(period),
            as_int(evaluation_periods),
            as_float(m["threshold"]),
            as_str(m["comparison"]),
            path,
            dimensions,
        )

    def dimensions(self, value: object, path: Path) -> tuple[tuple[str, str], ...]:
        """`{Name: value}`: CloudWatch allows 30 dimensions, names of 1-255 and values of
        1-1024 characters (PutMetricAlarm's Dimension type). A value is literal text, in which
        `${cluster}` and `${service}` stand for the ECS cluster's and service's names."""
        named = entries(_DIMENSIONS, value, path, self.issues, _DIMENSIONS.what)
        if named is None:
            return ()
        assert isinstance(value, dict)  # `entries` found it a mapping
        if len(value) > MAX_DIMENSIONS:
            self.error(
                path,
                s.E_VALUE,
                f"{len(value)} dimensions; CloudWatch allows at most {MAX_DIMENSIONS}",
            )
        pairs: list[tuple[str, str]] = []
        for name, item in named.items():
            where = (*path, name)
            checked = check(member(_DIMENSIONS), item, where, self.issues)
            if checked is None:
                continue
            text = as_str(checked)
            unknown = [p for p in PLACEHOLDER_RE.findall(text) if p not in metrics.PLACEHOLDERS]
            if unknown:
                self.error(
                    where,
                    s.E_VALUE,
                    f"unknown placeholder {unknown[0]}: a dimension value may use {' and '.join(metrics.PLACEHOLDERS)}",
                )
                continue
            pairs.append((name, text))
        return tuple(sorted(pairs))


def diagnose(document: Document, issues: list[Issue]) -> Report:
    report = Report()
    for duplicate in document.duplicates:
        report.add(
            "E102", duplicate.message, Location(document.path, duplicate.line, duplicate.column)
        )
    for issue in issues:
        # Codes about a key (not its value) point at the key.
        location = document.locate(
            issue.path, key=issue.code in ("E101", "E105", "E116", "E118", "E119", "E163", "E165")
        )
        likely = hint(document, issue)  # looked up only here: a valid fleet never pays
        message = issue.message
        if message.endswith(", got null") and issue.path and isinstance(issue.path[-1], str):
            # A null entry of a map (an environment variable, a tag, a dimension) checked by
            # the value's own rule: told as a key's null is (decl._without_nulls).
            message += f" (`{issue.path[-1]}:` has nothing after it){NULL_ADVICE}"
        if likely and message.endswith(NULL_ADVICE):  # the likely cause says what to do
            message = message[: -len(NULL_ADVICE)]
        report.add(issue.code, f"{message}; {likely}" if likely else message, location)
    return report


def parse(
    data: bytes | str,
    path: str,
    env: str | None = None,
    *,
    partial: Callable[[Fleet], list[Diagnostic]] | None = None,
) -> Fleet:
    """Load and validate fleet text; raise InvalidInput with every error of the file. A file
    that declares `environments:` is read as environment `env` (which it must then name).
    `partial`: rules to run, beside the loader's errors, on the part of a fleet that loaded."""

    def select(root: yaml.Node) -> yaml.Node:
        missing = environments.need_one(root) if env is None else None
        if missing is not None:
            raise missing
        return environments.select(root, env)

    try:
        document = load(data, path, select)
    except YamlError as error:
        report = Report()
        report.add(error.code, error.message, Location(path, error.line, error.column))
        raise InvalidInput(report) from None
    builder = _Builder(document)
    fleet = builder.fleet()
    report = diagnose(document, builder.issues)
    if builder.partial is not None and partial is not None:
        # Every error at once: the rules on one service or task alone (two mounts on one
        # path, ...) run on the services that loaded, beside the loader's errors. They are
        # the checks stage's (fleet/checks.py passes them in: the stage imports the loader,
        # never the other way round).
        report.extend(partial(builder.partial))
    if fleet is None or report.has_errors:
        if not report.has_errors:  # pragma: no cover - a builder bug, never silent
            report.add("E100", "invalid fleet file", Location(path, 1, 1))
        raise InvalidInput(report)
    return replace(fleet, environment=env) if env else fleet


def _read(name: str) -> bytes:
    report = Report()
    try:
        # read_regular: a FIFO or a device (a `validate /dev/stdin` pipe, /dev/zero) neither
        # blocks nor reads forever
        data = read_regular(name, MAX_FLEET_BYTES)
    except OSError as error:
        report.add("E100", f"cannot read the file: {error.strerror or error}", Location(name, 1, 1))
        raise InvalidInput(report) from None
    if len(data) > MAX_FLEET_BYTES:
        report.add(
            "E100", f"over {MAX_FLEET_BYTES >> 20} MiB: not a fleet file", Location(name, 1, 1)
        )
        raise InvalidInput(report)
    return data


def environments_of(path: str | os.PathLike[str]) -> list[str]:
    """The environments a fleet file declares (none: []); InvalidInput when it cannot be read
    or is not YAML."""
    name = os.fspath(path)
    found: list[str] = []

    def record(root: yaml.Node) -> yaml.Node:
        found.extend(environments.names(root))
        return root

    try:
        load(_read(name), name, record)
    except YamlError as error:
        report = Report()
        report.add(error.code, error.message, Location(name, error.line, error.column))
        raise InvalidInput(report) from None
    return found


def load_fleet(
    path: str | os.PathLike[str],
    env: str | None = None,
    *,
    partial: Callable[[Fleet], list[Diagnostic]] | None = None,
) -> Fleet:
    """Read and validate a fleet file (as environment `env` when it declares environments);
    InvalidInput (E100) when it cannot be read. `partial`: as for `parse`."""
    name = os.fspath(path)
    return parse(_read(name), name, env, partial=partial)
