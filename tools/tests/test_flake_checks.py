"""`validate` against the fleet's own flake (issue 19.3, 19.7): a group's host must be one of
the flake's hosts (E501) built for its instance types' architecture (E502); a `nixos:` text
is evaluated with its host and an evaluation error is located in the text (E505); what could
not be checked is one W501.

`nix eval` paths run against a recording fake `nix` (this machine's Nix 2.8 cannot fetch a
flake's inputs, so the real `nix eval` of a NixOS system was NOT run); reading the hosts
without flakes runs the real nix-instantiate on flake_hosts.nix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, require_tool
from fake_nix import install
from nixecs.flake_checks import check_fleet, read_hosts
from nixecs.fleet import load_fleet

# The fleet template (templates/) is not in the package's source: its check phase deselects
# `repo` tests.
pytestmark = pytest.mark.repo

FEATURES = ["--extra-experimental-features", "nix-command flakes"]


def user_flake(
    root: Path, nixos: str | None = None, types: str = "m6i.large", host: str = "web"
) -> Path:
    """The template's flake (web, x86_64-linux) and a fleet of one group beside it."""
    directory = root / "infra"
    shutil.copytree(REPO / "templates" / "fleet", directory)
    snippet = ""
    if nixos is not None:
        snippet = "        userdata: nix\n        nixos: |\n" + "".join(
            f"          {line}\n" for line in nixos.splitlines()
        )
    (directory / "fleet.yml").write_text(
        "version: 1\nregion: us-east-1\nflake: .\nclusters:\n  prod:\n"
        "    subnets: [subnet-0a1b2c3d]\n    security_groups: [sg-0a1b2c3d]\n    groups:\n"
        f"      web:\n        host: {host}\n        ami: ami-0123456789abcdef0\n"
        f"        instance_types: [{types}]\n        capacity: {{min: 0, max: 2}}\n" + snippet
    )
    return directory / "fleet.yml"


def codes(found: list) -> list[tuple[str, int, int]]:  # type: ignore[type-arg]
    return [(d.code, d.location.line, d.location.column) for d in found]


def test_hosts_read_by_nix_eval_unknown_host_and_wrong_architecture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = {"web": {"system": "aarch64-linux", "ami": True}, "api": {"system": "x86_64-linux"}}
    fake = install(tmp_path, monkeypatch, {"eval --offline": json.dumps(hosts)})
    fleet = load_fleet(user_flake(tmp_path))
    found = check_fleet(fleet)
    # web is arm64; m6i.large is x86_64 (the offline instance tables, E129's rule)
    assert codes(found) == [("E502", 12, 25)]
    assert "host 'web' is built for aarch64-linux (arm64)" in found[0].message
    directory = str(tmp_path / "infra")
    assert [*FEATURES, "eval", "--offline", "--json", f"{directory}#nixecsHosts"] in fake.calls

    other = load_fleet(user_flake(tmp_path / "b", host="db", types="m7g.large"))
    [unknown] = check_fleet(other)
    assert (unknown.code, unknown.location.line) == ("E501", 10)
    assert "host 'db' is not a host of the flake '.' (its hosts: api, web)" in unknown.message


def test_a_host_built_for_both_architectures_fits_either_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lib.mkHosts' `systems = [ ... ]` (one configuration per system, one host name):
    nixecsHosts lists them all, and an arm64 group may use the host too."""
    both = {"system": "x86_64-linux", "systems": ["x86_64-linux", "aarch64-linux"]}
    install(tmp_path, monkeypatch, {"eval --offline": json.dumps({"web": both, "api": both})})
    arm = load_fleet(user_flake(tmp_path, types="m7g.large"))
    assert codes(check_fleet(arm)) == []
    only_x86 = {"system": "x86_64-linux", "systems": ["x86_64-linux"]}
    (tmp_path / "b").mkdir()
    install(tmp_path / "b", monkeypatch, {"eval --offline": json.dumps({"web": only_x86})})
    assert [
        d.code for d in check_fleet(load_fleet(user_flake(tmp_path / "b", types="m7g.large")))
    ] == ["E502"]


def test_without_flakes_the_hosts_come_from_real_nix_instantiate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("nix-instantiate")
    monkeypatch.setenv("NIXECS_NIX", str(tmp_path / "no-nix"))
    fleet = load_fleet(user_flake(tmp_path))
    assert read_hosts(fleet) == ({"web": ("x86_64-linux",)}, "")
    assert check_fleet(fleet) == []  # no `nixos:` text, the host exists, x86_64 matches
    # A flake whose hosts need another input than nixecs: not checkable, said once.
    flake = tmp_path / "infra" / "flake.nix"
    flake.write_text(
        flake.read_text()
        .replace("{ self, nixecs }:", "{ self, nixecs, nixpkgs }:")
        .replace('system = "x86_64-linux";', 'system = nixpkgs.lib.head [ "x86_64-linux" ];')
    )
    hosts, why = read_hosts(fleet)
    assert hosts is None and "input `nixpkgs` is not available" in why
    [warning] = check_fleet(fleet)
    assert warning.code == "W501" and "hosts were not checked" in warning.message


def test_a_nixos_text_is_evaluated_with_its_host_and_its_error_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = (
        "error: The option `services.nginx.enabel' does not exist.\n\n       at {snippet}:3:3:\n"
    )
    fake = install(
        tmp_path,
        monkeypatch,
        {
            "eval --offline": {
                "match": {
                    "#nixecsHosts": json.dumps({"web": {"system": "x86_64-linux"}}),
                    "--expr": {"err": error, "code": 1},
                }
            }
        },
    )
    text = "{ ... }:\n{\n  services.nginx.enabel = true;\n}"
    fleet = load_fleet(user_flake(tmp_path, nixos=text))
    [found] = check_fleet(fleet)
    # the text's line 3, column 3 → the fleet file's line 18 (the text starts on line 16)
    assert codes([found]) == [("E505", 18, 13)]
    assert (
        "does not evaluate with host 'web': The option `services.nginx.enabel' does not exist"
        in (found.message)
    )
    [call] = [c for c in fake.calls if "--expr" in c]
    assert call[:6] == [*FEATURES, "eval", "--offline", "--impure", "--raw"]
    expr = call[-1]
    assert f'builtins.getFlake "{tmp_path / "infra"}"' in expr
    assert '.nixosConfigurations."web".extendModules' in expr
    assert expr.endswith(".config.system.build.toplevel.drvPath")

    # It evaluates: nothing to say.
    fake.answer(
        {
            "--version": "nix (Nix) 2.18.1\n",
            "eval --offline": {
                "match": {
                    "#nixecsHosts": json.dumps({"web": {"system": "x86_64-linux"}}),
                    "--expr": "/nix/store/00000000000000000000000000000000-nixos-system-web.drv",
                }
            },
        }
    )
    assert check_fleet(fleet) == []


def test_inputs_missing_means_parse_checked_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(
        tmp_path,
        monkeypatch,
        {
            "eval --offline": {
                "err": "error: unable to download 'https://api.github.com/repos/acme/nixecs/commits/HEAD'\n",
                "code": 1,
            }
        },
    )
    fleet = load_fleet(user_flake(tmp_path, nixos="{ ... }: { }"))
    found = check_fleet(fleet)
    # hosts: nix eval failed, nix-instantiate's stand-in read them (when installed)
    assert [d.code for d in found] == ["W501"]
    assert (
        "only parse-checked, not evaluated (the host did not evaluate offline" in found[0].message
    )


def declaring(fleet_file: Path, keys: str) -> Path:
    """The fleet's group `web` with GPU instance types and `keys` (e.g. `gpu: true`)."""
    text = fleet_file.read_text().replace("[m6i.large]", "[g4dn.xlarge]")
    anchor = "        capacity: {min: 0, max: 2}\n"
    fleet_file.write_text(text.replace(anchor, anchor + "".join(f"        {keys}\n")))
    return fleet_file


def test_exec_and_gpu_are_checked_against_the_hosts_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E506: `exec: true`/`gpu: true` on a group whose host does not set the option that
    provides it (nixecsHostFeatures, lib.mkHosts); what the host provides passes."""
    hosts = json.dumps({"web": {"system": "x86_64-linux"}})
    features = json.dumps({"web": {"exec": False, "gpu": True}})
    fake = install(
        tmp_path,
        monkeypatch,
        {"eval --offline": {"match": {"#nixecsHostFeatures": features, "#nixecsHosts": hosts}}},
    )
    fleet = load_fleet(declaring(user_flake(tmp_path), "gpu: true\n        exec: true"))
    [found] = check_fleet(fleet)
    assert codes([found]) == [("E506", 15, 9)]  # the `exec` key
    assert found.message == (
        "group 'web' says `exec: true`, but its host 'web' does not set "
        "nixecs.ecs.exec.enable: its agent does not advertise execute-command"
    )
    directory = str(tmp_path / "infra")
    assert [*FEATURES, "eval", "--offline", "--json", f"{directory}#nixecsHostFeatures"] in (
        fake.calls
    )
    # A host that provides neither: both refused; a group declaring nothing: not asked.
    fake.answer(
        {
            "--version": "nix (Nix) 2.18.1\n",
            "eval --offline": {
                "match": {
                    "#nixecsHostFeatures": json.dumps({"web": {"exec": False, "gpu": False}}),
                    "#nixecsHosts": hosts,
                }
            },
        }
    )
    assert [d.code for d in check_fleet(fleet)] == ["E506", "E506"]
    plain = load_fleet(user_flake(tmp_path / "b"))
    before = len(fake.calls)
    assert check_fleet(plain) == []
    assert not any("nixecsHostFeatures" in " ".join(c) for c in fake.calls[before:])


def test_pre_turing_gpus_with_the_open_kernel_modules_are_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W502: p3 (Volta) and g3 (Maxwell) GPUs on a host with NVIDIA's open kernel modules
    (nvidiaOpen, ecs-gpu.nix's default), which support Turing and later only; not with the
    proprietary ones, and not for Turing types (g4dn)."""
    hosts = json.dumps({"web": {"system": "x86_64-linux"}})
    open_modules = json.dumps({"web": {"exec": False, "gpu": True, "nvidiaOpen": True}})
    fake = install(
        tmp_path,
        monkeypatch,
        {"eval --offline": {"match": {"#nixecsHostFeatures": open_modules, "#nixecsHosts": hosts}}},
    )
    fleet_file = declaring(
        user_flake(tmp_path, types="g4dn.xlarge, p3.2xlarge, g3s.xlarge"), "gpu: true"
    )
    found = check_fleet(load_fleet(fleet_file))
    line = next(
        n for n, text in enumerate(fleet_file.read_text().splitlines(), 1) if "p3.2xlarge" in text
    )
    column = fleet_file.read_text().splitlines()[line - 1].index("p3.2xlarge") + 1
    assert codes(found) == [("W502", line, column), ("W502", line, column + len("p3.2xlarge, "))]
    assert found[0].message == (
        "instance type 'p3.2xlarge' of group 'web' has Volta GPUs, which the open NVIDIA kernel "
        "modules of host 'web' (hardware.nvidia.open) do not support: its instances would "
        "register no GPUs with ECS"
    )
    assert "Maxwell" in found[1].message
    # hardware.nvidia.open = false on the host: nothing to say.
    proprietary = json.dumps({"web": {"exec": False, "gpu": True, "nvidiaOpen": False}})
    fake.answer(
        {
            "--version": "nix (Nix) 2.18.1\n",
            "eval --offline": {
                "match": {"#nixecsHostFeatures": proprietary, "#nixecsHosts": hosts}
            },
        }
    )
    assert check_fleet(load_fleet(fleet_file)) == []


def test_exec_and_gpu_unchecked_are_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = json.dumps({"web": {"system": "x86_64-linux"}})
    install(
        tmp_path,
        monkeypatch,
        {
            "eval --offline": {
                "match": {
                    "#nixecsHostFeatures": {"err": "error: attribute missing\n", "code": 1},
                    "#nixecsHosts": hosts,
                }
            }
        },
    )
    fleet = load_fleet(declaring(user_flake(tmp_path), "gpu: true"))
    [warning] = check_fleet(fleet)
    assert warning.code == "W501"
    assert "`exec: true`/`gpu: true` were not checked against their hosts (nix eval:" in (
        warning.message
    )


def test_without_flakes_exec_and_gpu_are_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in that reads the hosts without flakes cannot evaluate their options."""
    require_tool("nix-instantiate")
    monkeypatch.setenv("NIXECS_NIX", str(tmp_path / "no-nix"))
    fleet = load_fleet(declaring(user_flake(tmp_path), "gpu: true"))
    [warning] = check_fleet(fleet)
    assert warning.code == "W501" and "Nix 2.4 or newer (flakes) is not installed" in (
        warning.message
    )


@pytest.mark.parametrize(
    ("host", "ami", "extra", "warned"),
    [
        ("ecs-node", "ami-0123456789abcdef0", "", False),  # the default host: nothing to mistype
        ("web", "ami-0123456789abcdef0", "", True),  # a host named: it may not exist
        ("webb", "{host: webb}", "", True),  # … by the AMI too
        ("ecs-node", "ami-0123456789abcdef0", "        exec: true\n", True),  # host must provide
    ],
)
def test_a_remote_flake_warns_only_when_a_group_names_a_host(
    tmp_path: Path, host: str, ami: str, extra: str, warned: bool
) -> None:
    """A `flake:` that is not a local path cannot be read: the hosts are not checked. Said
    (W501) only when some group names a host other than the default; otherwise every
    `validate` of such a fleet would warn with nothing to fix."""
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        "version: 1\nregion: us-east-1\nflake: github:acme/infra\nclusters:\n  prod:\n"
        "    subnets: [subnet-0a1b2c3d]\n    security_groups: [sg-0a1b2c3d]\n    groups:\n"
        f"      web:\n        host: {host}\n        ami: {ami}\n"
        "        instance_types: [m6i.large]\n        capacity: {min: 0, max: 2}\n" + extra
    )
    found = check_fleet(load_fleet(fleet))
    assert [d.code for d in found] == (["W501"] if warned else [])
    if warned:
        assert "the flake 'github:acme/infra' is not a local path" in found[0].message
        assert (found[0].location.line, found[0].location.column) == (3, 1)
