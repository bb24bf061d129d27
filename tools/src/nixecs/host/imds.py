"""IMDSv2 client for the boot path: a token, then GETs, with bounded retries and backoff.

Why raw sockets and not `http.client` or `urllib.request`: `nixecs apply` has a budget of
60 ms including interpreter start (DESIGN §10), and measured here `http.client` alone costs
35-65 ms to import (it pulls in `email`), `urllib.request` more. Even the `socket` module
costs ~4 ms (it builds IntEnum classes at import), so this uses the C module `_socket`
directly: it has everything a client needs (getaddrinfo, connect with a timeout, sendall,
recv), and its errors are the same OSError/TimeoutError classes. For the same reason the
response grammar is checked with bytes methods, not `re` (which imports `enum`: ~8 ms); the
regular expressions below stay the grammar's statement, and tests/test_imds_fuzz.py proves the
checks equal to them on generated lines. IMDS is plain HTTP/1.1 on a
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

from ..lazyre import lazy_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .deadline import Deadline

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


class ImdsInvalid(ImdsError):
    """The reply breaks HTTP's grammar or our bounds: no retry mends that. `apply` exits 2
    for it, as for invalid userdata (issue 12 item 4)."""


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


# The response grammar of RFC 9112 (HTTP/1.1, https://www.rfc-editor.org/rfc/rfc9112), as
# regular expressions over bytes; anything else is refused, never guessed at:
#   §4    status-line = HTTP-version SP status-code SP [ reason-phrase ]; status-code = 3DIGIT
#         (RFC 9110 §15: 100..599)
#   §5    field-line = field-name ":" OWS field-value OWS; field-name = token, no whitespace
#         before the colon; RFC 9110 §5.5: a value with CR, LF or NUL is invalid
#   §7.1  chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG
#         (so never a sign: `int(b"-6", 16)` is -6, and a negative size once looped forever)
#   §7.1.1 chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
#         name a token, value a token or quoted-string
#   §7.1.2 last-chunk = 1*("0") [ chunk-ext ] CRLF, then trailer-section = *( field-line CRLF ),
#         then CRLF
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
STATUS_LINE = lazy_bytes(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?")
# Linear on purpose: OWS is stripped in Python, as a regex would backtrack over it.
FIELD_LINE = lazy_bytes(rb"(" + _TOKEN + rb"):([^\r\n\x00]*)")
CHUNK_LINE = lazy_bytes(
    rb"([0-9A-Fa-f]+)(?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*"
)
# The same grammar with bytes methods (bytes.translate(None, allowed) is empty exactly when
# every byte is allowed; bytes.isdigit() is ASCII-only).
_TOKEN_BYTES = b"!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
_REASON_BYTES = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_HEX_BYTES = b"0123456789ABCDEFabcdef"


def status_code(line: bytes) -> int | None:
    """The status code of a valid status-line (STATUS_LINE.fullmatch), else None."""
    if len(line) < 12 or line[:7] != b"HTTP/1." or line[7] not in b"01" or line[8] != 0x20:
        return None
    code = line[9:12]
    if code[0] not in b"12345" or not code[1:].isdigit():
        return None
    reason = line[12:]
    if reason and (reason[0] != 0x20 or reason[1:].translate(None, _REASON_BYTES)):
        return None
    return int(code)


def field_line(line: bytes) -> tuple[bytes, bytes] | None:
    """(name, raw value) of a valid field-line (FIELD_LINE.fullmatch), else None."""
    name, colon, value = line.partition(b":")
    if not colon or not name or name.translate(None, _TOKEN_BYTES):
        return None
    if b"\r" in value or b"\n" in value or b"\x00" in value:
        return None
    return name, value


def chunk_size_digits(line: bytes) -> bytes | None:
    """The hex digits of a valid chunk-size line (CHUNK_LINE.fullmatch), else None. A line
    with chunk extensions (never sent by IMDS) is checked by the regular expression."""
    if b";" in line:
        match = CHUNK_LINE.fullmatch(line)
        return None if match is None else match.group(1)
    if not line or line.translate(None, _HEX_BYTES):
        return None
    return line


# A chunk-size line or a trailer line longer than this, or more header lines than this
# (http.client's own limit), is not IMDS talking.
_MAX_LINE = 4096
_MAX_FIELDS = 100


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """An HTTP/1.x response read to EOF → (status, body). _Retryable when torn; ImdsError when
    it breaks the grammar (RFC 9112), which a retry would not mend."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise _Retryable(
            "incomplete HTTP response from IMDS"
            if raw
            else "IMDS closed the connection without a response"
        )
    lines = head.split(b"\r\n", _MAX_FIELDS + 1)
    if len(lines) > _MAX_FIELDS + 1:
        raise ImdsInvalid(f"IMDS sent more than {_MAX_FIELDS} header lines")
    status = status_code(lines[0])
    if status is None:
        raise ImdsInvalid(f"IMDS sent a malformed status line {lines[0][:40]!r}")
    if status < 200:
        raise ImdsInvalid(f"IMDS sent an interim response (HTTP {status}) to a plain request")
    fields: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        field = field_line(line)
        if field is None:
            raise ImdsInvalid(f"IMDS sent a malformed header line {line[:40]!r}")
        fields.setdefault(field[0].lower(), []).append(field[1].strip(b" \t"))
    coding = fields.get(b"transfer-encoding")
    lengths = fields.get(b"content-length")
    if coding is not None:
        # §6.1: a sender MUST NOT send Content-Length with Transfer-Encoding; §6.3: such a
        # message "ought to be handled as an error". We decode no coding but chunked.
        if lengths is not None:
            raise ImdsInvalid("IMDS sent both Transfer-Encoding and Content-Length")
        codings = [c.strip().lower() for value in coding for c in value.split(b",")]
        if codings != [b"chunked"]:
            raise ImdsInvalid(
                f"IMDS sent an unsupported Transfer-Encoding {b', '.join(codings)[:40]!r}"
            )
        return status, _dechunk(body)
    if lengths is not None:
        return status, body[: _content_length(lengths, len(body))]
    return status, body  # §6.3 rule 8: the body runs to the end of the connection


def _content_length(values: list[bytes], received: int) -> int:
    """§6.3 rule 5 and RFC 9110 §8.6: Content-Length = 1*DIGIT; several fields or a list are
    valid only when every value is the same; anything else is unrecoverable."""
    items = [item.strip() for value in values for item in value.split(b",")]
    if not all(item.isdigit() for item in items):  # [0-9]+
        raise ImdsInvalid("IMDS sent a bad Content-Length")
    # Compared as digit strings: never int() thousands of digits (Python refuses more than
    # 4300); anything longer than MAX_RESPONSE's digits is too large anyway.
    numbers = {item.lstrip(b"0") or b"0" for item in items}
    if len(numbers) != 1:
        raise ImdsInvalid("IMDS sent contradictory Content-Lengths")
    digits = numbers.pop()
    if len(digits) > len(str(MAX_RESPONSE)) or int(digits) > MAX_RESPONSE:
        raise ImdsInvalid(f"IMDS announced a body larger than {MAX_RESPONSE} bytes")
    length = int(digits)
    if received < length:
        raise _Retryable(f"truncated IMDS response ({received} of {length} bytes)")
    return length


def _line(data: bytes, position: int) -> tuple[bytes, int]:
    """The line at `position` (without CRLF) and the position after it."""
    end = data.find(b"\r\n", position, position + _MAX_LINE + 2)
    if end < 0:
        if len(data) - position <= _MAX_LINE + 1:
            raise _Retryable("truncated chunked IMDS response")
        raise ImdsInvalid("IMDS sent an overlong line in a chunked body")
    return data[position:end], end + 2


def _dechunk(data: bytes) -> bytes:
    """RFC 9112 §7.1: every step moves forward, every size is bounded, every CRLF checked."""
    parts: list[bytes] = []
    position = 0
    while True:
        line, start = _line(data, position)
        size_digits = chunk_size_digits(line)
        if size_digits is None:
            raise ImdsInvalid(f"IMDS sent a bad chunk-size line {line[:40]!r}")
        digits = size_digits.lstrip(b"0")
        if len(digits) > 8 or (digits and int(digits, 16) > MAX_RESPONSE):
            raise ImdsInvalid(f"IMDS announced a chunk larger than {MAX_RESPONSE} bytes")
        size = int(digits, 16) if digits else 0
        if size == 0:
            break
        after = start + size
        if len(data) < after + 2:
            raise _Retryable("truncated chunked IMDS response")
        if data[after : after + 2] != b"\r\n":
            raise ImdsInvalid("IMDS sent chunk data longer than its chunk-size")
        parts.append(data[start:after])
        position = after + 2
    # §7.1.2: the trailer section, field lines up to an empty line, then nothing more.
    while True:
        line, start = _line(data, start)
        if not line:
            break
        if field_line(line) is None:
            raise ImdsInvalid(f"IMDS sent a malformed trailer line {line[:40]!r}")
    if start != len(data):
        raise ImdsInvalid("IMDS sent data after the end of a chunked body")
    return b"".join(parts)


def _connect(host: str, port: int, time_left: Callable[[], float]) -> _socket.socket:
    """socket.create_connection, on the C module: every address in turn, the last error;
    each connect waits at most what `time_left()` gives."""
    error: OSError | None = None
    # bytes, not str: a str host is IDNA-encoded, which imports unicodedata and stringprep.
    # getaddrinfo itself cannot be bounded; IMDS is an address literal, so it does not block.
    name = host.encode("ascii")
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        connection = _socket.socket(family, kind, proto)
        try:
            connection.settimeout(time_left())
            connection.connect(address)
            return connection
        except OSError as problem:
            error = problem
            connection.close()
    raise error if error is not None else OSError(f"no address for {host}")


class ImdsClient:
    """IMDSv2 over plain HTTP; every public call retries within its bounds.

    `timeout` bounds each request as a whole (connect, send and every read: a server that
    drips one byte a second cannot stretch it); `deadline`, when given, bounds everything,
    retries and backoff included, and raises DeadlineExceeded when it runs out."""

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
        deadline: Deadline | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.host, self.port = parse_endpoint(endpoint)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.deadline = deadline
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
        monotonic = time.monotonic
        request_end = monotonic() + self.timeout
        deadline = self.deadline

        def time_left() -> float:
            """What remains of this request and of the command; TimeoutError when nothing."""
            left = request_end - monotonic()
            if deadline is not None:
                left = min(left, deadline.remaining())
            if left <= 0:
                raise TimeoutError
            return left

        try:
            connection = _connect(self.host, self.port, time_left)
            try:
                connection.settimeout(time_left())
                connection.sendall(request)
                while True:
                    connection.settimeout(time_left())
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    received += len(chunk)
                    if received > MAX_RESPONSE:
                        raise ImdsInvalid(f"IMDS response larger than {MAX_RESPONSE} bytes")
            finally:
                connection.close()
        except TimeoutError:
            if deadline is not None and deadline.remaining() <= 0:
                raise deadline.expired(f"waiting for IMDS ({method} {path})") from None
            raise _Retryable(
                f"no answer from IMDS at {self.endpoint} within {self.timeout:g}s (the whole request)"
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
                if self.deadline is not None and self.deadline.remaining() <= delay:
                    raise self.deadline.expired(f"retrying IMDS {path} ({problem})") from None
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
