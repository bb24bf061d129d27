"""A fault-injecting HTTP proxy on loopback, for testing retries and idempotency.

Point a client's endpoint URL at the proxy; it forwards every request to the upstream
(a moto server) and answers a seeded fraction of them with a fault instead:

- `throttle`: 400 with the protocol's throttling error (JSON `ThrottlingException`, CBOR for
  rpc-v2-cbor, query XML `Throttling`, EC2 `RequestLimitExceeded`) or S3's 503 `SlowDown`;
- `5xx`: 500/502/503 before the request reaches the upstream;
- `lost`: the request IS forwarded (the upstream acts on it) and the client still gets a 500
  — the case that makes non-idempotent calls create things twice;
- `stall`: the request is read and never answered (the connection stays open until the
  proxy stops) — a peer that accepted and hung;
- `drip`: the request IS forwarded, and its answer sent one byte every `drip_interval`
  seconds — each byte renews a client's read timeout, so only a total deadline ends it.

Neither `stall` nor `drip` is in the default kinds: name them.

Faults are bounded: never more than `max_consecutive` in a row for the same request, and
never more than `max_faults` in total (None: unbounded). `stats` counts what happened.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",
}


@dataclass
class FaultPlan:
    rate: float = 0.2
    seed: int = 0
    kinds: tuple[str, ...] = ("throttle", "5xx", "lost")
    max_consecutive: int = 3
    max_faults: int | None = None
    drip_interval: float = 1.0


@dataclass
class Stats:
    forwarded: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())


def _cbor_text(value: str) -> bytes:
    data = value.encode()
    n = len(data)
    if n < 24:
        head = bytes([0x60 | n])
    elif n < 256:
        head = bytes([0x78, n])
    else:
        head = bytes([0x79]) + n.to_bytes(2, "big")
    return head + data


def _cbor_error(code: str, message: str) -> bytes:
    return (
        bytes([0xA2])
        + _cbor_text("__type")
        + _cbor_text(code)
        + _cbor_text("message")
        + _cbor_text(message)
    )


def protocol_of(headers: dict[str, str], body: bytes) -> str:
    """json | cbor | query | ec2 | rest (S3 and other REST APIs), from the request alone."""
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("smithy-protocol") == "rpc-v2-cbor" or "cbor" in lower.get("content-type", ""):
        return "cbor"
    if "x-amz-target" in lower or "amz-json" in lower.get("content-type", ""):
        return "json"
    if lower.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        params = urllib.parse.parse_qs(body.decode(errors="replace"))
        auth = lower.get("authorization", "")
        if "/ec2/" in auth:
            return "ec2"
        return "query" if "Action" in params else "rest"
    return "rest"


def operation_of(headers: dict[str, str], body: bytes, method: str, path: str) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    if "x-amz-target" in lower:
        return lower["x-amz-target"].rsplit(".", 1)[-1]
    if path.startswith("/service/") and "/operation/" in path:  # rpc-v2-cbor
        return path.rsplit("/", 1)[-1]
    if lower.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action")
        if action:
            return action[0]
    query = urllib.parse.urlsplit(path).query
    tail = f"?{query.split('=')[0]}" if query else ""
    return f"{method} {urllib.parse.urlsplit(path).path.count('/')}{tail}"


def fault_response(
    kind: str, protocol: str, rng: random.Random
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an injected fault as the service would send it."""
    if kind == "throttle":
        if protocol == "json":
            body = b'{"__type":"ThrottlingException","message":"Rate exceeded (fault proxy)"}'
            return 400, {"Content-Type": "application/x-amz-json-1.1"}, body
        if protocol == "cbor":
            return (
                400,
                {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                _cbor_error("ThrottlingException", "Rate exceeded (fault proxy)"),
            )
        if protocol == "query":
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded (fault proxy)</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
            )
            return 400, {"Content-Type": "text/xml"}, body
        if protocol == "ec2":
            body = (
                b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                b"<Message>Request limit exceeded (fault proxy)</Message></Error></Errors>"
                b"<RequestID>fault</RequestID></Response>"
            )
            return 503, {"Content-Type": "text/xml"}, body
        body = (
            b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate (fault proxy)</Message>"
            b"<RequestId>fault</RequestId></Error>"
        )
        return 503, {"Content-Type": "application/xml"}, body
    status = rng.choice((500, 502, 503)) if kind == "5xx" else 500
    if protocol == "json":
        return (
            status,
            {"Content-Type": "application/x-amz-json-1.1"},
            b'{"__type":"InternalFailure","message":"fault proxy"}',
        )
    if protocol == "cbor":
        return (
            status,
            {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
            _cbor_error("InternalFailure", "fault proxy"),
        )
    return (
        status,
        {"Content-Type": "text/xml"},
        b"<Error><Code>InternalError</Code><Message>fault proxy</Message></Error>",
    )


class FaultProxy:
    """`with FaultProxy(upstream_url, FaultPlan(rate=0.2, seed=1)) as proxy: proxy.url`"""

    def __init__(
        self, upstream: str, plan: FaultPlan | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy forwards to loopback only")
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.plan = plan or FaultPlan()
        self.stats = Stats()
        self.enabled = True
        self._rng = random.Random(self.plan.seed)
        self._lock = threading.Lock()
        self._streak: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faultproxy", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # releases stalled and dripping answers
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _decide(self, key: str) -> str | None:
        """The fault for this request, or None to pass it through (seeded, bounded)."""
        with self._lock:
            plan = self.plan
            roll = self._rng.random()
            kind = self._rng.choice(plan.kinds) if plan.kinds else None
            if not self.enabled or kind is None or roll >= plan.rate:
                self._streak[key] = 0
                return None
            if self._streak[key] >= plan.max_consecutive:
                self._streak[key] = 0
                return None
            if plan.max_faults is not None and self.stats.total_faults >= plan.max_faults:
                return None
            self._streak[key] += 1
            self.stats.faults[kind] += 1
            return kind

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave in separate writes

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                operation = operation_of(headers, body, self.command, self.path)
                key = hashlib.sha256(f"{self.command} {self.path}".encode() + body).hexdigest()
                with proxy._lock:
                    proxy.stats.operations[operation] += 1
                kind = proxy._decide(key)
                if kind == "stall":
                    proxy._stopping.wait()
                    self.close_connection = True
                    return
                if kind == "drip":
                    self._drip(*proxy._forward(self.command, self.path, headers, body))
                    return
                if kind == "lost":
                    try:
                        proxy._forward(self.command, self.path, headers, body)
                    finally:
                        with proxy._lock:
                            proxy.stats.forwarded += 1
                if kind is not None:
                    with proxy._lock:
                        rng = random.Random(proxy._rng.random())
                    status, extra, payload = fault_response(kind, protocol_of(headers, body), rng)
                    self._reply(status, list(extra.items()), payload)
                    return
                try:
                    status, response_headers, payload = proxy._forward(
                        self.command, self.path, headers, body
                    )
                except OSError:
                    self._reply(502, [("Content-Type", "text/plain")], b"upstream unreachable")
                    return
                with proxy._lock:
                    proxy.stats.forwarded += 1
                dropped = HOP_BY_HOP | {"content-length", "server", "date"}
                kept = [(k, v) for k, v in response_headers if k.lower() not in dropped]
                # a HEAD answer has no body but keeps the length of the object it describes
                head_length = next(
                    (v for k, v in response_headers if k.lower() == "content-length"), None
                )
                self._reply(status, kept, payload, head_length if self.command == "HEAD" else None)

            def _drip(
                self, status: int, response_headers: list[tuple[str, str]], payload: bytes
            ) -> None:
                kept = [
                    f"{k}: {v}\r\n"
                    for k, v in response_headers
                    if k.lower() not in HOP_BY_HOP | {"content-length"}
                ]
                raw = (
                    f"HTTP/1.1 {status} OK\r\n{''.join(kept)}"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                ).encode() + payload
                self.close_connection = True
                for index in range(len(raw)):
                    if proxy._stopping.wait(proxy.plan.drip_interval):
                        return
                    try:
                        self.wfile.write(raw[index : index + 1])
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return

            def _reply(
                self,
                status: int,
                headers: list[tuple[str, str]],
                payload: bytes,
                length: str | None = None,
            ) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header(
                    "Content-Length", length if length is not None else str(len(payload))
                )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        return Handler
