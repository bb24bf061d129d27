"""Static checks of the Nix half of the repository, with real Nix and without nixpkgs.

- every `.nix` file parses (one batched `nix-instantiate --parse` call);
- flake.lock pins the nixpkgs of DESIGN §9;
- every NixOS option our modules declare has a description (a stub lib records `mkOption`);
- the flake's outputs have the names of DESIGN §3 (evaluated with a stub nixpkgs input).

NixOS itself cannot be built here; `nix flake check -L` runs in .github/workflows/nix.yml.
In CI (`CI=true`) a missing `nix-instantiate` fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import require_tool

pytestmark = pytest.mark.nix

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "nix"

PINNED_REV = "8fd9daa3db09ced9700431c5b7ad0e8ba199b575"
PINNED_NAR_HASH = "sha256-Ti+ZBvW6yrWWAg2szExVTwCd4qOJ3KlVr1tFHfyfi8Q="
PINNED_LAST_MODIFIED = 1778430510

# NixOS module files: each is scanned for option declarations.
# tests/lib holds the VM tests' shared NixOS modules; builders of packages (functions of
# `pkgs`, not modules) live in tests/lib/pkgs, which this does not read.
MODULE_FILES = sorted((ROOT / "modules").glob("*.nix")) + sorted(
    (ROOT / "tests" / "lib").glob("*.nix")
)


def nix_instantiate() -> str:
    return require_tool("nix-instantiate")


def run_nix(*args: str) -> subprocess.CompletedProcess[str]:
    # The dummy store: nothing here needs (or may touch) a real Nix store.
    return subprocess.run(
        [nix_instantiate(), "--store", "dummy://", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def eval_json(*args: str) -> object:
    result = run_nix("--eval", "--strict", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nix_files() -> list[Path]:
    """Tracked and untracked (not ignored) .nix files of the work tree."""
    result = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.nix"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    names = sorted({n for n in result.stdout.decode().split("\0") if n})
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def parse_all(files: list[Path]) -> subprocess.CompletedProcess[str]:
    return run_nix("--parse", *map(str, files))


def test_every_nix_file_parses() -> None:
    files = nix_files()
    assert ROOT / "flake.nix" in files
    result = parse_all(files)
    # Nix names the first failing file and its line:col ("at /path/x.nix:3:7:").
    assert result.returncode == 0, f"nix-instantiate --parse failed:\n{result.stderr}"


def test_a_parse_error_names_the_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.nix"
    good.write_text("{ a = 1; }\n")
    bad = tmp_path / "bad.nix"
    bad.write_text("{\n  a = 1;\n  b = ;\n}\n")
    result = parse_all([good, bad])
    assert result.returncode != 0
    assert f"{bad}:3:" in result.stderr, result.stderr


def test_flake_lock_pins_design_nixpkgs() -> None:
    lock = json.loads((ROOT / "flake.lock").read_text())
    assert lock["version"] == 7
    assert lock["root"] == "root"
    assert lock["nodes"]["root"]["inputs"] == {"nixpkgs": "nixpkgs"}
    node = lock["nodes"]["nixpkgs"]
    assert node["locked"] == {
        "lastModified": PINNED_LAST_MODIFIED,
        "narHash": PINNED_NAR_HASH,
        "owner": "NixOS",
        "repo": "nixpkgs",
        "rev": PINNED_REV,
        "type": "github",
    }
    assert node["original"] == {
        "owner": "NixOS",
        "ref": "nixos-25.11",
        "repo": "nixpkgs",
        "type": "github",
    }


def declared_options(files: list[Path]) -> list[dict[str, object]]:
    expr = "[ " + " ".join(f"(/. + {json.dumps(str(f))})" for f in files) + " ]"
    result = eval_json(str(FIXTURES / "options.nix"), "--arg", "files", expr)
    assert isinstance(result, list)
    return result


def test_every_option_has_a_description() -> None:
    options = declared_options(MODULE_FILES)
    names = {o["name"] for o in options}
    # The option contract the Python side depends on (renaming any breaks `nix` userdata).
    for name in [
        "nixecs.package",
        "nixecs.ecs.enable",
        "nixecs.ecs.cluster",
        "nixecs.ecs.attributes",
        "nixecs.ecs.tags",
        "nixecs.ecs.spotDraining",
        "nixecs.ecs.reservedMemoryMiB",
        "nixecs.ecs.logLevel",
        "nixecs.ecs.imagePullBehavior",
        "nixecs.ecs.taskCleanupWait",
        "nixecs.ecs.containerStopTimeout",
        "nixecs.ecs.privileged",
        "nixecs.ecs.extraEnvironment",
        "nixecs.userdata.enable",
        "nixecs.userdata.imdsEndpoint",
        "nixecs.secrets.<name>.parameter",
        "nixecs.secrets.<name>.owner",
        "nixecs.secrets.<name>.group",
        "nixecs.secrets.<name>.mode",
        "nixecs.drain.enable",
        "nixecs.drain.timeout",
    ]:
        assert name in names, f"option {name} is not declared"
    undescribed = [f"{o['file']}: {o['name']}" for o in options if not o["described"]]
    assert not undescribed, "options without a description:\n" + "\n".join(undescribed)


def _leaf_paths(value: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return [p for key, item in value.items() for p in _leaf_paths(item, (*path, key))]
    return [path]


def test_every_option_the_nix_userdata_sets_is_declared(tmp_path: Path) -> None:
    """Render the examples' groups as `nix` userdata, evaluate what they set, and find a
    declared option for every value: renaming an option on either side fails here."""
    from nixecs.fleet import load_fleet
    from nixecs.userdata import render_nix

    declared = {o["name"] for o in declared_options(MODULE_FILES)}
    files = []
    for example in ("fleet.yml", "blog.yml"):
        fleet = load_fleet(ROOT / "examples" / example)
        for cluster in fleet.clusters.values():
            for group in cluster.groups.values():
                path = tmp_path / f"{cluster.name}-{group.name}.nix"
                path.write_text(render_nix(fleet, group), encoding="utf-8")
                files.append(path)
    values = eval_json(
        "--eval",
        "--strict",
        "--json",
        "-E",
        "[ " + " ".join(f"(import {f} {{ }}).nixecs" for f in files) + " ]",
    )
    assert isinstance(values, list) and len(values) == len(files)
    checked = 0
    for value in values:
        for leaf in _leaf_paths({"nixecs": value}):
            candidates = {".".join(leaf[:n]) for n in range(1, len(leaf) + 1)}
            if leaf[:2] == ("nixecs", "secrets") and len(leaf) > 3:
                candidates.add(".".join(("nixecs", "secrets", "<name>", *leaf[3:])))
            assert candidates & declared, (
                f"{'.'.join(leaf)} is set by the nix userdata but no module declares it"
            )
            checked += 1
    assert checked > 20


def test_a_missing_description_is_reported(tmp_path: Path) -> None:
    module = tmp_path / "module.nix"
    module.write_text(
        """{ lib, ... }:
{
  options.demo = {
    described = lib.mkOption { type = lib.types.str; description = "Documented."; };
    blank = lib.mkOption { type = lib.types.str; description = "  "; };
    items = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule { options.inner = lib.mkOption { type = lib.types.int; }; });
      description = "Items.";
    };
    missing = lib.mkOption { type = lib.types.bool; default = false; };
  };
}
"""
    )
    options = {o["name"]: o["described"] for o in declared_options([module])}
    assert options == {
        "demo.described": True,
        "demo.blank": False,
        "demo.items": True,
        "demo.items.<name>.inner": False,
        "demo.missing": False,
    }


def test_flake_outputs_match_design() -> None:
    out = eval_json(str(FIXTURES / "flake-outputs.nix"), "--arg", "root", str(ROOT))
    assert isinstance(out, dict)
    assert out["inputs"] == ["nixpkgs"]
    assert set(out["outputs"]) == {
        "checks",
        "devShells",
        "formatter",
        "lib",
        "nixopsConfigurations",
        "nixosConfigurations",
        "nixosModules",
        "overlays",
        "packages",
        "templates",
    }
    assert set(out["nixosModules"]) == {
        "ecs-node",
        "ecs-host",
        "userdata",
        "secrets",
        "drain",
        "ci",
        "default",
    }
    assert set(out["lib"]) >= {"mkHost", "mkHosts"}
    assert set(out["templates"]) == {"fleet", "default"}
    assert set(out["nixosConfigurations"]) == {"ecs-node", "ecs-node-aarch64-linux", "ci"}
    assert set(out["packages"]["aarch64-linux"]) >= {"ecs-node-ami"}
    assert set(out["packages"]["x86_64-linux"]) == {
        "nixecs",
        "default",
        "ecs-node-ami",
        "bananas",
        "bananas-image",
    }
    assert out["overlays"] == ["default"]
    assert "x86_64-linux" in out["formatter"]
    assert out["devShells"]["x86_64-linux"] == ["default"]
    assert set(out["nixops"]) == {"nixpkgs", "network", "ci"}
    assert set(out["nixopsNetwork"]) == {"description", "storage"}

    checks = set(out["checks"]["x86_64-linux"])
    scenarios = {p.stem for p in (ROOT / "tests").glob("*.nix") if p.name != "default.nix"}
    assert scenarios, "no VM test scenarios in tests/"
    assert {f"vm-{s}" for s in scenarios} <= checks
    assert {"host-ecs-node", "host-ci", "package-nixecs", "package-ecs-node-ami"} <= checks
    # An aarch64 host is checked on aarch64 builders only (an x86_64 one cannot build it).
    assert "host-ecs-node-aarch64-linux" not in checks
    assert {"package-bananas", "package-bananas-image", "vm-bananas-image"} <= checks
