"""Shared fixtures: the repository root, prerequisites that must not be skipped in CI, and a
real moto server on loopback (DESIGN §8)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def incompressible_text(length: int, seed: int = 3) -> str:
    """Text gzip cannot shrink much: userdata built from it stays over 16 KB after gzip."""
    import random

    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(length))


def oversized_example_fleet(directory: Path) -> Path:
    """examples/fleet.yml with 40 KB of incompressible text in prod/workers' `nixos:`."""
    fleet = directory / "fleet.yml"
    fleet.write_text(
        (EXAMPLES / "fleet.yml")
        .read_text()
        .replace(
            'boot.kernel.sysctl."vm.swappiness" = 10;',
            f'environment.etc.noise.text = "{incompressible_text(40_000)}";',
        )
    )
    return fleet


# Marks a skip for a missing system prerequisite, so the run's summary can count them.
PREREQUISITE = "prerequisite missing: "


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing; in CI that is a failure, never a skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(f"{PREREQUISITE}{reason}")


def pytest_unconfigure(config: pytest.Config) -> None:
    """How many tests a missing system tool skipped, by reason: `make test` ends with it, so
    a fresh machine's partial run says so instead of looking complete (the README's table
    names each tool and its Debian package). Printed after the summary's `N passed, M
    skipped` line, not in pytest_terminal_summary: there `-ra`'s list of every skip would
    follow it and bury it on a machine without the tools."""
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is None or not any(
        terminalreporter.stats.get(kind) for kind in ("passed", "failed", "skipped", "error")
    ):
        return  # an xdist worker (no terminal), or nothing ran
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        if PREREQUISITE in message:
            reason = message.split(PREREQUISITE, 1)[1]
            reasons[reason] = reasons.get(reason, 0) + 1
    total = sum(reasons.values())
    terminalreporter.write_line(
        f"skipped for a missing system prerequisite: {total}"
        + "".join(f"\n  {count:4d}  {reason}" for reason, count in sorted(reasons.items()))
    )


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def nix_eval_readonly(*args: str, env: dict[str, str] | None = None) -> Any:
    """`nix-instantiate --eval --strict --json` of ARGS, reading files but writing nothing
    (the dummy store: paths are only hashed); the JSON value, or a failed assertion with
    Nix's error."""
    done = subprocess.run(
        [
            require_tool("nix-instantiate"),
            "--eval",
            "--strict",
            "--json",
            "--readonly-mode",
            "--store",
            "dummy://",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def nix_instantiate() -> str:
    return require_tool("nix-instantiate")


@dataclass(frozen=True)
class Nixeval:
    dir: Path  # the harness: eval.nix, upstream.nix, check.sh
    lib: Path  # nixpkgs' lib/, patched for Nix 2.8 by its setup.sh


@pytest.fixture(scope="session")
def nixeval_harness(nix_instantiate: str, tmp_path_factory: pytest.TempPathFactory) -> Nixeval:
    """The team's nixeval harness (upstream NixOS options and systemd-lib stood in from
    nixpkgs, under the real nixpkgs 25.11 lib): $NIXEVAL_DIR, else the shared/ folder laid
    beside the checkout. Its lib is set up once per session in a temporary directory,
    unless $NIXEVAL_LIB names one.

    The harness is not part of this repository: on a clone with nothing beside it the tests
    that use it are skipped with that reason, even with CI=true. `.ci/run` names it
    explicitly ($NIXEVAL_DIR), and a harness that is named but missing is a prerequisite
    (a failure in CI)."""
    found = os.environ.get("NIXEVAL_DIR")
    if found:
        directory = Path(found)
        require(
            (directory / "eval.nix").is_file(), f"nixeval not found at {directory} (NIXEVAL_DIR)"
        )
    else:
        # shared/ beside the checkout; a git worktree may sit deeper.
        nearest = [p / "shared/tools/nixeval" for p in REPO.parents]
        present = [d for d in nearest if (d / "eval.nix").is_file()]
        if not present:
            pytest.skip(
                "the nixeval harness is not beside this checkout (../shared/tools/nixeval) and "
                "NIXEVAL_DIR is not set: the evaluation tests under nixpkgs' lib do not run"
            )
        directory = present[0]
    if os.environ.get("NIXEVAL_LIB"):
        lib = Path(os.environ["NIXEVAL_LIB"])
    else:
        cache = tmp_path_factory.mktemp("nixeval-lib")
        done = subprocess.run(
            ["bash", str(directory / "setup.sh")],
            env={**os.environ, "NIXEVAL_LIB_DIR": str(cache)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        require(done.returncode == 0, f"nixeval's setup.sh failed: {done.stderr.strip()[-300:]}")
        lib = cache / "lib"
    require((lib / "default.nix").is_file(), f"no nixpkgs lib at {lib}")
    return Nixeval(directory, lib)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    def __init__(self, url: str) -> None:
        self.url = url

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto server process on 127.0.0.1 (a real HTTP endpoint), one per test session."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        require(False, "moto[server] is not installed")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.1)
    try:
        yield MotoServer(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A clean moto server and AWS credentials that can only reach it."""
    moto_server.reset()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    from aws_fixtures import moto_tags_registered_images

    moto_tags_registered_images(monkeypatch)  # what AWS does and moto does not
    return moto_server


@pytest.fixture(autouse=True)
def _no_deadline_left_armed() -> Iterator[None]:
    """An AWS command run in-process arms a process-wide SIGALRM deadline that `cli.run`
    disarms; a test that enters the command another way (click's test runner) must not leave
    it to fire in a later test."""
    yield
    watchdog = sys.modules.get("nixecs.aws.watchdog")
    if watchdog is not None:
        watchdog.disarm()


def example_fleets() -> list[tuple[Path, str | None]]:
    """Every example fleet file, once per environment it declares (else once, as itself)."""
    from nixecs.fleet import environments_of

    return [
        (path, env)
        for path in sorted(EXAMPLES.glob("*.yml"))
        for env in (environments_of(path) or [None])
    ]
