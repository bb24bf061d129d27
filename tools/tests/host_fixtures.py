"""Fixtures and helpers shared by the host-side tests (apply, secrets, drain, IMDS)."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from nixecs.host import boot
from nixecs.settings import DrainSpec, EcsSettings, HostSettings, SecretSpec, dumps
from nixecs.testing.imds import ImdsEmulator

# Small retry delays keep the fault tests fast; the bounds are still real.
FAST_RETRIES = ["--attempts", "3", "--backoff", "0.01", "--timeout", "1"]


@pytest.fixture(name="imds")
def imds_fixture() -> Iterator[ImdsEmulator]:
    """A fresh emulator per test (import `imds_fixture` to use the `imds` fixture)."""
    with ImdsEmulator() as emulator:
        yield emulator


def sample_settings(cluster: str = "prod", group: str = "web", **ecs: object) -> HostSettings:
    return HostSettings(
        cluster=cluster,
        group=group,
        flake="github:acme/infra",
        ecs=EcsSettings(attributes={"tier": "web"}, tags={"team": "payments"}, **ecs),  # type: ignore[arg-type]
        secrets={"db-password": SecretSpec("/prod/db/password")},
        drain=DrainSpec("15m"),
    )


def settings_userdata(**kwargs: object) -> bytes:
    return dumps(sample_settings(**kwargs)).encode()  # type: ignore[arg-type]


def run_apply(*args: str) -> tuple[int, str]:
    """`nixecs apply ARGS` in-process, as __main__ dispatches it; (exit code, stderr)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = boot.main(["apply", *args])
    return code, stderr.getvalue()


def snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every file under root: (inode, mtime_ns, mode, content) — to prove nothing changed."""
    result = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            info = path.stat()
            result[str(path.relative_to(root))] = (
                info.st_ino,
                info.st_mtime_ns,
                stat.S_IMODE(info.st_mode),
                path.read_bytes(),
            )
    return result


def write_rebuild_command(directory: Path, status: int = 0) -> tuple[str, Path, Path]:
    """A fake `nixos-rebuild switch`: logs the configuration it was given, exits with the
    status in a file the test can change. Returns (command, log file, status file)."""
    log = directory / "rebuild.log"
    status_file = directory / "rebuild.status"
    status_file.write_text(str(status))
    script = directory / "fake-rebuild"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s %s\\n" "$1" "$(sha256sum < "$NIXOS_CONFIG" | cut -c1-64)" >> "{log}"\n'
        f'exit "$(cat "{status_file}")"\n'
    )
    script.chmod(0o755)
    return f"{script} switch", log, status_file


def rebuild_calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def no_tmp_files(root: Path) -> bool:
    return not any(".tmp-" in name for _, _, names in os.walk(root) for name in names)
