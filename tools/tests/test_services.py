"""Services with several containers, a network mode and a task role (issue 10, items 1, 2, 5
and 11): the fleet file's keys, every check at its own `file:line:col`, and the task
definition and roles they render to (cfn-lint clean)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import CODES, InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from nixecs.fleet.lints import lint_fleet
from nixecs.fleet.task_role import action_table, scopable

HEAD = textwrap.dedent(
    """\
    version: 1
    region: eu-west-1
    flake: github:acme/infra
    clusters:
      prod:
        subnets: [subnet-0a1b2c3d]
        security_groups: [sg-0a1b2c3d]
        groups:
          web:
            ami: ami-0123456789abcdef0
            instance_types: [m6i.large]
            capacity: {min: 1, max: 3}
        services:
    """
)

SHOP = textwrap.dedent(
    """\
    shop:
      group: web
      memory: 1024
      task_role:
        managed_policies: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]
        statements:
          - actions: [sqs:SendMessage, sqs:ReceiveMessage]
            resources: [arn:aws:sqs:eu-west-1:123456789012:orders]
            conditions: {Bool: {aws:SecureTransport: true}}
          - actions: s3:ListAllMyBuckets
            resources: "*"
      containers:
        app:
          image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:1.4
          cpu: 256
          memory: 768
          memory_reservation: 512
          ports: [8080]
          environment: {MODE: prod}
          secrets: {DB_PASSWORD: /prod/db/password}
          health_check:
            command: curl -fs http://localhost:8080/health || exit 1
            interval: 15
            timeout: 5
            retries: 3
            start_period: 30
          depends_on: {envoy: HEALTHY, migrate: SUCCESS}
          ulimits: {nofile: 65536, core: {soft: 0, hard: 0}}
          stop_timeout: 60
          read_only_root_filesystem: true
          user: "1000:1000"
        envoy:
          image: public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.4.0-prod
          memory_reservation: 128
          ports: [{container_port: 9901}, {container_port: 8125, protocol: udp}]
          secrets: {TOKEN: /prod/envoy/token}
          health_check: {command: [CMD, /bin/healthcheck], interval: 10}
        migrate:
          image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:1.4
          essential: false
          memory: 128
          entrypoint: [/bin/sh, -c]
          command: [./migrate --up]
    """
)


def fleet_text(services: str = SHOP) -> str:
    return HEAD + textwrap.indent(services, "      ")


def located(text: str) -> list[tuple[str, str]]:
    """(code, the text of the file from the error's position to the end of that line)."""
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    lines = text.split("\n")
    found = []
    for d in caught.value.report.sorted():
        assert d.location.path == "fleet.yml" and d.location.line >= 1
        found.append((d.code, lines[d.location.line - 1][d.location.column - 1 :]))
    return found


def shop_with(old: str, new: str, services: str = SHOP) -> str:
    assert old in services, old
    return fleet_text(services.replace(old, new, 1))


def container_defs(text: str) -> tuple[dict, dict]:
    fleet = parse(text, "fleet.yml")
    template = build_stack(fleet, "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    resources = template["Resources"]
    task = next(r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition")
    return task["Properties"], resources


# --- the model ---------------------------------------------------------------------------


def test_containers_form_loads_in_order_with_task_sizes() -> None:
    fleet = parse(fleet_text(), "fleet.yml")
    shop = fleet.clusters["prod"].services["shop"]
    assert [c.name for c in shop.containers] == ["app", "envoy", "migrate"]
    app, envoy, migrate = shop.containers
    assert (shop.task_memory, shop.task_cpu, shop.memory, shop.cpu) == (1024, None, 1024, 256)
    assert (app.memory, app.memory_reservation, app.reserved_memory) == (768, 512, 512)
    assert app.health_check is not None and app.health_check.command[0] == "CMD-SHELL"
    assert app.depends_on == (("envoy", "HEALTHY"), ("migrate", "SUCCESS"))
    assert [(p.container_port, p.host_port, p.protocol) for p in envoy.ports] == [
        (9901, 0, "tcp"),
        (8125, 0, "udp"),
    ]
    assert not migrate.essential and migrate.command == ("./migrate --up",)
    assert shop.image == app.image and shop.port == 8080 and shop.network_mode == "bridge"
    # every container's secrets, each where it is written
    assert [(path[-1], p) for path, p in shop.secret_uses()] == [
        ("DB_PASSWORD", "/prod/db/password"),
        ("TOKEN", "/prod/envoy/token"),
    ]
    assert shop.task_role is not None and len(shop.task_role.statements) == 2


def test_without_task_memory_the_task_reserves_what_its_containers_reserve() -> None:
    text = shop_with("  memory: 1024\n", "")
    shop = parse(text, "fleet.yml").clusters["prod"].services["shop"]
    assert shop.task_memory is None and shop.memory == 512 + 128 + 128


def test_shorthand_is_one_container_named_after_the_service() -> None:
    text = fleet_text("api:\n  group: web\n  image: nginx:1.27\n  memory: 256\n  port: 80\n")
    api = parse(text, "fleet.yml").clusters["prod"].services["api"]
    (only,) = api.containers
    assert (only.name, only.image.reference, only.cpu, only.memory, only.essential) == (
        "api",
        "nginx:1.27",
        256,
        256,
        True,
    )
    assert [(p.container_port, p.host_port) for p in only.ports] == [(80, 0)]


def test_host_mode_maps_the_container_port_on_the_host() -> None:
    text = fleet_text(
        "dns:\n  group: web\n  network_mode: host\n  image: coredns/coredns:1.11.1\n"
        "  memory: 128\n  port: 53\n"
    )
    properties, _ = container_defs(text)
    assert properties["NetworkMode"] == "host"
    assert properties["ContainerDefinitions"][0]["PortMappings"] == [
        {"ContainerPort": 53, "HostPort": 53, "Protocol": "tcp"}
    ]


# --- rendering ---------------------------------------------------------------------------


def test_task_definition_renders_every_key() -> None:
    properties, resources = container_defs(fleet_text())
    assert properties["Memory"] == "1024" and "Cpu" not in properties
    assert properties["TaskRoleArn"] == {"Fn::GetAtt": [_id(resources, "TaskRole"), "Arn"]}
    app, envoy, migrate = properties["ContainerDefinitions"]
    assert app["Name"] == "app" and app["Essential"] is True
    assert (app["Memory"], app["MemoryReservation"], app["Cpu"]) == (768, 512, 256)
    assert app["PortMappings"] == [{"ContainerPort": 8080, "HostPort": 0, "Protocol": "tcp"}]
    assert app["HealthCheck"] == {
        "Command": ["CMD-SHELL", "curl -fs http://localhost:8080/health || exit 1"],
        "Interval": 15,
        "Timeout": 5,
        "Retries": 3,
        "StartPeriod": 30,
    }
    assert app["DependsOn"] == [
        {"ContainerName": "envoy", "Condition": "HEALTHY"},
        {"ContainerName": "migrate", "Condition": "SUCCESS"},
    ]
    assert app["Ulimits"] == [
        {"Name": "nofile", "SoftLimit": 65536, "HardLimit": 65536},
        {"Name": "core", "SoftLimit": 0, "HardLimit": 0},
    ]
    assert app["StopTimeout"] == 60 and app["ReadonlyRootFilesystem"] is True
    assert app["User"] == "1000:1000"
    assert app["Environment"] == [{"Name": "MODE", "Value": "prod"}]
    assert app["Secrets"][0]["Name"] == "DB_PASSWORD"
    assert app["LogConfiguration"]["LogDriver"] == "awslogs"
    assert envoy["HealthCheck"]["Command"] == ["CMD", "/bin/healthcheck"]
    assert envoy["HealthCheck"]["Interval"] == 10 and envoy["HealthCheck"]["Timeout"] == 5
    assert "Memory" not in envoy and envoy["MemoryReservation"] == 128
    assert migrate["Essential"] is False
    assert migrate["EntryPoint"] == ["/bin/sh", "-c"]
    assert migrate["Command"] == ["./migrate --up"]


def _id(resources: dict, suffix: str) -> str:
    return next(k for k, r in resources.items() if k.endswith(suffix))


def test_task_role_is_exactly_what_the_file_says() -> None:
    _, resources = container_defs(fleet_text())
    role = resources[_id(resources, "TaskRole")]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ecs-tasks.amazonaws.com"
    }
    assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:ReceiveMessage"],
            "Resource": ["arn:aws:sqs:eu-west-1:123456789012:orders"],
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
        {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets"], "Resource": ["*"]},
    ]


def test_execution_role_reads_every_containers_secrets_and_nothing_else() -> None:
    _, resources = container_defs(fleet_text())
    role = resources[_id(resources, "ExecutionRole")]["Properties"]
    statement = role["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == ["ssm:GetParameters"]
    names = [json.dumps(r) for r in statement["Resource"]]
    assert len(names) == 2
    assert "/prod/db/password" in names[0] + names[1] and "/prod/envoy/token" in "".join(names)
    assert (
        role["ManagedPolicyArns"]
        == [
            {
                "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
            }
        ]
        or len(role["ManagedPolicyArns"]) == 1
    )


def test_no_task_role_means_no_role_and_no_task_role_arn() -> None:
    text = fleet_text("api:\n  group: web\n  image: nginx:1.27\n  memory: 256\n")
    properties, resources = container_defs(text)
    assert "TaskRoleArn" not in properties
    assert not [k for k in resources if k.endswith("TaskRole")]


def test_firelens_router_and_awsfirelens_log_render() -> None:
    services = textwrap.dedent(
        """\
        api:
          group: web
          containers:
            app:
              image: nginx:1.27
              memory: 256
              log:
                driver: awsfirelens
                options: {Name: cloudwatch, region: eu-west-1, log_group_name: /api, auto_create_group: "false"}
            router:
              image: public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0
              essential: true
              memory_reservation: 50
              firelens: {type: fluentbit, options: {enable-ecs-log-metadata: "true"}}
        """
    )
    properties, _ = container_defs(fleet_text(services))
    app, router = properties["ContainerDefinitions"]
    assert app["LogConfiguration"] == {
        "LogDriver": "awsfirelens",
        "Options": {
            "Name": "cloudwatch",
            "auto_create_group": "false",
            "log_group_name": "/api",
            "region": "eu-west-1",
        },
    }
    assert router["FirelensConfiguration"] == {
        "Type": "fluentbit",
        "Options": {"enable-ecs-log-metadata": "true"},
    }
    assert router["LogConfiguration"]["LogDriver"] == "awslogs"


@pytest.mark.cfnlint
def test_cfn_lint_clean_with_the_fleets_region(tmp_path: Path) -> None:
    """The sidecar service with a task role and health checks, a FireLens service and a host
    mode service: cfn-lint (errors, warnings and informational) finds nothing."""
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    extra = textwrap.dedent(
        """\
        dns:
          group: web
          network_mode: host
          image: coredns/coredns:1.11.1
          memory: 128
          port: 53
        logs:
          group: web
          cpu: 512
          containers:
            app:
              image: nginx:1.27
              cpu: 256
              memory: 256
              log: {driver: awsfirelens, options: {Name: stdout}}
            router:
              image: public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0
              memory_reservation: 50
              firelens: {type: fluentbit}
        """
    )
    fleet = parse(fleet_text(SHOP + extra), "fleet.yml")
    template = build_stack(fleet, "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(template))
    result = subprocess.run(
        [
            str(cfn_lint),
            "--format",
            "parseable",
            "--include-checks",
            "I",
            "--regions",
            "eu-west-1",
            "--",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


# --- the checks, each at its place --------------------------------------------------------

CASES = [
    # (what to replace in SHOP, with what, code, the located line starts with)
    ("      essential: false\n", "      essential: maybe\n", "E103", "maybe"),
    ("    essential: false\n", "    essential: false\n", None, None),  # sanity: SHOP is valid
    (
        "      memory_reservation: 512\n",
        "      memory_reservation: 768\n",
        "E141",
        "768",
    ),
    ("  memory: 1024\n", "  memory: 600\n", "E142", "600"),
    ("  memory: 1024\n", "  memory: 700\n  cpu: 128\n", "E142", "700"),
    ("      interval: 15\n", "      interval: 4\n", "E107", "4"),
    ("      timeout: 5\n", "      timeout: 61\n", "E107", "61"),
    ("      retries: 3\n", "      retries: 11\n", "E107", "11"),
    ("      start_period: 30\n", "      start_period: 301\n", "E107", "301"),
    ("[CMD, /bin/healthcheck]", "[/bin/healthcheck]", "E143", "[/bin/healthcheck]"),
    ("[CMD, /bin/healthcheck]", "[CMD]", "E143", "[CMD]"),
    ("[CMD, /bin/healthcheck]", '"  "', "E143", '"  "'),
    ("ports: [8080]", "ports: [8080, 8080]", "E144", "8080]"),
    ("ports: [8080]", "ports: [0]", "E107", "0]"),
    ("ports: [8080]", "ports: [65536]", "E107", "65536]"),
    ("{container_port: 9901}", "{container_port: 9901, protocol: sctp}", "E107", "sctp}"),
    (
        "ports: [8080]",
        "ports: [{container_port: 8080, host_port: 80}]",
        None,
        None,
    ),
    ("ports: [8080]", "ports: [{container_port: 8080, host_port: 51678}]", "E144", "{container"),
    ("ports: [8080]", "ports: [{container_port: 22, host_port: 0}]", None, None),  # dynamic
    ("envoy: HEALTHY", "nginx: HEALTHY", "E108", "HEALTHY, migrate"),  # at the condition
    ("envoy: HEALTHY", "envoy: READY", "E107", "READY"),
    ("envoy: HEALTHY", "app: START", "E145", "START, migrate"),
    (
        "      command: [./migrate --up]\n",
        "      command: [./migrate --up]\n      depends_on: {envoy: COMPLETE}\n",
        "E145",
        "COMPLETE}",
    ),
    (
        "      health_check: {command: [CMD, /bin/healthcheck], interval: 10}\n",
        "",
        "E145",
        "HEALTHY, migrate",
    ),
    (
        "      command: [./migrate --up]\n",
        "      command: [./migrate --up]\n      depends_on: {app: START}\n",
        "E145",
        "{envoy: HEALTHY",
    ),
    ("nofile: 65536", "nofiles: 65536", "E105", "nofiles"),
    ("core: {soft: 0, hard: 0}", "core: {soft: 2, hard: 1}", "E149", "2, hard: 1}"),
    ("stop_timeout: 60", "stop_timeout: 0", "E107", "0"),
    ('user: "1000:1000"', 'user: "a b"', "E107", '"a b"'),
    ("MODE: prod}", "1MODE: prod}", "E105", "1MODE"),
    # neither an SSM parameter nor a Secrets Manager secret (fleet/secret_refs.py)
    ("{TOKEN: /prod/envoy/token}", "{TOKEN: not a parameter}", "E175", "not a parameter"),
    ("environment: {MODE: prod}", "environment: {DB_PASSWORD: x}", "E107", "/prod/db/password"),
    ("  migrate:\n", "  'bad name!':\n", "E105", "'bad name!'"),
    ("      essential: false\n", "      essential: false\n      colour: red\n", "E101", "colour"),
    ("  memory: 1024\n", "  memory: 1024\n  port: 80\n", "E112", "80"),
    ("  memory: 1024\n", "  memory: 1024\n  network_mode: awsvpc\n", "E146", "awsvpc"),
    ("  memory: 1024\n", "  memory: 1024\n  network_mode: nat\n", "E107", "nat"),
    ("actions: s3:ListAllMyBuckets", 'actions: "*"', "E147", '"*"'),
    ("actions: s3:ListAllMyBuckets", "actions: ListAllMyBuckets", "E147", "ListAllMyBuckets"),
    ("sqs:ReceiveMessage]", "sqs:Receive Message]", "E147", "sqs:Receive Message]"),
    ('resources: "*"', "resources: bucket", "E147", "bucket"),
    (
        "{Bool: {aws:SecureTransport: true}}",
        "{Bool: {aws:SecureTransport: {a: b}}}",
        "E103",
        "{a: b}",
    ),
    ("{Bool: {aws:SecureTransport: true}}", "{'Is Equal': {aws:x: y}}", "E147", "{aws:x: y}"),
    (
        "[arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]",
        "[AmazonS3ReadOnlyAccess]",
        "E107",
        "AmazonS3ReadOnlyAccess]",
    ),
    (
        "      - actions: s3:ListAllMyBuckets\n",
        "      - effect: Maybe\n        actions: s3:ListAllMyBuckets\n",
        "E107",
        "Maybe",
    ),
]


@pytest.mark.parametrize(("old", "new", "code", "where"), CASES)
def test_each_check_is_located(old: str, new: str, code: str | None, where: str | None) -> None:
    text = shop_with(old, new)
    if code is None:
        check_text(text, "fleet.yml", nix=False)
        return
    found = located(text)
    assert found and found[0][0] == code, found
    assert found[0][1].startswith(where), found  # type: ignore[arg-type]
    assert code in CODES


def test_no_essential_container_is_e140() -> None:
    services = "api:\n  group: web\n  containers:\n    app: {image: nginx:1.27, memory: 64, essential: false}\n"
    assert located(fleet_text(services)) == [
        ("E140", "app: {image: nginx:1.27, memory: 64, essential: false}")
    ]


def test_a_container_without_memory_needs_task_memory_e141() -> None:
    services = "api:\n  group: web\n  containers:\n    app: {image: nginx:1.27}\n"
    assert located(fleet_text(services)) == [("E141", "{image: nginx:1.27}")]
    parse(fleet_text(services.replace("  containers:", "  memory: 256\n  containers:")), "f")


def test_static_host_ports_must_not_repeat_across_containers_e144() -> None:
    services = textwrap.dedent(
        """\
        api:
          group: web
          network_mode: host
          containers:
            a: {image: nginx:1.27, memory: 64, ports: [80]}
            b: {image: nginx:1.27, memory: 64, ports: [{container_port: 80, host_port: 8080}]}
        """
    )
    found = located(fleet_text(services))
    assert found == [("E144", "8080}]}")]
    found = located(fleet_text(services.replace(", host_port: 8080", "")))
    assert found == [("E144", "{container_port: 80}]}")]


def test_a_depends_on_cycle_is_e145() -> None:
    services = textwrap.dedent(
        """\
        api:
          group: web
          containers:
            a: {image: nginx:1.27, memory: 64, depends_on: {b: START}}
            b: {image: nginx:1.27, memory: 64, depends_on: {c: START}}
            c: {image: nginx:1.27, memory: 64, depends_on: {a: START}}
            d: {image: nginx:1.27, memory: 64, depends_on: {a: START}}
        """
    )
    (found,) = located(fleet_text(services))
    assert found[0] == "E145" and found[1].startswith("{b: START}")
    with pytest.raises(InvalidInput) as caught:
        check_text(fleet_text(services), "fleet.yml", nix=False)
    assert "cycle among: a, b, c, d" in caught.value.report.items[0].message


def test_firelens_rules_e148() -> None:
    no_router = "api:\n  group: web\n  containers:\n    app: {image: nginx:1.27, memory: 64, log: {driver: awsfirelens}}\n"
    assert located(fleet_text(no_router)) == [("E148", "awsfirelens}}")]
    two = textwrap.dedent(
        """\
        api:
          group: web
          containers:
            app: {image: nginx:1.27, memory: 64}
            r1: {image: fluent-bit:3, memory: 64, firelens: {type: fluentbit}}
            r2: {image: fluent-bit:3, memory: 64, firelens: {type: fluentd}}
        """
    )
    assert located(fleet_text(two)) == [("E148", "{type: fluentd}}")]
    options = "api:\n  group: web\n  containers:\n    app: {image: nginx:1.27, memory: 64, log: {driver: awslogs, options: {a: b}}}\n"
    assert located(fleet_text(options)) == [("E112", "{a: b}}}")]


def test_shorthand_errors_keep_their_places() -> None:
    bad = fleet_text("api:\n  group: web\n  image: nginx:1.27\n  memory: 2\n  port: 70000\n")
    assert located(bad) == [("E107", "2"), ("E107", "70000")]


# --- the task role lint (W140) -------------------------------------------------------------


def test_w140_only_for_actions_that_can_be_scoped() -> None:
    assert scopable("s3:ListAllMyBuckets") is None  # no resource type: `*` is its only form
    assert scopable("s3:GetObject") is not None
    assert scopable("s3:Get*") is not None  # the wildcard covers scoped actions
    assert scopable("S3:getobject") is not None  # IAM action names ignore case
    assert scopable("S3:listallmybuckets") is None
    assert "not a service prefix" in (scopable("nosuchservice:Do") or "")
    assert "not an action" in (scopable("s3:NoSuchAction") or "")
    text = shop_with("actions: s3:ListAllMyBuckets", "actions: [s3:ListAllMyBuckets, s3:GetObject]")
    fleet = parse(text, "fleet.yml")
    # (SHOP's read-only app with no writable mount also draws W170: test_volumes.py)
    (warning,) = [d for d in lint_fleet(fleet) if d.code.startswith("W14")]
    assert warning.code == "W140" and "s3:GetObject has a resource type" in warning.message
    line = text.split("\n")[warning.location.line - 1][warning.location.column - 1 :]
    assert line.startswith("s3:GetObject]")
    # a Deny on `*` is never too wide
    denied = text.replace(
        "- actions: [s3:ListAllMyBuckets",
        "- effect: Deny\n              actions: [s3:ListAllMyBuckets",
    )
    assert [d for d in lint_fleet(parse(denied, "fleet.yml")) if d.code.startswith("W14")] == []


@pytest.mark.cfnlint
def test_the_action_table_is_the_generators_output() -> None:
    """fleet/iam_actions.json is what tools/gen_iam_actions.py makes from the installed
    cfn-lint, when that cfn-lint is the one recorded in the table; with another cfn-lint the
    regenerated table must still agree on the actions this file relies on."""
    import importlib.util
    from importlib import metadata

    from conftest import REPO

    table = action_table()
    assert "s3" in table and "listallmybuckets" in table["s3"][1] and "getobject" in table["s3"][0]
    spec = importlib.util.spec_from_file_location("gen", REPO / "tools" / "gen_iam_actions.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    committed = json.loads(gen.OUT.read_text(encoding="utf-8"))
    try:
        installed = metadata.version("cfn-lint")
    except metadata.PackageNotFoundError:
        installed = None
    require(installed is not None, "cfn-lint is not installed in this environment")
    built = gen.build()
    if committed["source"].startswith(f"cfn-lint {installed} "):
        assert built == committed
    else:  # another cfn-lint: the table may have grown, not changed what is used here
        s3 = built["services"]["s3"]
        assert "getobject" in s3["scoped"].split() and "listallmybuckets" in s3["unscoped"].split()


def test_every_new_code_is_documented() -> None:
    for code in (
        "E140",
        "E141",
        "E142",
        "E143",
        "E144",
        "E145",
        "E146",
        "E147",
        "E148",
        "E149",
        "W140",
    ):
        assert code in CODES
    assert re.search(r"E140-E149", sys.modules["nixecs.diagnostics"].__doc__ or "")


# --- malformed input of every new key: exit 2 semantics, never a traceback ----------------

VALUES = [
    "-1",
    "0",
    "null",
    "[]",
    "{}",
    "x",
    "1e400",
    '"*"',
    "true",
    "99999999999999999999",
    "[a, 1]",
    "{a: 1}",
    "'  '",
    "[CMD]",
    "START",
    "awsvpc",
    "host",
    "[{}]",
    "[[1]]",
    "é",
]


@st.composite
def mutated_shop(draw: st.DrawFn) -> str:
    lines = fleet_text().split("\n")
    for _ in range(draw(st.integers(1, 3))):
        candidates = [i for i, line in enumerate(lines) if ":" in line and i > 12]
        i = draw(st.sampled_from(candidates))
        key, _, _ = lines[i].partition(": ") if ": " in lines[i] else (lines[i].rstrip(":"), "", "")
        lines[i] = f"{key}: {draw(st.sampled_from(VALUES))}"
    return "\n".join(lines)


@given(mutated_shop())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_services_are_located_errors_or_render(text: str) -> None:
    try:
        fleet, _ = check_text(text, "fleet.yml", nix=False)
    except InvalidInput as error:
        for d in error.report.sorted():
            assert d.location.line >= 1 and d.location.column >= 1 and d.code in CODES
        return
    lint_fleet(fleet)
    build_stack(fleet, "prod", {"web": b"#nixecs-settings v1\n{}\n"})


def test_every_containers_image_is_checked_e126() -> None:
    from nixecs.fleet.aws_rules import check_fleet

    text = shop_with("aws-appmesh-envoy:v1.29.4.0-prod", "Aws-AppMesh-Envoy:v1")
    found = [d for d in check_fleet(parse(text, "fleet.yml")) if d.code == "E126"]
    assert len(found) == 1
    line = text.split("\n")[found[0].location.line - 1]
    assert "Aws-AppMesh-Envoy:v1" in line and "lower case" in found[0].message


def test_container_names_are_unique_e102() -> None:
    services = "api:\n  group: web\n  containers:\n    app: {image: a:1, memory: 64}\n    app: {image: b:1, memory: 64}\n"
    found = located(fleet_text(services))
    assert found[0][0] == "E102" and found[0][1].startswith("app: {image: b:1")


def test_validate_exits_2_with_located_errors(tmp_path: Path, capsys) -> None:
    from aws_fixtures import run_cli

    text = shop_with("  memory: 1024\n", "  memory: 1024\n  network_mode: awsvpc\n")
    text = text.replace("retries: 3", "retries: many")
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text, encoding="utf-8")
    done = run_cli(capsys, ["validate", str(fleet)])
    assert done.code == 2 and "Traceback" not in done.err
    lines = done.err.strip().splitlines()
    assert any(
        re.match(rf"{re.escape(str(fleet))}:\d+:\d+: error\[E146\]: awsvpc needs the ECS CNI", x)
        for x in lines
    ), done.err
    assert any(re.match(rf"{re.escape(str(fleet))}:\d+:\d+: error\[E103\]", x) for x in lines), (
        done.err
    )
