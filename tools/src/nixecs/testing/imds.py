"""An IMDSv2 emulator on loopback, for tests, `make demo` and the NixOS VM tests.

It speaks the parts of the EC2 instance metadata service that nixecs and boto3 use:

- `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1-21600, else 400);
- every GET needs a live token in `X-aws-ec2-metadata-token` (401 without or when expired);
- `/latest/user-data` (404 when the instance has none), instance id, region, the Auto Scaling
  target lifecycle state (settable, for drain tests), the instance identity document and
  instance-profile credentials (so that boto3's default credential chain works on the "host").

Faults are scriptable: a delay before every response, the next N requests answered with
HTTP 500, the next N connections dropped without a response, and token refusal (403, as
IMDS answers when it is disabled).

    with ImdsEmulator(userdata=b"#!/bin/sh\\n") as imds:
        imds.url  # http://127.0.0.1:<port>

CLI: `python -m nixecs.testing.imds --port P --userdata FILE [--region R] [--instance-id I]
[--lifecycle-state S] [--lifecycle-state-file FILE]` prints the URL and serves until killed.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600
DEFAULT_ROLE = "nixecs-instance-role"


class ImdsEmulator:
    """A threaded IMDSv2 server on 127.0.0.1; a context manager, or `start()`/`stop()`."""

    def __init__(
        self,
        userdata: bytes | None = None,
        *,
        instance_id: str = "i-0123456789abcdef0",
        region: str = "us-east-1",
        availability_zone: str | None = None,
        account_id: str = "123456789012",
        lifecycle_state: str | None = "InService",
        lifecycle_state_file: str | None = None,
        role: str = DEFAULT_ROLE,
        credentials: tuple[str, str, str] = ("testing", "testing", "testing"),
        port: int = 0,
    ) -> None:
        self.userdata = userdata
        self.instance_id = instance_id
        self.region = region
        self.availability_zone = availability_zone or f"{region}a"
        self.account_id = account_id
        self.lifecycle_state = lifecycle_state
        # When set and present, this file's content overrides `lifecycle_state`: a NixOS VM
        # test (another process) scales the instance in with `echo Terminated > FILE`.
        self.lifecycle_state_file = lifecycle_state_file
        self.role = role
        self.credentials = credentials
        self._port = port
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Faults.
        self.delay = 0.0
        self._errors_left = 0
        self._drops_left = 0
        self.refuse_tokens = False
        # (method, path, status) of every request served, for assertions.
        self.requests: list[tuple[str, str, int]] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> ImdsEmulator:
        emulator = self

        class Handler(_Handler):
            owner = emulator

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="imds-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ImdsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- scripting ----------------------------------------------------------------------

    def fail_next(self, count: int) -> None:
        """Answer the next `count` requests (token PUTs included) with HTTP 500."""
        with self._lock:
            self._errors_left = count

    def drop_next(self, count: int) -> None:
        """Close the next `count` connections without sending a response."""
        with self._lock:
            self._drops_left = count

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid (the next GET with one gets 401)."""
        with self._lock:
            self._tokens.clear()

    def set_lifecycle_state(self, state: str | None) -> None:
        """E.g. 'Terminated' when the Auto Scaling group scales this instance in."""
        with self._lock:
            self.lifecycle_state = state

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.requests if m == method and p == path)

    # --- request handling (called from the handler threads) -------------------------------

    def _take_fault(self) -> str | None:
        with self._lock:
            if self._drops_left > 0:
                self._drops_left -= 1
                return "drop"
            if self._errors_left > 0:
                self._errors_left -= 1
                return "error"
        return None

    def _issue_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def _token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def _metadata(self, path: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of a GET for `path`."""
        text = "text/plain"
        if path == "/latest/user-data":
            if self.userdata is None:
                return 404, b"", text
            return 200, self.userdata, "application/octet-stream"
        identity = {
            "accountId": self.account_id,
            "architecture": "x86_64",
            "availabilityZone": self.availability_zone,
            "imageId": "ami-0123456789abcdef0",
            "instanceId": self.instance_id,
            "instanceType": "m6i.large",
            "pendingTime": "2026-01-01T00:00:00Z",
            "privateIp": "10.0.0.10",
            "region": self.region,
            "version": "2017-09-30",
        }
        values: dict[str, str | None] = {
            "/latest/meta-data/instance-id": self.instance_id,
            "/latest/meta-data/placement/region": self.region,
            "/latest/meta-data/placement/availability-zone": self.availability_zone,
            "/latest/meta-data/autoscaling/target-lifecycle-state": self._lifecycle_state(),
            "/latest/meta-data/iam/security-credentials/": self.role,
            "/latest/meta-data/iam/security-credentials": self.role,
            "/latest/dynamic/instance-identity/document": json.dumps(identity, indent=2),
            f"/latest/meta-data/iam/security-credentials/{self.role}": json.dumps(
                self._credentials_document()
            ),
            "/latest/meta-data/iam/info": json.dumps(
                {
                    "Code": "Success",
                    "InstanceProfileArn": f"arn:aws:iam::{self.account_id}:instance-profile/{self.role}",
                    "InstanceProfileId": "AIPAEXAMPLE",
                }
            ),
        }
        value = values.get(path)
        if value is None:
            return 404, b"", text
        if path.endswith((f"/{self.role}", "/document", "/info")):
            text = "application/json"
        return 200, value.encode(), text

    def _lifecycle_state(self) -> str | None:
        if self.lifecycle_state_file is not None:
            try:
                with open(self.lifecycle_state_file, encoding="utf-8") as handle:
                    return handle.read().strip() or None
            except FileNotFoundError:
                pass
        return self.lifecycle_state

    def _credentials_document(self) -> dict[str, str]:
        access_key, secret_key, token = self.credentials
        expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
        return {
            "Code": "Success",
            "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Type": "AWS-HMAC",
            "AccessKeyId": access_key,
            "SecretAccessKey": secret_key,
            "Token": token,
            "Expiration": expiration,
        }


class _Handler(BaseHTTPRequestHandler):
    owner: ImdsEmulator
    protocol_version = "HTTP/1.1"
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        return

    def _fault(self) -> bool:
        """Apply delay and scripted faults; True when the request was consumed by one."""
        if self.owner.delay:
            time.sleep(self.owner.delay)
        fault = self.owner._take_fault()
        if fault == "drop":
            self.owner._record(self.command, self.path, 0)
            self.close_connection = True
            # Close without a byte of response: the client sees a reset or an empty reply.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault == "error":
            self._send(500, b"Internal Server Error")
            return True
        return False

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.owner._record(self.command, self.path, status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self._fault():
            return
        if self.path != TOKEN_PATH:
            self._send(403, b"Forbidden")
            return
        if self.owner.refuse_tokens:
            self._send(403, b"Forbidden")
            return
        ttl_text = self.headers.get(TTL_HEADER)
        try:
            ttl = int(ttl_text) if ttl_text is not None else -1
        except ValueError:
            ttl = -1
        if not 1 <= ttl <= MAX_TTL:
            self._send(400, b"Bad Request")
            return
        token = self.owner._issue_token(ttl)
        self._send(200, token.encode(), extra={TTL_HEADER: str(ttl)})

    def do_GET(self) -> None:
        if self._fault():
            return
        if not self.owner._token_valid(self.headers.get(TOKEN_HEADER)):
            self._send(401, b"Unauthorized")
            return
        status, body, content_type = self.owner._metadata(self.path)
        self._send(status, body if status == 200 else b"Not Found", content_type)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m nixecs.testing.imds", description="Serve an IMDSv2 emulator on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--userdata", help="file whose bytes /latest/user-data serves (default: none, 404)"
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--instance-id", default="i-0123456789abcdef0")
    parser.add_argument("--lifecycle-state", default="InService")
    parser.add_argument(
        "--lifecycle-state-file",
        help="when this file exists, its content is the target lifecycle state (e.g. Terminated)",
    )
    args = parser.parse_args(argv)
    userdata = None
    if args.userdata:
        with open(args.userdata, "rb") as handle:
            userdata = handle.read()
    emulator = ImdsEmulator(
        userdata,
        instance_id=args.instance_id,
        region=args.region,
        lifecycle_state=args.lifecycle_state,
        lifecycle_state_file=args.lifecycle_state_file,
        port=args.port,
    ).start()
    print(emulator.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    emulator.stop()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
