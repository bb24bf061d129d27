"""The HTTP layer: routes, JSON in and out, bounded request bodies."""

from __future__ import annotations

import json
import os
import signal
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bananas import __version__
from bananas.inventory import Inventory, InventoryError, parse_count

MAX_BODY = 4096  # a count fits in a few bytes; anything larger is refused unread


class Handler(BaseHTTPRequestHandler):
    server: BananaServer
    server_version = f"bananas/{__version__}"
    # Without a timeout a client that sends half a request holds a thread forever.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request on stderr (the container log), without the client's
        # address: behind a load balancer it is the balancer's anyway.
        sys.stderr.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def _read_count(self) -> int:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise InventoryError("a JSON body with a Content-Length is required", 411)
        if int(length) > MAX_BODY:
            raise InventoryError(f"the body is over {MAX_BODY} bytes", 413)
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InventoryError("the body is not JSON", 400) from None
        if not isinstance(body, dict) or "count" not in body:
            raise InventoryError('the body must be {"count": N}', 400)
        return parse_count(body["count"])

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif self.path == "/bananas":
            self._send(HTTPStatus.OK, {"bananas": self.server.inventory.count})
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")

    def _change(self, status: int, take: bool) -> None:
        if self.path != "/bananas":
            self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")
            return
        try:
            count = self._read_count()
            inventory = self.server.inventory
            total = inventory.take(count) if take else inventory.add(count)
        except InventoryError as error:
            # The body may be unread (411, 413): do not reuse the connection.
            self.close_connection = True
            self._error(error.status, str(error))
            return
        self._send(status, {"bananas": total})

    def do_POST(self) -> None:
        self._change(HTTPStatus.CREATED, take=False)

    def do_DELETE(self) -> None:
        self._change(HTTPStatus.OK, take=True)

    def _not_allowed(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed")

    do_PUT = do_PATCH = _not_allowed


class BananaServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of clients would be reset.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], inventory: Inventory) -> None:
        super().__init__(address, Handler)
        self.inventory = inventory


def make_server(bind: str = "127.0.0.1", port: int = 0, initial: int = 0) -> BananaServer:
    return BananaServer((bind, port), Inventory(initial))


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise SystemExit(f"bananas: {name} must be a non-negative integer, not {value!r}")
    return int(value)


def main() -> None:
    port = _env_int("BANANAS_PORT", 8080)
    if not 0 < port < 65536:
        raise SystemExit(f"bananas: BANANAS_PORT must be 1-65535, not {port}")
    try:
        server = make_server(
            os.environ.get("BANANAS_BIND", "0.0.0.0"), port, _env_int("BANANAS_INITIAL", 0)
        )
    except InventoryError as error:
        raise SystemExit(f"bananas: BANANAS_INITIAL: {error}") from None
    # ECS stops a task with SIGTERM (then SIGKILL after stopTimeout): shut down cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write(f"bananas {__version__} listening on {server.server_address[:2]}\n")
    try:
        server.serve_forever()
    finally:
        server.server_close()
