"""AWS calls are bounded (issue 12 item 3, issue 9 item 17): an unreachable --endpoint-url
fails in seconds with one line, for an operator command and for each host command; a host
command that AWS never answers ends at its total deadline, naming the call it was making.

Real sockets on 127.0.0.1: a closed port, a "blackhole" (a listening socket that never
accepts, so the kernel completes the handshake and nothing ever answers), and a server that
answers the endpoint probe but never an API call.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_fixtures import run_cli
from conftest import free_port
from host_fixtures import sample_settings
from nixecs.aws.session import HOST, OPERATOR, Session
from nixecs.testing.imds import ImdsEmulator


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@contextlib.contextmanager
def blackhole() -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # never accepted: connects succeed, nothing ever answers
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


@contextlib.contextmanager
def answers_only_the_probe() -> Iterator[str]:
    """Answers `OPTIONS *` (the endpoint probe); holds every API request without an answer."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                connection.settimeout(5)
                request = connection.recv(65536)
                if request.startswith(b"OPTIONS * "):
                    connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    connection.close()
                    continue
            held.append(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in held:
            connection.close()


def host_root(tmp_path: Path) -> Path:
    settings = tmp_path / "run/nixecs/settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(sample_settings().to_json()))
    return tmp_path


def secrets_fetch(tmp_path: Path, url: str, *extra: str) -> list[str]:
    root = host_root(tmp_path)
    return [
        "--endpoint-url",
        url,
        "--region",
        "us-east-1",
        "secrets",
        "fetch",
        "--root",
        str(root),
        *extra,
    ]


def drain(tmp_path: Path, url: str, imds: ImdsEmulator, *extra: str) -> list[str]:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(sample_settings().to_json()))
    return [
        "--endpoint-url", url, "--region", "us-east-1", "drain", "--imds", imds.url,
        "--poll", "0.05", "--timeout", "5s", "--settings", str(settings), *extra,
    ]  # fmt: skip


COMMANDS = ["secret get", "secrets fetch", "drain"]


def argv_for(command: str, tmp_path: Path, url: str, imds: ImdsEmulator) -> list[str]:
    if command == "secret get":
        return ["--endpoint-url", url, "--region", "us-east-1", "secret", "get", "/x"]
    if command == "secrets fetch":
        return secrets_fetch(tmp_path, url)
    return drain(tmp_path, url, imds)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("where", ["closed-port", "blackhole"])
def test_an_unreachable_endpoint_fails_in_seconds_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, where: str
) -> None:
    with (
        ImdsEmulator(lifecycle_state="Terminated") as imds,
        blackhole()
        if where == "blackhole"
        else contextlib.nullcontext(f"http://127.0.0.1:{free_port()}") as url,
    ):
        started = time.monotonic()
        result = run_cli(capsys, argv_for(command, tmp_path, url, imds))
        seconds = time.monotonic() - started
    assert result.code == 1, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("nixecs: error:")]
    expected = "Connection refused" if where == "closed-port" else "no answer within 3s"
    assert len(errors) == 1 and url in errors[0] and expected in errors[0], result.err
    assert "Traceback" not in result.err
    assert seconds < 8, f"{command} took {seconds:.1f}s"


def test_secrets_fetch_ends_at_its_deadline_naming_the_call(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with answers_only_the_probe() as url:
        started = time.monotonic()
        result = run_cli(capsys, secrets_fetch(tmp_path, url, "--deadline", "3"))
        seconds = time.monotonic() - started
    assert result.code == 1, result.err
    assert (
        "nixecs: error: out of time: the 3s deadline of `nixecs secrets fetch` ran out while "
        "calling ssm GetParameters"
    ) in result.err
    # Without the deadline: HOST's 10 s read timeout, 4 attempts and backoff (> 40 s).
    assert seconds < 7


def test_drain_deadline_counts_from_termination(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with (
        answers_only_the_probe() as url,
        ImdsEmulator(lifecycle_state="Terminated") as imds,
    ):
        started = time.monotonic()
        result = run_cli(capsys, drain(tmp_path, url, imds, "--deadline", "3"))
        seconds = time.monotonic() - started
    assert result.code == 1, result.err
    assert "the 3s deadline of `nixecs drain` ran out while calling autoscaling" in result.err
    assert seconds < 7


def test_call_budgets() -> None:
    """Host commands: short timeouts and few retries under a deadline; operators: patient."""
    host = Session(region="us-east-1", budget=HOST).config("ssm")
    assert (host.connect_timeout, host.read_timeout) == (3, 10)
    assert host.retries == {"mode": "standard", "total_max_attempts": 4}
    operator = Session(region="us-east-1").config("ssm")
    assert (operator.connect_timeout, operator.read_timeout) == (OPERATOR.connect, OPERATOR.read)
    assert operator.retries == {"mode": "adaptive", "total_max_attempts": 11}
