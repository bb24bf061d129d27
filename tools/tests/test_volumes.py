"""Data volumes, mounts and volumes_from (issue 20, item 1; nixecs.fleet.volumes): the model,
the task definition rendered from it, the checks each at its place (E170-E174, W170), the JSON
Schema agreeing with the loader on odd values, cfn-lint in the fleet's region, and the moto
server holding the volumes once deployed."""

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

FILES = textwrap.dedent(
    """\
    files:
      group: web
      memory: 1024
      volumes:
        data: {host_path: /var/lib/files}
        cache: {docker: {}}
        state:
          docker: {scope: shared, autoprovision: true, driver: local,
                   driver_opts: {type: tmpfs, device: tmpfs, o: size=64m}, labels: {team: files}}
        media: {efs: {file_system_id: fs-0a1b2c3d4e, root_directory: /media}}
      containers:
        app:
          image: nginx:1.27
          memory: 512
          read_only_root_filesystem: true
          mounts:
            - {volume: data, path: /srv}
            - {volume: cache, path: /var/cache/nginx}
            - {volume: media, path: /media, read_only: true}
        backup:
          image: busybox:1.36
          essential: false
          memory: 64
          read_only_root_filesystem: true
          volumes_from: [app]
          mounts: [{volume: state, path: /state}]
        audit:
          image: busybox:1.36
          essential: false
          memory: 64
          volumes_from: [{container: app, read_only: true}]
    """
)


def fleet_text(services: str = FILES) -> str:
    return HEAD + textwrap.indent(services, "      ")


def files_with(old: str, new: str) -> str:
    assert old in FILES, old
    return fleet_text(FILES.replace(old, new, 1))


def located(text: str) -> list[tuple[str, str, str]]:
    """(code, the file's text from the error's position to the end of that line, message)."""
    with pytest.raises(InvalidInput) as caught:  # the loader's findings, or the checks stage's
        check_text(text, "fleet.yml", nix=False)
    lines = text.split("\n")
    found = []
    for d in caught.value.report.sorted():
        assert d.location.path == "fleet.yml" and d.location.line >= 1
        found.append((d.code, lines[d.location.line - 1][d.location.column - 1 :], d.message))
    return found


def task_definition(text: str) -> dict:
    fleet = parse(text, "fleet.yml")
    template = build_stack(fleet, "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    (task,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    return task["Properties"]


# --- the model and the task definition ---------------------------------------------------------


def test_volumes_render_as_written() -> None:
    task = task_definition(fleet_text())
    assert task["Volumes"] == [
        {"Name": "data", "Host": {"SourcePath": "/var/lib/files"}},
        {"Name": "cache", "DockerVolumeConfiguration": {"Scope": "task"}},
        {
            "Name": "state",
            "DockerVolumeConfiguration": {
                "Scope": "shared",
                "Autoprovision": True,
                "Driver": "local",
                "DriverOpts": {"device": "tmpfs", "o": "size=64m", "type": "tmpfs"},
                "Labels": {"team": "files"},
            },
        },
        # Plain NFS: neither TransitEncryption nor AuthorizationConfig (the plugin's options).
        {
            "Name": "media",
            "EFSVolumeConfiguration": {"FilesystemId": "fs-0a1b2c3d4e", "RootDirectory": "/media"},
        },
    ]
    app, backup, audit = task["ContainerDefinitions"]
    assert app["MountPoints"] == [
        {"SourceVolume": "data", "ContainerPath": "/srv", "ReadOnly": False},
        {"SourceVolume": "cache", "ContainerPath": "/var/cache/nginx", "ReadOnly": False},
        {"SourceVolume": "media", "ContainerPath": "/media", "ReadOnly": True},
    ]
    assert "VolumesFrom" not in app
    assert backup["VolumesFrom"] == [{"SourceContainer": "app", "ReadOnly": False}]
    assert audit["VolumesFrom"] == [{"SourceContainer": "app", "ReadOnly": True}]
    assert "MountPoints" not in audit


def test_a_service_without_volumes_renders_none() -> None:
    text = fleet_text("plain:\n  group: web\n  image: nginx:1.27\n  memory: 64\n")
    task = task_definition(text)
    assert "Volumes" not in task
    assert "MountPoints" not in task["ContainerDefinitions"][0]


# --- the checks, each at its place ------------------------------------------------------------

CASES = [
    # (what to replace in FILES, with what, code, the located line starts with, in the message)
    (
        "{volume: data, path: /srv}",
        "{volume: date, path: /srv}",
        "E170",
        "date",
        "no volume 'date'",
    ),
    ("volumes_from: [app]", "volumes_from: [web]", "E170", "web]", "no container 'web'"),
    ("volumes_from: [app]", "volumes_from: [backup]", "E170", "backup]", "from itself"),
    (
        "{volume: cache, path: /var/cache/nginx}",
        "{volume: cache, path: /srv/}",
        "E171",
        "/srv/}",
        "two mounts on /srv",
    ),
    # Docker cleans a destination before it compares (moby's mount parser): these are /srv
    (
        "{volume: cache, path: /var/cache/nginx}",
        "{volume: cache, path: /var/../srv}",
        "E171",
        "/var/../srv}",
        "two mounts on /srv",
    ),
    (
        "{volume: cache, path: /var/cache/nginx}",
        "{volume: cache, path: //srv/.}",
        "E171",
        "//srv/.}",
        "two mounts on /srv",
    ),
    # "destination can't be '/'" (moby TestCreateTmpfsMountsTarget: /, // alike)
    ("{volume: data, path: /srv}", "{volume: data, path: /}", "E171", "/}", "container's root"),
    ("{volume: data, path: /srv}", "{volume: data, path: //}", "E171", "//}", "container's root"),
    ("{volume: data, path: /srv}", "{volume: data, path: /srv/..}", "E171", "/srv/..}", "root"),
    ("volumes_from: [app]", "volumes_from: [app, app]", "E171", "app]", "twice"),
    ("{host_path: /var/lib/files}", "{host_path: var/lib/files}", "E172", "var/lib", "absolute"),
    ("path: /srv}", "path: srv}", "E172", "srv}", "absolute"),
    ("root_directory: /media", "root_directory: media", "E172", "media}", "absolute"),
    (
        "root_directory: /media}",
        "root_directory: /media, transit_encryption: true}",
        "E173",
        "true}",
        "ECS volume plugin",
    ),
    ("root_directory: /media}", "iam: true}", "E173", "true}", "ECS volume plugin"),
    (
        "root_directory: /media}",
        "access_point: fsap-0a1b2c3d4e}",
        "E173",
        "fsap-",
        "requires transit encryption",
    ),
    ("docker: {scope: shared,", "docker: {scope: task,", "E174", "true,", "scope: shared"),
    (
        "cache: {docker: {}}",
        "cache: {docker: {}, host_path: /tmp}",
        "E102",
        "{}, host_path",
        "has host_path and docker",
    ),
    ("cache: {docker: {}}", "cache: {}", "E104", "{}", "exactly one of"),
    ("cache: {docker: {}}", "ca che: {docker: {}}", "E105", "ca che", "not valid"),
    ("cache: {docker: {}}", "cache: {docker: {scope: host}}", "E107", "host", "not one of"),
    ("cache: {docker: {}}", "cache: {docker: {size: 1}}", "E101", "size", "unknown key"),
    ("cache: {docker: {}}", "cache: {docker: []}", "E103", "[]", "expected a mapping"),
    ("fs-0a1b2c3d4e", "fs-xyz", "E107", "fs-xyz", "8-40 hex"),
    (
        "{volume: media, path: /media, read_only: true}",
        "{volume: media, path: /media, read_only: yes}",
        "E103",
        "yes",
        "true or false",
    ),
    ("- {volume: data, path: /srv}", "- {volume: data}", "E104", "{volume: data}", "'path'"),
    ("volumes_from: [app]", "volumes_from: app", "E103", "app", "list of container names"),
    ("volumes_from: [app]", "volumes_from: [3]", "E103", "3]", "a string"),
    (
        "    data: {host_path: /var/lib/files}\n",
        "    data: {host_path: 7}\n",
        "E103",
        "7}",
        "a string",
    ),
    ("    media: {efs:", "    media: []\n    other: {efs:", "E103", "[]", "expected a mapping"),
]


@pytest.mark.parametrize(
    ("old", "new", "code", "where", "says"), CASES, ids=[f"{c[2]}-{c[1]}" for c in CASES]
)
def test_each_check_is_located(old: str, new: str, code: str, where: str, says: str) -> None:
    found = located(files_with(old, new))
    # One error, or (a volume renamed away) also the mount that now names nothing.
    assert found[0][0] == code and all(f[0] == "E170" for f in found[1:]), found
    assert found[0][1].startswith(where), found
    assert says in found[0][2], found
    assert code in CODES and code in FIXES


def test_volumes_must_be_a_mapping() -> None:
    text = fleet_text("plain:\n  group: web\n  image: nginx:1.27\n  memory: 64\n  volumes: []\n")
    (found,) = located(text)
    assert found[:2] == ("E103", "[]") and "mapping of volume names" in found[2]


def test_a_cycle_through_volumes_from_is_e145() -> None:
    """volumes_from makes the agent start a container after its source is created
    (aws/amazon-ecs-agent agent/api/task/task.go initializeContainerOrdering): with depends_on
    the other way round, neither ever starts."""
    text = files_with(
        "    mounts:\n        - {volume: data",
        "    depends_on: {backup: START}\n      mounts:\n        - {volume: data",
    )
    (found,) = [f for f in located(text) if f[0] == "E145"]
    assert "depends_on and volumes_from form a cycle among: app, backup" in found[2]


def test_the_efs_refusal_says_why_and_what_works() -> None:
    (found,) = located(files_with("root_directory: /media}", "iam: true}"))
    message = found[2]
    assert "ECS_VOLUME_PLUGIN_CAPABILITIES" in message and "Plain EFS" in message


# --- W170 ------------------------------------------------------------------------------------


def _w170(text: str) -> list[str]:
    return [d.message for d in lint_fleet(parse(text, "fleet.yml")) if d.code == "W170"]


def test_a_read_only_container_with_a_writable_mount_is_not_warned() -> None:
    # app mounts /srv writable; backup takes app's volumes writable (and has /state).
    assert _w170(fleet_text()) == []


def test_a_read_only_container_with_nothing_writable_is_warned() -> None:
    text = files_with("{volume: data, path: /srv}", "{volume: data, path: /srv, read_only: true}")
    text = text.replace(
        "{volume: cache, path: /var/cache/nginx}",
        "{volume: cache, path: /var/cache/nginx, read_only: true}",
    )
    # backup: app's volumes are all read-only now, but its own /state is writable.
    (message,) = _w170(text)
    assert "container 'app'" in message and "/tmp" in message
    both = text.replace(
        "mounts: [{volume: state, path: /state}]",
        "mounts: [{volume: state, path: /state, read_only: true}]",
    )
    assert len(_w170(both)) == 2
    assert "W170" in CODES and "W170" in FIXES


def test_writable_volumes_from_counts_only_when_the_source_has_a_writable_mount() -> None:
    text = files_with(
        "    volumes_from: [app]\n      mounts: [{volume: state, path: /state}]\n",
        "    volumes_from: [audit]\n",
    )
    # backup now takes audit's volumes, and audit mounts nothing of its own.
    (message,) = _w170(text)
    assert "container 'backup'" in message


# --- W173, W174: shared Docker volumes, one per instance by name --------------------------

STATE = "docker: {scope: shared, driver: local, driver_opts: {type: tmpfs, device: tmpfs, o: size=64m}, labels: {team: files}}"


def _shared(text: str) -> list[tuple[str, str, str]]:
    """(code, the line's text from the warning's position, message) of W173/W174."""
    lines = text.split("\n")
    return [
        (d.code, lines[d.location.line - 1][d.location.column - 1 :].strip(), d.message)
        for d in lint_fleet(parse(text, "fleet.yml"))
        if d.code in ("W173", "W174")
    ]


def with_other(volume: str, group: str = "web") -> str:
    """FILES and a second service `other` mounting its own declaration of `state`."""
    other = textwrap.dedent(
        f"""\
        other:
          group: {group}
          memory: 64
          volumes:
            state: {volume}
          containers:
            other: {{image: busybox:1.36, memory: 64, mounts: [{{volume: state, path: /state}}]}}
        """
    )
    text = fleet_text(FILES + other)
    if group != "web":
        text = text.replace(
            "    groups:\n",
            "    groups:\n      batch:\n        ami: ami-0123456789abcdef0\n"
            "        instance_types: [m6i.large]\n        capacity: {min: 1, max: 3}\n",
            1,
        )
    return text


def test_a_shared_volume_nothing_autoprovisions_is_warned_at_its_docker_key() -> None:
    """The agent fails the task where a shared, non-autoprovisioned volume does not exist
    ("volume detection failed, volume '%s' does not exist and autoprovision is set to false",
    agent/api/task/task.go addSharedVolumes), and nixecs hosts create no Docker volumes."""
    assert _shared(fleet_text()) == []
    text = files_with("scope: shared, autoprovision: true,", "scope: shared,")
    ((code, at, message),) = _shared(text)
    assert code == "W173" and at.startswith("{scope: shared, driver: local")
    assert "'state'" in message and "not autoprovisioned" in message
    assert "W173" in CODES and "W173" in FIXES


def test_a_shared_volume_another_task_on_the_group_autoprovisions_is_not_warned() -> None:
    # declared alike (the driver written out or left to Docker's local), without autoprovision
    assert _shared(with_other("{" + STATE + "}")) == []
    assert _shared(with_other("{" + STATE.replace("driver: local, ", "") + "}")) == []


def test_one_shared_volume_declared_differently_on_a_group_is_warned_on_both() -> None:
    """One Docker volume of a name per instance, made by the first task to start there; the
    agent matches an existing one by name only (ECS_SHARED_VOLUME_MATCH_FULL_CONFIG defaults
    to false, agent/config/config_unix.go)."""
    for changed in (
        STATE.replace("team: files", "team: other"),
        STATE.replace("o: size=64m", "o: size=1g"),
        STATE.replace("driver: local", "driver: rexray/ebs"),
    ):
        found = _shared(with_other("{" + changed + "}"))
        assert sorted(
            (code, message.split(" by ")[1].split(" ")[0]) for code, _, message in found
        ) == [
            ("W174", "files"),
            ("W174", "other"),
        ], found
    assert "W174" in CODES and "W174" in FIXES


def test_shared_volumes_of_groups_apart_never_meet() -> None:
    """Tasks of different groups never share an instance: no W174; but nothing on `batch`
    autoprovisions other's volume (W173)."""
    found = _shared(with_other("{docker: {scope: shared, labels: {x: y}}}", group="batch"))
    assert [(code, at) for code, at, _ in found] == [("W173", "{scope: shared, labels: {x: y}}}")]


def test_a_cluster_task_counts_as_a_task_of_its_group() -> None:
    text = fleet_text() + textwrap.indent(
        textwrap.dedent(
            """\
            tasks:
              backfill:
                group: web
                volumes:
                  state: {docker: {scope: shared}}
                containers:
                  backfill: {image: busybox:1.36, memory: 64, mounts: [{volume: state, path: /s}]}
            """
        ),
        "    ",
    )
    found = sorted(
        (code, message.split(" by ")[1].split(" ")[0]) for code, _, message in _shared(text)
    )
    # files autoprovisions `state` on web, so backfill's is made; but not alike
    assert found == [("W174", "backfill"), ("W174", "files")], found


# --- H109: a shared volume edited between deploys -----------------------------------------


def _stack(text: str) -> dict:
    return build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})


def _h109(old: str, new: str) -> list[tuple[str, str]]:
    from nixecs.cloudformation import transition as t
    from nixecs.cloudformation.registry import Registry

    return [
        (h.subject, h.message)
        for h in t.plan(_stack(old), _stack(new), Registry()).refused()
        if h.code == "H109"
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("labels: {team: files}", "labels: {team: other}"),
        ("o: size=64m", "o: size=1g"),
        ("driver: local", "driver: rexray/ebs"),
        ("labels: {team: files}", "labels: {}"),
    ],
)
def test_a_shared_volume_edited_after_a_deploy_is_refused_until_accepted(
    old: str, new: str
) -> None:
    """The agent uses an instance's existing shared volume as it is (by name): the edit would
    reach new instances only, silently. moto cannot tell (it runs no agent); the rule is the
    agent's (addSharedVolumes, ECS_SHARED_VOLUME_MATCH_FULL_CONFIG false by default)."""
    from nixecs.cloudformation import transition as t
    from nixecs.cloudformation.registry import Registry

    ((subject, message),) = _h109(fleet_text(), files_with(old, new))
    assert subject == "FilesTaskDefinition" and "'state'" in message and "roll" in message
    plan = t.plan(_stack(fleet_text()), _stack(files_with(old, new)), Registry())
    assert [h for h in plan.refused(["H109"]) if h.code == "H109"] == []
    assert "H109" in CODES and "H109" in FIXES


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("driver: local,", ""),  # Docker's default driver written out or not
        ("cache: {docker: {}}", "cache: {docker: {labels: {a: b}}}"),  # task scope: per task
        ("media: {efs:", "state2: {docker: {scope: shared, labels: {x: y}}}\n    media: {efs:"),
        ("{volume: data, path: /srv}", "{volume: data, path: /data}"),
    ],
)
def test_edits_that_leave_shared_volumes_alike_are_no_hazard(old: str, new: str) -> None:
    assert _h109(fleet_text(), files_with(old, new)) == []
    assert _h109(fleet_text(), fleet_text()) == []


def test_a_shared_volume_moving_to_another_service_is_compared_by_name() -> None:
    """One Docker volume per name on an instance, whichever task definition declares it."""
    # files renames its volume `gone`; other now declares `state`, as files did
    moved = (
        with_other("{" + STATE + "}")
        .replace("state:\n", "gone:\n", 1)
        .replace("{volume: state, path: /state}", "{volume: gone, path: /state}", 1)
    )
    check_text(moved, "fleet.yml", nix=False)  # a valid fleet
    assert _h109(fleet_text(), moved) == []
    changed = with_other("{" + STATE.replace("team: files", "team: x") + "}")
    assert [subject for subject, _ in _h109(fleet_text(), changed)] == ["OtherTaskDefinition"]


# --- the JSON Schema agrees with the loader on odd values -----------------------------------

ODD = [
    ("a wrong type", ("volumes", "data", "host_path"), 7),
    ("a relative host path", ("volumes", "data", "host_path"), "var/lib"),
    ("an unknown volume key", ("volumes", "data", "nfs"), {}),
    ("a bad volume name", ("volumes", "a b"), {"host_path": "/x"}),
    ("an unknown scope", ("volumes", "cache", "docker", "scope"), "host"),
    ("a bad file system id", ("volumes", "media", "efs", "file_system_id"), "fs-1"),
    ("a missing file system id", ("volumes", "media", "efs"), {"root_directory": "/"}),
    ("a relative mount path", ("containers", "app", "mounts", 0, "path"), "srv"),
    ("a read_only string", ("containers", "app", "mounts", 0, "read_only"), "yes"),
    ("an unknown mount key", ("containers", "app", "mounts", 0, "size"), 1),
    ("a mount without a path", ("containers", "app", "mounts", 0), {"volume": "data"}),
    ("volumes_from not a list", ("containers", "backup", "volumes_from"), "app"),
    ("a volumes_from number", ("containers", "backup", "volumes_from", 0), 3),
    ("a bad driver option", ("volumes", "state", "docker", "driver_opts", "o"), 1),
]


@pytest.mark.parametrize(("what", "where", "value"), ODD, ids=[w for w, _, _ in ODD])
def test_the_json_schema_and_the_loader_both_refuse(what: str, where: tuple, value: object) -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    parent = document["clusters"]["prod"]["services"]["files"]  # type: ignore[index]
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(document)), f"{what}: the JSON Schema accepts it"
    with pytest.raises(InvalidInput) as caught:
        parse(json.dumps(document), "fleet.json")
    assert all(d.location.line >= 1 for d in caught.value.report.sorted()), what


def test_the_json_schema_accepts_the_volumes_fleet() -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document)) == []


def test_duplicates_the_json_schema_cannot_express_are_the_loaders() -> None:
    """Two mounts on one path and a container named twice in volumes_from are about two list
    items; JSON Schema (draft-07 keywords) has no way to say it, so the loader refuses them
    and the schema only shapes the items."""
    text = files_with("volumes_from: [app]", "volumes_from: [app, app]")
    document = load(text.encode(), "fleet.yml").value
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document)) == []
    assert [f[0] for f in located(text)] == ["E171"]


# --- cfn-lint and the moto server --------------------------------------------------------------


@pytest.mark.cfnlint
@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_cfn_lint_clean_in_the_fleets_region(tmp_path: Path, region: str) -> None:
    fleet = parse(fleet_text().replace("region: eu-west-1", f"region: {region}"), "fleet.yml")
    template = build_stack(fleet, "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(template))
    assert_cfn_lint_clean([out], region)


@pytest.mark.moto
def test_volumes_deploy_to_ecs(moto, tmp_path: Path, capsys) -> None:
    deploy_on_moto(fleet_text(), moto.url, tmp_path, capsys)
    ecs = moto_client(moto.url, "ecs")
    (arn,) = ecs.list_task_definitions(familyPrefix="nixecs-prod-files")["taskDefinitionArns"]
    task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    volumes = {v["name"]: v for v in task["volumes"]}
    assert volumes["data"]["host"] == {"sourcePath": "/var/lib/files"}
    assert volumes["state"]["dockerVolumeConfiguration"]["scope"] == "shared"
    # EFS: moto (5.2.6 moto/ecs/models.py TaskDefinition.create_from_cloudformation_json)
    # lower-cases only the first letter of each CloudFormation key, so EFSVolumeConfiguration
    # arrives as "eFSVolumeConfiguration" (the API's is efsVolumeConfiguration/fileSystemId);
    # that the volume reached ECS is what it can show. Its shape is test_volumes_render_as_written's.
    assert set(volumes) == {"data", "cache", "state", "media"}
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    assert containers["app"]["mountPoints"][0] == {
        "sourceVolume": "data",
        "containerPath": "/srv",
        "readOnly": False,
    }
    assert containers["audit"]["volumesFrom"] == [{"sourceContainer": "app", "readOnly": True}]
