"""Fuzz the boot path's IMDS client against a raw-socket server on 127.0.0.1 (port 0).

Whatever the server sends — status lines, header fields, several or contradictory
Content-Lengths, chunk sizes (negative, huge, with extensions), trailers, torn replies — a
call ends in a result or a clean ImdsError/DeadlineExceeded, within its deadline and in
bounded memory. A well-formed reply, Content-Length or chunked, gives back the exact body.
Real sockets, the real client: nothing is faked.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixecs.host.deadline import Deadline, DeadlineExceeded
from nixecs.host.imds import MAX_RESPONSE, ImdsClient, ImdsError

TOKEN_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ntoken"
# The client's total deadline in each example, and what we allow on top of it (thread
# scheduling on a loaded 2-core machine). The watchdog turns a hang into a failure.
DEADLINE = 2.0
SLACK = 1.5
# The replies are at most a few KB; the client may hold MAX_RESPONSE plus its copies.
MEMORY_LIMIT = 4 * MAX_RESPONSE


class RawServer:
    """Answers a token PUT with a token, every GET with `reply` (then closes)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.reply = b""
        self.token_reply = TOKEN_REPLY
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                with contextlib.suppress(OSError):
                    request = b""
                    while b"\r\n\r\n" not in request:
                        data = connection.recv(4096)
                        if not data:
                            break
                        request += data
                    reply = self.token_reply if request.startswith(b"PUT ") else self.reply
                    connection.sendall(reply)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    raw = RawServer()
    yield raw
    raw.close()


class Hung(Exception):
    pass


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """A parser that loops forever (the negative chunk size did) fails instead of hanging."""

    def fire(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call(server: RawServer) -> tuple[bytes | Exception | None, float, int]:
    """One userdata GET: its outcome, the seconds it took, the peak memory it allocated."""
    client = ImdsClient(
        server.url,
        attempts=2,
        backoff=0.0,
        timeout=1.0,
        sleep=lambda _: None,
        deadline=Deadline("fuzz", DEADLINE),
    )
    tracemalloc.start()
    started = time.monotonic()
    try:
        with watchdog(DEADLINE + SLACK):
            try:
                outcome: bytes | Exception | None = client.userdata()
            except (ImdsError, DeadlineExceeded) as error:
                outcome = error
        return outcome, time.monotonic() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- building replies -------------------------------------------------------------------

HEX = "0123456789abcdefABCDEF"
numbers = st.one_of(
    st.integers(min_value=0, max_value=40).map(str),
    st.integers(min_value=-40, max_value=-1).map(str),
    st.sampled_from(["", " ", "+5", "0x10", "1e3", "5 5", "٣", "9" * 5000, "0" * 60 + "5"]),
    st.integers(min_value=0, max_value=2**70).map(str),
)
chunk_sizes = st.one_of(
    st.integers(min_value=0, max_value=64).map(lambda n: f"{n:x}"),
    st.integers(min_value=-64, max_value=-1).map(lambda n: f"-{-n:x}"),
    st.sampled_from(["", " 5", "5 ", "+5", "0x5", "g", "f" * 5000, "0" * 100 + "3", "-0"]),
    st.text(alphabet=HEX, min_size=1, max_size=20),
)
extensions = st.sampled_from(["", ";a", ";a=b", ' ; a = "q\\"x"', ";", ";=", ";a=", ';a="open'])
field_names = st.sampled_from(
    ["Content-Length", "Transfer-Encoding", "content-length", "X-A", "Trailer", "Bad Name", ""]
)
field_values = st.one_of(
    numbers,
    st.sampled_from(
        ["chunked", "gzip, chunked", "chunked, chunked", "identity", "CHUNKED", "5, 5"]
    ),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=20),
)
status_lines = st.one_of(
    st.sampled_from(
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200",
            "HTTP/1.0 404 Not Found",
            "HTTP/1.1 500 Oops",
            "HTTP/1.1 401 Unauthorized",
            "HTTP/1.1 100 Continue",
            "HTTP/1.1 999 What",
            "HTTP/2 200 OK",
            "HTTP/1.1 -200 OK",
            "HTTP/1.1 2000 OK",
            "ICY 200 OK",
            "",
        ]
    ),
    st.text(alphabet=st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=30),
)


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        size = draw(chunk_sizes)
        data = draw(st.binary(max_size=40))
        out += (
            f"{size}{draw(extensions)}\r\n".encode()
            + data
            + draw(st.sampled_from([b"\r\n", b"", b"\n", b"xx"]))
        )
    out += f"{draw(st.sampled_from(['0', '000', '']))}{draw(extensions)}\r\n".encode()
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        out += f"{draw(field_names)}: {draw(field_values)}\r\n".encode("utf-8", "replace")
    out += draw(st.sampled_from([b"\r\n", b"", b"\r\nextra"]))
    return out


@st.composite
def replies(draw: st.DrawFn) -> bytes:
    head = draw(status_lines).encode("latin-1") + b"\r\n"
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        name, value = draw(field_names), draw(field_values)
        sep = draw(st.sampled_from([": ", ":", " : ", ":\t"]))
        head += f"{name}{sep}{value}\r\n".encode("utf-8", "replace")
    body = draw(st.one_of(chunked_bodies(), st.binary(max_size=200)))
    raw = head + draw(st.sampled_from([b"\r\n", b"\n", b""])) + body
    cut = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=len(raw))))
    return raw if cut is None else raw[:cut]


@st.composite
def framed_replies(draw: st.DrawFn) -> bytes:
    """A valid status line and framing headers, so the fuzz reaches the body parsers: chunked
    bodies with bad sizes and trailers, or several (contradictory) Content-Lengths."""
    if draw(st.booleans()):
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        body = draw(chunked_bodies())
    else:
        head = b"HTTP/1.1 200 OK\r\n"
        for value in draw(st.lists(numbers, min_size=1, max_size=3)):
            head += f"Content-Length: {value}\r\n".encode()
        body = draw(st.binary(max_size=60))
    raw = head + b"\r\n" + body
    cut = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=len(raw))))
    return raw if cut is None else raw[:cut]


def check_bounded(outcome: object, seconds: float, peak: int) -> None:
    assert seconds <= DEADLINE + SLACK, f"took {seconds:.1f}s"
    assert peak <= MEMORY_LIMIT, f"allocated {peak} bytes"
    assert outcome is None or isinstance(outcome, bytes | ImdsError | DeadlineExceeded)


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(reply=replies())
def test_any_reply_ends_cleanly_in_bounded_time_and_memory(server: RawServer, reply: bytes) -> None:
    server.token_reply = TOKEN_REPLY
    server.reply = reply
    check_bounded(*call(server))


@SETTINGS
@given(reply=framed_replies())
def test_any_body_framing_ends_cleanly(server: RawServer, reply: bytes) -> None:
    server.token_reply = TOKEN_REPLY
    server.reply = reply
    check_bounded(*call(server))


@SETTINGS
@given(reply=replies())
def test_any_token_reply_ends_cleanly(server: RawServer, reply: bytes) -> None:
    server.token_reply = reply
    server.reply = TOKEN_REPLY
    try:
        check_bounded(*call(server))
    finally:
        server.token_reply = TOKEN_REPLY


@SETTINGS
@given(
    body=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=1, max_value=3000), max_size=6),
    upper=st.booleans(),
    zeros=st.integers(min_value=0, max_value=3),
)
def test_well_formed_chunked_reply_gives_the_body(
    server: RawServer, body: bytes, cuts: list[int], upper: bool, zeros: int
) -> None:
    pieces, start = [], 0
    for cut in sorted({c for c in cuts if c < len(body)}):
        pieces.append(body[start:cut])
        start = cut
    pieces.append(body[start:])
    encoded = b"".join(
        ("0" * zeros + (f"{len(p):X}" if upper else f"{len(p):x}")).encode()
        + b";n=v\r\n"
        + p
        + b"\r\n"
        for p in pieces
        if p
    )
    server.reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded + b"0\r\nX-T: 1\r\n\r\n"
    )
    outcome, seconds, peak = call(server)
    check_bounded(outcome, seconds, peak)
    assert outcome == body


@SETTINGS
@given(body=st.binary(max_size=3000), twice=st.booleans())
def test_well_formed_content_length_reply_gives_the_body(
    server: RawServer, body: bytes, twice: bool
) -> None:
    length = f"Content-Length: {len(body)}\r\n".encode()
    server.reply = b"HTTP/1.1 200 OK\r\n" + length * (2 if twice else 1) + b"\r\n" + body
    outcome, seconds, peak = call(server)
    check_bounded(outcome, seconds, peak)
    assert outcome == body


# The grammar checks are bytes methods (no `re` on the boot path); each must answer exactly
# what its regular expression (the grammar's statement in nixecs.host.imds) answers.
_LINE_BYTES = b'HTP/1.0295 \t:;="\\!#~|aZz-\r\n\x00\x7f\x80\xff\x1f'
_LINE_SEEDS = [
    b"HTTP/1.1 200",
    b"HTTP/1.0 599 OK",
    b"HTTP/1.1 100",
    b"Content-Length:",
    b"1f;a=",
    b"0",
]
lines = st.binary(max_size=16) | st.builds(
    lambda seed, tail: seed + tail,
    st.sampled_from(_LINE_SEEDS),
    st.lists(st.sampled_from(list(_LINE_BYTES)), max_size=10).map(bytes),
)


@settings(max_examples=3000, deadline=None)
@given(lines)
def test_grammar_checks_agree_with_the_regular_expressions(line: bytes) -> None:
    from nixecs.host import imds

    status = imds.STATUS_LINE.fullmatch(line)
    assert imds.status_code(line) == (int(status.group(1)) if status else None)
    field = imds.FIELD_LINE.fullmatch(line)
    assert imds.field_line(line) == (field.group(1, 2) if field else None)
    chunk = imds.CHUNK_LINE.fullmatch(line)
    assert imds.chunk_size_digits(line) == (chunk.group(1) if chunk else None)


def test_boot_path_grammar_imports_no_re() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from nixecs.host import imds; "
        "r = imds.parse_response(b'HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
        "3\\r\\nabc\\r\\n0\\r\\nX-T: 1\\r\\n\\r\\n'); "
        "print(r, 're' in sys.modules, 'enum' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(200, b'abc') False False"
