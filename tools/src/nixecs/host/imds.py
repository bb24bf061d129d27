"""IMDSv2 client for the boot path: a token, then GETs, with bounded retries and backoff.

Why raw sockets and not `http.client` or `urllib.request`: `nixecs apply` has a budget of
60 ms including interpreter start (DESIGN §10), and measured here `http.client` alone costs
35-65 ms to import (it pulls in `email`), `urllib.request` more. Even the `socket` module
costs ~4 ms (it builds IntEnum classes at import), so this uses the C module `_socket`
directly: it has everything a client needs (getaddrinfo, connect with a timeout, sendall,
recv), and its errors are the same OSError/TimeoutError classes. IMDS is plain HTTP/1.1 on a
link-local address, so a small client suffices: one request per connection with
`Connection: close`, a parsed status line and headers, a body bounded by Content-Length or
chunked encoding or EOF, and no TLS, redirects or proxies (IMDS must not be proxied anyway).

Retry policy: connection failures, timeouts, truncated replies and HTTP 5xx are retried
with exponential backoff; a GET answered 401 (token expired) gets a fresh token once per
attempt; other 4xx answers are final (403 on the token PUT means IMDS is disabled or refuses
tokens). 404 is an answer (`None`), not an error: e.g. an instance without userdata.
"""

from __future__ import annotations

import _socket
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_TTL_SECONDS = 21600
# Userdata is at most 16 KB raw; the metadata we read is tiny. A reply larger than this is
# not IMDS talking: refuse it rather than fill the memory of a small instance.
MAX_RESPONSE = 2 * 1024 * 1024


class ImdsError(Exception):
    """IMDS could not be reached or refused us; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    pass


def parse_endpoint(url: str) -> tuple[str, int]:
    """`http://host[:port][/]` → (host, port); ValueError for anything else."""
    if not url.startswith("http://"):
        raise ValueError(f"IMDS endpoint must be an http:// URL, got {url!r}")
    rest = url[len("http://") :].rstrip("/")
    if not rest or "/" in rest or "@" in rest:
        raise ValueError(f"IMDS endpoint must be http://HOST[:PORT], got {url!r}")
    if rest.startswith("["):  # IPv6 literal, e.g. http://[fd00:ec2::254]
        host, _, port_text = rest[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = rest.partition(":")
    if not host or not host.isascii():
        raise ValueError(f"bad host in IMDS endpoint {url!r}")
    if not port_text:
        return host, 80
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in IMDS endpoint {url!r}")
    return host, int(port_text)


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """An HTTP/1.x response read to EOF → (status, body). _Retryable when torn."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise _Retryable(
            "incomplete HTTP response from IMDS"
            if raw
            else "IMDS closed the connection without a response"
        )
    lines = head.split(b"\r\n")
    status_line = lines[0].split(None, 2)
    if (
        len(status_line) < 2
        or not status_line[0].startswith(b"HTTP/1.")
        or not status_line[1].isdigit()
    ):
        raise ImdsError(f"IMDS sent a malformed status line {lines[0][:40]!r}")
    status = int(status_line[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return status, _dechunk(body)
    length_text = headers.get(b"content-length")
    if length_text is not None:
        if not length_text.isdigit():
            raise ImdsError("IMDS sent a bad Content-Length")
        length = int(length_text)
        if len(body) < length:
            raise _Retryable(f"truncated IMDS response ({len(body)} of {length} bytes)")
        body = body[:length]
    return status, body


def _dechunk(data: bytes) -> bytes:
    parts: list[bytes] = []
    position = 0
    while True:
        end = data.find(b"\r\n", position)
        if end < 0:
            raise _Retryable("truncated chunked IMDS response")
        size_text = data[position:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ImdsError("IMDS sent a bad chunk size") from None
        if size == 0:
            return b"".join(parts)
        start = end + 2
        if len(data) < start + size:
            raise _Retryable("truncated chunked IMDS response")
        parts.append(data[start : start + size])
        position = start + size + 2


def _connect(host: str, port: int, timeout: float) -> _socket.socket:
    """socket.create_connection, on the C module: every address in turn, the last error."""
    error: OSError | None = None
    # bytes, not str: a str host is IDNA-encoded, which imports unicodedata and stringprep.
    name = host.encode("ascii")
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        connection = _socket.socket(family, kind, proto)
        try:
            connection.settimeout(timeout)
            connection.connect(address)
            return connection
        except OSError as problem:
            error = problem
            connection.close()
    raise error if error is not None else OSError(f"no address for {host}")


class ImdsClient:
    """IMDSv2 over plain HTTP; every public call retries within its bounds."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        attempts: int = 6,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        timeout: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.host, self.port = parse_endpoint(endpoint)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self._sleep = sleep
        self._log = log
        self._token: str | None = None

    def _request(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != 80:
            host_header += f":{self.port}"
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {host_header}",
            "Connection: close",
            "Accept: */*",
        ]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if method == "PUT":
            lines.append("Content-Length: 0")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        chunks: list[bytes] = []
        received = 0
        try:
            connection = _connect(self.host, self.port, self.timeout)
            try:
                connection.sendall(request)
                while True:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    received += len(chunk)
                    if received > MAX_RESPONSE:
                        raise ImdsError(f"IMDS response larger than {MAX_RESPONSE} bytes")
            finally:
                connection.close()
        except TimeoutError:
            raise _Retryable(
                f"no answer from IMDS at {self.endpoint} within {self.timeout:g}s"
            ) from None
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise _Retryable(f"cannot reach IMDS at {self.endpoint}: {reason}") from None
        return parse_response(b"".join(chunks))

    def _fetch_token(self) -> str:
        status, body = self._request(
            "PUT",
            "/latest/api/token",
            {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        if status >= 500:
            raise _Retryable(f"IMDS token request failed with HTTP {status}")
        if status != 200 or not body:
            raise ImdsError(
                f"IMDS refused a session token (HTTP {status}); is IMDSv2 enabled for this instance?",
                status,
            )
        try:
            return body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ImdsError("IMDS sent a token that is not ASCII") from None

    def _get_once(self, path: str) -> bytes | None:
        if self._token is None:
            self._token = self._fetch_token()
        status, body = self._request("GET", path, {"X-aws-ec2-metadata-token": self._token})
        if status == 401:  # the token expired: get a new one and ask again, once
            self._token = self._fetch_token()
            status, body = self._request("GET", path, {"X-aws-ec2-metadata-token": self._token})
        if status == 200:
            return body
        if status == 404:
            return None
        if status >= 500:
            raise _Retryable(f"IMDS answered HTTP {status} for {path}")
        raise ImdsError(f"IMDS answered HTTP {status} for {path}", status)

    def get(self, path: str) -> bytes | None:
        """The body at `path`, or None when IMDS has nothing there (404). ImdsError after the
        retries are spent or on a final refusal."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return self._get_once(path)
            except _Retryable as problem:
                if attempt == self.attempts:
                    raise ImdsError(f"{problem} (gave up after {self.attempts} attempts)") from None
                if self._log is not None:
                    self._log(
                        f"{problem}; retrying in {delay:g}s (attempt {attempt}/{self.attempts})"
                    )
                self._sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_text(self, path: str) -> str | None:
        body = self.get(path)
        return None if body is None else body.decode("utf-8", "replace").strip()

    def userdata(self) -> bytes | None:
        return self.get("/latest/user-data")

    def instance_id(self) -> str:
        value = self.get_text("/latest/meta-data/instance-id")
        if not value:
            raise ImdsError("IMDS has no instance-id")
        return value

    def region(self) -> str:
        value = self.get_text("/latest/meta-data/placement/region")
        if not value:
            raise ImdsError("IMDS has no placement/region")
        return value

    def target_lifecycle_state(self) -> str | None:
        """`InService`, `Terminated`, … or None when the instance is in no Auto Scaling group."""
        return self.get_text("/latest/meta-data/autoscaling/target-lifecycle-state")
