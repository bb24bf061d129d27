"""A user flake with two hosts (issue 19.9): a fleet whose groups run `web` and `api` (each
`ami: {host: …}`) validates against the flake (both hosts found, by the real nix-instantiate),
and each group's `nix` userdata, evaluated on an instance of its own host's image (its
recorded `<nixecs-host>`), extends that host: web keeps web's change and not api's, and the
other way round. Evaluated under the real nixpkgs lib by nixeval (tests/nix/user-flake.nix)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Nixeval, require_tool
from nixecs.flake_checks import check_fleet, read_hosts
from nixecs.fleet import load_fleet
from nixecs.userdata import render_nix
from test_user_flake import PKG_NAMES, TEMPLATE, USER_FLAKE, nix_eval, rebuild

pytestmark = pytest.mark.nix

FLEET = """\
version: 1
region: us-east-1
flake: .
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web:
        ami: {host: web}
        instance_types: [m6i.large]
        capacity: {min: 1, max: 4}
        userdata: nix
      api:
        ami: {host: api}
        instance_types: [m6i.large]
        capacity: {min: 1, max: 4}
        userdata: nix
        nixos: |
          { ... }: { boot.kernel.sysctl."net.core.somaxconn" = 1024; }
"""


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("team") / "infra"
    shutil.copytree(TEMPLATE, directory)
    (directory / "hosts" / "api.nix").write_text(
        '{ ... }:\n{\n  boot.kernel.sysctl."vm.swappiness" = 7;\n}\n', encoding="utf-8"
    )
    flake = directory / "flake.nix"
    text = flake.read_text(encoding="utf-8")
    anchor = "        web = {"
    assert anchor in text
    flake.write_text(
        text.replace(
            anchor,
            "        api = {\n          modules = [ nixecs.nixosModules.ecs-node ./hosts/api.nix ];\n"
            '          system = "x86_64-linux";\n        };\n' + anchor,
        ),
        encoding="utf-8",
    )
    (directory / "fleet.yml").write_text(FLEET, encoding="utf-8")
    return directory


def test_the_fleet_finds_both_hosts_of_the_flake(
    two_hosts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("nix-instantiate")  # it reads the flake's hosts
    monkeypatch.setenv("NIXECS_NIX", "/nonexistent")  # no flakes: nix-instantiate reads them
    fleet = load_fleet(two_hosts / "fleet.yml")
    assert read_hosts(fleet) == ({"api": ("x86_64-linux",), "web": ("x86_64-linux",)}, "")
    assert [d.code for d in check_fleet(fleet)] == ["W501"]  # the `nixos:` text: parsed only
    assert (fleet.group("prod/web").host, fleet.group("prod/api").host) == ("web", "api")


def test_each_group_extends_its_own_host(
    two_hosts: Path, nixeval_harness: Nixeval, tmp_path: Path
) -> None:
    flake: Any = nix_eval(
        str(USER_FLAKE),
        "--arg", "root", str(REPO),
        "--arg", "user", str(two_hosts),
        "--arg", "nixeval", str(nixeval_harness.dir),
        "--arg", "libDir", str(nixeval_harness.lib),
        "--arg", "pkgNames", PKG_NAMES,
    )  # fmt: skip
    assert set(flake["hosts"]) == {"web", "api"}
    fleet = load_fleet(two_hosts / "fleet.yml")
    rebuilt = {}
    for name in ("web", "api"):
        host = flake["hosts"][name]
        assert host["modules"] == [f"hosts/{name}.nix"]
        # The instance of this group booted this host's image: its <nixecs-host> is this host.
        recorded = tmp_path / f"{name}-host.nix"
        recorded.write_text(
            host["text"]
            .replace(host["nixecsSource"], str(REPO))
            .replace(host["source"], str(two_hosts)),
            encoding="utf-8",
        )
        configuration = tmp_path / f"{name}-configuration.nix"
        configuration.write_text(render_nix(fleet, fleet.group(f"prod/{name}")), encoding="utf-8")
        rebuilt[name] = rebuild(
            nixeval_harness,
            configuration,
            recorded,
            """{
              sysctl = c.boot.kernel.sysctl;
              inherit (c.nixecs.host) name;
              failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
            }""",
        )
    web, api = rebuilt["web"], rebuilt["api"]
    assert web["failed"] == [] and api["failed"] == []
    assert (web["name"], api["name"]) == ("web", "api")
    assert web["sysctl"]["net.ipv4.tcp_keepalive_time"] == 300  # hosts/web.nix
    assert "vm.swappiness" not in web["sysctl"]
    assert api["sysctl"]["vm.swappiness"] == 7  # hosts/api.nix
    assert api["sysctl"]["net.core.somaxconn"] == 1024  # api's `nixos:` text
    assert "net.ipv4.tcp_keepalive_time" not in api["sysctl"]
