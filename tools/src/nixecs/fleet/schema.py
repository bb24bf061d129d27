"""The fleet file's schema, declared: every key with its type, default, allowed values, the AWS
limit it mirrors, an example and one line of description.

The loader (loader.py and the modules it calls) stays the checker; this tree describes it for
people and editors: docs/fleet.md (`schema_docs.render_markdown`) and `nixecs schema` (a JSON
Schema, draft 2020-12, `json_schema`) are generated from it. tests/test_fleet_schema.py keeps
the two from disagreeing: it records, by wrapping `settings.check_mapping`, the keys the loader
accepts (and requires) at every path of a fleet that uses every key, compares them with this
tree in both directions, and loads every example value written here. The key tuples the loader
already exports (SERVICE_KEYS, CONTAINER_KEYS, infra.CLUSTER_KEYS, ...) are reused below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .. import settings as s
from . import containers as c
from . import env_files as ef
from . import images, infra, loadbalancing, task_role
from . import linux as lx
from . import scheduled as sched
from . import secret_refs as sr
from . import volumes as v
from .loader import (
    AMI_RE,
    BUCKET_RE,
    FLAKE_RE,
    GROUP_KEYS,
    HOST_RE,
    INSTANCE_TYPE_RE,
    MAX_DIMENSIONS,
    PREFIX_RE,
    REGION_RE,
    SERVICE_KEYS,
    SG_RE,
    SUBNET_RE,
)
from .model import (
    ADJUSTMENT_TYPES,
    AGGREGATIONS,
    COMPARISONS,
    STATISTICS,
    TARGET_METRICS,
    USERDATA_FORMATS,
)


@dataclass(frozen=True)
class Node:
    """One value of the fleet file. `kind`: string, integer, number, boolean, object (fixed
    keys), map (free keys matching `names`, each a `values` node), list (of `values`), any."""

    kind: str
    doc: str = ""
    required: bool = False
    default: object = None
    enum: tuple[object, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None  # full-match regex (Python; also ECMA 262 where given)
    aws: str = ""  # the AWS limit or rule the check mirrors
    example: object = None
    keys: dict[str, Node] = field(default_factory=dict)  # object
    values: Node | None = None  # map values, list items
    names: str | None = None  # map: the keys' pattern
    any_of: tuple[Node, ...] = ()  # alternatives (e.g. a string or a mapping)


def obj(doc: str, /, *, order: tuple[str, ...] = (), example: object = None, **keys: Node) -> Node:
    """An object; `order` (the loader's own key tuple) orders the keys as the loader lists them."""
    ordered = {k: keys[k] for k in order if k in keys} | keys
    return Node("object", doc, keys=ordered, example=example)


def req(node: Node) -> Node:
    return replace(node, required=True)


def string(doc: str, **kw: object) -> Node:
    return Node("string", doc, **kw)  # type: ignore[arg-type]


def integer(doc: str, low: int | None = None, high: int | None = None, **kw: object) -> Node:
    return Node("integer", doc, minimum=low, maximum=high, **kw)  # type: ignore[arg-type]


def boolean(doc: str, default: bool | None, **kw: object) -> Node:
    return Node("boolean", doc, default=default, **kw)  # type: ignore[arg-type]


def enum(doc: str, values: tuple[object, ...], **kw: object) -> Node:
    return Node("string", doc, enum=tuple(values), **kw)  # type: ignore[arg-type]


def strings(doc: str, item: Node, **kw: object) -> Node:
    return Node("list", doc, values=item, **kw)  # type: ignore[arg-type]


def mapping(doc: str, names: str | None, value: Node, **kw: object) -> Node:
    return Node("map", doc, names=names, values=value, **kw)  # type: ignore[arg-type]


def either(doc: str, *alternatives: Node, **kw: object) -> Node:
    return Node("any", doc, any_of=alternatives, **kw)  # type: ignore[arg-type]


NAME = s.NAME_RE.pattern
DURATION = s.DURATION_RE.pattern
ENV_NAME = c.ENV_NAME_RE.pattern
PARAMETER_EXAMPLE = "/prod/db/password"
KMS_ARN_EXAMPLE = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"

# -- groups ----------------------------------------------------------------------------------

ECS = obj(
    "ECS agent settings of the group's instances (written to the agent's ecs.config)",
    order=s._ECS_KEYS,  # the settings module's own key tuple
    attributes=mapping(
        "custom container-instance attributes (placement constraints match them)",
        s.ATTRIBUTE_NAME_RE.pattern,
        string("attribute value", pattern=s.ATTRIBUTE_VALUE_RE.pattern),
        aws="ECS Attribute: name 1-128 of letters, digits - _ . / \\; value 1-128 characters",
        example={"tier": "web"},
    ),
    tags=mapping(
        "tags of the container instance (ECS_CONTAINER_INSTANCE_TAGS)",
        None,
        string("tag value"),
        aws=f"at most {s.TAG_MAX_COUNT} tags, keys of {s.TAG_KEY_MAX} and values of {s.TAG_VALUE_MAX} characters, no aws: prefix",
        example={"team": "payments"},
    ),
    spot_draining=boolean(
        "drain tasks on a spot interruption notice (ECS_ENABLE_SPOT_INSTANCE_DRAINING); defaults to the group's `spot`",
        None,
        example=True,
    ),
    reserved_memory_mib=integer(
        "memory (MiB) ECS does not place tasks on (ECS_RESERVED_MEMORY)",
        0,
        s.RESERVED_MEMORY_MAX,
        aws="the agent reads a 16-bit number",
        example=256,
    ),
    log_level=enum("the agent's log level (ECS_LOGLEVEL)", s.LOG_LEVELS, example="info"),
    image_pull_behavior=enum(
        "when the agent pulls images (ECS_IMAGE_PULL_BEHAVIOR)",
        s.IMAGE_PULL_BEHAVIORS,
        example="prefer-cached",
    ),
    task_cleanup_wait=string(
        "how long a stopped task's containers are kept (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION)",
        pattern=DURATION,
        example="1h",
    ),
    container_stop_timeout=string(
        "how long the agent waits for a container to stop before killing it (ECS_CONTAINER_STOP_TIMEOUT)",
        pattern=DURATION,
        example="30s",
    ),
    privileged=boolean(
        "allow privileged containers (ECS_DISABLE_PRIVILEGED false)", False, example=False
    ),
    extra=mapping(
        "further ECS agent variables by name (only ones the agent reads, honours on this host "
        "(E165 names what the others need) and no typed key sets)",
        "ECS_[A-Z0-9_]+",
        string("the variable's value"),
        example={"ECS_CONTAINER_START_TIMEOUT": "3m"},
    ),
)

SECRET = obj(
    "a secret the host writes to /run/nixecs/secrets/NAME at boot",
    order=("parameter", "owner", "group", "mode"),
    parameter=req(
        string(
            f"the SecureString SSM parameter: {s.PARAMETER_RULE}",
            aws="SSM parameter names: 1011 characters, 15 levels",
            example=PARAMETER_EXAMPLE,
        )
    ),
    owner=string(
        "the file's owner (user name or uid)",
        default="root",
        pattern=s.ACCOUNT_RE.pattern,
        example="root",
    ),
    group=string(
        "the file's group (group name or gid)",
        default="root",
        pattern=s.ACCOUNT_RE.pattern,
        example="root",
    ),
    mode=string(
        "the file's octal mode, quoted", default="0400", pattern=s.MODE_RE.pattern, example="0400"
    ),
)

GROUP = obj(
    "an Auto Scaling group of NixOS container instances",
    order=GROUP_KEYS,
    host=string(
        "the flake's nixosConfigurations name the instances run",
        default="ecs-node",
        pattern=HOST_RE.pattern,
        example="ecs-node",
    ),
    ami=req(
        string(
            "the NixOS AMI the instances boot",
            pattern=AMI_RE.pattern,
            example="ami-0123456789abcdef0",
        )
    ),
    instance_types=req(
        strings(
            "EC2 instance types, in order of preference (more than one: a mixed instances policy)",
            string("an instance type", pattern=INSTANCE_TYPE_RE.pattern),
            example=["m6i.large", "m5.large"],
        )
    ),
    capacity=req(
        obj(
            "the Auto Scaling group's size",
            order=("min", "max", "desired"),
            min=req(integer("MinSize", 0, 10000, example=1)),
            max=req(integer("MaxSize", 0, 10000, example=4)),
            desired=integer("DesiredCapacity; defaults to min", 0, 10000, example=2),
        )
    ),
    spot=boolean("run on spot instances", False, example=False),
    gpu=boolean(
        "the host runs GPU tasks (NVIDIA): every instance type must have a GPU (E166); only "
        "this group's containers may set `gpu:` (E167)",
        False,
        example=False,
    ),
    exec=boolean(
        "the host provides ECS Exec (nixecs.ecs.exec.enable in its configuration): its "
        "services may set enable_execute_command",
        False,
        example=False,
    ),
    userdata=enum(
        "`settings`: a JSON settings document the image applies at boot; `nix`: a NixOS module built on the instance",
        USERDATA_FORMATS,
        default="settings",
        example="settings",
    ),
    ecs=ECS,
    secrets=mapping(
        "secrets written to files on the host, by file name",
        s.SECRET_NAME_RE.pattern,
        SECRET,
        example={"db-password": {"parameter": PARAMETER_EXAMPLE}},
    ),
    drain=obj(
        "draining on scale-in (a termination lifecycle hook)",
        timeout=string(
            "how long the host drains its tasks at most",
            default="15m",
            pattern=DURATION,
            aws="a lifecycle hook waits at most 7200 s; nixecs adds 5 minutes",
            example="15m",
        ),
    ),
    metadata=obj(
        "the instance metadata service (IMDSv2 only)",
        hop_limit=integer(
            "HttpPutResponseHopLimit: 1 keeps IMDS out of containers' reach (above 1: W101)",
            1,
            64,
            default=1,
            aws="EC2 HttpPutResponseHopLimit 1-64",
            example=1,
        ),
    ),
    nixos=string(
        "NixOS module text added to the host (only with `userdata: nix`)",
        example="{ ... }: { }",
    ),
    kms_key=string(
        "KMS key the group's secrets are encrypted with (key ARN or id; not an alias); defaults to the cluster's",
        example=KMS_ARN_EXAMPLE,
    ),
    root_volume=obj(
        "the root EBS volume (always encrypted)",
        order=("size_gib", "type", "iops", "throughput", "kms_key"),
        size_gib=integer(
            "size in GiB; the AMI's snapshot size when omitted",
            1,
            65536,
            aws="CreateVolume Size: gp2/io1 up to 16384, gp3/io2 up to 65536",
            example=30,
        ),
        type=enum("the volume type", infra.VOLUME_TYPES, default="gp3", example="gp3"),
        iops=integer(
            "provisioned IOPS (gp3, io1, io2; required for io1/io2)",
            100,
            256000,
            aws="CreateVolume Iops; gp3 3000-80000 and at most 500 per GiB",
            example=3000,
        ),
        throughput=integer(
            "throughput in MiB/s (gp3 only)",
            *infra.THROUGHPUT_MIBS,
            aws="CreateVolume Throughput 125-2000, at most 0.25 MiB/s per IOPS",
            example=125,
        ),
        kms_key=string(
            "KMS key of the volume (key id, ARN, alias/NAME or alias ARN); the account's EBS default when omitted",
            example="alias/ebs",
        ),
    ),
    key_pair=string(
        "an EC2 key pair for SSH",
        aws="CreateKeyPair KeyName: up to 255 ASCII characters",
        example="ops",
    ),
)

# -- services --------------------------------------------------------------------------------

IMAGE = either(
    "a Docker image reference, or an ECR repository of the account with a tag or a digest",
    string("a Docker image reference", example="nginx:1.27"),
    obj(
        "an image in the account's ECR (deploy pins a tag to its digest)",
        order=("ecr", "tag", "digest"),
        ecr=req(string(images.ECR_REPOSITORY_RULE, example="bananas")),
        tag=string(images.TAG_RULE, pattern=images.TAG_RE.pattern, example="1.0"),
        digest=string(images.DIGEST_RULE, pattern=images.DIGEST_RE.pattern),
    ),
    example={"ecr": "bananas", "tag": "1.0"},
)
ENVIRONMENT = mapping(
    "environment variables of the container",
    ENV_NAME,
    string("the value"),
    example={"LOG_FORMAT": "json"},
)


def _unnamed(pattern: str) -> str:
    """A Python pattern's named groups as plain groups (JSON Schema patterns have none)."""
    return re.sub(r"\(\?P<[a-z_]+>", "(?:", pattern)


SECRET_ENV = mapping(
    "environment variables read from SSM parameters or Secrets Manager secrets (name → secret)",
    ENV_NAME,
    either(
        "an SSM parameter name or ARN, a Secrets Manager secret's ARN, or {secretsmanager: NAME, ...}",
        string(
            f"{s.PARAMETER_RULE}; or an SSM parameter ARN; or a Secrets Manager secret's full ARN "
            "(…:secret:NAME-AbCdEf[:json-key:version-stage:version-id])",
            pattern=_unnamed(f"/.*|{sr.SSM_ARN_RE.pattern}|{sr.SECRET_ARN_RE.pattern}"),
        ),
        obj(
            "a Secrets Manager secret of the fleet's account and region",
            order=sr.SECRET_KEYS,
            secretsmanager=req(
                string(
                    "the secret's name (or ARN)",
                    pattern=_unnamed(f"{sr.SECRET_NAME_RE.pattern}|{sr.SECRET_ARN_RE.pattern}"),
                    example="prod/db",
                )
            ),
            json_key=string(
                "a key of the secret's JSON value",
                pattern=sr.JSON_KEY_RE.pattern,
                example="password",
            ),
            version_stage=string(
                "a staging label (not with version_id)",
                pattern=sr.VERSION_STAGE_RE.pattern,
                example="AWSCURRENT",
            ),
            version_id=string(
                "a version id (not with version_stage)", pattern=sr.VERSION_ID_RE.pattern
            ),
            kms_key=string(
                "the secret's customer managed KMS key (id or ARN): the execution role may decrypt "
                "with it through Secrets Manager",
                pattern=sr.KMS_KEY_RE.pattern,
                example=KMS_ARN_EXAMPLE,
            ),
        ),
    ),
    aws="ECS Secret.valueFrom: a parameter's name or ARN, or a secret's full ARN",
    example={"DB_PASSWORD": PARAMETER_EXAMPLE},
)
OPTIONS = mapping("options", c.LOG_OPTION_RE.pattern, string("option value"))

HEALTH = {
    key: integer(
        f"health check {key} ({'count' if key == 'retries' else 'seconds'})",
        low,
        high,
        default=default,
        aws="ECS HealthCheck",
        example=default,
    )
    for key, (low, high, default) in c.HEALTH_BOUNDS.items()
}
ABSOLUTE_PATH = v.ABSOLUTE_PATH_RE.pattern
MOUNTS = strings(
    "volumes of the service mounted in this container",
    obj(
        "a mount point",
        order=v.MOUNT_KEYS,
        volume=req(
            string("a volume of the service", pattern=v.VOLUME_NAME_RE.pattern, example="data")
        ),
        path=req(
            string(
                "where it appears in the container (absolute; one mount per path, else E171)",
                pattern=ABSOLUTE_PATH,
                example="/var/lib/app",
            )
        ),
        read_only=boolean("mount it read-only", False, example=False),
    ),
    aws="ECS MountPoint: sourceVolume names a Volume of the task definition",
    example=[{"volume": "data", "path": "/var/lib/app"}],
)
VOLUMES_FROM = strings(
    "containers of the task whose volumes this one mounts too",
    either(
        "a container name, or {container, read_only}",
        string("a container of the task", pattern=c.CONTAINER_NAME_RE.pattern),
        obj(
            "a container and how",
            order=v.VOLUME_FROM_KEYS,
            container=req(
                string(
                    "a container of the task",
                    pattern=c.CONTAINER_NAME_RE.pattern,
                    example="log-router",
                )
            ),
            read_only=boolean("mount its volumes read-only", False, example=True),
        ),
    ),
    aws="ECS VolumeFrom",
)
VOLUMES = mapping(
    "the task's data volumes by name: exactly one of host_path, docker or efs each",
    v.VOLUME_NAME_RE.pattern,
    obj(
        "a data volume",
        order=v.VOLUME_KEYS,
        host_path=string(
            "a directory of the instance, bind-mounted (Docker creates it; it outlives the task)",
            pattern=ABSOLUTE_PATH,
            aws="Volume.host.sourcePath",
            example="/var/lib/app",
        ),
        docker=obj(
            "a Docker volume",
            order=v.DOCKER_KEYS,
            scope=enum(
                "task: removed with the task; shared: kept on the instance",
                v.SCOPES,
                default="task",
                example="shared",
            ),
            driver=string(
                "the volume driver (default: Docker's local); others must be installed on the host",
                pattern=v.DRIVER_RE.pattern,
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
            order=v.EFS_KEYS,
            file_system_id=req(
                string("the file system", pattern=v.FILE_SYSTEM_RE.pattern, example="fs-0a1b2c3d")
            ),
            root_directory=string(
                "the directory of the file system to mount (default: its root)",
                pattern=ABSOLUTE_PATH,
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
                pattern=v.ACCESS_POINT_RE.pattern,
                aws="AuthorizationConfig.AccessPointId: transit encryption must be on",
            ),
        ),
    ),
    aws="ECS Volume.name: 1-255 letters, digits, _ and -",
    example={"data": {"host_path": "/var/lib/app"}},
)
LINUX = obj(
    "Linux parameters of the container (ECS LinuxParameters)",
    order=lx.LINUX_KEYS,
    init_process=boolean(
        "run an init process that reaps zombies and forwards signals (--init)", None, example=True
    ),
    capabilities=obj(
        "kernel capabilities added to or dropped from Docker's default set (API_KernelCapabilities values; each once, not in both: E179)",
        order=("add", "drop"),
        add=strings(
            "capabilities to add", enum("a capability", lx.CAPABILITIES), example=["NET_ADMIN"]
        ),
        drop=strings(
            "capabilities to drop", enum("a capability", lx.CAPABILITIES), example=["ALL"]
        ),
    ),
    shared_memory_mib=integer(
        "/dev/shm size (MiB)", 1, lx.SIZE_MAX, aws="LinuxParameters.sharedMemorySize", example=64
    ),
    tmpfs=strings(
        "tmpfs mounts (writable: they answer W170)",
        obj(
            "a tmpfs mount",
            order=lx.TMPFS_KEYS,
            path=req(
                string(
                    "where (absolute; not a path a mount takes: E171)",
                    pattern=v.ABSOLUTE_PATH_RE.pattern,
                    example="/tmp",
                )
            ),
            size_mib=req(integer("its size (MiB)", 1, lx.SIZE_MAX, example=64)),
            options=strings(
                "mount options",
                string(
                    "an option ECS allows (mode=1777 and the like)",
                    pattern=lx.TMPFS_OPTION_RE.pattern,
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
            order=lx.DEVICE_KEYS,
            host_path=req(
                string(
                    "the device on the host",
                    pattern=v.ABSOLUTE_PATH_RE.pattern,
                    example="/dev/fuse",
                )
            ),
            container_path=string(
                "where in the container (default: the same)",
                pattern=v.ABSOLUTE_PATH_RE.pattern,
                example="/dev/fuse",
            ),
            permissions=strings(
                "read, write, mknod (default: all three)",
                enum("a permission", lx.PERMISSIONS),
                example=["read", "write"],
            ),
        ),
    ),
)
CONTAINER = obj(
    "a container of the service's task",
    order=c.CONTAINER_KEYS,
    image=req(IMAGE),
    essential=boolean(
        "the task stops when this container stops (one at least must be)",
        True,
        aws="ContainerDefinition.essential: a task needs one essential container",
        example=True,
    ),
    cpu=integer("cpu units reserved", 0, c.CPU_MAX, default=0, example=128),
    memory=integer(
        "hard memory limit (MiB)",
        c.MEMORY_MIN,
        c.MEMORY_MAX,
        aws="ContainerDefinition.memory",
        example=256,
    ),
    memory_reservation=integer(
        "soft memory limit (MiB), below memory",
        c.MEMORY_MIN,
        c.MEMORY_MAX,
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
                protocol=enum("the protocol", c.PROTOCOLS, default="tcp", example="tcp"),
            ),
        ),
        example=[8080],
    ),
    command=strings("the command (Docker CMD)", string("an argument"), example=["serve"]),
    entrypoint=strings("the entry point (Docker ENTRYPOINT)", string("an argument")),
    environment=ENVIRONMENT,
    secrets=SECRET_ENV,
    health_check=obj(
        "the container's health check",
        order=("command", *c.HEALTH_BOUNDS, "start_period"),
        command=req(
            either(
                "a shell command (CMD-SHELL), or a list starting with CMD or CMD-SHELL",
                string("a shell command"),
                strings("CMD or CMD-SHELL, then the arguments", string("an argument")),
                example="curl -fs http://localhost:8080/healthz",
            )
        ),
        **HEALTH,
        start_period=integer(
            "grace (seconds) before failures count",
            *c.START_PERIOD_BOUNDS,
            aws="ECS HealthCheck startPeriod 0-300",
            example=10,
        ),
    ),
    depends_on=mapping(
        "containers of the task this one waits for, and for what",
        c.CONTAINER_NAME_RE.pattern,
        enum("the condition", c.CONDITIONS),
        aws="ECS ContainerDependency",
    ),
    ulimits=mapping(
        "resource limits: one number (soft = hard) or {soft, hard}",
        "|".join(c.ULIMIT_NAMES),
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
    stop_timeout=integer("seconds between SIGTERM and SIGKILL", 1, c.STOP_TIMEOUT_MAX, example=30),
    read_only_root_filesystem=boolean("mount the root filesystem read-only", False, example=True),
    user=string(
        "user, user:group, uid or uid:gid",
        pattern=c.USER_RE.pattern,
        aws="ContainerDefinition.user",
        example="1000",
    ),
    log=obj(
        "where the container logs: the service's log group (awslogs) or the task's FireLens router",
        order=("driver", "options"),
        driver=req(enum("the log driver", c.LOG_DRIVERS, example="awslogs")),
        options=OPTIONS,
    ),
    firelens=obj(
        "makes this container the task's FireLens log router",
        order=("type", "options"),
        type=req(enum("the router", c.FIRELENS_TYPES, example="fluentbit")),
        options=OPTIONS,
    ),
    gpu=integer(
        "NVIDIA GPUs reserved for the container (ResourceRequirements GPU); only on a "
        "`gpu: true` group whose instance types have that many (else E167)",
        1,
        c.GPU_MAX,
        example=1,
    ),
    mounts=MOUNTS,
    volumes_from=VOLUMES_FROM,
    linux=LINUX,
    docker_labels=mapping(
        "Docker labels of the container",
        lx.LABEL_KEY_RE.pattern,
        string("label value"),
        aws="ContainerDefinition.dockerLabels",
        example={"com.example.team": "payments"},
    ),
    privileged=boolean(
        "run privileged: only on a group with `ecs.privileged: true` (else E180)",
        False,
        example=False,
    ),
    environment_files=strings(
        "S3 objects of variables (.env files) the agent reads at task start; the execution "
        "role may read exactly these (E181)",
        string(
            "an S3 object ARN",
            pattern=ef.OBJECT_ARN_RE.pattern.replace("?P<bucket>", "").replace("?P<key>", ""),
        ),
        aws=f"ECS EnvironmentFile: at most {ef.MAX_FILES}, .env extension",
        example=["arn:aws:s3:::acme-config/prod/app.env"],
    ),
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
    metric=req(string("the metric name", example="CPUUtilization")),
    namespace=string("the metric's namespace", default="AWS/ECS", example="AWS/ECS"),
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
    threshold=req(Node("number", "the threshold", example=70)),
    comparison=req(enum("the comparison", tuple(COMPARISONS), example=">=")),
    dimensions=mapping(
        "dimensions (default: the service's ClusterName and ServiceName); `${cluster}` and `${service}` are replaced",
        None,
        string("a dimension value"),
        aws=f"PutMetricAlarm: at most {MAX_DIMENSIONS} dimensions",
        example={"ClusterName": "${cluster}", "ServiceName": "${service}"},
    ),
)
SCALING = obj(
    "Application Auto Scaling of the service's desired count",
    order=("min", "max", "target_tracking", "step"),
    min=req(integer("minimum tasks", 0, 10000, example=1)),
    max=req(integer("maximum tasks", 0, 10000, example=4)),
    target_tracking=obj(
        "a target tracking policy",
        order=(
            "metric",
            "target",
            "scale_in_cooldown",
            "scale_out_cooldown",
            "disable_scale_in",
        ),
        metric=req(enum("the tracked metric", tuple(TARGET_METRICS), example="cpu")),
        target=req(
            Node(
                "number",
                "target value: a percentage (cpu, memory) or requests per target",
                example=75,
            )
        ),
        scale_in_cooldown=integer("seconds", 0, 86400, default=300, example=300),
        scale_out_cooldown=integer("seconds", 0, 86400, default=60, example=60),
        disable_scale_in=boolean("never scale in", False, example=False),
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
            name=req(string("the policy's name", pattern=NAME, example="cpu-high")),
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
                        lower=Node("number", "lower bound (open when omitted)"),
                        upper=Node("number", "upper bound (open when omitted)"),
                        change=req(integer("the adjustment", -100000, 100000)),
                    ),
                    aws="at most 20 step adjustments",
                )
            ),
        ),
    ),
)

TG = "ELBv2 target group: interval 5-300 s, timeout 2-120 s, thresholds 2-10"
ROUTING = obj(
    "a listener rule and target group of the cluster's load balancer for this service",
    order=(
        "path_patterns",
        "host_headers",
        "priority",
        "container",
        "port",
        "health_check",
        "deregistration_delay",
    ),
    path_patterns=strings(
        "path patterns of the rule",
        string("a path pattern", pattern=loadbalancing.PATH_PATTERN_RE.pattern),
        aws="3 values per condition, 5 per rule",
        example=["/api/*"],
    ),
    host_headers=strings(
        "host headers of the rule",
        string("a host name pattern", pattern=loadbalancing.HOST_HEADER_RE.pattern),
        aws="3 values per condition, 5 per rule",
        example=["api.example.com"],
    ),
    priority=req(
        integer(
            "the rule's priority, unique on the listener",
            1,
            loadbalancing.MAX_PRIORITY,
            aws="ELBv2 rule priority 1-50000",
            example=10,
        )
    ),
    container=string("the container receiving the traffic; the first with a port by default"),
    port=integer("its container port; its first port by default", 1, 65535),
    health_check=obj(
        "the target group's health check",
        order=(
            "path",
            "matcher",
            "interval",
            "timeout",
            "healthy_threshold",
            "unhealthy_threshold",
        ),
        path=string(
            "the HTTP path",
            default="/",
            pattern=loadbalancing.HEALTH_PATH_RE.pattern,
            example="/healthz",
        ),
        matcher=string(
            "HTTP codes of a healthy target",
            default="200",
            pattern=loadbalancing.MATCHER_RE.pattern,
            example="200-299",
        ),
        interval=integer("seconds", 5, 300, default=30, aws=TG, example=10),
        timeout=integer("seconds, below interval", 2, 120, default=5, aws=TG, example=4),
        healthy_threshold=integer("checks", 2, 10, default=5, aws=TG, example=3),
        unhealthy_threshold=integer("checks", 2, 10, default=2, aws=TG, example=3),
    ),
    deregistration_delay=integer(
        "seconds",
        0,
        3600,
        default=300,
        aws="target group deregistration_delay.timeout_seconds 0-3600",
        example=15,
    ),
)
SERVICE = obj(
    "an ECS service; the one-container shorthand (image, port, environment, secrets) or `containers:`",
    order=SERVICE_KEYS,
    group=req(string("the group whose instances run it", pattern=NAME, example="web")),
    image=IMAGE,
    cpu=integer(
        "cpu units: the container's (shorthand, default 256) or the task's (128-196608)",
        0,
        c.CPU_MAX,
        aws="RegisterTaskDefinition cpu on EC2: 128-196608 units",
        example=256,
    ),
    memory=integer(
        "memory (MiB): the container's (shorthand: required) or the task's",
        c.MEMORY_MIN,
        c.MEMORY_MAX,
        example=512,
    ),
    port=integer("the shorthand container's one port", 1, 65535, example=8080),
    desired=integer("desired task count (without scaling)", 0, 10000, default=1, example=2),
    environment=ENVIRONMENT,
    secrets=SECRET_ENV,
    scaling=SCALING,
    containers=mapping(
        "the task's containers by name (the first is the main one)",
        c.CONTAINER_NAME_RE.pattern,
        CONTAINER,
        aws="ContainerDefinition.name: 1-255 letters, digits, _ and -",
    ),
    network_mode=enum(
        "the task's network mode", c.NETWORK_MODES, default="bridge", example="bridge"
    ),
    task_role=obj(
        "the IAM role the task's containers get",
        order=("managed_policies", "statements"),
        managed_policies=strings(
            "managed policy ARNs",
            string("a policy ARN", pattern=task_role.MANAGED_POLICY_RE.pattern),
            aws=f"at most {task_role.MAX_MANAGED} per role",
            example=["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
        ),
        statements=strings(
            "inline policy statements",
            obj(
                "a policy statement",
                order=("effect", "actions", "resources", "conditions"),
                effect=enum("Allow or Deny", task_role.EFFECTS, default="Allow", example="Allow"),
                actions=req(
                    either(
                        task_role.ACTION_RULE,
                        string("an action"),
                        strings("actions", string("an action")),
                        example=["sqs:ReceiveMessage"],
                    )
                ),
                resources=req(
                    either(
                        "resource ARNs or `*`",
                        string("a resource"),
                        strings("resources", string("a resource")),
                        example=["arn:aws:sqs:us-east-1:123456789012:orders"],
                    )
                ),
                conditions=mapping(
                    "IAM condition operators → condition keys → values",
                    None,
                    mapping("condition keys", None, Node("any", "a value or a list of values")),
                    example={"Bool": {"aws:SecureTransport": True}},
                ),
            ),
        ),
    ),
    routing=ROUTING,
    placement=obj(
        "task placement",
        order=("strategy", "constraints"),
        strategy=strings(
            "random, spread:FIELD or binpack:cpu|memory",
            string("a strategy"),
            aws=f"at most {loadbalancing.MAX_STRATEGIES}",
            example=["spread:instanceId"],
        ),
        constraints=strings(
            "distinctInstance or memberOf:EXPRESSION",
            string("a constraint"),
            aws=f"at most {loadbalancing.MAX_CONSTRAINTS}; expressions of 2000 characters",
            example=["distinctInstance"],
        ),
    ),
    deployment=obj(
        "rolling deployment settings",
        order=(
            "minimum_healthy_percent",
            "maximum_percent",
            "circuit_breaker",
            "health_check_grace_period",
        ),
        minimum_healthy_percent=integer("percent", 0, 100, default=100, example=50),
        maximum_percent=integer("percent", 100, 200, default=200, example=150),
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
            example=60,
        ),
    ),
    enable_execute_command=boolean(
        "ECS Exec (EnableExecuteCommand; `nixecs exec`): only on a group with `exec: true` "
        "(else E157); adds the four ssmmessages actions to the task role",
        False,
        example=False,
    ),
    volumes=VOLUMES,
    scheduling=enum(
        "replica (a desired count, or scaled) or daemon: one task on every instance of the "
        "group (no desired, scaling or placement strategy: E178)",
        ("replica", "daemon"),
        default="replica",
        aws="ECS SchedulingStrategy REPLICA | DAEMON",
        example="replica",
    ),
)

# -- clusters and the file -------------------------------------------------------------------

LOAD_BALANCER = obj(
    "an Application Load Balancer of the cluster (created, or an existing listener)",
    order=(
        "scheme",
        "vpc",
        "subnets",
        "security_groups",
        "http",
        "https",
        "redirect_http_to_https",
        "listener_arn",
    ),
    scheme=enum(
        "internet-facing or internal",
        loadbalancing.SCHEMES,
        default="internet-facing",
        example="internet-facing",
    ),
    vpc=string(
        "the VPC of the target groups",
        pattern=loadbalancing.VPC_RE.pattern,
        example="vpc-0a1b2c3d",
    ),
    subnets=strings(
        "the load balancer's subnets (two at least); the cluster's by default",
        string("a subnet id", pattern=loadbalancing.SUBNET_RE.pattern),
        example=["subnet-0a1b2c3d", "subnet-0a1b2c3e"],
    ),
    security_groups=req(
        strings(
            "the load balancer's security groups",
            string("a security group id", pattern=loadbalancing.SG_RE.pattern),
            example=["sg-0b1b2c3d"],
        )
    ),
    http=boolean("an HTTP listener on port 80", True, example=True),
    https=obj(
        "an HTTPS listener on port 443",
        order=("certificate_arn", "ssl_policy"),
        certificate_arn=req(
            string(
                "an ACM or IAM certificate ARN",
                example="arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f",
            )
        ),
        ssl_policy=string(
            "an ELBSecurityPolicy-* name",
            pattern=loadbalancing.SSL_POLICY_RE.pattern,
            example="ELBSecurityPolicy-TLS13-1-2-2021-06",
        ),
    ),
    redirect_http_to_https=boolean("port 80 redirects to 443", False, example=True),
    listener_arn=string("an existing ALB listener to add the rules to (instead of a new ALB)"),
)
TASK = obj(
    "a task definition that is not a service: run on a schedule, or started by hand (RunTask with the group's capacity provider)",
    order=sched.TASK_KEYS,
    **{key: SERVICE.keys[key] for key in sched.TASK_KEYS if key in SERVICE.keys},
    schedule=either(
        "an EventBridge Scheduler expression, or {expression, timezone}",
        string(sched.EXPRESSION_RULE),
        obj(
            "a schedule",
            order=sched.SCHEDULE_KEYS,
            expression=req(string(sched.EXPRESSION_RULE, example="cron(0 3 * * ? *)")),
            timezone=string("an IANA time zone (default UTC)", example="Europe/Paris"),
        ),
        aws="EventBridge Scheduler schedule types: at, rate, cron (E183)",
        example="rate(1 hour)",
    ),
)
CLUSTER = obj(
    "an ECS cluster, its groups and services (one CloudFormation stack)",
    order=(
        "subnets",
        "security_groups",
        "groups",
        "services",
        "kms_key",
        "load_balancer",
        *infra.CLUSTER_KEYS,
        *sched.CLUSTER_KEYS,
    ),
    subnets=req(
        strings(
            "subnets of the instances",
            string("a subnet id", pattern=SUBNET_RE.pattern),
            example=["subnet-0a1b2c3d", "subnet-0a1b2c3e"],
        )
    ),
    security_groups=req(
        strings(
            "security groups of the instances",
            string("a security group id", pattern=SG_RE.pattern),
            example=["sg-0a1b2c3d"],
        )
    ),
    groups=mapping("Auto Scaling groups by name", NAME, GROUP),
    services=mapping("services by name", NAME, SERVICE),
    tasks=mapping(
        "tasks by name that are not services (names apart from the services': E182)",
        NAME,
        TASK,
    ),
    kms_key=string(
        "KMS key the secrets' SSM parameters are encrypted with (key ARN or id; not an alias)",
        example=KMS_ARN_EXAMPLE,
    ),
    load_balancer=LOAD_BALANCER,
    container_insights=enum(
        "CloudWatch Container Insights", infra.CONTAINER_INSIGHTS, example="enabled"
    ),
    log_retention_days=integer(
        "days the services' log groups keep events",
        default=infra.DEFAULT_LOG_RETENTION_DAYS,
        enum=infra.LOG_RETENTION_DAYS,
        aws="CloudWatch Logs RetentionInDays values",
        example=30,
    ),
    log_kms_key=string(
        "KMS key ARN the log groups are encrypted with",
        pattern=infra.LOG_KMS_KEY_RE.pattern,
        example=KMS_ARN_EXAMPLE,
    ),
    overrides=mapping(
        "CloudFormation patches: logical id → {Properties.Path: value, or null to delete}",
        infra.LOGICAL_ID_RE.pattern,
        mapping("property paths", None, Node("any", "a JSON value, or null to delete")),
        example={"Cluster": {"Properties.Tags": [{"Key": "cost-centre", "Value": "42"}]}},
    ),
)
FLEET = obj(
    "a nixecs fleet file",
    order=("version", "region", "flake", "name_prefix", "template_bucket", "clusters"),
    version=req(integer("the fleet file's format", 1, 1, example=1)),
    region=req(string("the AWS region", pattern=REGION_RE.pattern, example="us-east-1")),
    flake=string(
        "the flake the hosts are built from (recorded in tags)",
        pattern=FLAKE_RE.pattern,
        example="github:acme/infra",
    ),
    name_prefix=string(
        "a prefix of every AWS name (two fleets in one account)",
        pattern=PREFIX_RE.pattern,
        example="acme",
    ),
    template_bucket=string(
        "an S3 bucket for stacks over CloudFormation's 51,200-byte inline limit",
        pattern=BUCKET_RE.pattern,
        aws="S3 bucket names: 3-63 characters",
        example="acme-templates",
    ),
    clusters=req(mapping("ECS clusters by name", NAME, CLUSTER)),
)


# -- walking the tree ------------------------------------------------------------------------


def walk(node: Node = FLEET, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Node]]:
    """Every node with its schema path: a map's or list's member is `*` / `[]`."""
    found = [(path, node)]
    for key, child in node.keys.items():
        found += walk(child, (*path, key))
    if node.values is not None:
        found += walk(node.values, (*path, "*" if node.kind == "map" else "[]"))
    for alternative in node.any_of:
        found += walk(alternative, path)
    return found


def objects() -> dict[tuple[str, ...], Node]:
    """The fixed-key mappings by schema path (what `check_mapping` checks in the loader)."""
    return {path: node for path, node in walk() if node.kind == "object"}


def schema_path(path: tuple[object, ...]) -> tuple[str, ...]:
    """A loader path (names and list indices) as a schema path (`*` and `[]`)."""
    node: Node | None = FLEET
    result: list[str] = []
    for part in path:
        if node is None:
            raise KeyError(path)
        if node.any_of:
            kinds = ("list",) if isinstance(part, int) else ("object", "map")
            node = next(a for a in node.any_of if a.kind in kinds)
        if node.kind == "object":
            result.append(str(part))
            node = node.keys.get(str(part))
        elif node.kind == "map":
            result.append("*")
            node = node.values
        elif node.kind == "list":
            result.append("[]")
            node = node.values
        else:
            raise KeyError(path)
    return tuple(result)


# -- JSON Schema -----------------------------------------------------------------------------

# The keywords json_schema writes; each has one meaning in draft-07 and draft 2020-12 (`items`
# with a single schema included), which tests/test_fleet_schema.py checks with both validators.
KEYWORDS = frozenset(
    (
        "$schema", "title", "description", "type", "enum", "minimum", "maximum", "pattern",
        "default", "examples", "properties", "additionalProperties", "required",
        "propertyNames", "items", "anyOf",
    )
)  # fmt: skip

_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "object": "object",
    "map": "object",
    "list": "array",
}


def _json(node: Node) -> dict[str, object]:
    out: dict[str, object] = {}
    if node.doc:
        out["description"] = node.doc
    if node.kind in _JSON_TYPES:
        out["type"] = _JSON_TYPES[node.kind]
    if node.enum:
        out["enum"] = list(node.enum)
    if node.minimum is not None:
        out["minimum"] = node.minimum
    if node.maximum is not None:
        out["maximum"] = node.maximum
    if node.pattern is not None:
        out["pattern"] = f"^(?:{node.pattern})$"
    if node.default is not None:
        out["default"] = node.default
    if node.example is not None:
        out["examples"] = [node.example]
    if node.kind == "object":
        out["properties"] = {k: _json(v) for k, v in node.keys.items()}
        out["additionalProperties"] = False
        required = [k for k, v in node.keys.items() if v.required]
        if required:
            out["required"] = required
    elif node.kind == "map":
        assert node.values is not None
        out["additionalProperties"] = _json(node.values)
        if node.names is not None:
            out["propertyNames"] = {"pattern": f"^(?:{node.names})$"}
    elif node.kind == "list":
        assert node.values is not None
        out["items"] = _json(node.values)
    if node.any_of:
        out["anyOf"] = [_json(a) for a in node.any_of]
    return out


def json_schema() -> dict[str, object]:
    """The fleet file's JSON Schema (draft 2020-12), for editors and validators. It checks
    shapes, types, ranges and names; the rules between keys are the loader's (`validate`).

    Only keywords that mean the same in draft-07 are used (KEYWORDS): yaml-language-server,
    the editors' YAML checker, "Supports JSON Schema 7 and below" (its README, npm package
    yaml-language-server 1.14-1.19), and reads a schema named on a file's first lines by the
    modeline `# yaml-language-server: $schema=<urlToTheSchema>` ("Using inlined schema")."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "nixecs fleet file",
        **_json(FLEET),
    }
