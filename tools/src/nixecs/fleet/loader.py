"""Fleet file → validated model, or every error of the file with its position.

The checks are the settings schema's own `check_*`/`parse_*` functions (settings.py), so a
group's `ecs`, `secrets` and `drain` sections are validated by exactly the code the host
runs at boot.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import replace

from .. import settings as s
from ..atomic import read_regular
from ..diagnostics import InvalidInput, Location, Report
from ..naming import group_resource_name
from ..settings import Issue
from . import daemon, infra, linux, loadbalancing, metrics, scheduled, volumes
from .containers import (
    CPU_MAX,
    MEMORY_MAX,
    MEMORY_MIN,
    NETWORK_MODES,
    Container,
    check_task,
    parse_container,
    parse_containers,
)
from .model import (
    ADJUSTMENT_TYPES,
    AGGREGATIONS,
    COMPARISONS,
    STATISTICS,
    TARGET_METRICS,
    USERDATA_FORMATS,
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
from .task_role import TaskRole, parse_task_role
from .yaml12 import Document, Path, YamlError, load

NAME_RULE = "1-64 letters, digits, _ and -, starting with a letter or digit"
AMI_RE = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
SUBNET_RE = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
SG_RE = re.compile(r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})")
REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]")
INSTANCE_TYPE_RE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9-]+")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
FLAKE_RE = re.compile(r"[!-~]{1,256}")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
PREFIX_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
METRIC_RE = re.compile(r"[^\x00-\x1f]{1,255}")
DIMENSION_NAME_RE = re.compile(r"[^\x00-\x1f]{1,255}")
DIMENSION_VALUE_RE = re.compile(r"[^\x00-\x1f]{1,1024}")
PLACEHOLDER_RE = re.compile(r"\$\{[^}]*\}?")
MAX_DIMENSIONS = 30
# A fleet of 10,000 groups and services renders from ~5 MB of YAML; far more is a mistake.
MAX_FLEET_BYTES = 64 * 1024 * 1024
_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
KMS_KEY_RE = re.compile(rf"{_KEY_ID}|arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{{12}}:key/{_KEY_ID}")
# The service's keys: the shorthand's (one container) and the task's.
SHORTHAND_KEYS = ("image", "port", "environment", "secrets")
GROUP_KEYS = (
    "host",
    "ami",
    "instance_types",
    "capacity",
    "spot",
    "userdata",
    "ecs",
    "secrets",
    "drain",
    "metadata",
    "nixos",
    "kms_key",
    "exec",
    "gpu",
    *infra.GROUP_KEYS,
)
SERVICE_KEYS = (
    "group",
    "image",
    "cpu",
    "memory",
    "port",
    "desired",
    "environment",
    "secrets",
    "scaling",
    "containers",
    "network_mode",
    "task_role",
    *loadbalancing.SERVICE_KEYS,
    *volumes.SERVICE_KEYS,
    *daemon.SERVICE_KEYS,
)
# CloudWatch periods: 10, 20, 30 (high resolution) or a multiple of 60.
VALID_PERIODS = "10, 20, 30 or a multiple of 60 seconds"


class _Builder:
    def __init__(self, document: Document) -> None:
        self.doc = document
        self.issues: list[Issue] = []

    # -- small helpers over settings.check_* --------------------------------------------
    def error(self, path: Path, code: str, message: str) -> None:
        self.issues.append(Issue(path, code, message))

    def mapping(
        self, value: object, path: Path, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, object] | None:
        return s.check_mapping(value, path, self.issues, allowed, required)

    def named_mapping(self, value: object, path: Path, what: str) -> dict[str, object]:
        """A mapping whose keys are resource names; bad names are reported and dropped."""
        if not isinstance(value, dict):
            self.error(path, s.E_TYPE, f"expected a mapping of {what}, got {s.type_name(value)}")
            return {}
        result: dict[str, object] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not s.NAME_RE.fullmatch(name):
                self.error(
                    (*path, name), s.E_NAME, f"{what[:-1]} name {name!r} is not valid: {NAME_RULE}"
                )
                continue
            result[name] = item
        return result

    def string_list(
        self,
        value: object,
        path: Path,
        pattern: re.Pattern[str],
        rule: str,
        *,
        nonempty: bool = True,
    ) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.error(path, s.E_TYPE, f"expected a list, got {s.type_name(value)}")
            return ()
        if nonempty and not value:
            self.error(path, s.E_VALUE, "must not be empty")
        items = [
            s.check_pattern(item, (*path, i), self.issues, pattern, rule)
            for i, item in enumerate(value)
        ]
        return tuple(item for item in items if item is not None)

    def number(self, value: object, path: Path) -> float | None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            self.error(path, s.E_TYPE, f"expected a finite number, got {s.type_name(value)}")
            return None
        return float(value)

    def optional_number(self, mapping: dict[str, object], key: str, path: Path) -> float | None:
        if key not in mapping or mapping[key] is None:
            return None
        return self.number(mapping[key], (*path, key))

    # -- the document --------------------------------------------------------------------
    def fleet(self) -> Fleet | None:
        path: Path = ()
        top = s.check_mapping(
            self.doc.value,
            path,
            self.issues,
            ("version", "region", "flake", "name_prefix", "template_bucket", "clusters"),
            ("version", "region", "clusters"),
            what="a fleet mapping",
        )
        if top is None:
            return None
        if "version" in top and top["version"] != 1:
            self.error(
                ("version",),
                s.E_VALUE,
                f"unsupported fleet version {top['version']!r}: this nixecs reads version 1",
            )
        region = s.check_pattern(
            top.get("region", "us-east-1"),
            ("region",),
            self.issues,
            REGION_RE,
            "an AWS region such as us-east-1",
        )
        # Recorded in tags and the nix userdata's header comment: one word, no control characters.
        flake = (
            s.check_pattern(
                top.get("flake", ""),
                ("flake",),
                self.issues,
                FLAKE_RE,
                "a flake reference without spaces, e.g. github:acme/infra",
            )
            if top.get("flake", "") != ""
            else ""
        )
        # S3 bucket for templates over CloudFormation's inline limit (deploy; E130).
        template_bucket = (
            s.check_pattern(
                top["template_bucket"],
                ("template_bucket",),
                self.issues,
                BUCKET_RE,
                "an S3 bucket name (3-63 of a-z 0-9 . -)",
            )
            if "template_bucket" in top
            else ""
        )
        # Two fleets in one account and region: with `name_prefix: acme` cluster `prod` is
        # `acme-prod` in every AWS name (stack, ECS cluster, groups, roles, log groups, alarms,
        # the host's ECS_CLUSTER) and on the command line; the key in the file stays `prod`.
        prefix = (
            s.check_pattern(
                top["name_prefix"],
                ("name_prefix",),
                self.issues,
                PREFIX_RE,
                "1-16 of a-z 0-9 and -, starting with a letter or digit, e.g. acme",
            )
            if "name_prefix" in top
            else ""
        ) or ""
        clusters: dict[str, Cluster] = {}
        for name, value in self.named_mapping(
            top.get("clusters", {}), ("clusters",), "clusters"
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
                for group in cluster.groups.values():
                    # the launch template is named like the group: at most 128 characters
                    # (LaunchTemplateName, botocore's ec2 model)
                    full = group_resource_name(aws_name, group.name)
                    if len(full) > 128:
                        self.error(
                            group.path,
                            s.E_NAME,
                            f"the group's AWS name {full!r} is {len(full)} characters, over the "
                            "128 a launch template name may have: shorten the group, cluster or prefix",
                        )
        loadbalancing.check_fleet(clusters, self.issues)
        linux.check_privileged(dict(clusters), self.issues)
        if self.issues:
            return None
        return Fleet(
            version=1,
            region=region or "",
            flake=flake or "",
            clusters=clusters,
            document=self.doc,
            template_bucket=template_bucket or "",
            name_prefix=prefix,
        )

    def cluster(self, name: str, value: object, path: Path) -> Cluster | None:
        m = self.mapping(
            value,
            path,
            (
                "subnets",
                "security_groups",
                "groups",
                "services",
                "kms_key",
                "load_balancer",
                *infra.CLUSTER_KEYS,
                *scheduled.CLUSTER_KEYS,
            ),
            ("subnets", "security_groups"),
        )
        if m is None:
            return None
        extra = infra.cluster_keys(m, path, self.issues)
        kms_key = self.kms_key(m, path)
        subnets = self.string_list(
            m.get("subnets", []),
            (*path, "subnets"),
            SUBNET_RE,
            "a subnet id such as subnet-0a1b2c3d",
        )
        security_groups = self.string_list(
            m.get("security_groups", []),
            (*path, "security_groups"),
            SG_RE,
            "a security group id such as sg-0a1b2c3d",
        )
        groups: dict[str, Group] = {}
        for group_name, group_value in self.named_mapping(
            m.get("groups", {}), (*path, "groups"), "groups"
        ).items():
            group = self.group(
                name, group_name, group_value, (*path, "groups", group_name), kms_key
            )
            if group is not None:
                groups[group_name] = group
        services: dict[str, Service] = {}
        # References are checked against every key written, so a badly named group is
        # reported once (E105), not again by each service that uses it.
        declared = m.get("groups")
        raw_groups: dict[str, object] = declared if isinstance(declared, dict) else {}
        for service_name, service_value in self.named_mapping(
            m.get("services", {}), (*path, "services"), "services"
        ).items():
            service = self.service(
                name, service_name, service_value, (*path, "services", service_name), raw_groups
            )
            if service is not None:
                services[service_name] = service
        tasks = scheduled.parse_tasks(self, name, m, path, raw_groups, services)
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
        )
        loadbalancing.check_cluster(cluster, self.issues)
        return cluster

    def kms_key(self, m: dict[str, object], path: Path) -> str | None:
        """`kms_key:` — a KMS key ARN or key id. Not an alias: an IAM policy cannot grant
        kms:Decrypt on a key by its alias in Resource."""
        if m.get("kms_key") is None:
            return None
        return s.check_pattern(
            m["kms_key"],
            (*path, "kms_key"),
            self.issues,
            KMS_KEY_RE,
            "a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or key id; not an alias",
        )

    def group(
        self, cluster: str, name: str, value: object, path: Path, cluster_key: str | None = None
    ) -> Group | None:
        m = self.mapping(
            value,
            path,
            GROUP_KEYS,
            ("ami", "instance_types", "capacity"),
        )
        if m is None:
            return None
        before = len(self.issues)
        extra = infra.group_keys(m, path, self.issues)
        host = s.check_pattern(
            m.get("host", "ecs-node"),
            (*path, "host"),
            self.issues,
            HOST_RE,
            "a nixosConfigurations name such as ecs-node",
        )
        ami = (
            s.check_pattern(
                m["ami"],
                (*path, "ami"),
                self.issues,
                AMI_RE,
                "an AMI id such as ami-0123456789abcdef0",
            )
            if "ami" in m
            else None
        )
        instance_types = self.string_list(
            m.get("instance_types", []),
            (*path, "instance_types"),
            INSTANCE_TYPE_RE,
            "an instance type such as m6i.large",
        )
        if len(set(instance_types)) != len(instance_types):
            self.error((*path, "instance_types"), s.E_VALUE, "instance types must not repeat")
        capacity = self.capacity(m["capacity"], (*path, "capacity")) if "capacity" in m else None
        spot = s.check_bool(m.get("spot", False), (*path, "spot"), self.issues)
        exec_enabled = s.check_bool(m.get("exec", False), (*path, "exec"), self.issues)
        gpu = s.check_bool(m.get("gpu", False), (*path, "gpu"), self.issues)
        userdata = s.check_enum(
            m.get("userdata", "settings"), (*path, "userdata"), self.issues, USERDATA_FORMATS
        )
        ecs = s.parse_ecs(
            m.get("ecs", {}), (*path, "ecs"), self.issues, spot_draining_default=bool(spot)
        )
        secrets = s.parse_secrets(m.get("secrets", {}), (*path, "secrets"), self.issues)
        drain = (
            s.parse_drain(m["drain"], (*path, "drain"), self.issues)
            if m.get("drain") is not None
            else None
        )
        hop_limit = 1
        if "metadata" in m:
            meta = self.mapping(m["metadata"], (*path, "metadata"), ("hop_limit",))
            if meta is not None and "hop_limit" in meta:
                hop_limit = (
                    s.check_int(
                        meta["hop_limit"], (*path, "metadata", "hop_limit"), self.issues, 1, 64
                    )
                    or 1
                )
        nixos: str | None = None
        if "nixos" in m:
            nixos = s.check_str(m["nixos"], (*path, "nixos"), self.issues)
            if userdata != "nix":
                self.error(
                    (*path, "nixos"),
                    "E112",
                    "nixos module text is only used with `userdata: nix`; set it or move these options into the host configuration",
                )
        if len(self.issues) != before or None in (
            host,
            ami,
            capacity,
            spot,
            userdata,
            ecs,
            secrets,
        ):
            return None
        assert host and ami and capacity and userdata and ecs is not None and secrets is not None
        return Group(
            name=name,
            cluster=cluster,
            host=host,
            ami=ami,
            instance_types=instance_types,
            capacity=capacity,
            spot=bool(spot),
            userdata=userdata,
            ecs=ecs,
            secrets=secrets,
            drain=drain,
            hop_limit=hop_limit,
            nixos=nixos,
            path=path,
            kms_key=self.kms_key(m, path) or cluster_key,
            exec=bool(exec_enabled),
            gpu=bool(gpu),
            **extra,
        )

    def capacity(self, value: object, path: Path) -> Capacity | None:
        m = self.mapping(value, path, ("min", "max", "desired"), ("min", "max"))
        if m is None or "min" not in m or "max" not in m:
            return None
        low = s.check_int(m["min"], (*path, "min"), self.issues, 0, 10000)
        high = s.check_int(m["max"], (*path, "max"), self.issues, 0, 10000)
        desired = (
            s.check_int(m.get("desired", low), (*path, "desired"), self.issues, 0, 10000)
            if low is not None
            else None
        )
        if low is None or high is None or desired is None:
            return None
        if low > high:
            self.error((*path, "min"), "E109", f"min {low} is greater than max {high}")
            return None
        if not low <= desired <= high:
            self.error(
                (*path, "desired"), "E109", f"desired {desired} is outside [min {low}, max {high}]"
            )
            return None
        return Capacity(low, high, desired, desired_given="desired" in m)

    def service(
        self, cluster: str, name: str, value: object, path: Path, groups: dict[str, object]
    ) -> Service | None:
        m = self.mapping(value, path, SERVICE_KEYS, ("group",))
        if m is None:
            return None
        before = len(self.issues)
        group = s.check_str(m["group"], (*path, "group"), self.issues) if "group" in m else None
        if group is not None and group not in groups:
            self.error(
                (*path, "group"),
                "E108",
                f"no group {group!r} in cluster {cluster!r} (groups: {', '.join(sorted(map(str, groups))) or 'none'})",
            )
        desired = s.check_int(m.get("desired", 1), (*path, "desired"), self.issues, 0, 10000)
        task = self.task(name, m, path)
        scaling = (
            self.scaling(m["scaling"], (*path, "scaling")) if m.get("scaling") is not None else None
        )
        if len(self.issues) != before or group is None or desired is None or task is None:
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
            desired=desired,
            environment=first.environment,
            secrets=first.secrets,
            scaling=scaling,
            path=path,
            desired_given="desired" in m,
            containers=containers,
            network_mode=mode,
            task_role=role,
            task_cpu=task_cpu,
            task_memory=task_memory,
        )
        service = volumes.with_volumes(m, path, service, self.issues)
        extended = loadbalancing.service_extras(m, path, service, self.issues)
        return daemon.with_scheduling(m, path, extended, self.issues) if extended else None

    def task(
        self, name: str, m: dict[str, object], path: Path
    ) -> tuple[tuple[Container, ...], str, TaskRole | None, int | None, int | None] | None:
        """The task definition's part of a service: its containers (the `containers:` map, or
        the one-container shorthand), network mode and task role."""
        before = len(self.issues)
        mode = s.check_str(m.get("network_mode", "bridge"), (*path, "network_mode"), self.issues)
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
                s.check_int(m["cpu"], (*path, "cpu"), self.issues, 128, CPU_MAX)
                if m.get("cpu") is not None
                else None
            )
            task_memory = (
                s.check_int(m["memory"], (*path, "memory"), self.issues, MEMORY_MIN, MEMORY_MAX)
                if m.get("memory") is not None
                else None
            )
            # Parsed even when the network mode is wrong, so that every error of the file
            # is reported at once (as bridge, the default).
            containers = parse_containers(
                m["containers"], (*path, "containers"), self.issues, mode or "bridge"
            )
            if containers is not None and len(self.issues) == before:
                check_task(containers, path, self.issues, task_cpu, task_memory)
        else:
            for key in ("image", "memory"):
                if key not in m:
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
        item["cpu"] = m.get("cpu", 256)
        before = len(self.issues)
        if m.get("port") is not None:
            # Checked here, so that an error points at `port:` itself.
            port = s.check_int(m["port"], (*path, "port"), self.issues, 1, 65535)
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
        m = self.mapping(value, path, ("min", "max", "target_tracking", "step"), ("min", "max"))
        if m is None:
            return None
        before = len(self.issues)
        low = s.check_int(m["min"], (*path, "min"), self.issues, 0, 10000) if "min" in m else None
        high = s.check_int(m["max"], (*path, "max"), self.issues, 0, 10000) if "max" in m else None
        tracking = (
            self.target_tracking(m["target_tracking"], (*path, "target_tracking"))
            if "target_tracking" in m
            else None
        )
        steps: list[StepPolicy] = []
        if "step" in m:
            raw = m["step"]
            if not isinstance(raw, list) or not raw:
                self.error((*path, "step"), s.E_TYPE, "expected a non-empty list of step policies")
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
        if len(self.issues) != before or low is None or high is None:
            return None
        return Scaling(low, high, tracking, tuple(steps), path)

    def target_tracking(self, value: object, path: Path) -> TargetTracking | None:
        m = self.mapping(
            value,
            path,
            ("metric", "target", "scale_in_cooldown", "scale_out_cooldown", "disable_scale_in"),
            ("metric", "target"),
        )
        if m is None:
            return None
        before = len(self.issues)
        metric = (
            s.check_enum(m["metric"], (*path, "metric"), self.issues, tuple(TARGET_METRICS))
            if "metric" in m
            else None
        )
        target = self.number(m["target"], (*path, "target")) if "target" in m else None
        if target is not None and metric == "requests" and not 0 < target <= 1_000_000:
            self.error(
                (*path, "target"),
                s.E_VALUE,
                f"target {target:g} must be a request count per target in (0, 1000000]",
            )
        elif target is not None and metric != "requests" and not 0 < target <= 100:
            self.error(
                (*path, "target"),
                s.E_VALUE,
                f"target {target:g} must be a utilisation percentage in (0, 100]",
            )
        scale_in = s.check_int(
            m.get("scale_in_cooldown", 300), (*path, "scale_in_cooldown"), self.issues, 0, 86400
        )
        scale_out = s.check_int(
            m.get("scale_out_cooldown", 60), (*path, "scale_out_cooldown"), self.issues, 0, 86400
        )
        disable = s.check_bool(
            m.get("disable_scale_in", False), (*path, "disable_scale_in"), self.issues
        )
        if len(self.issues) != before or None in (metric, target, scale_in, scale_out, disable):
            return None
        assert metric and target is not None and scale_in is not None and scale_out is not None
        return TargetTracking(metric, target, scale_in, scale_out, bool(disable), path)

    def step_policy(self, value: object, path: Path) -> StepPolicy | None:
        m = self.mapping(
            value,
            path,
            (
                "name",
                "alarm",
                "adjustment_type",
                "cooldown",
                "aggregation",
                "min_adjustment_magnitude",
                "steps",
            ),
            ("name", "alarm", "steps"),
        )
        if m is None:
            return None
        before = len(self.issues)
        name = (
            s.check_pattern(m["name"], (*path, "name"), self.issues, s.NAME_RE, NAME_RULE, s.E_NAME)
            if "name" in m
            else None
        )
        alarm = self.alarm(m["alarm"], (*path, "alarm")) if "alarm" in m else None
        adjustment = s.check_enum(
            m.get("adjustment_type", "ChangeInCapacity"),
            (*path, "adjustment_type"),
            self.issues,
            ADJUSTMENT_TYPES,
        )
        cooldown = s.check_int(m.get("cooldown", 300), (*path, "cooldown"), self.issues, 0, 86400)
        aggregation = s.check_enum(
            m.get("aggregation", "Average"), (*path, "aggregation"), self.issues, AGGREGATIONS
        )
        magnitude: int | None = None
        if "min_adjustment_magnitude" in m:
            magnitude = s.check_int(
                m["min_adjustment_magnitude"],
                (*path, "min_adjustment_magnitude"),
                self.issues,
                1,
                10000,
            )
            if adjustment != "PercentChangeInCapacity":
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
        if len(self.issues) != before or None in (name, alarm, adjustment, cooldown, aggregation):
            return None
        assert name and alarm and adjustment and cooldown is not None and aggregation
        return StepPolicy(
            name, alarm, adjustment, cooldown, aggregation, magnitude, tuple(steps), path
        )

    def step(self, value: object, path: Path) -> Step | None:
        m = self.mapping(value, path, ("lower", "upper", "change"), ("change",))
        if m is None:
            return None
        before = len(self.issues)
        lower = self.optional_number(m, "lower", path)
        upper = self.optional_number(m, "upper", path)
        change = (
            s.check_int(m["change"], (*path, "change"), self.issues, -100000, 100000)
            if "change" in m
            else None
        )
        if len(self.issues) != before or change is None:
            return None
        return Step(lower, upper, change, path)

    def alarm(self, value: object, path: Path) -> Alarm | None:
        m = self.mapping(
            value,
            path,
            (
                "metric",
                "namespace",
                "statistic",
                "period",
                "evaluation_periods",
                "threshold",
                "comparison",
                "dimensions",
            ),
            ("metric", "threshold", "comparison"),
        )
        if m is None:
            return None
        before = len(self.issues)
        metric = (
            s.check_pattern(
                m["metric"], (*path, "metric"), self.issues, METRIC_RE, "a CloudWatch metric name"
            )
            if "metric" in m
            else None
        )
        namespace = s.check_pattern(
            m.get("namespace", "AWS/ECS"),
            (*path, "namespace"),
            self.issues,
            METRIC_RE,
            "a CloudWatch namespace",
        )
        statistic = s.check_enum(
            m.get("statistic", "Average"), (*path, "statistic"), self.issues, STATISTICS
        )
        period = s.check_int(m.get("period", 60), (*path, "period"), self.issues, 10, 86400)
        if period is not None and period not in (10, 20, 30) and period % 60:
            self.error(
                (*path, "period"), s.E_VALUE, f"period {period} is not valid: use {VALID_PERIODS}"
            )
        evaluation_periods = s.check_int(
            m.get("evaluation_periods", 1), (*path, "evaluation_periods"), self.issues, 1, 100
        )
        if (
            period is not None
            and evaluation_periods is not None
            and period * evaluation_periods > 86400
        ):
            self.error(
                (*path, "evaluation_periods"),
                s.E_VALUE,
                "period × evaluation_periods must not exceed one day (86400 s)",
            )
        threshold = self.number(m["threshold"], (*path, "threshold")) if "threshold" in m else None
        comparison = (
            s.check_enum(m["comparison"], (*path, "comparison"), self.issues, tuple(COMPARISONS))
            if "comparison" in m
            else None
        )
        dimensions = (
            self.dimensions(m["dimensions"], (*path, "dimensions"))
            if m.get("dimensions") is not None
            else None
        )
        if len(self.issues) != before or None in (
            metric,
            namespace,
            statistic,
            period,
            evaluation_periods,
            threshold,
            comparison,
        ):
            return None
        assert (
            metric
            and namespace
            and statistic
            and period
            and evaluation_periods
            and threshold is not None
            and comparison
        )
        return Alarm(
            metric,
            namespace,
            statistic,
            period,
            evaluation_periods,
            threshold,
            comparison,
            path,
            dimensions,
        )

    def dimensions(self, value: object, path: Path) -> tuple[tuple[str, str], ...]:
        """`{Name: value}`: CloudWatch allows 30 dimensions, names of 1-255 and values of
        1-1024 characters (PutMetricAlarm's Dimension type). A value is literal text, in which
        `${cluster}` and `${service}` stand for the ECS cluster's and service's names."""
        if not isinstance(value, dict) or not value:
            self.error(
                path,
                s.E_TYPE,
                f"expected a non-empty mapping of dimension names to values, got {s.type_name(value)}",
            )
            return ()
        if len(value) > MAX_DIMENSIONS:
            self.error(
                path,
                s.E_VALUE,
                f"{len(value)} dimensions; CloudWatch allows at most {MAX_DIMENSIONS}",
            )
        pairs: list[tuple[str, str]] = []
        for name, item in value.items():
            where = (*path, name)
            if not isinstance(name, str) or not DIMENSION_NAME_RE.fullmatch(name):
                self.error(
                    where,
                    s.E_NAME,
                    f"dimension name {name!r} is not valid: 1-255 characters, no control characters",
                )
                continue
            text = s.check_pattern(
                item,
                where,
                self.issues,
                DIMENSION_VALUE_RE,
                "a dimension value of 1-1024 characters",
            )
            if text is None:
                continue
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
        report.add(issue.code, issue.message, location)
    return report


def parse(data: bytes | str, path: str) -> Fleet:
    """Load and validate fleet text; raise InvalidInput with every error of the file."""
    try:
        document = load(data, path)
    except YamlError as error:
        report = Report()
        report.add(error.code, error.message, Location(path, error.line, error.column))
        raise InvalidInput(report) from None
    builder = _Builder(document)
    fleet = builder.fleet()
    report = diagnose(document, builder.issues)
    if fleet is None or report.has_errors:
        if not report.has_errors:  # pragma: no cover - a builder bug, never silent
            report.add("E100", "invalid fleet file", Location(path, 1, 1))
        raise InvalidInput(report)
    return fleet


def load_fleet(path: str | os.PathLike[str]) -> Fleet:
    """Read and validate a fleet file; InvalidInput (E100) when it cannot be read."""
    name = os.fspath(path)
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
    return parse(data, name)
