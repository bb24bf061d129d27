"""A service's containers: the `containers:` map (or the one-container shorthand) → typed
records, with the checks ECS would otherwise make at RegisterTaskDefinition (E140-E146, E148,
E149) and the usual E103/E105/E107/E108, each at its own `file:line:col`.

The rules are AWS's, as documented for AWS::ECS::TaskDefinition and the ECS API
(ContainerDefinition, HealthCheck, ContainerDependency, PortMapping, Ulimit), cited in
docs/aws.md ("Containers") and next to each check below.
"""

from __future__ import annotations

from .. import settings as s
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from . import env_files, linux, secret_refs, volumes
from .decl import (
    as_int,
    as_str,
    boolean,
    check,
    complete,
    either,
    entries,
    enum,
    integer,
    keys,
    mapping,
    member,
    obj,
    req,
    string,
    strings,
    values,
)
from .images import IMAGE, ImageRef, parse_image
from .yaml12 import Path

NETWORK_MODES = ("bridge", "host")
PROTOCOLS = ("tcp", "udp")
# ContainerDependency.condition (ECS API reference, API_ContainerDependency).
CONDITIONS = ("START", "COMPLETE", "SUCCESS", "HEALTHY")
# Ulimit.name (ECS API reference, API_Ulimit: the valid values).
ULIMIT_NAMES = (
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
)
LOG_DRIVERS = ("awslogs", "awsfirelens")
FIRELENS_TYPES = ("fluentbit", "fluentd")
# HealthCheck bounds (AWS::ECS::TaskDefinition HealthCheck, CloudFormation template reference:
# "You may specify between 5 and 300 seconds" for Interval, 2-60 for Timeout, 1-10 for
# Retries, 0-300 for StartPeriod; defaults 30, 5, 3 and off).
HEALTH_BOUNDS = {
    "interval": (5, 300, 30),
    "timeout": (2, 60, 5),
    "retries": (1, 10, 3),
}
START_PERIOD_BOUNDS = (0, 300)
# ContainerDefinition.name: "Up to 255 letters (uppercase and lowercase), numbers, underscores,
# and hyphens are allowed" (ECS API reference, API_ContainerDefinition).
CONTAINER_NAME_RE = lazy(r"[A-Za-z0-9_-]{1,255}")
ENV_NAME_RE = lazy(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
ENV_NAME_RULE = "an environment variable name: letters, digits and _, not starting with a digit"
# ContainerDefinition.user: user, user:group, uid, uid:gid, user:gid, uid:group.
USER_RE = lazy(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}(?::[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63})?")
LOG_OPTION_RE = lazy(r"[A-Za-z0-9_.-]{1,128}")
# The TCP ports the ECS agent reserves on every Linux instance unless ECS_RESERVED_PORTS says
# otherwise: SSH 22, Docker 2375/2376, introspection 51678, the task metadata endpoint 51679
# (aws/amazon-ecs-agent@8dfceca6 agent/config/config_unix.go DefaultConfig ReservedPorts,
# agent/config/config.go, ecs-agent/tmds/server.go). A task that maps one of them statically
# is never placed.
AGENT_RESERVED_TCP_PORTS = (22, 2375, 2376, 51678, 51679)
# Our own bound, not AWS's (which documents 120 s for Fargate only): a host's drain waits for
# this long per container at most.
STOP_TIMEOUT_MAX = 3600
MEMORY_MIN, MEMORY_MAX = 4, 1048576
CPU_MAX = 196608
# A task's own cpu (a service with `containers:`): 128-196608 units on EC2 (loader.task)
TASK_CPU_MIN = 128
# The one-container shorthand's cpu when left out (loader.shorthand)
SHORTHAND_CPU = 256

CONTAINER_KEYS = (
    "image",
    "essential",
    "cpu",
    "memory",
    "memory_reservation",
    "ports",
    "command",
    "entrypoint",
    "environment",
    "secrets",
    "health_check",
    "depends_on",
    "ulimits",
    "stop_timeout",
    "read_only_root_filesystem",
    "user",
    "log",
    "firelens",
    "gpu",
    *volumes.CONTAINER_KEYS,
    *linux.CONTAINER_KEYS,
    *env_files.CONTAINER_KEYS,
)
# ECS ResourceRequirement GPU: a whole number of physical GPUs the agent reserves for the
# container (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ResourceRequirement.html);
# the largest EC2 instances have 16.
GPU_MAX = 16


# -- the declaration (fleet/decl.py): what fleet/schema.py, the JSON Schema and docs/fleet.md
# show, and what parse_container checks each value against ------------------------------------

PARAMETER_EXAMPLE = "/prod/db/password"

ENVIRONMENT = mapping(
    "environment variables of the container",
    ENV_NAME_RE.pattern,
    string("the value"),
    example={"LOG_FORMAT": "json"},
    what="a mapping of strings",
)


SECRET_ENV = mapping(
    "environment variables read from SSM parameters or Secrets Manager secrets (name → secret)",
    ENV_NAME_RE.pattern,
    either(
        "an SSM parameter name or ARN, a Secrets Manager secret's ARN, or {secretsmanager: NAME, ...}",
        string(
            f"{s.PARAMETER_RULE}; or an SSM parameter ARN; or a Secrets Manager secret's full ARN "
            "(…:secret:NAME-AbCdEf[:json-key:version-stage:version-id])",
            pattern=secret_refs.unnamed(
                f"/.*|{secret_refs.SSM_ARN_RE.pattern}|{secret_refs.DECLARED_ARN}"
            ),
        ),
        secret_refs.SECRETS_MANAGER,
    ),
    aws="ECS Secret.valueFrom: a parameter's name or ARN, or a secret's full ARN",
    example={"DB_PASSWORD": PARAMETER_EXAMPLE},
)
OPTIONS = mapping("options", LOG_OPTION_RE.pattern, string("option value"))

HEALTH = {
    key: integer(
        f"health check {key} ({'count' if key == 'retries' else 'seconds'})",
        low,
        high,
        default=default,
        aws="ECS HealthCheck",
        example=default,
    )
    for key, (low, high, default) in HEALTH_BOUNDS.items()
}
MOUNTS, VOLUMES_FROM = volumes.MOUNTS, volumes.VOLUMES_FROM
LINUX = linux.LINUX
CONTAINER = obj(
    "a container of the service's task",
    order=CONTAINER_KEYS,
    image=req(IMAGE),
    essential=boolean(
        "the task stops when this container stops (one at least must be)",
        True,
        aws="ContainerDefinition.essential: a task needs one essential container",
        example=True,
    ),
    cpu=integer("cpu units reserved", 0, CPU_MAX, default=0, example=128),
    memory=integer(
        "hard memory limit (MiB)",
        MEMORY_MIN,
        MEMORY_MAX,
        aws="ContainerDefinition.memory",
        example=256,
    ),
    memory_reservation=integer(
        "soft memory limit (MiB), below memory",
        MEMORY_MIN,
        MEMORY_MAX,
        aws="ContainerDefinition.memoryReservation",
        example=128,
    ),
    ports=strings(
        "container ports; bridge mode maps each to a dynamic host port unless host_port is given",
        either(
            "a port",
            integer("a container port", 1, 65535),
            obj(
                "a port mapping",
                order=("container_port", "host_port", "protocol"),
                container_port=req(integer("the container's port", 1, 65535, example=9090)),
                host_port=integer(
                    "a static host port (0: dynamic; not one the agent reserves: 22, 2375, 2376, 51678, 51679)",
                    0,
                    65535,
                    aws="PortMapping.hostPort",
                    example=0,
                ),
                protocol=enum("the protocol", PROTOCOLS, default="tcp", example="tcp"),
            ),
        ),
        example=[8080],
        what="a list of ports",
    ),
    # left out for the image's own; written, not empty (`_string_list`)
    command=strings(
        "the command (Docker CMD)", string("an argument"), min_items=1, example=["serve"]
    ),
    entrypoint=strings("the entry point (Docker ENTRYPOINT)", string("an argument"), min_items=1),
    environment=ENVIRONMENT,
    secrets=SECRET_ENV,
    health_check=obj(
        "the container's health check",
        order=("command", *HEALTH_BOUNDS, "start_period"),
        command=req(
            either(
                "a shell command (CMD-SHELL), or a list starting with CMD or CMD-SHELL",
                string("a shell command"),
                strings("CMD or CMD-SHELL, then the arguments", string("an argument"), min_items=2),
                example="curl -fs http://localhost:8080/healthz",
            )
        ),
        **HEALTH,
        start_period=integer(
            "grace (seconds) before failures count",
            *START_PERIOD_BOUNDS,
            aws="ECS HealthCheck startPeriod 0-300",
            example=10,
        ),
    ),
    depends_on=mapping(
        "containers of the task this one waits for, and for what",
        CONTAINER_NAME_RE.pattern,
        enum("the condition", CONDITIONS),
        min_items=1,
        rule="depends_on names {name!r}, not a container name",
        code=s.E_NAME,
        aws="ECS ContainerDependency",
        what=f"a mapping of container names to conditions ({', '.join(CONDITIONS)})",
    ),
    ulimits=mapping(
        "resource limits: one number (soft = hard) or {soft, hard}",
        "|".join(ULIMIT_NAMES),
        either(
            "a limit",
            integer("soft and hard limit", 0, 2**31 - 1),
            obj(
                "soft and hard limits",
                order=("soft", "hard"),
                soft=req(integer("soft limit", 0, 2**31 - 1)),
                hard=req(integer("hard limit", 0, 2**31 - 1)),
            ),
        ),
        aws="ECS Ulimit names",
        example={"nofile": {"soft": 4096, "hard": 8192}},
    ),
    stop_timeout=integer("seconds between SIGTERM and SIGKILL", 1, STOP_TIMEOUT_MAX, example=30),
    read_only_root_filesystem=boolean("mount the root filesystem read-only", False, example=True),
    user=string(
        "user, user:group, uid or uid:gid",
        pattern=USER_RE.pattern,
        rule="user, user:group, uid or uid:gid",
        aws="ContainerDefinition.user",
        example="1000",
    ),
    log=obj(
        "where the container logs: the service's log group (awslogs) or the task's FireLens router",
        order=("driver", "options"),
        driver=req(enum("the log driver", LOG_DRIVERS, example="awslogs")),
        options=OPTIONS,
    ),
    firelens=obj(
        "makes this container the task's FireLens log router",
        order=("type", "options"),
        type=req(enum("the router", FIRELENS_TYPES, example="fluentbit")),
        options=OPTIONS,
    ),
    gpu=integer(
        "NVIDIA GPUs reserved for the container; only on a `gpu: true` group",
        1,
        GPU_MAX,
        aws="ResourceRequirement GPU: whole physical GPUs",
        example=1,
    ),
    mounts=MOUNTS,
    volumes_from=VOLUMES_FROM,
    linux=LINUX,
    docker_labels=mapping(
        "Docker labels of the container",
        linux.LABEL_KEY_RE.pattern,
        string("label value"),
        aws="ContainerDefinition.dockerLabels",
        example={"com.example.team": "payments"},
    ),
    privileged=boolean(
        "run privileged: only on a group with `ecs.privileged: true` (else E180)",
        False,
        example=False,
    ),
    environment_files=env_files.ENVIRONMENT_FILES,
)
_DEPENDS_ON = CONTAINER.keys["depends_on"]


CONTAINERS = mapping(
    "the task's containers by name (the first is the main one)",
    CONTAINER_NAME_RE.pattern,
    CONTAINER,
    rule="container name {name!r} is not valid: 1-255 letters, digits, _ and -",
    code=s.E_NAME,
    min_items=1,
    aws="ContainerDefinition.name: 1-255 letters, digits, _ and -",
    what="a non-empty mapping of container names to containers",
)

PORT_NUMBER, PORT_MAPPING = member(CONTAINER.keys["ports"]).any_of
ULIMIT_NUMBER, ULIMIT_PAIR = member(CONTAINER.keys["ulimits"]).any_of
CONDITION = member(CONTAINER.keys["depends_on"])


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int  # 0: a dynamic host port (bridge mode)
    protocol: str
    path: Path


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]  # starts with CMD or CMD-SHELL
    interval: int
    timeout: int
    retries: int
    start_period: int | None
    path: Path


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class LogConfig:
    driver: str  # awslogs (to the service's log group) or awsfirelens
    options: tuple[tuple[str, str], ...]  # awsfirelens: the output plugin's options


@dataclass(frozen=True)
class Container:
    name: str
    image: ImageRef  # a plain reference, or {ecr: REPO, tag | digest} (nixecs.fleet.images)
    essential: bool
    cpu: int
    memory: int | None  # hard limit (MiB)
    memory_reservation: int | None  # soft limit (MiB)
    ports: tuple[PortMapping, ...]
    command: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    environment: dict[str, str]
    secrets: dict[str, str]  # variable → SSM parameter name (of the fleet's region)
    health_check: HealthCheck | None
    depends_on: tuple[tuple[str, str], ...]  # (container, condition)
    ulimits: tuple[Ulimit, ...]
    stop_timeout: int | None
    read_only_root_filesystem: bool
    user: str | None
    log: LogConfig
    firelens: tuple[str, tuple[tuple[str, str], ...]] | None  # (type, options): a log router
    path: Path  # the container's mapping; the shorthand's is the service's
    gpu: int | None = None  # NVIDIA GPUs reserved for it (ResourceRequirements GPU)
    # The service's volumes it mounts, and the containers it takes volumes from (fleet/volumes.py)
    mounts: tuple[volumes.Mount, ...] = ()
    volumes_from: tuple[volumes.VolumeFrom, ...] = ()
    # Secrets from SSM parameter ARNs and Secrets Manager (fleet/secret_refs.py)
    secret_refs: tuple[secret_refs.SecretRef, ...] = ()
    # linux:, docker_labels:, privileged: (fleet/linux.py)
    linux: linux.LinuxParameters | None = None
    docker_labels: tuple[tuple[str, str], ...] = ()
    privileged: bool = False
    # S3 object ARNs of .env files (fleet/env_files.py)
    environment_files: tuple[str, ...] = ()

    @property
    def reserved_memory(self) -> int:
        """What ECS subtracts from the instance: memoryReservation when given, else memory
        (ContainerDefinition.memory, ECS API reference)."""
        return self.memory_reservation or self.memory or 0


AWSLOGS = LogConfig("awslogs", ())
HEALTH_CHECK = CONTAINER.keys["health_check"]
LOG = CONTAINER.keys["log"]
FIRELENS = CONTAINER.keys["firelens"]


def _string_list(value: object, path: Path, issues: list[Issue]) -> tuple[str, ...] | None:
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    issues.append(
        Issue(path, s.E_TYPE, f"expected a non-empty list of strings, got {s.type_name(value)}")
    )
    return None


def _options(value: object, path: Path, issues: list[Issue]) -> tuple[tuple[str, str], ...]:
    got = s.check_string_map(
        value,
        path,
        issues,
        key_rule=(LOG_OPTION_RE, "1-128 letters, digits, _ . -"),
        value_max=4096,
        printable=True,
    )
    return tuple(sorted((got or {}).items()))


def parse_environment(
    m: dict[str, object], path: Path, issues: list[Issue]
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """`environment:` and `secrets:` (variable → SSM parameter), as the service shorthand has
    always taken them; a variable in both is refused (E107)."""
    environment = s.check_string_map(
        m.get("environment", {}),
        (*path, "environment"),
        issues,
        key_rule=(ENV_NAME_RE, ENV_NAME_RULE),
        value_max=32768,
    )
    secrets = s.check_string_map(
        secret_refs.plain(m.get("secrets", {})),
        (*path, "secrets"),
        issues,
        key_rule=(ENV_NAME_RE, ENV_NAME_RULE),
        value_rule=(s.PARAMETER_RE, s.PARAMETER_RULE),
    )
    if environment and secrets:
        for both in sorted(set(environment) & set(secrets)):
            issues.append(
                Issue(
                    (*path, "secrets", both),
                    s.E_VALUE,
                    f"{both} is set both in environment and in secrets",
                )
            )
    return environment, secrets


def parse_ports(
    value: object, path: Path, issues: list[Issue], mode: str
) -> tuple[PortMapping, ...]:
    """`ports: [8080, {container_port: 53, protocol: udp, host_port: 53}]`. In bridge mode the
    host port defaults to 0, a dynamic port from the instance's ephemeral range; in host mode
    the container's port is the host's, and ECS requires hostPort to equal containerPort
    (PortMapping.hostPort, ECS API reference)."""
    if not isinstance(value, list):
        issues.append(Issue(path, s.E_TYPE, f"expected a list of ports, got {s.type_name(value)}"))
        return ()
    result: list[PortMapping] = []
    seen: set[tuple[int, str]] = set()
    for index, item in enumerate(value):
        where: Path = (*path, index)
        protocol = as_str(PORT_MAPPING.keys["protocol"].default)
        host: int | None = None
        if isinstance(item, dict):
            # from before the keys: a key refused there (a null protocol) leaves the port
            # unjudged, not defaulted to tcp and found mapped twice
            before = len(issues)
            written = keys(PORT_MAPPING, item, where, issues)
            if written is None:
                continue
            m = values(PORT_MAPPING, written, where, issues)
            if len(issues) != before or not complete(PORT_MAPPING, m):
                continue
            port, protocol = as_int(m["container_port"]), as_str(m["protocol"])
            host = as_int(m["host_port"]) if "host_port" in m else None
        else:
            checked = check(PORT_NUMBER, item, where, issues)
            if checked is None:
                continue
            port = as_int(checked)
        if mode == "host":
            if host not in (None, port):
                issues.append(
                    Issue(
                        (*where, "host_port"),
                        "E144",
                        f"with network_mode host the host port is the container's: host_port must be {port} (or left out)",
                    )
                )
                continue
            host = port
        if protocol == "tcp" and (host or 0) in AGENT_RESERVED_TCP_PORTS:
            issues.append(
                Issue(
                    where,
                    "E144",
                    f"host port {host} is reserved by the ECS agent on every instance "
                    f"({', '.join(map(str, AGENT_RESERVED_TCP_PORTS))}): ECS would never place the task",
                )
            )
            continue
        if (port, protocol) in seen:
            issues.append(Issue(where, "E144", f"container port {port}/{protocol} is mapped twice"))
            continue
        seen.add((port, protocol))
        result.append(PortMapping(port, host or 0, protocol, where))
    return tuple(result)


def parse_health_check(value: object, path: Path, issues: list[Issue]) -> HealthCheck | None:
    """`health_check: {command, interval, timeout, retries, start_period}`. A string command
    runs in the container's shell (CMD-SHELL); a list must start with CMD or CMD-SHELL, as
    HealthCheck.Command requires."""
    m = keys(HEALTH_CHECK, value, path, issues)
    if m is None or "command" not in m:
        return None
    before = len(issues)
    v = values(HEALTH_CHECK, m, path, issues)
    raw = m["command"]
    command: tuple[str, ...] | None
    if isinstance(raw, str):
        command = ("CMD-SHELL", raw) if raw.strip() else None
        if command is None:
            issues.append(Issue((*path, "command"), "E143", "the health check command is empty"))
    else:
        command = _string_list(raw, (*path, "command"), issues)
        if command is not None and (command[0] not in ("CMD", "CMD-SHELL") or len(command) < 2):
            issues.append(
                Issue(
                    (*path, "command"),
                    "E143",
                    "a health check command list starts with CMD (then the program and its "
                    "arguments) or CMD-SHELL (then one shell command); or write a string",
                )
            )
    if len(issues) != before or command is None or not complete(HEALTH_CHECK, v):
        return None
    start = v.get("start_period")
    return HealthCheck(
        command,
        as_int(v["interval"]),
        as_int(v["timeout"]),
        as_int(v["retries"]),
        as_int(start) if start is not None else None,
        path,
    )


def parse_ulimits(value: object, path: Path, issues: list[Issue]) -> tuple[Ulimit, ...]:
    """`ulimits: {nofile: 65536, core: {soft: 0, hard: 0}}`."""
    if not isinstance(value, dict):
        issues.append(
            Issue(path, s.E_TYPE, f"expected a mapping of ulimits, got {s.type_name(value)}")
        )
        return ()
    result: list[Ulimit] = []
    for name, item in value.items():
        where: Path = (*path, name)
        if name not in ULIMIT_NAMES:
            issues.append(
                Issue(
                    where,
                    s.E_NAME,
                    f"unknown ulimit {name!r} (ECS knows: {', '.join(ULIMIT_NAMES)})",
                )
            )
            continue
        if isinstance(item, dict):
            written = keys(ULIMIT_PAIR, item, where, issues)
            if written is None:
                continue
            pair = values(ULIMIT_PAIR, written, where, issues)
            if not complete(ULIMIT_PAIR, pair):
                continue
            soft, hard = as_int(pair["soft"]), as_int(pair["hard"])
        else:
            checked = check(ULIMIT_NUMBER, item, where, issues)
            if checked is None:
                continue
            soft = hard = as_int(checked)
        if soft > hard:
            issues.append(
                Issue((*where, "soft"), "E149", f"soft limit {soft} is above the hard limit {hard}")
            )
            continue
        result.append(Ulimit(name, soft, hard))
    return tuple(result)


def parse_log(value: object, path: Path, issues: list[Issue]) -> LogConfig | None:
    """`log: {driver: awslogs}` (the default: the service's log group) or `log: {driver:
    awsfirelens, options: {Name: cloudwatch, ...}}` (the options go to the task's FireLens
    router)."""
    m = keys(LOG, value, path, issues)
    if m is None:
        return None
    driver = values(LOG, m, path, issues).get("driver")
    if driver is None:
        return None
    if driver == "awslogs":
        if "options" in m:
            issues.append(
                Issue(
                    (*path, "options"),
                    "E112",
                    "awslogs writes to the service's own log group; it takes no options here",
                )
            )
            return None
        return AWSLOGS
    return LogConfig(as_str(driver), _options(m.get("options", {}), (*path, "options"), issues))


def parse_firelens(
    value: object, path: Path, issues: list[Issue]
) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """`firelens: {type: fluentbit, options: {...}}`: this container is the task's log router
    (FirelensConfiguration)."""
    m = keys(FIRELENS, value, path, issues)
    if m is None:
        return None
    kind = values(FIRELENS, m, path, issues).get("type")
    if kind is None:
        return None
    return as_str(kind), _options(m.get("options", {}), (*path, "options"), issues)


def parse_container(
    name: str, value: object, path: Path, issues: list[Issue], mode: str
) -> Container | None:
    m = keys(CONTAINER, value, path, issues)
    if m is None:
        return None
    before = len(issues)
    v = values(CONTAINER, m, path, issues)
    image = parse_image(m["image"], (*path, "image"), issues) if "image" in m else None
    memory, reservation = v.get("memory"), v.get("memory_reservation")
    if isinstance(memory, int) and isinstance(reservation, int) and reservation >= memory:
        # "If you specify both, memory must be greater than memoryReservation"
        # (ContainerDefinition.memoryReservation, ECS API reference).
        issues.append(
            Issue(
                (*path, "memory_reservation"),
                "E141",
                f"memory_reservation {reservation} must be below the hard limit memory {memory}",
            )
        )
    ports = parse_ports(m["ports"], (*path, "ports"), issues, mode) if "ports" in m else ()
    command = _string_list(m["command"], (*path, "command"), issues) if "command" in m else None
    entrypoint = (
        _string_list(m["entrypoint"], (*path, "entrypoint"), issues) if "entrypoint" in m else None
    )
    environment, secrets = parse_environment(m, path, issues)
    refs = secret_refs.parse_refs(m.get("secrets"), (*path, "secrets"), issues, environment)
    health = (
        parse_health_check(m["health_check"], (*path, "health_check"), issues)
        if m.get("health_check") is not None
        else None
    )
    depends: list[tuple[str, str]] = []
    if "depends_on" in m:
        # Each name's own rule, per value (the declaration's); whether it names a container of
        # the task is a rule between keys (fleet/checks.py).
        where = (*path, "depends_on")
        named = entries(_DEPENDS_ON, m["depends_on"], where, issues, _DEPENDS_ON.what)
        for other, condition in (named or {}).items():
            got = check(CONDITION, condition, (*where, other), issues)
            if got is not None:
                depends.append((str(other), as_str(got)))
    ulimits = parse_ulimits(m["ulimits"], (*path, "ulimits"), issues) if "ulimits" in m else ()
    log = parse_log(m["log"], (*path, "log"), issues) if "log" in m else AWSLOGS
    firelens = (
        parse_firelens(m["firelens"], (*path, "firelens"), issues) if "firelens" in m else None
    )
    gpu = v.get("gpu")
    mounts, volumes_from = volumes.parse_mounts(m, path, issues)
    files = env_files.parse_env_files(m, path, issues)
    parameters, labels, privileged = linux.parse_linux(v, path, issues)
    if (
        len(issues) != before
        or image is None
        or environment is None
        or secrets is None
        or log is None
        or not complete(CONTAINER, v)
    ):
        return None
    stop_timeout, user = v.get("stop_timeout"), v.get("user")
    return Container(
        name=name,
        image=image,
        essential=v["essential"] is True,
        cpu=as_int(v["cpu"]),
        memory=as_int(memory) if memory is not None else None,
        memory_reservation=as_int(reservation) if reservation is not None else None,
        ports=ports,
        command=command,
        entrypoint=entrypoint,
        environment=environment,
        secrets=secrets,
        health_check=health,
        depends_on=tuple(depends),
        ulimits=ulimits,
        stop_timeout=as_int(stop_timeout) if stop_timeout is not None else None,
        read_only_root_filesystem=v["read_only_root_filesystem"] is True,
        user=as_str(user) if user is not None else None,
        log=log,
        firelens=firelens,
        path=path,
        gpu=as_int(gpu) if gpu is not None else None,
        mounts=mounts,
        volumes_from=volumes_from,
        secret_refs=refs,
        linux=parameters,
        docker_labels=labels,
        privileged=privileged,
        environment_files=files,
    )


def parse_containers(
    value: object, path: Path, issues: list[Issue], mode: str
) -> tuple[Container, ...] | None:
    """`containers: {name: {...}, ...}`, in the order written (the first is the main one)."""
    before = len(issues)
    named = entries(CONTAINERS, value, path, issues, CONTAINERS.what)
    result: list[Container] = []
    for name, item in (named or {}).items():
        container = parse_container(name, item, (*path, name), issues, mode)
        if container is not None:
            result.append(container)
    if len(issues) != before:
        return None
    return tuple(result)


def check_task(
    containers: tuple[Container, ...],
    path: Path,
    issues: list[Issue],
    task_cpu: int | None,
    task_memory: int | None,
) -> None:
    """The rules between containers and with the task-level cpu/memory."""
    by_name = {c.name: c for c in containers}
    # "All tasks must have at least one essential container" (ContainerDefinition.essential).
    if not any(c.essential for c in containers):
        issues.append(
            Issue(
                (*path, "containers"),
                "E140",
                "no container is essential: mark the main one `essential: true`",
            )
        )
    for c in containers:
        # "If using the EC2 launch type, you must specify either a task-level memory value or
        # a container-level memory value" (ContainerDefinition.memory).
        if task_memory is None and c.memory is None and c.memory_reservation is None:
            issues.append(
                Issue(
                    c.path,
                    "E141",
                    f"container {c.name!r} has neither memory nor memory_reservation, and the service sets no task memory",
                )
            )
    # "The total amount of memory reserved for all containers within a task must be lower than
    # the task memory value, if one is specified" (ContainerDefinition.memory); likewise cpu.
    reserved = sum(c.reserved_memory for c in containers)
    if task_memory is not None and reserved > task_memory:
        issues.append(
            Issue(
                (*path, "memory"),
                "E142",
                f"the containers reserve {reserved} MiB, more than the task's memory {task_memory}",
            )
        )
    for c in containers:
        if task_memory is not None and c.memory is not None and c.memory > task_memory:
            issues.append(
                Issue(
                    (*c.path, "memory"),
                    "E142",
                    f"hard limit {c.memory} MiB is above the task's memory {task_memory}",
                )
            )
    cpus = sum(c.cpu for c in containers)
    if task_cpu is not None and cpus > task_cpu:
        issues.append(
            Issue(
                (*path, "cpu"),
                "E142",
                f"the containers reserve {cpus} cpu units, more than the task's cpu {task_cpu}",
            )
        )
    # Static host ports must not repeat within the task: two containers cannot bind one port.
    hosts: dict[tuple[int, str], str] = {}
    for c in containers:
        for p in c.ports:
            if p.host_port == 0:
                continue
            key = (p.host_port, p.protocol)
            if key in hosts:
                issues.append(
                    Issue(
                        p.path,
                        "E144",
                        f"host port {p.host_port}/{p.protocol} is also used by container {hosts[key]!r}",
                    )
                )
            else:
                hosts[key] = c.name
    _check_dependencies(containers, by_name, issues)
    # awsfirelens needs a container of the task with a FirelensConfiguration; a task has one
    # log router ("Custom log routing", ECS developer guide, using_firelens).
    routers = [c for c in containers if c.firelens is not None]
    for extra in routers[1:]:
        issues.append(
            Issue(
                (*extra.path, "firelens"),
                "E148",
                f"a task has one FireLens log router; {routers[0].name!r} is already one",
            )
        )
    for c in containers:
        if c.log.driver == "awsfirelens" and not routers:
            issues.append(
                Issue(
                    (*c.path, "log", "driver"),
                    "E148",
                    "awsfirelens needs a log router in the task: add a container with `firelens: {type: fluentbit}`",
                )
            )
        if c.log.driver == "awsfirelens" and c.firelens is not None:
            issues.append(
                Issue(
                    (*c.path, "log", "driver"), "E148", "the log router cannot log through itself"
                )
            )


def _check_dependencies(
    containers: tuple[Container, ...], by_name: dict[str, Container], issues: list[Issue]
) -> None:
    """depends_on: known containers (E108); COMPLETE and SUCCESS "can't be set on an essential
    container"; HEALTHY "requires that the dependent container has health checks configured"
    (ContainerDependency.condition, ECS API reference); no cycles (E145)."""
    edges: dict[str, list[str]] = {}
    for c in containers:
        for other, condition in c.depends_on:
            where: Path = (*c.path, "depends_on", other)
            target = by_name.get(other)
            if target is None:
                issues.append(
                    Issue(
                        where,
                        "E108",
                        f"no container {other!r} in this service (containers: {', '.join(by_name)})",
                    )
                )
                continue
            if other == c.name:
                issues.append(Issue(where, "E145", f"container {c.name!r} depends on itself"))
                continue
            if condition in ("COMPLETE", "SUCCESS") and target.essential:
                issues.append(
                    Issue(
                        where,
                        "E145",
                        f"{condition} waits for {other!r} to exit, and it is essential: mark it `essential: false`",
                    )
                )
            if condition == "HEALTHY" and target.health_check is None:
                issues.append(
                    Issue(where, "E145", f"HEALTHY needs a health_check on container {other!r}")
                )
            edges.setdefault(c.name, []).append(other)
        # volumes_from: the agent makes a container wait for its source's creation
        # (aws/amazon-ecs-agent@8dfceca6 agent/api/task/task.go initializeContainerOrdering),
        # so those edges can close a cycle too (unknown names are E170, fleet/volumes.py).
        edges.setdefault(c.name, []).extend(
            v.container for v in c.volumes_from if v.container in by_name and v.container != c.name
        )
    # A cycle: every container in it waits for another, so the task never starts. Kahn's
    # algorithm (no recursion: a file may hold many containers): what never becomes free of
    # dependencies is on a cycle or waits for one.
    waiting = {c.name: set(edges.get(c.name, [])) for c in containers}
    free = [name for name, deps in waiting.items() if not deps]
    while free:
        done = free.pop()
        for name, deps in waiting.items():
            if done in deps:
                deps.discard(done)
                if not deps:
                    free.append(name)
    stuck = [c for c in containers if waiting[c.name]]
    if stuck:
        names = ", ".join(c.name for c in stuck)
        what = (
            "depends_on and volumes_from form"
            if any(c.volumes_from for c in stuck)
            else "depends_on forms"
        )
        issues.append(
            Issue((*stuck[0].path, "depends_on"), "E145", f"{what} a cycle among: {names}")
        )
