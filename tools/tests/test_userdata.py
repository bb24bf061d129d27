"""Userdata in both formats: settings read back by the host's own schema code; nix parsed
and evaluated by real Nix back to the fleet's values; the 16 KB limit, gzip and refusal."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES, incompressible_text
from nixecs import formats, settings
from nixecs.fleet import Fleet, Group, load_fleet, parse
from nixecs.nixparse import parse_texts
from nixecs.userdata import LIMIT, UserdataTooLarge, render_nix, render_userdata

TRICKY_FLEET = """\
version: 1
region: eu-west-1
flake: "github:acme/infra?ref=${main}"
clusters:
  c-1:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      g_1:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {min: 0, max: 1}
        userdata: nix
        ecs:
          attributes: {"a.b": "x y", "with": "a/b@c:d", "in": "\\\\ back"}
          tags: {"日本 key": "é ünï 値 ５", "a+b=c": "x@y:z/w", "empty": ""}
          # ECS refuses these characters in attributes and tags; `extra` carries them instead.
          extra: {ECS_BACKEND_HOST: "${builtins.abort 1}", ECS_CGROUP_PATH: "quote\\" '' $${x} dollar$ é😀 tab"}
          reserved_memory_mib: 0
        secrets:
          db.password: {parameter: /prod/db/password, owner: "1000", group: users, mode: "600"}
        drain: {timeout: 1h}
"""


def all_groups(fleet: Fleet) -> list[Group]:
    return [g for c in fleet.clusters.values() for g in c.groups.values()]


def example_fleets() -> list[Fleet]:
    return [
        load_fleet(EXAMPLES / "fleet.yml"),
        load_fleet(EXAMPLES / "blog.yml"),
        parse(TRICKY_FLEET, "tricky.yml"),
    ]


def expected_nix_values(fleet: Fleet, group: Group) -> dict[str, object]:
    ecs = group.ecs
    return {
        "ecs": {
            "cluster": group.cluster,
            "attributes": settings.instance_attributes(group.name, ecs),  # with nixecs.group
            "tags": ecs.tags,
            "spotDraining": ecs.spot_draining,
            "reservedMemoryMiB": ecs.reserved_memory_mib,
            "logLevel": ecs.log_level,
            "imagePullBehavior": ecs.image_pull_behavior,
            "taskCleanupWait": ecs.task_cleanup_wait,
            "containerStopTimeout": ecs.container_stop_timeout,
            "privileged": ecs.privileged,
            "extraEnvironment": ecs.extra,
        },
        "secrets": {name: spec.to_json() for name, spec in group.secrets.items()},
        "drain": {
            "enable": group.drain is not None,
            "timeout": group.drain.timeout if group.drain else None,
        },
    }


def test_settings_userdata_is_read_back_by_the_host_schema() -> None:
    for fleet in example_fleets():
        for group in all_groups(fleet):
            data = render_userdata(fleet, group, "settings")
            fmt, text = formats.decode(data)
            assert fmt == "settings"
            assert text.splitlines()[0] == "#nixecs-settings v1"
            assert settings.loads(text) == fleet.host_settings(group)


def test_settings_become_the_agent_environment() -> None:
    fleet = load_fleet(EXAMPLES / "fleet.yml")
    env = settings.agent_environment(
        settings.loads(render_userdata(fleet, fleet.group("prod/web"), "settings").decode())
    )
    assert env["ECS_CLUSTER"] == "prod"
    # the group's own attributes, and the one every host registers (fleet/daemon.py)
    assert json.loads(env["ECS_INSTANCE_ATTRIBUTES"]) == {"nixecs.group": "web", "tier": "web"}
    assert env["ECS_RESERVED_MEMORY"] == "256" and env["ECS_DISABLE_PRIVILEGED"] == "true"
    assert (
        env["ECS_IMAGE_PULL_BEHAVIOR"] == "prefer-cached"
        and env["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] == "1h"
    )


@pytest.mark.nix
def test_every_nix_userdata_parses_and_evaluates_back_to_the_fleet(
    nix_instantiate: str, tmp_path: Path
) -> None:
    cases = [(fleet, group) for fleet in example_fleets() for group in all_groups(fleet)]
    texts = {
        f"{fleet.document.path}:{group.key}": render_nix(fleet, group) for fleet, group in cases
    }
    assert parse_texts(texts, nix_instantiate) == {}  # one nix-instantiate call for all
    # Evaluate every module's values (not its imports, which need the flake) in one call.
    files = []
    for index, text in enumerate(texts.values()):
        path = tmp_path / f"u{index}.nix"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    expression = "[ " + " ".join(f"(import {p} {{ }}).nixecs" for p in files) + " ]"
    result = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "-E", expression],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        expected_nix_values(fleet, group) for fleet, group in cases
    ]


def test_nix_userdata_header_and_imports() -> None:
    fleet = load_fleet(EXAMPLES / "fleet.yml")
    text = render_nix(fleet, fleet.group("prod/workers"))
    assert formats.parse_nix_header(text) == {
        "cluster": "prod",
        "group": "workers",
        "flake": "github:acme/infra",
    }
    assert 'boot.kernel.sysctl."vm.swappiness" = 10;' in text  # the group's nixos text, verbatim


@pytest.mark.nix
@pytest.mark.parametrize("recorded", [True, False])
def test_nix_userdata_imports_the_recorded_host(
    nix_instantiate: str, tmp_path: Path, recorded: bool
) -> None:
    """The module imports `<nixecs-host>`, the host the image recorded (modules/host.nix puts it
    in NIX_PATH); on an image from before hosts were recorded, nixecs' own ECS node."""
    fleet = load_fleet(EXAMPLES / "fleet.yml")
    module = tmp_path / "configuration.nix"
    module.write_text(render_nix(fleet, fleet.group("prod/workers")), encoding="utf-8")
    host = tmp_path / "nixecs-host.nix"
    host.write_text("{ ... }: { }\n", encoding="utf-8")
    nixecs = tmp_path / "nixecs"
    (nixecs / "hosts/ecs-node").mkdir(parents=True)
    search = ["-I", f"nixecs={nixecs}"] + (["-I", f"nixecs-host={host}"] if recorded else [])
    result = subprocess.run(
        [
            nix_instantiate,
            "--eval",
            "--strict",
            "--json",
            *search,
            "-E",
            f"let i = (import {module} {{ }}).imports; in [ (toString (builtins.head i)) (builtins.length i) ]",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NIX_PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    first, count = json.loads(result.stdout)
    assert first == str(host if recorded else nixecs / "hosts/ecs-node")
    assert count == 2  # and the group's `nixos:` text


def test_gzip_above_16k_and_refusal_beyond() -> None:
    fleet = parse(TRICKY_FLEET, "tricky.yml")
    group = fleet.group("c-1/g_1")
    compressible = (
        "{ ... }: { environment.etc.big.text = ''\n" + "all work and no play\n" * 2000 + "''; }"
    )
    big = Group(**{**group.__dict__, "nixos": compressible})
    data = render_userdata(fleet, big)
    assert data[:2] == formats.GZIP_MAGIC and len(data) <= LIMIT
    assert gzip.decompress(data).decode() == render_nix(fleet, big)
    assert formats.decode(data) == ("nix", render_nix(fleet, big))
    assert render_userdata(fleet, big) == data  # deterministic gzip (mtime 0)
    noise = incompressible_text(40_000, seed=1)
    huge = Group(
        **{**group.__dict__, "nixos": '{ ... }: { environment.etc.n.text = "' + noise + '"; }'}
    )
    with pytest.raises(UserdataTooLarge, match="after gzip"):
        render_userdata(fleet, huge)


def test_small_userdata_is_plain_text() -> None:
    fleet = load_fleet(EXAMPLES / "fleet.yml")
    for group in all_groups(fleet):
        data = render_userdata(fleet, group)
        assert data[:2] != formats.GZIP_MAGIC and len(data) <= LIMIT
