"""The service over real HTTP on a free loopback port."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bananas.inventory import MAX_COUNT, Inventory, InventoryError, parse_count
from bananas.server import MAX_BODY, BananaServer, make_server

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def server() -> Iterator[BananaServer]:
    srv = make_server(initial=3)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(
    srv: BananaServer, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_health(server: BananaServer) -> None:
    assert request(server, "GET", "/health") == (200, {"status": "ok"})


def test_count_add_take(server: BananaServer) -> None:
    assert request(server, "GET", "/bananas") == (200, {"bananas": 3})
    assert request(server, "POST", "/bananas", b'{"count": 4}') == (201, {"bananas": 7})
    assert request(server, "DELETE", "/bananas", b'{"count": 7}') == (200, {"bananas": 0})
    status, body = request(server, "DELETE", "/bananas", b'{"count": 1}')
    assert (status, body["error"]) == (409, "only 0 left")
    assert request(server, "GET", "/bananas") == (200, {"bananas": 0})


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"count": "3"}', b'{"count": true}', b'{"count": 0}', b'{"n": 1}'],
)
def test_bad_bodies_are_400_and_change_nothing(server: BananaServer, body: bytes) -> None:
    status, answer = request(server, "POST", "/bananas", body)
    assert status == 400 and "error" in answer
    assert request(server, "GET", "/bananas") == (200, {"bananas": 3})


def test_body_bounds(server: BananaServer) -> None:
    status, _ = request(server, "POST", "/bananas", b"x" * (MAX_BODY + 1))
    assert status == 413
    # http.client always sends a length; a raw request without one gets 411.
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"POST /bananas HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 411")


def test_unknown_route_and_method(server: BananaServer) -> None:
    assert request(server, "GET", "/apples")[0] == 404
    assert request(server, "POST", "/health", b'{"count": 1}')[0] == 404
    assert request(server, "PUT", "/bananas", b"{}")[0] == 405


def test_concurrent_adds_are_all_counted(server: BananaServer) -> None:
    threads = [
        threading.Thread(target=request, args=(server, "POST", "/bananas", b'{"count": 1}'))
        for _ in range(40)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert request(server, "GET", "/bananas") == (200, {"bananas": 43})


def test_inventory_limits() -> None:
    with pytest.raises(InventoryError):
        parse_count(MAX_COUNT + 1)
    inventory = Inventory(MAX_COUNT)
    with pytest.raises(InventoryError) as error:
        inventory.add(1)
    assert error.value.status == 409


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_main_serves_from_environment_and_stops_on_sigterm() -> None:
    """The entry point the image runs: configured from the environment, SIGTERM ends it
    with status 0 (how ECS stops a task)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "BANANAS_PORT": str(port),
        "BANANAS_BIND": "127.0.0.1",
        "BANANAS_INITIAL": "12",
    }
    proc = subprocess.Popen([sys.executable, "-m", "bananas"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/bananas")
                assert json.loads(conn.getresponse().read()) == {"bananas": 12}
                conn.close()
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "bananas did not start"
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_main_rejects_a_bad_port() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "BANANAS_PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "-m", "bananas"], env=env, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 1
    assert "BANANAS_PORT must be a non-negative integer" in result.stderr
    assert "Traceback" not in result.stderr
