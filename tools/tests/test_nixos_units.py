"""The NixOS units of modules/ as systemd reads them.

The modules are evaluated with real Nix under the real nixpkgs lib by nixeval (the team's
harness: upstream NixOS options and systemd-lib's unit rendering stood in from nixpkgs,
see its README), and every rendered unit is handed to systemd's own parser,
`systemd-analyze verify`, in a throw-away root (--root) that holds the host's stock units
and an executable at every store path an Exec line names, so that only our unit files can
fail. Time spans are read back with `systemd-analyze timespan`.

nixeval is found by conftest's `nixeval_harness` ($NIXEVAL_DIR, else the shared/ folder
beside the checkout); on a clone with neither these tests are skipped with that reason, and
a harness named by $NIXEVAL_DIR (.ci/run) but missing is a failure in CI.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Nixeval, nix_eval_readonly, require, require_tool

pytestmark = pytest.mark.nix

NIXEVAL = Path("/nonexistent")
NIXEVAL_LIB = Path("/nonexistent")


@pytest.fixture(autouse=True, scope="module")
def _harness(nixeval_harness: Nixeval) -> None:
    global NIXEVAL, NIXEVAL_LIB
    NIXEVAL, NIXEVAL_LIB = nixeval_harness.dir, nixeval_harness.lib


# Settings that reach Exec lines: a rebuild command with a specifier systemd does not know
# (%z fails its parser unless escaped as %%) and a variable it would expand ($HOME).
HOSTILE_REBUILD = 'rebuild --flag "a b" %z $HOME'

EVERYTHING = """{
  nixecs.ecs.enable = true;
  nixecs.ecs.cluster = "c";
  nixecs.userdata.enable = true;
  nixecs.userdata.rebuildCommand = %s;
  nixecs.secrets.db.parameter = "/prod/db/password";
  nixecs.drain.timeout = "30m";
}"""

PKG_NAMES = '[ "coreutils" "gawk" "systemd" "nvidia-x11" "nvidia-container-toolkit" ]'


def nixeval(modules: str, expr: str = "s", extra: str = "") -> Any:
    """Evaluate `modules` (a Nix list; `root` is the checkout) with nixeval; return `expr`."""
    require((NIXEVAL / "eval.nix").is_file(), f"nixeval not found at {NIXEVAL} (NIXEVAL_DIR)")
    require((NIXEVAL_LIB / "default.nix").is_file(), f"no nixpkgs lib at {NIXEVAL_LIB}")
    source = f"""
      let
        root = {REPO};
        up = import {NIXEVAL}/upstream.nix;
        s = import {NIXEVAL}/eval.nix {{
          lib = {NIXEVAL_LIB};
          pkgNames = {PKG_NAMES};
          modules = {modules};
          {extra}
        }};
      in {expr}
    """
    return nix_eval_readonly("-E", source)


def everything_units(rebuild: str = HOSTILE_REBUILD) -> dict[str, str]:
    modules = f"[ (root + /modules) {EVERYTHING % json.dumps(rebuild)} ]"
    units: dict[str, str] = nixeval(modules, "builtins.mapAttrs (n: v: v.unit) s.services")
    return units


def directives(unit: str, name: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(f"{name}=")]


EXEC = ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "ExecStopPost", "ExecReload")


def verify(
    tmp_path: Path, units: dict[str, str], names: list[str]
) -> subprocess.CompletedProcess[str]:
    analyze = require_tool("systemd-analyze")
    root = tmp_path / "root"
    stock = Path("/usr/lib/systemd/system")
    require(stock.is_dir(), "no stock systemd units in /usr/lib/systemd/system")
    shutil.copytree(stock, root / "usr/lib/systemd/system", symlinks=True)
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    # Upstream units NixOS only amends (systemd-sysctl, ...) are drop-ins there, not whole
    # units: write ours and what they pull in; docker.socket is upstream's, a stand-in here.
    (system / "docker.socket").write_text("[Socket]\nListenStream=/run/docker.sock\n")
    for name in [*names, *PULLED_IN]:
        text = units[name]
        (system / f"{name}.service").write_text(text)
        for key in EXEC:
            for line in filter(None, directives(text, key)):  # `ExecStart=` resets
                # The executable as systemd's parser would see it (quotes, prefixes off).
                program = shlex.split(line)[0].lstrip("-@+!:")
                if program.startswith("/nix/store/"):
                    exe = root / program.lstrip("/")
                    exe.parent.mkdir(parents=True, exist_ok=True)
                    exe.write_text("#!/bin/sh\n")
                    exe.chmod(0o755)
    return subprocess.run(
        [
            analyze,
            "verify",
            f"--root={root}",
            "--man=no",
            "--generators=no",
            *[f"{n}.service" for n in names],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


OURS = ["nixecs-userdata", "nixecs-secrets", "nixecs-drain", "ecs-agent"]
PULLED_IN = ["docker", "nixecs-ecs-netfilter"]


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """Exec lines go through utils.escapeSystemdExecArgs: with %z and $HOME in an argument,
    plain concatenation fails systemd's parser ("Invalid slot")."""
    units = everything_units()
    assert all(name in units for name in OURS), sorted(units)
    done = verify(tmp_path, units, OURS)
    assert done.returncode == 0, done.stderr + done.stdout
    ours = [line for line in done.stderr.splitlines() if any(n in line for n in OURS)]
    assert ours == [], ours


def test_exec_arguments_are_escaped_for_systemd() -> None:
    units = everything_units()
    (start,) = directives(units["nixecs-userdata"], "ExecStart")
    # Each argument quoted whole, % and $ doubled: systemd passes it on as written.
    assert shlex.split(start)[-2:] == ["--rebuild-command", 'rebuild --flag "a b" %%z $$HOME']
    for name in OURS:
        for key in EXEC:
            for line in directives(units[name], key):
                if "unit-script" in line:  # nixpkgs' own `script` wrapper
                    continue
                assert line.startswith('"'), f"{name} {key}={line} is not escaped"


def test_agent_is_not_stopped_by_a_userdata_restart() -> None:
    """Requires=/Requisite= would propagate a stop or restart of nixecs-userdata."""
    agent = everything_units()["ecs-agent"]
    for key in ("Requires", "Requisite", "BindsTo", "PartOf"):
        assert all("nixecs-userdata" not in v for v in directives(agent, key)), agent
    assert any("nixecs-userdata.service" in v.split() for v in directives(agent, "Wants"))
    assert any("nixecs-userdata.service" in v.split() for v in directives(agent, "After"))
    (gate,) = [v for v in directives(agent, "ExecStartPre") if "check-userdata-applied" in v]
    units = everything_units()
    # The gate checks the marker that only a successful apply writes.
    assert any(
        "userdata-applied" in v for v in directives(units["nixecs-userdata"], "ExecStartPost")
    )
    assert gate


def seconds(analyze: str, span: str) -> float:
    out = subprocess.run(
        [analyze, "timespan", span], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    match = re.search(r"μs:\s*(\d+)", out)
    assert match, out
    return int(match.group(1)) / 1e6


def test_start_and_stop_timeouts_exceed_the_tools_own_deadlines() -> None:
    """DESIGN §11 / issue 12: the tool bounds apply to 120 s + the rebuild's 1800 s, secrets
    fetch to 120 s and drain to its timeout + 120 s; the units must not cut them short."""
    analyze = require_tool("systemd-analyze")
    units = everything_units()
    (userdata,) = directives(units["nixecs-userdata"], "TimeoutStartSec")
    (secrets,) = directives(units["nixecs-secrets"], "TimeoutStartSec")
    (drain_stop,) = directives(units["nixecs-drain"], "TimeoutStopSec")
    assert seconds(analyze, userdata) >= 120 + 1800 + 60
    assert seconds(analyze, secrets) >= 120 + 30
    assert seconds(analyze, drain_stop) >= 30 * 60 + 120 + 60


def test_userdata_module_alone_evaluates() -> None:
    """nixosModules.userdata without ecs-host.nix: nixecs.ecs is not declared there."""
    modules = "[ (root + /modules/userdata.nix) { nixecs.userdata.enable = true; } ]"
    names = nixeval(modules, "builtins.attrNames s.services")
    assert "nixecs-userdata" in names and "ecs-agent" not in names


def test_secrets_list_only_where_the_service_runs() -> None:
    etc = "builtins.attrNames s.etc"
    assert "nixecs/secrets.json" not in nixeval("[ (root + /modules) ]", etc)
    assert "nixecs/secrets.json" in nixeval(
        "[ (root + /modules) { nixecs.userdata.enable = true; } ]", etc
    )


def test_secret_paths_do_not_collide_with_sops_nix() -> None:
    modules = '[ (root + /modules) { nixecs.secrets.db.parameter = "/prod/db"; } ]'
    path = nixeval(modules, "s.config.nixecs.secrets.db.path", "raw = true;")
    assert path == "/run/nixecs/secrets/db"
    from nixecs.host.secrets import SECRETS_DIR

    assert path == f"{SECRETS_DIR}/db"


@pytest.mark.parametrize("userdata", [True, False])
def test_amazon_init_is_disabled_where_amazon_image_is_imported(userdata: bool) -> None:
    """With amazon-image.nix (and so amazon-init.nix) imported, as hosts/ecs-node does; the
    case without nixecs-userdata shows the check is not vacuous."""
    modules = f"""[
      (root + /modules)
      (up.fakeNixpkgs + "/nixos/modules/virtualisation/amazon-image.nix")
      {{ nixecs.userdata.enable = {str(userdata).lower()}; }}
    ]"""
    names = nixeval(modules, "builtins.attrNames s.services")
    assert ("amazon-init" in names) is not userdata, names


def test_journal_limit_survives_other_extra_config() -> None:
    modules = """[
      (root + /hosts/ecs-node)
      { services.journald.extraConfig = "Storage=volatile"; }
    ]"""
    text = nixeval(modules, "s.config.services.journald.extraConfig", "raw = true;")
    assert "SystemMaxUse=512M" in text and "Storage=volatile" in text


@pytest.mark.parametrize("task_roles", [True, False])
def test_metadata_plumbing_does_not_depend_on_task_roles(task_roles: bool) -> None:
    """ecs-init installs the 169.254.170.2 DNAT/REDIRECT and route_localnet always
    (aws/amazon-ecs-agent v1.105.0 ecs-init/engine/engine.go): the task metadata endpoint
    v3/v4 lives there too, so switching task IAM roles off must keep it (issue 8.3)."""
    modules = (
        "[ (root + /modules) { nixecs.ecs.enable = true; "
        f"nixecs.ecs.taskIamRole = {'true' if task_roles else 'false'}; }} ]"
    )
    sysctl = nixeval(modules, "s.sysctl")
    assert str(sysctl["net.ipv4.conf.all.route_localnet"]) in ("1", "True")
    script = nixeval(modules, 's.services."nixecs-ecs-netfilter".script')
    dnat = "-t nat -A PREROUTING -p tcp -d 169.254.170.2 --dport 80 -j DNAT --to-destination 127.0.0.1:51679"
    redirect = "-t nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679"
    assert dnat in script and redirect in script


# --- issue 22: ECS Exec is opt-in, and the agent is the pinned release --------------------


def _ecs_eval(extra_module: str, fields: str) -> dict[str, Any]:
    """`fields` (Nix attribute bindings over `c`, the configuration, and `e`, the agent
    environment functions) of an ECS host with `extra_module`."""
    modules = f"[ (root + /modules) {{ nixecs.ecs.enable = true; }} {extra_module} ]"
    got: dict[str, Any] = nixeval(
        modules,
        "let c = s.config; e = import (root + /modules/lib/agent-environment.nix); "
        f"in {{ {fields} }}",
        extra="raw = true;",
    )
    return got


def _ecs_host(extra_module: str) -> dict[str, Any]:
    return _ecs_eval(
        extra_module,
        "tmpfiles = c.systemd.tmpfiles.rules; after = c.systemd.services.ecs-agent.after; "
        "agent = c.services.ecs-agent.package.version;",
    )


def test_ecs_exec_layout_only_with_the_option() -> None:
    plain = _ecs_host("{ }")
    enabled = _ecs_host("{ nixecs.ecs.exec.enable = true; }")
    exec_rules = [r for r in enabled["tmpfiles"] if r not in plain["tmpfiles"]]
    assert not any("managed-agents" in r or "execute-command" in r for r in plain["tmpfiles"])
    paths = {r.split()[1] for r in exec_rules}
    assert {
        "/managed-agents/execute-command",
        "/var/lib/ecs/deps/execute-command/config",
        "/var/lib/ecs/deps/execute-command/certs/tls-ca-bundle.pem",
        "/log/exec",
    } <= paths
    version_dirs = [p for p in paths if re.fullmatch(r".*/bin/\d+(\.\d+)*", p)]
    assert len(version_dirs) == 1, paths
    for binary in ("amazon-ssm-agent", "ssm-agent-worker", "ssm-session-worker"):
        assert f"{version_dirs[0]}/{binary}" in paths
    assert "systemd-tmpfiles-setup.service" in enabled["after"]
    # Both run the agent release the variable table was generated from.
    from nixecs.agent_vars import AGENT_REF

    assert plain["agent"] == enabled["agent"] == AGENT_REF.removeprefix("v")


def test_an_agent_other_than_the_tables_release_is_warned() -> None:
    # The package's version is what the host runs; the table's ref is what the checks read.
    fields = "warnings = c.warnings; agent = c.services.ecs-agent.package.version;"
    pinned = _ecs_eval("{ }", fields)
    assert pinned["agent"] == "1.105.0" and pinned["warnings"] == [], pinned
    other = _ecs_eval(
        "({ pkgs, ... }: { services.ecs-agent.package = "
        'pkgs.ecs-agent.overrideAttrs { version = "1.106.0"; }; })',
        fields,
    )
    assert other["agent"] == "1.106.0", other
    [warning] = [w for w in other["warnings"] if "variable table" in w]
    assert "ECS agent 1.106.0" in warning and "generated from v1.105.0" in warning, warning
    assert "tools/gen_agent_vars.py" in warning


def test_the_agent_gets_what_ecs_init_would_set_on_this_os() -> None:
    # ecs-init's ECS_DETAILED_OS_FAMILY (os-release ID_VERSION_ID) and its JSON configuration
    # path, in the baked environment; extraEnvironment may change either.
    fields = "env = e.environment c.nixecs.ecs; failed = map (a: a.message) "
    fields += "(builtins.filter (a: !a.assertion) c.assertions);"
    baked = _ecs_eval("{ }", fields)
    assert baked["env"]["ECS_DETAILED_OS_FAMILY"] == "nixos_25.11", baked["env"]
    assert baked["env"]["ECS_AGENT_CONFIG_FILE_PATH"] == "/etc/ecs/ecs.config.json"
    changed = _ecs_eval(
        '{ nixecs.ecs.extraEnvironment = { ECS_DETAILED_OS_FAMILY = "x_1"; '
        'ECS_AGENT_CONFIG_FILE_PATH = "/etc/agent.json"; }; }',
        fields,
    )
    assert changed["failed"] == [], changed["failed"]
    assert changed["env"]["ECS_DETAILED_OS_FAMILY"] == "x_1"
    assert changed["env"]["ECS_AGENT_CONFIG_FILE_PATH"] == "/etc/agent.json"


def test_registry_credentials_stay_out_of_the_store() -> None:
    fields = "failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);"
    auth = _ecs_eval('{ nixecs.ecs.extraEnvironment.ECS_ENGINE_AUTH_DATA = "{}"; }', fields)
    [message] = [m for m in auth["failed"] if "ECS_ENGINE_AUTH_DATA" in m]
    assert "world-readable Nix store" in message and "nixecs.secrets" in message, message
    # The way the message names passes: the agent's JSON file from a secret.
    way = _ecs_eval(
        '({ config, ... }: { nixecs.secrets.registry.parameter = "/prod/registry-auth"; '
        "nixecs.ecs.extraEnvironment.ECS_AGENT_CONFIG_FILE_PATH = "
        "config.nixecs.secrets.registry.path; })",
        fields,
    )
    assert way["failed"] == [], way


# --- issue 22, item 5: a Graviton (aarch64-linux) ECS host boots UEFI ---------------------

AARCH64_HOST = """[
  ({ modulesPath, ... }: { imports = [ "${modulesPath}/virtualisation/amazon-image.nix" ]; })
  (root + /modules)
  { nixpkgs.hostPlatform = "%s"; nixecs.ecs.enable = true; nixecs.ecs.exec.enable = true; }
  %s
]"""


def _ec2_host(platform: str, extra: str = "{ }") -> dict[str, Any]:
    got: dict[str, Any] = nixeval(
        AARCH64_HOST % (platform, extra),
        "let c = s.config; in { efi = c.ec2.efi; system = c.nixpkgs.hostPlatform; "
        "failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions); "
        "agent = c.services.ecs-agent.package.version; "
        "exec = builtins.length (builtins.filter (r: builtins.match "
        "''.*managed-agents.*'' r != null) c.systemd.tmpfiles.rules); }",
        extra="raw = true;",
    )
    return got


def test_an_aarch64_ecs_host_evaluates_and_boots_uefi() -> None:
    arm = _ec2_host("aarch64-linux")
    assert arm["efi"] is True and arm["failed"] == [], arm
    assert arm["agent"] == "1.105.0" and arm["exec"] > 0
    # x86_64 keeps amazon-image's legacy-bios default; aarch64 with BIOS is refused.
    assert _ec2_host("x86_64-linux")["efi"] is False
    forced = _ec2_host("aarch64-linux", "{ ec2.efi = false; }")
    assert any("must boot UEFI" in m for m in forced["failed"]), forced


# --- issue 22, item 4: NVIDIA GPUs (nixecs.ecs.gpu.enable) ---------------------------------

GPU_UNITS = ("nvidia-container-toolkit-cdi-generator",)
# nixpkgs' NVIDIA modules, stood in (nixeval's upstream.nix has none of them): their
# declarations and the definitions ours meet, cited there.
NVIDIA_UPSTREAM = "(root + /tools/tests/nix/upstream-nvidia.nix)"


def _gpu_host(extra_module: str, upstream: str = NVIDIA_UPSTREAM) -> dict[str, Any]:
    return _ecs_eval(
        f"{upstream} {extra_module}",
        "services = builtins.attrNames c.systemd.services; "
        "agent = let a = c.systemd.services.ecs-agent; in { inherit (a) after requires; "
        "pre = a.serviceConfig.ExecStartPre; timeout = a.serviceConfig.TimeoutStartSec or null; "
        "restart = a.serviceConfig.Restart; }; "
        "docker = c.virtualisation.docker.daemon.settings; "
        "env = e.environment c.nixecs.ecs; "
        'toml = c.environment.etc."nvidia-container-runtime/config.toml".text or null; '
        "strategy = c.hardware.nvidia-container-toolkit.device-name-strategy or null; "
        "open = c.hardware.nvidia.open or null; "
        "warnings = c.warnings; "
        "failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);",
    )


def _gpu_info_lines(pre: list[str]) -> list[list[str]]:
    return [shlex.split(line) for line in pre if "gpu-info" in line]


def test_gpu_host_only_with_the_option() -> None:
    plain = _gpu_host("{ }")
    gpu = _gpu_host("{ nixecs.ecs.gpu.enable = true; }")
    # A host without the option has none of it (issue 22, item 6).
    assert not set(GPU_UNITS) & set(plain["services"])
    assert plain["toml"] is None
    assert "runtimes" not in plain["docker"] and "features" not in plain["docker"]
    assert not {"ECS_ENABLE_GPU_SUPPORT", "ECS_NVIDIA_RUNTIME"} & set(plain["env"])
    assert _gpu_info_lines(plain["agent"]["pre"]) == []
    assert "nvidia-container-toolkit-cdi-generator.service" not in plain["agent"]["after"]

    assert gpu["failed"] == [] and gpu["warnings"] == [], gpu
    # The driver >= 560 leaves `open` null, which nvidia.nix refuses: ours chooses.
    assert gpu["open"] is True
    assert set(GPU_UNITS) <= set(gpu["services"])
    # The file is written by the agent's own unit, first of its ExecStartPre lines, as
    # ecs.service runs `amazon-ecs-init pre-start` (GPU setup first) with Restart=on-failure
    # (aws/amazon-ecs-agent v1.105.0 packaging/generic-rpm-integrated/ecs.service,
    # ecs-init/engine/engine.go PreStart): a failure is retried with the agent, and no unit
    # of its own can leave the agent dependency-failed.
    assert not any("gpu" in unit for unit in gpu["services"]), gpu["services"]
    assert gpu["agent"]["requires"] == plain["agent"]["requires"]
    assert gpu["agent"]["restart"] == "on-failure"
    pre = gpu["agent"]["pre"]
    assert pre[len(pre) - len(plain["agent"]["pre"]) :] == plain["agent"]["pre"]
    settle, info = (shlex.split(line) for line in pre[:2])
    assert settle[0].startswith("-") and settle[0].endswith("/bin/udevadm"), settle
    assert settle[1:] == ["settle", "--timeout=60"]
    assert info[0].endswith("/bin/nixecs") and info[1:3] == ["gpu-info", "--nvidia-smi"]
    assert info[3].endswith("/bin/nvidia-smi")
    # Ordering only: the device nodes and the CDI specification before the file; time for
    # the settle (60s) and nvidia-smi (60s) in the start.
    assert "nvidia-container-toolkit-cdi-generator.service" in gpu["agent"]["after"]
    assert gpu["agent"]["timeout"] == "180s"
    # The agent runs GPU containers with Docker's runtime named ECS_NVIDIA_RUNTIME
    # (agent/api/task/task.go overrideContainerRuntime): dockerd has exactly that one,
    # nvidia-container-runtime, and CDI on; GPU support is on.
    assert gpu["env"]["ECS_ENABLE_GPU_SUPPORT"] == "true"
    runtime = gpu["env"]["ECS_NVIDIA_RUNTIME"]
    assert list(gpu["docker"]["runtimes"]) == [runtime]
    assert gpu["docker"]["runtimes"][runtime]["path"].endswith("/bin/nvidia-container-runtime")
    assert gpu["docker"]["features"] == {"cdi": True}
    assert "default-runtime" not in gpu["docker"]
    # NVIDIA_VISIBLE_DEVICES carries GPU UUIDs (from nixecs gpu-info): the runtime, in CDI
    # mode, asks for nvidia.com/gpu=<uuid>, which the specification names by UUID.
    assert 'mode = "cdi"' in gpu["toml"] and 'default-kind = "nvidia.com/gpu"' in gpu["toml"]
    # ECS task containers are unprivileged (internal/modifier/cdi.go getDevicesFromSpec).
    assert "accept-nvidia-visible-devices-envvar-when-unprivileged = true" in gpu["toml"]
    assert gpu["strategy"] == "uuid"


def test_gpu_without_nixpkgs_nvidia_modules_is_left_out_with_a_warning() -> None:
    # Every NixOS evaluation declares them; an evaluator of stand-ins without them (nixeval)
    # gets no GPU configuration rather than "option `hardware' does not exist" on a host
    # that never enabled it (a definition of an undeclared option fails under mkIf false).
    plain = _gpu_host("{ }", upstream="")
    assert plain["warnings"] == [] and plain["failed"] == [], plain
    bare = _gpu_host("{ nixecs.ecs.gpu.enable = true; }", upstream="")
    assert [w for w in bare["warnings"] if "lacks nixpkgs' NVIDIA modules" in w], bare
    assert "ECS_ENABLE_GPU_SUPPORT" not in bare["env"] and bare["toml"] is None
    assert _gpu_info_lines(bare["agent"]["pre"]) == []
    # With the modules declared, the driver's own check holds: without ours setting
    # `open`, a driver >= 560 is refused (the stand-in keeps upstream's assertion).
    unset = _gpu_host(
        "({ lib, ... }: { nixecs.ecs.gpu.enable = true; hardware.nvidia.open = lib.mkForce null; })"
    )
    assert any("hardware.nvidia.open" in m for m in unset["failed"]), unset["failed"]


def test_gpu_with_dockers_enable_nvidia_is_refused() -> None:
    # nixpkgs' docker.nix writes the same config.toml (`lines`: concatenated, invalid TOML).
    both = _gpu_host("{ nixecs.ecs.gpu.enable = true; virtualisation.docker.enableNvidia = true; }")
    assert any(
        "set virtualisation.docker.enableNvidia = false" in m and "nixecs.ecs.gpu.enable" in m
        for m in both["failed"]
    ), both["failed"]
    alone = _gpu_host("{ virtualisation.docker.enableNvidia = true; }")
    assert not any("enableNvidia" in m for m in alone["failed"]), alone["failed"]


def test_gpu_variables_in_extra_environment_name_the_option() -> None:
    gpu = _gpu_host(
        '{ nixecs.ecs.gpu.enable = true; nixecs.ecs.extraEnvironment.ECS_NVIDIA_RUNTIME = "x"; }'
    )
    assert any("ECS_NVIDIA_RUNTIME is set by nixecs.ecs.gpu.enable" in m for m in gpu["failed"])
    plain = _gpu_host('{ nixecs.ecs.extraEnvironment.ECS_ENABLE_GPU_SUPPORT = "true"; }')
    assert any(
        "ECS_ENABLE_GPU_SUPPORT needs NVIDIA GPUs" in m and "nixecs.ecs.gpu.enable" in m
        for m in plain["failed"]
    ), plain["failed"]


def test_gpu_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    modules = (
        f"[ (root + /modules) {NVIDIA_UPSTREAM} "
        "{ nixecs.ecs.enable = true; nixecs.ecs.gpu.enable = true; } ]"
    )
    units: dict[str, str] = nixeval(modules, "builtins.mapAttrs (n: v: v.unit) s.services")
    assert "gpu-info" in units["ecs-agent"]
    done = verify(tmp_path, units, ["ecs-agent"])
    assert done.returncode == 0, done.stderr
