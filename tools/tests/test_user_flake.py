"""A team's own repository, as `nix flake init -t <nixecs>#fleet` creates it (templates/fleet):
its flake, with this checkout as the `nixecs` input, builds its host with nixecs' `lib`
(evaluated under the real nixpkgs lib by nixeval: tests/nix/user-flake.nix); the image
records that host, and `nix` userdata rendered from the template's own fleet.yml, evaluated
as the instance evaluates it (`<nixecs-host>` in NIX_PATH), keeps the team's change and
records the very same host again. The template's fleet.yml validates and renders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Nixeval, nix_eval_readonly, require_tool
from nixecs.fleet import load_fleet
from nixecs.userdata import render_nix

pytestmark = pytest.mark.nix

TEMPLATE = REPO / "templates" / "fleet"
USER_FLAKE = Path(__file__).resolve().parent / "nix" / "user-flake.nix"
PKG_NAMES = '[ "coreutils" "gawk" "systemd" ]'


def nix_eval(*args: str) -> Any:
    # Only what the arguments say: no search path from the environment.
    return nix_eval_readonly(
        *args, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NIX_PATH": ""}
    )


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template instantiated in an empty directory (what `nix flake init -t` copies)."""
    directory = tmp_path_factory.mktemp("team") / "infra"
    shutil.copytree(TEMPLATE, directory)
    return directory


@pytest.fixture(scope="module")
def flake(user: Path, nixeval_harness: Nixeval) -> Any:
    return nix_eval(
        str(USER_FLAKE),
        "--arg",
        "root",
        str(REPO),
        "--arg",
        "user",
        str(user),
        "--arg",
        "nixeval",
        str(nixeval_harness.dir),
        "--arg",
        "libDir",
        str(nixeval_harness.lib),
        "--arg",
        "pkgNames",
        PKG_NAMES,
    )


def rebuild(harness: Nixeval, configuration: Path, host: Path, result: str) -> Any:
    """`result` (Nix, over `c`: the configuration) of what `nixos-rebuild` evaluates on an
    instance whose image recorded `host` as its <nixecs-host>."""
    return nix_eval(
        "-I",
        f"nixecs-host={host}",
        "-I",
        f"nixecs={REPO}",
        "-E",
        f"""let
          c = (import {harness.dir}/eval.nix {{
            lib = {harness.lib};
            pkgNames = {PKG_NAMES};
            modules = [ {configuration} ];
            raw = true;
          }}).config;
        in {result}""",
    )


def test_template_files() -> None:
    names = {p.relative_to(TEMPLATE).as_posix() for p in TEMPLATE.rglob("*") if p.is_file()}
    assert names == {"flake.nix", "hosts/web.nix", "fleet.yml", ".gitignore", "README.md"}
    readme = (TEMPLATE / "README.md").read_text()
    commands = [
        line.split("#")[0].strip()
        for line in readme.splitlines()
        if line.startswith(("nix ", "nixecs "))
    ]
    assert [c.split()[:2] for c in commands] == [
        ["nix", "build"],
        ["nixecs", "ami"],
        ["nixecs", "validate"],
        ["nixecs", "deploy"],
        ["nixecs", "roll"],
    ]
    assert "result" in (TEMPLATE / ".gitignore").read_text().split()


def test_the_template_host_evaluates_with_its_change(flake: Any, user: Path) -> None:
    assert flake["inputs"] == ["nixecs"]
    web = flake["hosts"]["web"]
    assert web["failedAssertions"] == [] and web["warnings"] == []
    assert web["sysctl"]["net.ipv4.tcp_keepalive_time"] == 300  # the team's change (hosts/web.nix)
    assert web["userdata"] is True and web["hostPlatform"] == "x86_64-linux"  # the ECS profile
    # Recorded for `nix` userdata: the team's file from its flake, nixecs' profile from nixecs.
    assert (web["name"], web["system"]) == ("web", "x86_64-linux")
    assert web["modules"] == ["hosts/web.nix"] and web["nixecsModules"] == ["hosts/ecs-node"]
    assert web["source"].startswith("/nix/store/") and web["source"].endswith("-infra")
    assert "nixecs-host=" in " ".join(web["nixPath"]) and web["etcHost"] is True
    # packages.<system>.<host>-ami: the host's own system only.
    assert set(flake["packages"]) == {"x86_64-linux", "aarch64-linux"}
    assert list(flake["packages"]["x86_64-linux"]) == ["web-ami"]
    # The data `nixecs validate` reads (nix eval --json FLAKE#nixecsHosts), under the real lib.
    assert flake["nixecsHosts"] == {
        "web": {"system": "x86_64-linux", "systems": ["x86_64-linux"], "ami": True}
    }
    # What a group's `exec: true`/`gpu: true` is checked against (FLAKE#nixecsHostFeatures).
    assert flake["nixecsHostFeatures"] == {
        "web": {"exec": False, "gpu": False, "nvidiaOpen": False}
    }
    assert flake["packages"]["x86_64-linux"]["web-ami"].endswith("-nixecs-web")
    assert flake["packages"]["aarch64-linux"] == {}


def test_our_own_hosts_are_built_by_the_same_functions(flake: Any) -> None:
    ours = flake["ours"]
    assert set(ours) == {"ecs-node", "ecs-node-aarch64-linux", "ci"}
    assert ours["ecs-node"]["nixecsModules"] == ["hosts/ecs-node"]
    # Graviton: the same host for aarch64-linux, recorded under the same host name, its AMI
    # under packages.aarch64-linux (the image variant boots UEFI there: ecs-host.nix).
    arm = ours["ecs-node-aarch64-linux"]
    assert (arm["name"], arm["system"], arm["hostPlatform"]) == (
        "ecs-node",
        "aarch64-linux",
        "aarch64-linux",
    )
    assert arm["failedAssertions"] == []
    assert flake["ourArmPackages"]["ecs-node-ami"].endswith("-nixecs-ecs-node")
    assert ours["ci"]["nixecsModules"] == ["hosts/ci"]
    assert all(
        h["modules"] == [] and h["source"] is None and h["warnings"] == [] for h in ours.values()
    )
    assert "ecs-node-ami" in flake["ourPackages"] and "ci-ami" not in flake["ourPackages"]


def test_nix_userdata_extends_the_recorded_host(
    flake: Any, user: Path, nixeval_harness: Nixeval, tmp_path: Path
) -> None:
    """What `nixos-rebuild` evaluates on a `web` instance: the rendered userdata, importing
    `<nixecs-host>` (the recorded file; its store paths mapped back to the checkouts they
    were copied from, as nothing is copied here). The team's change survives the switch, the
    group's `nixos:` text is added, and the new system records the same host (a fixed point)."""
    web = flake["hosts"]["web"]
    host = tmp_path / "nixecs-host.nix"
    host.write_text(
        web["text"].replace(web["nixecsSource"], str(REPO)).replace(web["source"], str(user)),
        encoding="utf-8",
    )
    fleet = load_fleet(user / "fleet.yml")
    configuration = tmp_path / "configuration.nix"
    configuration.write_text(render_nix(fleet, fleet.group("prod/web")), encoding="utf-8")
    rebuilt = rebuild(
        nixeval_harness,
        configuration,
        host,
        """{
          sysctl = c.boot.kernel.sysctl;
          cluster = c.nixecs.ecs.cluster;
          attributes = c.nixecs.ecs.attributes;
          inherit (c.nixecs.host) name text;
          failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
        }""",
    )
    assert rebuilt["failed"] == []
    assert rebuilt["sysctl"]["net.ipv4.tcp_keepalive_time"] == 300  # hosts/web.nix, still there
    assert rebuilt["sysctl"]["net.core.somaxconn"] == 4096  # the group's `nixos:` text
    assert (rebuilt["cluster"], rebuilt["attributes"]) == (
        "prod",
        {"tier": "web", "nixecs.group": "web"},
    )  # with the group attribute
    assert rebuilt["name"] == "web"
    assert rebuilt["text"] == web["text"]


def test_the_template_fleet_validates_and_renders(user: Path, tmp_path: Path) -> None:
    require_tool("nix-instantiate")  # it reads the flake's hosts (else W501 names Nix too)

    def nixecs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nixecs", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=user,
            # No `nix` with flakes (nixecs.flakes.nix_binary): the hosts are read by the real
            # nix-instantiate through flake_hosts.nix, the `nixos:` text only parsed.
            env={
                **os.environ,
                "PYTHONPATH": str(REPO / "tools" / "src"),
                "NIXECS_NIX": "/nonexistent",
            },
        )

    checked = nixecs("validate", "fleet.yml")
    assert checked.returncode == 0, checked.stderr
    assert "1 warnings" in checked.stdout
    assert checked.stderr.splitlines() == [
        "fleet.yml:6:1: warning[W501]: the `nixos:` texts were only parse-checked, not evaluated "
        "(Nix 2.4 or newer (flakes) is not installed)"
    ]
    wrong = (user / "fleet.yml").read_text().replace("host: web", "host: api")
    (tmp_path / "fleet.yml").write_text(wrong)
    (tmp_path / "flake.nix").symlink_to(user / "flake.nix")
    bad = subprocess.run(
        [sys.executable, "-m", "nixecs", "validate", str(tmp_path / "fleet.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "tools" / "src"), "NIXECS_NIX": "/nonexistent"},
    )
    assert bad.returncode == 2
    assert "error[E501]: host 'api' is not a host of the flake '.' (its hosts: web)" in bad.stderr
    out = tmp_path / "out"
    rendered = nixecs("render", "fleet.yml", "-o", str(out))
    assert rendered.returncode == 0, rendered.stderr
    userdata = (out / "prod" / "groups" / "web.userdata").read_text()
    assert "<nixecs-host>" in userdata and "net.core.somaxconn" in userdata


def test_the_vm_test_serves_what_the_renderer_writes(user: Path) -> None:
    """tests/userdata-host.nix serves tests/lib/template-web-userdata.nix (a VM test cannot
    run the renderer): the template fleet's prod/web group exactly as rendered now."""
    fleet = load_fleet(user / "fleet.yml")
    rendered = render_nix(fleet, fleet.group("prod/web"))
    served = (REPO / "tests" / "lib" / "template-web-userdata.nix").read_text(encoding="utf-8")
    assert served == rendered, (
        "render templates/fleet/fleet.yml's prod/web again into tests/lib/template-web-userdata.nix"
    )
    assert "<nixecs-host>" in served and "net.core.somaxconn" in served


def test_two_hosts_two_systems_and_an_unrecorded_module(
    tmp_path: Path, nixeval_harness: Nixeval
) -> None:
    """A second host for Graviton lands under aarch64-linux; a module that is not a file of
    the flake (inline) is built in, and the host's evaluation warns that `nix` userdata
    rebuilds without it."""
    user = tmp_path / "infra"
    shutil.copytree(TEMPLATE, user)
    flake = (user / "flake.nix").read_text()
    arm = """hosts = {
        arm = {
          modules = [
            nixecs.nixosModules.ecs-node
            ./hosts/web.nix
            { networking.hostName = "arm"; nixecs.ecs.exec.enable = true; nixecs.ecs.gpu.enable = true; }
          ];
          system = "aarch64-linux";
        };
"""
    assert "hosts = {\n" in flake
    (user / "flake.nix").write_text(flake.replace("hosts = {\n", arm, 1))
    out = nix_eval(
        *("--arg", "root", str(REPO), "--arg", "user", str(user)),
        *(
            "--arg",
            "nixeval",
            str(nixeval_harness.dir),
            "--arg",
            "libDir",
            str(nixeval_harness.lib),
        ),
        *("--arg", "pkgNames", PKG_NAMES, str(USER_FLAKE)),
    )
    assert {s: sorted(p) for s, p in out["packages"].items()} == {
        "x86_64-linux": ["web-ami"],
        "aarch64-linux": ["arm-ami"],
    }
    arm_host = out["hosts"]["arm"]
    assert arm_host["hostPlatform"] == "aarch64-linux" and arm_host["system"] == "aarch64-linux"
    assert 'nixpkgs.hostPlatform = "aarch64-linux";' in arm_host["text"]
    assert arm_host["modules"] == ["hosts/web.nix"]
    (warning,) = arm_host["warnings"]
    assert "(arm): 1 module(s)" in warning and "module #2 (set)" in warning
    assert out["hosts"]["web"]["warnings"] == []
    # The inline module's options count: the host provides ECS Exec and GPUs.
    assert out["nixecsHostFeatures"] == {
        "arm": {"exec": True, "gpu": True, "nvidiaOpen": True},
        "web": {"exec": False, "gpu": False, "nvidiaOpen": False},
    }


def test_host_features_of_a_host_without_ecs_host(tmp_path: Path, nixeval_harness: Nixeval) -> None:
    """A host that imports only nixosModules.userdata (nixecs.ecs not declared) provides
    neither feature, and the fleet's other hosts are still read: one such host must not make
    `nix eval FLAKE#nixecsHostFeatures` fail as a whole (validate's E506 would degrade to
    W501 for every group). `nvidiaOpen` follows hardware.nvidia.open of a GPU host."""
    user = tmp_path / "infra"
    shutil.copytree(TEMPLATE, user)
    flake = (user / "flake.nix").read_text()
    bare = """hosts = {
        bare = {
          modules = [ nixecs.nixosModules.userdata { networking.hostName = "bare"; } ];
          ami = false;
        };
        gpu = {
          modules = [
            nixecs.nixosModules.ecs-node
            ./hosts/web.nix
            { networking.hostName = "gpu"; nixecs.ecs.gpu.enable = true; }
          ];
        };
        volta = {
          modules = [
            nixecs.nixosModules.ecs-node
            ./hosts/web.nix
            {
              networking.hostName = "volta";
              nixecs.ecs.gpu.enable = true;
              hardware.nvidia.open = false;
            }
          ];
        };
"""
    assert "hosts = {\n" in flake
    (user / "flake.nix").write_text(flake.replace("hosts = {\n", bare, 1))
    features = nix_eval(
        *("--arg", "root", str(REPO), "--arg", "user", str(user)),
        *("--arg", "nixeval", str(nixeval_harness.dir)),
        *("--arg", "libDir", str(nixeval_harness.lib)),
        *("--arg", "pkgNames", PKG_NAMES, str(USER_FLAKE), "-A", "nixecsHostFeatures"),
    )
    assert features == {
        "bare": {"exec": False, "gpu": False, "nvidiaOpen": False},
        "gpu": {"exec": False, "gpu": True, "nvidiaOpen": True},
        # The proprietary modules (p3, g3): validate's W502 does not apply.
        "volta": {"exec": False, "gpu": True, "nvidiaOpen": False},
        "web": {"exec": False, "gpu": False, "nvidiaOpen": False},
    }
