"""Linux parameters, Docker labels and privileged containers (issue 20, item 5;
nixecs.fleet.linux): rendered as ECS takes them, the checks at their places (E179, E180, and
E171/E172 for paths), W170 answered by a tmpfs, the JSON Schema agreeing with the loader,
cfn-lint in the fleet's region, and the moto server holding them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from aws_fixtures import moto_client
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import CODES, FIXES, InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from nixecs.fleet.lints import lint_fleet
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load
from stack_fixtures import assert_cfn_lint_clean, deploy_on_moto
from test_services import HEAD

TOOLS = textwrap.dedent(
    """\
    tools:
      group: web
      containers:
        app:
          image: nginx:1.27
          memory: 256
          read_only_root_filesystem: true
          linux:
            init_process: true
            capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
            shared_memory_mib: 128
            tmpfs:
              - {path: /tmp, size_mib: 64, options: [noexec, nosuid, mode=1777]}
              - {path: /var/cache/nginx, size_mib: 32}
            devices: [{host_path: /dev/fuse, permissions: [read, write]}]
          docker_labels: {com.example.team: payments}
    """
)


def fleet_text(services: str = TOOLS, privileged: bool = False) -> str:
    text = HEAD + textwrap.indent(services, "      ")
    if privileged:
        text = text.replace(
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        ecs: {privileged: true}",
        )
    return text


def tools_with(old: str, new: str, privileged: bool = False) -> str:
    assert old in TOOLS, old
    return fleet_text(TOOLS.replace(old, new, 1), privileged)


def container(text: str) -> dict:
    template = build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    (task,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    return task["Properties"]["ContainerDefinitions"][0]


def located(text: str) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidInput) as caught:  # the loader's findings, or the checks stage's
        check_text(text, "fleet.yml", nix=False)
    lines = text.split("\n")
    return [
        (d.code, lines[d.location.line - 1][d.location.column - 1 :], d.message)
        for d in caught.value.report.sorted()
    ]


def test_linux_parameters_render_as_written() -> None:
    app = container(fleet_text())
    assert app["LinuxParameters"] == {
        "InitProcessEnabled": True,
        "Capabilities": {"Add": ["NET_BIND_SERVICE"], "Drop": ["ALL"]},
        "SharedMemorySize": 128,
        "Tmpfs": [
            {
                "ContainerPath": "/tmp",
                "Size": 64,
                "MountOptions": ["noexec", "nosuid", "mode=1777"],
            },
            {"ContainerPath": "/var/cache/nginx", "Size": 32},
        ],
        "Devices": [{"HostPath": "/dev/fuse", "Permissions": ["read", "write"]}],
    }
    assert app["DockerLabels"] == {"com.example.team": "payments"}
    assert "Privileged" not in app


def test_privileged_only_where_the_group_allows_it() -> None:
    text = tools_with("      docker_labels:", "      privileged: true\n      docker_labels:")
    ((code, where, message),) = located(text)
    assert code == "E180" and where == "true" and "ecs.privileged: true" in message
    allowed = tools_with(
        "      docker_labels:",
        "      privileged: true\n      docker_labels:",
        privileged=True,
    )
    assert container(allowed)["Privileged"] is True


def test_a_tmpfs_answers_w170() -> None:
    assert [d for d in lint_fleet(parse(fleet_text(), "fleet.yml")) if d.code == "W170"] == []
    only_ro = tools_with("          - {path: /var/cache/nginx, size_mib: 32}\n", "").replace(
        "[noexec, nosuid, mode=1777]", "[ro]"
    )
    assert [d.code for d in lint_fleet(parse(only_ro, "fleet.yml"))] == ["W170"]


CASES = [
    ("add: [NET_BIND_SERVICE]", "add: [NET_BIND]", "E107", "NET_BIND]"),
    ("add: [NET_BIND_SERVICE]", "add: [CHOWN, CHOWN]", "E179", "CHOWN]"),
    ("drop: [ALL]", "drop: [NET_BIND_SERVICE]", "E179", "NET_BIND_SERVICE]"),
    ("add: [NET_BIND_SERVICE]", "add: NET_BIND_SERVICE", "E103", "NET_BIND_SERVICE,"),
    ("shared_memory_mib: 128", "shared_memory_mib: 0", "E107", "0"),
    ("shared_memory_mib: 128", "shared_memory_mib: lots", "E103", "lots"),
    ("{path: /tmp, size_mib: 64,", "{path: tmp, size_mib: 64,", "E172", "tmp,"),
    ("{path: /var/cache/nginx, size_mib: 32}", "{path: /tmp/, size_mib: 32}", "E171", "/tmp/"),
    ("{path: /var/cache/nginx, size_mib: 32}", "{path: /x/../tmp, size_mib: 32}", "E171", "/x/"),
    ("{path: /var/cache/nginx, size_mib: 32}", "{path: //, size_mib: 32}", "E171", "//,"),
    ("{path: /var/cache/nginx, size_mib: 32}", "{path: /var/cache/nginx}", "E104", "{path"),
    ("mode=1777]", "mode=1777, exec=yes]", "E107", "exec=yes"),
    ("mode=1777]", "mode=1777, nosuchopt]", "E107", "nosuchopt"),
    ("permissions: [read, write]", "permissions: [read, execute]", "E107", "execute"),
    ("{host_path: /dev/fuse,", "{host_path: dev/fuse,", "E172", "dev/fuse"),
    ("init_process: true", "init_process: yes", "E103", "yes"),
    ("init_process: true", "init: true", "E101", "init"),
    ("{com.example.team: payments}", "{'a b': payments}", "E105", "'a b'"),
    ("{com.example.team: payments}", "{com.example.team: 3}", "E103", "3}"),
]


@pytest.mark.parametrize(("old", "new", "code", "where"), CASES, ids=[c[1] for c in CASES])
def test_each_check_is_located(old: str, new: str, code: str, where: str) -> None:
    found = located(tools_with(old, new))
    assert [f[0] for f in found] == [code], found
    assert found[0][1].startswith(where), found
    assert code in CODES and code in FIXES


def test_a_tmpfs_on_a_mounted_path_is_e171() -> None:
    text = tools_with(
        "      docker_labels:",
        "      mounts: [{volume: cache, path: /var/cache/nginx}]\n      docker_labels:",
    ).replace("  containers:\n", "  volumes: {cache: {docker: {}}}\n        containers:\n", 1)
    ((code, where, _),) = located(text)
    assert code == "E171" and where.startswith("/var/cache/nginx, size_mib")


ODD = [
    ("an unknown capability", ("capabilities", "add", 0), "NET_BIND"),
    ("a negative shared memory", ("shared_memory_mib",), -1),
    ("a relative tmpfs path", ("tmpfs", 0, "path"), "tmp"),
    ("a tmpfs without size", ("tmpfs", 1), {"path": "/x"}),
    ("an unknown tmpfs option", ("tmpfs", 0, "options", 0), "nosuchopt"),
    ("an unknown permission", ("devices", 0, "permissions", 0), "execute"),
    ("an unknown key", ("cgroups",), {}),
    ("init as a string", ("init_process",), "yes"),
    # duplicates (E179): the schema's uniqueItems
    ("a capability added twice", ("capabilities", "add"), ["NET_ADMIN", "NET_ADMIN"]),
    ("a capability dropped twice", ("capabilities", "drop"), ["ALL", "ALL"]),
]


@pytest.mark.parametrize(("what", "where", "value"), ODD, ids=[w for w, _, _ in ODD])
def test_the_json_schema_and_the_loader_both_refuse(what: str, where: tuple, value: object) -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    parent = document["clusters"]["prod"]["services"]["tools"]["containers"]["app"]["linux"]  # type: ignore[index]
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document)), what
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")


@pytest.mark.parametrize("value", ["yes", 1])
def test_privileged_of_the_wrong_type_is_refused_by_both(value: object) -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    document["clusters"]["prod"]["services"]["tools"]["containers"]["app"]["privileged"] = value  # type: ignore[index]
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document))
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")


@pytest.mark.cfnlint
def test_cfn_lint_clean_in_the_fleets_region(tmp_path: Path) -> None:
    text = tools_with(
        "      docker_labels:",
        f"      privileged: true\n      environment_files: [{ENV_FILE}]\n      docker_labels:",
        privileged=True,
    )
    template = build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(template))
    assert_cfn_lint_clean([out], "eu-west-1")


@pytest.mark.moto
def test_linux_parameters_deploy_to_ecs(moto, tmp_path: Path, capsys) -> None:
    deploy_on_moto(fleet_text(), moto.url, tmp_path, capsys)
    ecs = moto_client(moto.url, "ecs")
    (arn,) = ecs.list_task_definitions(familyPrefix="nixecs-prod-tools")["taskDefinitionArns"]
    (app,) = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
        "containerDefinitions"
    ]
    assert app["linuxParameters"]["capabilities"] == {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}
    assert app["linuxParameters"]["tmpfs"][0]["containerPath"] == "/tmp"
    assert app["dockerLabels"] == {"com.example.team": "payments"}


# --- environment_files ------------------------------------------------------------------------

ENV_FILE = "arn:aws:s3:::acme-config/prod/app.env"


def with_files(files: str) -> str:
    return tools_with(
        "      docker_labels:", f"      environment_files: {files}\n      docker_labels:"
    )


def test_environment_files_render_and_only_they_are_readable() -> None:
    text = with_files(f"[{ENV_FILE}, arn:aws:s3:::acme-shared/common.env]")
    app = container(text)
    assert app["EnvironmentFiles"] == [
        {"Type": "s3", "Value": ENV_FILE},
        {"Type": "s3", "Value": "arn:aws:s3:::acme-shared/common.env"},
    ]
    template = build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    (role,) = [
        r
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and name.endswith("ExecutionRole")
    ]
    (policy,) = [
        p
        for p in role["Properties"]["Policies"]
        if p["PolicyName"] == "nixecs-task-environment-files"
    ]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ReadEnvironmentFiles",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [
                "arn:aws:s3:::acme-config/prod/app.env",
                "arn:aws:s3:::acme-shared/common.env",
            ],
        },
        {
            "Sid": "LocateTheirBuckets",
            "Effect": "Allow",
            "Action": "s3:GetBucketLocation",
            "Resource": ["arn:aws:s3:::acme-config", "arn:aws:s3:::acme-shared"],
        },
    ]


@pytest.mark.parametrize(
    ("files", "code", "where"),
    [
        ("[arn:aws:s3:::acme-config/prod/app.txt]", "E181", "arn:aws:s3"),
        ("[s3://acme-config/prod/app.env]", "E181", "s3://"),
        (f"[{ENV_FILE}, {ENV_FILE}]", "E181", ENV_FILE + "]"),
        ("[" + ", ".join(f"arn:aws:s3:::b12/{i}.env" for i in range(11)) + "]", "E181", "[arn"),
        (ENV_FILE, "E103", ENV_FILE),
        ("[3]", "E103", "3]"),
    ],
)
def test_environment_file_checks_are_located(files: str, code: str, where: str) -> None:
    found = located(with_files(files))
    assert [f[0] for f in found] == [code], found
    assert found[0][1].startswith(where), found
    assert code in CODES and code in FIXES


@pytest.mark.parametrize(
    "value",
    [
        "s3://bucket/a.env",
        3,
        "arn:aws:s3:::b/a.env",  # a valid ARN but one bucket name too short for S3
        "arn:aws:s3:::acme-config/prod/app.txt",  # not a .env file (API_EnvironmentFile)
        "arn:aws:s3:::acme-config/prod/app.env.bak",
        [ENV_FILE, ENV_FILE],  # listed twice (uniqueItems)
        [f"arn:aws:s3:::acme-config/{i}.env" for i in range(11)],  # ECS takes 10 (maxItems)
    ],
)
def test_the_json_schema_and_the_loader_both_refuse_odd_files(value: object) -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    app = document["clusters"]["prod"]["services"]["tools"]["containers"]["app"]  # type: ignore[index]
    app["environment_files"] = value if value != 3 else [3]
    if isinstance(value, str) and value.startswith("arn:"):
        app["environment_files"] = [value]
    if isinstance(value, list):
        app["environment_files"] = value
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document))
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")
