"""The fleet file's schema: every key with its type, required/default, allowed values, bounds,
pattern, the AWS limit it mirrors, an example and one line of description, declared once
(fleet/decl.py's `Node`) and assembled here into the file's tree.

The same declaration drives three things: the loader's per-value checking (each section's
nodes sit next to the code that builds its model: containers.py, images.py, infra.py,
loadbalancing.py, task_role.py, model.py, and this file for the loader's own sections, which
check their values with decl.keys/values/check), docs/fleet.md (`schema_docs.render_markdown`)
and `nixecs schema` (a JSON Schema, draft 2020-12, `json_schema`). tests/test_fleet_agreement.py
proves the loader and the JSON Schema agree at every declared bound, enumeration and pattern.
The group's `ecs`, `secrets` and `drain` are declared in host_sections.py like the rest; the
host reads them back at boot with settings.py's own parser (the boot path cannot build this
tree), which the same test holds to the declaration at each of those bounds.
"""

from __future__ import annotations

from .. import settings as s
from . import (
    capacity,
    cluster_tasks,
    daemon,
    environment_keys,
    host_ami,
    host_sections,
    infra,
    loadbalancing,
    notifications,
    task_role,
    volumes,
)
from . import containers as c
from .containers import ENVIRONMENT, SECRET_ENV
from .decl import Node as Node
from .decl import boolean, either, enum, integer, mapping, obj, req, string, strings
from .images import IMAGE
from .loadbalancing import ROUTES
from .model import DEPLOYMENT, SCALING, USERDATA_FORMATS
from .strategy import STRATEGY

NAME = s.NAME_RE.pattern
NAME_RULE = "1-64 letters, digits, _ and -, starting with a letter or digit"
_ID = r"(?:[0-9a-f]{8}|[0-9a-f]{17})"  # EC2 ids: 8 or 17 hex digits
AMI = rf"ami-{_ID}"
SUBNET = rf"subnet-{_ID}"
SG = rf"sg-{_ID}"
REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]"
INSTANCE_TYPE = r"[a-z][a-z0-9-]*\.[a-z0-9-]+"
HOST = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
FLAKE = r"[!-~]{1,256}"
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
PREFIX = r"[a-z0-9][a-z0-9-]{0,15}"
BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
# A KMS key ARN or key id. Not an alias: an IAM policy cannot grant kms:Decrypt on a key by
# its alias in Resource.
_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
KMS_KEY = rf"{_KEY_ID}|arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{{12}}:key/{_KEY_ID}"
KMS_KEY_RULE = "a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or key id; not an alias"
ENV_NAME = c.ENV_NAME_RE.pattern
KMS_ARN_EXAMPLE = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"


def _named(what: str) -> dict[str, object]:
    """A map of resources by name: a name outside NAME is E105, said as the loader says it."""
    return {"rule": f"{what} name {{name!r}} is not valid: {NAME_RULE}", "code": s.E_NAME}


# -- groups ----------------------------------------------------------------------------------

GROUP = obj(
    "an Auto Scaling group of NixOS container instances",
    order=(
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
        *capacity.GROUP_KEYS,
    ),
    host=string(
        "the flake's nixosConfigurations name the instances run",
        default="ecs-node",
        pattern=HOST,
        rule="a nixosConfigurations name such as ecs-node",
        example="ecs-node",
    ),
    ami=req(
        either(
            "the NixOS AMI the instances boot: an id, or the newest AMI published for a host",
            string(
                "an AMI id (per region: the fleet's `region:`)",
                pattern=AMI,
                rule="an AMI id such as ami-0123456789abcdef0",
                example="ami-0123456789abcdef0",
            ),
            host_ami.BY_HOST,
            example={"host": "web"},
            what="an AMI id or a mapping {host, rev}",
        )
    ),
    instance_types=req(
        strings(
            "EC2 instance types, in order of preference (more than one: a mixed instances policy)",
            string(
                "an instance type",
                pattern=INSTANCE_TYPE,
                rule="an instance type such as m6i.large",
            ),
            min_items=1,
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
    **capacity.GROUP_NODES,
    gpu=boolean(
        "the host runs GPU tasks (NVIDIA; nixecs.ecs.gpu.enable in its configuration): every "
        "instance type must have a GPU (E166); only this group's containers may set `gpu:` "
        "(E167)",
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
    ecs=host_sections.ECS,
    secrets=host_sections.SECRETS,
    drain=host_sections.DRAIN,
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
        pattern=KMS_KEY,
        rule=KMS_KEY_RULE,
        example=KMS_ARN_EXAMPLE,
    ),
    root_volume=infra.ROOT_VOLUME,
    key_pair=infra.KEY_PAIR,
)

# -- services --------------------------------------------------------------------------------

SERVICE = obj(
    "an ECS service; the one-container shorthand (image, port, environment, secrets) or `containers:`",
    order=(
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
    ),
    group=req(
        either(
            "the group whose instances run it, or a capacity provider strategy across groups "
            "of the cluster: a list of {group, base, weight} (fleet/strategy.py)",
            string("the group whose instances run it", pattern=NAME, example="web"),
            STRATEGY,
            what="a group name or a list of {group, base, weight}",
        )
    ),
    image=IMAGE,
    cpu=integer(
        f"cpu units: the container's (shorthand, default {c.SHORTHAND_CPU}) or the task's "
        f"({c.TASK_CPU_MIN}-{c.CPU_MAX})",
        0,
        c.CPU_MAX,
        aws=f"RegisterTaskDefinition cpu on EC2: {c.TASK_CPU_MIN}-{c.CPU_MAX} units",
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
    containers=c.CONTAINERS,
    network_mode=enum(
        "the task's network mode", c.NETWORK_MODES, default="bridge", example="bridge"
    ),
    task_role=task_role.TASK_ROLE,
    routing=ROUTES,
    placement=loadbalancing.PLACEMENT,
    deployment=DEPLOYMENT,
    enable_execute_command=boolean(
        "ECS Exec (EnableExecuteCommand; `nixecs exec`): only on a group with `exec: true` "
        "(else E157); adds the four ssmmessages actions to the task role",
        False,
        example=False,
    ),
    volumes=volumes.VOLUMES,
    scheduling=enum(
        "replica (a desired count, or scaled) or daemon: one task on every instance of the "
        "group (no desired, scaling or placement strategy: E178)",
        daemon.SCHEDULING,
        default="replica",
        aws="ECS SchedulingStrategy REPLICA | DAEMON",
        example="replica",
    ),
)

# -- clusters and the file -------------------------------------------------------------------

LOAD_BALANCER = loadbalancing.LOAD_BALANCER
TASK = obj(
    "a task definition that is not a service: run on a schedule, or started by hand (RunTask with the group's capacity provider)",
    order=cluster_tasks.TASK_KEYS,
    **{
        key: SERVICE.keys[key]
        for key in cluster_tasks.TASK_KEYS
        if key in SERVICE.keys and key != "group"
    },
    # one group: RunTask and the schedule name one capacity provider
    group=req(
        string("the group whose instances run it", pattern=NAME, rule=NAME_RULE, example="web")
    ),
    schedule=either(
        "an EventBridge Scheduler expression, or {expression, timezone}",
        string(
            cluster_tasks.EXPRESSION_RULE,
            pattern=cluster_tasks.EXPRESSION_PATTERN,
            rule=cluster_tasks.EXPRESSION_FORMS,
            code="E183",
        ),
        obj(
            "a schedule",
            order=cluster_tasks.SCHEDULE_KEYS,
            expression=req(
                string(
                    cluster_tasks.EXPRESSION_RULE,
                    pattern=cluster_tasks.EXPRESSION_PATTERN,
                    rule=cluster_tasks.EXPRESSION_FORMS,
                    code="E183",
                    example="cron(0 3 * * ? *)",
                )
            ),
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
        *capacity.CLUSTER_KEYS,
        "notifications",
        *cluster_tasks.CLUSTER_KEYS,
    ),
    subnets=req(
        strings(
            "subnets of the instances",
            string("a subnet id", pattern=SUBNET, rule="a subnet id such as subnet-0a1b2c3d"),
            min_items=1,
            example=["subnet-0a1b2c3d", "subnet-0a1b2c3e"],
        )
    ),
    security_groups=req(
        strings(
            "security groups of the instances",
            string(
                "a security group id", pattern=SG, rule="a security group id such as sg-0a1b2c3d"
            ),
            min_items=1,
            example=["sg-0a1b2c3d"],
        )
    ),
    groups=mapping("Auto Scaling groups by name", NAME, GROUP, **_named("group")),
    services=mapping("services by name", NAME, SERVICE, **_named("service")),
    tasks=mapping(
        "tasks by name that are not services (names apart from the services': E182)",
        NAME,
        TASK,
        **_named("task"),
    ),
    kms_key=string(
        "KMS key the secrets' SSM parameters are encrypted with (key ARN or id; not an alias)",
        pattern=KMS_KEY,
        rule=KMS_KEY_RULE,
        example=KMS_ARN_EXAMPLE,
    ),
    load_balancer=LOAD_BALANCER,
    container_insights=infra.INSIGHTS,
    log_retention_days=infra.LOG_RETENTION,
    log_kms_key=infra.LOG_KMS_KEY,
    overrides=infra.OVERRIDES,
    notifications=notifications.NOTIFICATIONS,
    **capacity.CLUSTER_NODES,
)
FLEET = obj(
    "a nixecs fleet file",
    order=(
        "version",
        "region",
        "flake",
        "name_prefix",
        "template_bucket",
        "parameter_prefix",
        "clusters",
        "environments",
    ),
    version=req(
        integer(
            "the fleet file's format",
            1,
            1,
            rule="unsupported fleet version {value!r}: this nixecs reads version 1",
            example=1,
        )
    ),
    region=req(
        string(
            "the AWS region",
            pattern=REGION,
            rule="an AWS region such as us-east-1",
            example="us-east-1",
        )
    ),
    flake=string(
        "the flake the hosts are built from (recorded in tags)",
        pattern=FLAKE,
        rule="a flake reference without spaces, e.g. github:acme/infra",
        example="github:acme/infra",
    ),
    name_prefix=string(
        "a prefix of every AWS name (two fleets in one account)",
        pattern=PREFIX,
        rule="1-16 of a-z 0-9 and -, starting with a letter or digit, e.g. acme",
        example="acme",
    ),
    template_bucket=string(
        "an S3 bucket for stacks over CloudFormation's 51,200-byte inline limit",
        pattern=BUCKET,
        rule="an S3 bucket name (3-63 of a-z 0-9 . -)",
        aws="S3 bucket names: 3-63 characters",
        example="acme-templates",
    ),
    parameter_prefix=string(
        "an SSM parameter path the fleet owns: `nixecs secret put/rm` act on any parameter "
        f"below it without --outside-fleet ({s.PARAMETER_RULE})",
        aws="SSM parameter names: 1011 characters, 15 levels",
        example="/acme/prod",
    ),
    clusters=req(mapping("ECS clusters by name", NAME, CLUSTER, **_named("cluster"))),
    environments=mapping(
        "environments of this fleet, by name: `--env NAME` reads the file as that one",
        environment_keys.NAME_RE.pattern,
        obj(
            "one environment: what it changes in the fleet",
            order=environment_keys.ENV_KEYS,
            region=string(
                "its AWS region (default: the fleet's)",
                pattern=REGION,
                rule="an AWS region such as us-east-1",
                example="eu-west-1",
            ),
            name_prefix=string(
                "its name prefix (default: the environment's name): two environments never "
                "name the same stacks",
                pattern=PREFIX,
                rule="1-16 of a-z 0-9 and -, starting with a letter or digit, e.g. acme",
                example="stg",
            ),
            set=mapping(
                "keys of the fleet set for this environment, merged into it (mappings key "
                "by key, any other value replaced, null deletes); checked as the fleet is",
                None,
                Node("any", "a fleet value"),
                example={"clusters": {"prod": {"groups": {"web": {"capacity": {"max": 4}}}}}},
            ),
        ),
        min_items=1,  # `environments: {}` is refused (environments.select, E103)
        example={"staging": {"region": "eu-west-1"}},
    ),
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


def _steps(path: tuple[object, ...]) -> list[tuple[str, Node | None]]:
    """Each part of a loader path as a schema path's (`*` and `[]`), with the node it leads
    to (None beyond the declaration's keys); KeyError when the path goes into a scalar."""
    node: Node | None = FLEET
    steps: list[tuple[str, Node | None]] = []
    for part in path:
        if node is None:
            raise KeyError(path)
        if node.any_of:
            kinds = ("list",) if isinstance(part, int) else ("object", "map")
            node = next(a for a in node.any_of if a.kind in kinds)
        if node.kind == "object":
            node = node.keys.get(str(part))
            steps.append((str(part), node))
        elif node.kind == "map":
            node = node.values
            steps.append(("*", node))
        elif node.kind == "list":
            node = node.values
            steps.append(("[]", node))
        else:
            raise KeyError(path)
    return steps


def schema_path(path: tuple[object, ...]) -> tuple[str, ...]:
    """A loader path (names and list indices) as a schema path (`*` and `[]`)."""
    return tuple(part for part, _ in _steps(path))


def node_at(path: tuple[object, ...]) -> Node | None:
    """The declaration of the value at a loader path (the document's root at ()), or None
    where the file goes beyond it (an unknown key, into a scalar)."""
    try:
        steps = _steps(path)
    except (KeyError, StopIteration):
        return None
    return steps[-1][1] if steps else FLEET


# -- JSON Schema -----------------------------------------------------------------------------

# The keywords json_schema writes; each has one meaning in draft-07 and draft 2020-12 (`items`
# with a single schema included), which tests/test_fleet_schema.py checks with both validators.
KEYWORDS = frozenset(
    (
        "$schema", "title", "description", "type", "enum", "minimum", "maximum", "pattern",
        "default", "examples", "properties", "additionalProperties", "required",
        "propertyNames", "items", "anyOf", "minItems", "maxItems", "minProperties",
        "maxProperties", "uniqueItems", "oneOf",
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
    # a map's entries are counted as a list's items
    counts = ("minProperties", "maxProperties") if node.kind == "map" else ("minItems", "maxItems")
    if node.min_items is not None:
        out[counts[0]] = node.min_items
    if node.max_items is not None:
        out[counts[1]] = node.max_items
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
        if node.one_of:
            out["oneOf" if node.only_one else "anyOf"] = [{"required": [k]} for k in node.one_of]
    elif node.kind == "map":
        assert node.values is not None
        out["additionalProperties"] = _json(node.values)
        if node.names is not None:
            out["propertyNames"] = {"pattern": f"^(?:{node.names})$"}
    elif node.kind == "list":
        assert node.values is not None
        out["items"] = _json(node.values)
        if node.unique:
            out["uniqueItems"] = True
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
