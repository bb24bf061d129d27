"""`nix build .#nixecs` runs the tests in its check phase: this replays that phase here, so a
test that cannot run in the Nix build fails `make test` instead of the package build.

What the build sees is read from pkgs/ itself (tests/nix/package-checkphase.nix evaluates
pkgs/default.nix → pkgs/nixecs/package.nix → pkgs/nixecs/source.nix with real Nix): the files
of its source file set, its sourceRoot, its Python inputs and what it disables. The replay then
does what the build does, as far as this machine can:

- only those files (the flake source: git-tracked ones), copied to a fresh directory laid out as
  `lib.fileset.toSource` lays it out, pytest run in sourceRoot;
- pytest invoked the way nixpkgs' pytestCheckHook invokes it (see `pytest_arguments`);
- the package from the copy (PYTHONPATH to the copied src: the venv's setuptools is older than
  the `setuptools>=77` pyproject.toml requires, so no wheel is built here), and only the Python
  distributions package.nix provides (dependencies, build-system, nativeCheckInputs, and what
  they require) importable: any other one raises ModuleNotFoundError, as in the build;
- no network (a fresh network namespace with only loopback when root, as in the sandbox;
  proxies to a closed port otherwise), no Nix and no other tool on PATH beyond stdenv's
  basics (nativeCheckInputs has no nix), HOME a directory that cannot be created, CI unset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from conftest import REPO, require

pytestmark = pytest.mark.nix

HERE = Path(__file__).resolve().parent
EVAL = HERE / "nix" / "package-checkphase.nix"

# What stdenv puts on PATH in a build (NixOS/nixpkgs pkgs/stdenv/generic/common-path.nix at
# 3813588e48fe: coreutils, findutils, diffutils, sed, grep, awk, tar, gzip, bzip2, make, bash,
# patch, xz, file): the tools a test may find without nativeCheckInputs. Coreutils' programs
# as Debian's coreutils ships them.
STDENV_TOOLS = " ".join(
    (
        "[ arch b2sum base32 base64 basename basenc cat chcon chgrp chmod chown cksum comm cp csplit",
        "cut date dd df dir dircolors dirname du echo env expand expr factor false fmt fold groups",
        "head hostid id install join link ln logname ls md5sum mkdir mkfifo mknod mktemp mv nice nl",
        "nohup nproc numfmt od paste pathchk pinky pr printenv printf ptx pwd readlink realpath rm",
        "rmdir runcon seq sha1sum sha224sum sha256sum sha384sum sha512sum shred shuf sleep sort split",
        "stat stdbuf stty sum sync tac tail tee test timeout touch tr true truncate tsort tty uname",
        "unexpand uniq unlink users vdir wc who whoami yes",
        "find xargs diff cmp diff3 sdiff sed grep egrep fgrep awk gawk tar gzip gunzip zcat bzip2",
        "bunzip2 xz unxz xzcat make patch sh bash file",
    )
).split()


def evaluate_package(nix_instantiate: str, nixpkgs_lib: Path | None = None) -> dict[str, Any]:
    command = [
        nix_instantiate,
        "--eval",
        "--strict",
        "--json",
        "--readonly-mode",
        str(EVAL),
        "--arg",
        "root",
        str(REPO),
    ]
    if nixpkgs_lib is not None:
        command += ["--arg", "nixpkgsLib", str(nixpkgs_lib)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert process.returncode == 0, process.stderr
    result: dict[str, Any] = json.loads(process.stdout)
    return result


@pytest.fixture(scope="module")
def package(nix_instantiate: str) -> dict[str, Any]:
    return evaluate_package(nix_instantiate)


def flake_files(files: Iterable[str]) -> list[str]:
    """The files a flake build copies: git-tracked ones when this is a git checkout (the flake
    source is the tracked tree), otherwise all but bytecode and caches."""
    wanted = set(files)
    git = shutil.which("git")
    if git is not None and (REPO / ".git").exists():
        listed = subprocess.run(
            [git, "-C", str(REPO), "ls-files", "-z"],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout.decode()
        return sorted(wanted & set(filter(None, listed.split("\0"))))
    return sorted(
        f for f in wanted if "__pycache__" not in f and ".pytest_cache" not in f and f != ".git"
    )


def pytest_arguments(package: dict[str, Any], cwd: Path) -> list[str]:
    """pytestCheckHook's command, read in NixOS/nixpkgs
    pkgs/development/interpreters/python/hooks/pytest-check-hook.sh (commit 02abbc14b843,
    2025): `-m pytest`; each disabledTestPaths entry with `::` becomes `--deselect=PATH`, any
    other must match a path (the hook aborts otherwise) and becomes `--ignore-glob=PATH`;
    disabledTests become one `-k "not A and not B"`; then pytestFlags. That stored version
    predates disabledTestMarks, which the nixpkgs manual (python section, "Using
    pytestCheckHook") documents as the marks to deselect: here `-m "not A and not B"`, pytest's
    own way to deselect by mark. A flag of our own would change the run, so none is added."""
    args = ["-m", "pytest"]
    for path in package["disabledTestPaths"]:
        if "::" in path:
            args.append(f"--deselect={path}")
        else:
            assert path, "an empty disabledTestPaths entry: the hook aborts"
            assert list(cwd.glob(path)), (
                f'disabledTestPaths "{path}" matches nothing: the hook aborts'
            )
            args.append(f"--ignore-glob={path}")
    if package["disabledTests"]:
        args += ["-k", "not " + " and not ".join(package["disabledTests"])]
    if package["disabledTestMarks"]:
        args += ["-m", "not " + " and not ".join(package["disabledTestMarks"])]
    flags = list(package["pytestFlags"])
    assert not {"-m", "-k"} & set(flags), "pytestFlags with -m/-k: the replay does not model it"
    return args + flags


def provided_distributions(roots: Iterable[str]) -> set[str]:
    """The distributions the build's PYTHONPATH holds: those package.nix names and, as nixpkgs
    propagates a Python package's dependencies, everything they require (without extras)."""
    seen: set[str] = set()
    todo = [normalise(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            require(False, f"{name} (from package.nix) is not installed in this environment")
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(normalise(requirement.name))
    return seen


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def import_guard(directory: Path, allowed: set[str]) -> None:
    """A sitecustomize that makes every top-level module of a distribution the build lacks
    unimportable, in pytest and in every Python process the tests start."""
    blocked: dict[str, str] = {}
    for module, dists in metadata.packages_distributions().items():
        if module != "nixecs" and not {normalise(d) for d in dists} & allowed:
            blocked[module] = dists[0]
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(
        textwrap.dedent(
            f"""\
            import sys

            _BLOCKED = {blocked!r}


            class _NotInTheNixBuild:
                @staticmethod
                def find_spec(name, path=None, target=None):
                    top = name.partition(".")[0]
                    if top in _BLOCKED:
                        raise ModuleNotFoundError(
                            f"No module named {{name!r}}: the Nix build of nixecs has no "
                            f"{{_BLOCKED[top]}} (not in package.nix's dependencies or "
                            "nativeCheckInputs)",
                            name=name,
                        )
                    return None


            sys.meta_path.insert(0, _NotInTheNixBuild)
            """
        )
    )


def stdenv_path(directory: Path) -> str:
    directory.mkdir()
    for tool in STDENV_TOOLS:
        found = shutil.which(tool)
        if found is not None:
            (directory / tool).symlink_to(found)
    for name in ("python", "python3"):
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        wrapper.chmod(0o755)
    return str(directory)


def sandbox_environment(tmp: Path, copy: Path, allowed: set[str]) -> dict[str, str]:
    guard = tmp / "guard"
    import_guard(guard, allowed)
    (tmp / "build-tmp").mkdir()
    # The sandbox's HOME, /homeless-shelter, does not exist and cannot be created. Root could
    # create it here, so HOME is under a regular file: no one can create that directory.
    (tmp / "not-a-directory").write_text("")
    closed = "http://127.0.0.1:9"
    return {
        "PATH": stdenv_path(tmp / "bin"),
        "HOME": str(tmp / "not-a-directory" / "homeless-shelter"),
        "TMPDIR": str(tmp / "build-tmp"),
        "PYTHONPATH": f"{guard}:{copy / 'tools' / 'src'}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SOURCE_DATE_EPOCH": "315532800",
        "NIX_BUILD_TOP": str(tmp),
        # No network: anything that would leave the machine goes to a closed port.
        **{
            proxy: closed
            for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
        },
        "no_proxy": "localhost,127.0.0.1,::1",
    }


def offline(command: list[str]) -> list[str]:
    """Run in a network namespace of its own with only loopback up, as the Nix sandbox does,
    where this test runs as root (CI's `.ci/run`); otherwise the proxies above stand in."""
    unshare, ip, sh = shutil.which("unshare"), shutil.which("ip"), shutil.which("sh")
    if os.geteuid() != 0 or unshare is None or ip is None or sh is None:
        return command
    return [unshare, "--net", "--", sh, "-c", f'{ip} link set lo up && exec "$@"', "sh", *command]


def copy_source(package: dict[str, Any], destination: Path) -> Path:
    """`lib.fileset.toSource`'s layout: the files under their paths from the root, in a
    directory named like its store path ("source"); returns the sourceRoot directory."""
    source = destination / "source"
    for relative in flake_files(package["files"]):
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, target, follow_symlinks=False)
    assert package["sourceRoot"].split("/")[0] == "source"
    return destination / package["sourceRoot"]


def test_the_replay_models_everything_the_package_declares(package: dict[str, Any]) -> None:
    assert package["rootIsCheckout"], "the package's source root is not the repository root"
    assert package["unmodelled"] == [], (
        "package.nix sets attributes the check-phase replay does not model; extend "
        f"tests/test_package_checkphase.py and tests/nix/package-checkphase.nix: {package['unmodelled']}"
    )
    assert package["pyproject"] is True
    assert "pytest" in package["nativeCheckInputs"], "pytestCheckHook runs the check phase"


def test_the_package_provides_what_pyproject_declares(package: dict[str, Any]) -> None:
    """nixpkgs' pythonRuntimeDepsCheckHook fails the build when a requirement of the wheel's
    metadata (pyproject.toml's dependencies, extras aside) is not installed: NixOS/nixpkgs
    pkgs/development/interpreters/python/hooks/python-runtime-deps-check-hook.py (commit
    0137840114d1). And a mark package.nix disables must be one pytest knows, or the
    deselection silently does nothing."""
    pyproject = tomllib.loads((REPO / "tools" / "pyproject.toml").read_text())
    provided = provided_distributions(package["dependencies"])
    declared = {normalise(Requirement(r).name) for r in pyproject["project"]["dependencies"]}
    assert declared - provided == set(), "pyproject.toml needs these; package.nix lacks them"
    markers = {
        m.split(":")[0].strip() for m in pyproject["tool"]["pytest"]["ini_options"]["markers"]
    }
    assert set(package["disabledTestMarks"]) <= markers


def test_the_nixecs_source_on_instances_holds_what_the_package_builds_from(
    package: dict[str, Any],
) -> None:
    """`nix` userdata evaluates hosts/ecs-node from the `<nixecs>` copy, which builds the
    package there from pkgs/nixecs/source.nix: every file of it must be in the copy."""
    missing = sorted(set(package["files"]) - set(package["userdataSource"]))
    assert missing == [], f"modules/userdata.nix's default source lacks {missing}"


def test_the_stub_file_set_is_what_the_nixpkgs_lib_computes(
    nix_instantiate: str, package: dict[str, Any]
) -> None:
    """The replay's lib.fileset stand-in against nixpkgs' own, where a nixpkgs lib is at hand
    (NIXECS_NIXPKGS_LIB, the dev shell sets it; or nixeval's copy in /tmp/nixeval-lib). The
    replay itself needs neither, so their absence is not a missing prerequisite."""
    given = os.environ.get("NIXECS_NIXPKGS_LIB")
    if given:
        assert (Path(given) / "fileset").is_dir(), f"NIXECS_NIXPKGS_LIB={given} is no nixpkgs lib"
    candidates = [given or "", "/tmp/nixeval-lib/lib"]
    lib = next((Path(c) for c in candidates if c and (Path(c) / "fileset").is_dir()), None)
    if lib is None:
        pytest.skip("no nixpkgs lib at hand to compare lib.fileset with")
    real = evaluate_package(nix_instantiate, lib)
    assert sorted(real["files"]) == sorted(package["files"])


def test_the_check_phase_passes_as_in_the_nix_build(
    package: dict[str, Any], tmp_path: Path
) -> None:
    cwd = copy_source(package, tmp_path)
    allowed = provided_distributions(
        package["dependencies"] + package["buildSystem"] + package["nativeCheckInputs"]
    )
    env = sandbox_environment(tmp_path, tmp_path / "source", allowed)

    # pythonImportsCheck, and that the package imported is the copy, not this checkout's.
    imports = "; ".join(f"import {m}" for m in package["pythonImportsCheck"] or ["nixecs"])
    probe = subprocess.run(
        [sys.executable, "-c", f"{imports}; import nixecs; print(nixecs.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).is_relative_to(tmp_path / "source")

    process = subprocess.run(
        offline([sys.executable, *pytest_arguments(package, cwd)]),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
        check=False,
    )
    assert process.returncode == 0, (
        "the package's check phase fails (nix build .#nixecs would fail):\n"
        + process.stdout[-6000:]
    )
