"""`validate` against the fleet's own flake (issue 19.3, 19.7), when it can know:

- E501: a group's `host:` is not a host of `flake:`; E502: the host's system is not the
  architecture of the group's instance types (E129's tables). The hosts are read without
  building: `nix eval --json FLAKE#nixecsHosts` (lib.mkHosts writes it) with Nix ≥ 2.4, else
  the flake's `outputs` evaluated by nix-instantiate with a stand-in for the nixecs input
  whose `lib.mkHosts` returns only that table (flake_hosts.nix: plain Nix, any version, no
  inputs fetched). A flake that is not a local path, or that needs other inputs for it: one
  W501 saying the hosts were not checked.
- E506: a group declares `exec: true` or `gpu: true` and its host does not set the option
  that provides it (`nixecs.ecs.exec.enable`, `nixecs.ecs.gpu.enable`), read with
  `nix eval --json FLAKE#nixecsHostFeatures` (lib.mkHosts writes it; the hosts' options are
  evaluated, nothing built) only when a group declares one; without flakes, one W501.
- W502: a `gpu: true` group's instance type has GPUs older than Turing (p3, g3, ...) and its
  host uses NVIDIA's open kernel modules (`nixecsHostFeatures`' `nvidiaOpen`).
- E505: a group's `nixos:` text evaluated with its host, `nix eval` of the extended system's
  `toplevel.drvPath` (builds nothing), offline (the flake's inputs must already be in the
  store); the error located in the text. Otherwise one W501: the texts were only parsed.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from . import flakes
from .diagnostics import Diagnostic, Location
from .fleet.model import Fleet, Group
from .lazyre import lazy
from .nix import nix_string
from .nixparse import nix_instantiate

if TYPE_CHECKING:
    from pathlib import Path

# subprocess, tempfile and pathlib are imported where used: checking a fleet whose flake is
# not a local path needs none of them (`validate`, issue 18 item 4).

ARCHITECTURES = {"x86_64-linux": "x86_64", "aarch64-linux": "arm64"}
STAND_IN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flake_hosts.nix")
_ERROR_AT = lazy(r"at (?P<file>/\S+?\.nix):(?P<line>\d+):(?P<column>\d+)")
_ANSI = lazy(r"\x1b\[[0-9;]*m")


def _where(fleet: Fleet) -> Location:
    return fleet.document.locate(("flake",) if fleet.flake else (), key=True)


def _groups(fleet: Fleet) -> list[Group]:
    return [g for c in fleet.clusters.values() for g in c.groups.values()]


def _local_flake(fleet: Fleet) -> Path | None:
    """The fleet's flake directory when it is a local path (relative to the fleet file)."""
    if not flakes.is_local(fleet.flake):
        return None
    from pathlib import Path

    return flakes.local_path(fleet.flake, Path(fleet.document.path).resolve().parent)


def read_hosts(fleet: Fleet) -> tuple[dict[str, tuple[str, ...]] | None, str]:
    """The flake's hosts (name → systems), or None and why they could not be read."""
    directory = _local_flake(fleet)
    if directory is None:
        return None, f"the flake {fleet.flake!r} is not a local path"
    if not (directory / "flake.nix").is_file():
        return None, f"{directory} has no flake.nix"
    reasons = []
    nix = flakes.nix_flakes()
    if nix is not None:
        try:
            return flakes.hosts(nix, str(directory)), ""
        except (flakes.FlakeError, ValueError) as error:
            reasons.append(f"nix eval: {str(error).splitlines()[-1] if str(error) else error}")
    program = nix_instantiate()
    if program is not None:
        import subprocess

        try:
            return _stand_in_hosts(program, directory), ""
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            reasons.append(f"nix-instantiate: {error}")
    else:
        reasons.append("Nix is not installed")
    return None, "; ".join(reasons)


def _stand_in_hosts(program: str, directory: Path) -> dict[str, tuple[str, ...]]:
    import subprocess

    result = subprocess.run(
        [program, "--eval", "--strict", "--json", STAND_IN, "--argstr", "dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NIX_PATH": "",
            "HOME": "/nonexistent",
        },
    )
    if result.returncode != 0:
        lines = [x for x in _ANSI.sub("", result.stderr).splitlines() if x.strip()]
        first = next((x.strip() for x in lines if x.strip().startswith("error")), "failed")
        raise ValueError(first.removeprefix("error:").strip())
    data = json.loads(result.stdout)
    if not isinstance(data, dict):
        raise ValueError("nixecsHosts is not an attribute set")
    return {str(k): flakes.host_systems(v) for k, v in data.items() if isinstance(v, dict)}


def check_hosts(fleet: Fleet, hosts: dict[str, tuple[str, ...]]) -> list[Diagnostic]:
    from .fleet.aws_rules import group_architectures

    found: list[Diagnostic] = []
    for group in _groups(fleet):
        host_path = (
            (*group.path, "host") if group.ami_host is None else (*group.ami_host.path, "host")
        )
        if group.host not in hosts:
            found.append(
                Diagnostic(
                    "E501",
                    f"host {group.host!r} is not a host of the flake {fleet.flake!r} (its hosts: "
                    f"{', '.join(sorted(hosts)) or 'none'})",
                    fleet.document.locate(host_path),
                )
            )
            continue
        systems = hosts[group.host]
        archs = {ARCHITECTURES[s] for s in systems if s in ARCHITECTURES}
        kinds = group_architectures(group)
        if archs and kinds and not archs & kinds:
            system = ", ".join(systems)
            arch = ", ".join(sorted(archs))
            found.append(
                Diagnostic(
                    "E502",
                    f"host {group.host!r} is built for {system} ({arch}), and the group's instance "
                    f"types are {', '.join(sorted(kinds))}: its AMI cannot boot on them",
                    fleet.document.locate((*group.path, "instance_types")),
                )
            )
    return found


# What a group's key declares, the host option that provides it, and what is lost without.
FEATURES = {
    "exec": ("nixecs.ecs.exec.enable", "its agent does not advertise execute-command"),
    "gpu": ("nixecs.ecs.gpu.enable", "its instances register no GPUs with ECS"),
}

# Instance families whose NVIDIA GPUs are older than Turing (AWS, "Accelerated computing
# instances", https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html: P3/P3dn Tesla
# V100, G3/G3s Tesla M60, P2 Tesla K80, G2 GRID K520). NVIDIA's open kernel modules support
# Turing and later only ("For older GPUs from the Maxwell, Pascal, or Volta architectures,
# the open-source GPU kernel modules are not compatible", developer.nvidia.com/blog/
# nvidia-transitions-fully-towards-open-source-gpu-kernel-modules/): with them the driver
# does not load, no /dev/nvidia*, and the agent registers no GPUs. By family name, not from
# E129's tables: their recording (moto's DescribeInstanceTypes) has no GPU model for p3,
# g3, p2 or g2 (p3dn's alone: V100).
PRE_TURING = {
    "p3": "Volta",
    "p3dn": "Volta",
    "g3": "Maxwell",
    "g3s": "Maxwell",
    "p2": "Kepler",
    "g2": "Kepler",
}


def _flake_nix(fleet: Fleet) -> tuple[Path, str] | str:
    """The fleet's local flake directory and a `nix` with flakes, or why there are none."""
    if not fleet.flake:
        return "the fleet has no `flake:` naming its hosts"
    directory = _local_flake(fleet)
    if directory is None:
        return f"the flake {fleet.flake!r} is not a local path"
    nix = flakes.nix_flakes()
    if nix is None:
        return "Nix 2.4 or newer (flakes) is not installed"
    return directory, nix


def _declared(group: Group) -> list[str]:
    return [f for f, on in (("exec", group.exec), ("gpu", group.gpu)) if on]


def check_features(fleet: Fleet, hosts: dict[str, tuple[str, ...]]) -> tuple[list[Diagnostic], str]:
    """E506 per group declaring what its host does not provide; and why the declarations
    were not checked, if they were not ("" when they were or there are none)."""
    groups = [g for g in _groups(fleet) if _declared(g) and g.host in hosts]
    # Without flakes, none: the stand-in that reads the hosts cannot evaluate their options.
    found_nix = _flake_nix(fleet) if groups else ""
    if isinstance(found_nix, str):
        return [], found_nix
    directory, nix = found_nix
    try:
        features = flakes.host_features(nix, str(directory))
    except (flakes.FlakeError, ValueError) as error:
        return [], f"nix eval: {str(error).splitlines()[-1] if str(error) else error}"
    found = []
    for group in groups:
        for feature in _declared(group):
            if feature in features.get(group.host, frozenset()):
                continue
            option, lost = FEATURES[feature]
            found.append(
                Diagnostic(
                    "E506",
                    f"group {group.name!r} says `{feature}: true`, but its host "
                    f"{group.host!r} does not set {option}: {lost}",
                    fleet.document.locate((*group.path, feature), key=True),
                )
            )
        if group.gpu and {"gpu", "nvidiaOpen"} <= features.get(group.host, frozenset()):
            found.extend(check_open_modules(fleet, group))
    return found, ""


def check_open_modules(fleet: Fleet, group: Group) -> list[Diagnostic]:
    """W502 per instance type of a `gpu: true` group whose GPU the host's open kernel modules
    (hardware.nvidia.open, nixecs.ecs.gpu.enable's default) do not support."""
    found = []
    for index, name in enumerate(group.instance_types):
        architecture = PRE_TURING.get(name.split(".", 1)[0])
        if architecture is None:
            continue
        found.append(
            Diagnostic(
                "W502",
                f"instance type {name!r} of group {group.name!r} has {architecture} GPUs, "
                f"which the open NVIDIA kernel modules of host {group.host!r} "
                "(hardware.nvidia.open) do not support: its instances would register no "
                "GPUs with ECS",
                fleet.document.locate((*group.path, "instance_types", index)),
            )
        )
    return found


def check_snippets(fleet: Fleet) -> tuple[list[Diagnostic], str]:
    """E505 per group whose `nixos:` text does not evaluate with its host; and why the texts
    were not evaluated, if they were not ("" when they were)."""
    groups = [g for g in _groups(fleet) if g.nixos]
    found_nix = _flake_nix(fleet) if groups else ""
    if isinstance(found_nix, str):
        return [], found_nix
    directory, nix = found_nix
    import tempfile
    from pathlib import Path

    found: list[Diagnostic] = []
    with tempfile.TemporaryDirectory(prefix="nixecs-eval-") as tmp:
        for group in groups:
            assert group.nixos is not None
            snippet = Path(tmp) / f"{group.cluster}-{group.name}.nix"
            snippet.write_text(group.nixos, encoding="utf-8")
            # The host extended with the text, as the instance's rebuild extends it; the
            # derivation's path is computed, nothing built (--offline: nothing fetched).
            expr = (
                f"((builtins.getFlake {nix_string(str(directory))}).nixosConfigurations"
                f".{nix_string(group.host)}.extendModules {{ modules = [ (/. + "
                f"{nix_string(str(snippet))}) ]; }}).config.system.build.toplevel.drvPath"
            )
            try:
                flakes.run_nix(nix, "eval", "--offline", "--impure", "--raw", "--expr", expr)
            except flakes.FlakeError as error:
                text = _ANSI.sub("", str(error))
                if str(snippet) not in text:
                    return found, f"the host did not evaluate offline ({text.splitlines()[-1]})"
                at = next((m for m in _ERROR_AT.finditer(text) if m["file"] == str(snippet)), None)
                line, column = (int(at["line"]), int(at["column"])) if at else (1, 1)
                message = (
                    next(
                        (x.strip() for x in text.splitlines() if x.strip().startswith("error")),
                        text.splitlines()[0],
                    )
                    .removeprefix("error:")
                    .strip()
                )
                found.append(
                    Diagnostic(
                        "E505",
                        f"nixos module text does not evaluate with host {group.host!r}: {message}"
                        f" (line {line}, column {column} of the text)",
                        fleet.document.locate_in_block((*group.path, "nixos"), line, column),
                    )
                )
    return found, ""


def _default_host() -> str:
    from .fleet.schema import GROUP

    return str(GROUP.keys["host"].default)


def _names_hosts(fleet: Fleet) -> bool:
    """Whether the flake's hosts matter to the fleet beyond the default: some group names a
    host other than the default one (its `host:`, which an `ami: {host: …}` must equal,
    E503), a name that can be mistyped, or declares `exec: true`/`gpu: true`, which its
    host must provide."""
    default = _default_host()
    return any(g.host != default or g.exec or g.gpu for g in _groups(fleet))


def check_fleet(fleet: Fleet) -> list[Diagnostic]:
    """E501/E502/E505/E506/W502, and one W501 naming what could not be checked, and why.

    A remote `flake:` (github:…, a URL) cannot be read offline, so the hosts are never checked
    there; that is said only when some group names a host other than the default (a name that
    could be mistyped) or declares `exec: true`/`gpu: true` (which its host must provide). A
    fleet whose groups all run the default host would otherwise get the same warning on every
    `validate`, with nothing the user could do about it but move the flake onto the disk. A
    local flake whose hosts could not be read (no Nix, no flake.nix,
    an evaluation error) is always said: that is fixable, and the hosts may be wrong."""
    found: list[Diagnostic] = []
    unchecked = []
    if fleet.flake:
        hosts, why = read_hosts(fleet)
        remote = _local_flake(fleet) is None
        if hosts is None:
            if not remote or _names_hosts(fleet):
                unchecked.append(f"the groups' hosts were not checked ({why})")
        else:
            found.extend(check_hosts(fleet, hosts))
            errors, why = check_features(fleet, hosts)
            found.extend(errors)
            if why:
                unchecked.append(
                    f"the groups' `exec: true`/`gpu: true` were not checked against their "
                    f"hosts ({why})"
                )
    errors, why = check_snippets(fleet)
    found.extend(errors)
    if why:
        unchecked.append(f"the `nixos:` texts were only parse-checked, not evaluated ({why})")
    if unchecked:
        found.append(Diagnostic("W501", "; ".join(unchecked), _where(fleet)))
    return found
