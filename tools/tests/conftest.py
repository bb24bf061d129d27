"""Shared fixtures: the repository root, prerequisites that must not be skipped in CI, and a
real moto server on loopback (DESIGN §8)."""

from __future__ import annotations

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


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing; in CI that is a failure, never a skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


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
    beside the checkout (so in CI). Its lib is set up once per session in a temporary
    directory, unless $NIXEVAL_LIB names one."""
    found = os.environ.get("NIXEVAL_DIR")
    # shared/ lies beside the checkout (CI's layout); a git worktree may sit deeper.
    nearest = next(
        (p / "shared/tools/nixeval" for p in REPO.parents if (p / "shared/tools/nixeval").is_dir()),
        REPO.parent / "shared/tools/nixeval",
    )
    directory = Path(found) if found else nearest
    require((directory / "eval.nix").is_file(), f"nixeval not found at {directory} (NIXEVAL_DIR)")
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
