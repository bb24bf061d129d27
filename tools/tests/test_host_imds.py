"""The boot path's small IMDSv2 client: HTTP parsing, token refresh, retries and their bounds."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from host_fixtures import imds_fixture  # noqa: F401  (the `imds` fixture)
from nixecs.host.deadline import Deadline, DeadlineExceeded
from nixecs.host.imds import ImdsClient, ImdsError, _Retryable, parse_endpoint, parse_response
from nixecs.testing.imds import ImdsEmulator


def test_parse_endpoint() -> None:
    assert parse_endpoint("http://169.254.169.254") == ("169.254.169.254", 80)
    assert parse_endpoint("http://127.0.0.1:8169/") == ("127.0.0.1", 8169)
    assert parse_endpoint("http://[fd00:ec2::254]") == ("fd00:ec2::254", 80)
    for bad in ("https://169.254.169.254", "169.254.169.254", "http://h:99999", "http://h/x"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


def test_parse_response_content_length_and_chunked() -> None:
    assert parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello extra") == (
        200,
        b"hello",
    )
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    assert parse_response(chunked) == (200, b"hello world")
    assert parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n") == (404, b"")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    ],
    ids=["empty", "torn-headers", "short-body", "short-chunk"],
)
def test_torn_responses_are_retryable(raw: bytes) -> None:
    with pytest.raises(_Retryable):
        parse_response(raw)


def test_malformed_status_line_is_final() -> None:
    with pytest.raises(ImdsError):
        parse_response(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_expired_token_is_refreshed(imds: ImdsEmulator) -> None:
    client = ImdsClient(imds.url, attempts=1)
    assert client.instance_id() == imds.instance_id
    imds.expire_tokens()
    assert client.region() == imds.region
    assert imds.count("PUT", "/latest/api/token") == 2
    assert [s for m, _, s in imds.requests if m == "GET"] == [200, 401, 200]


def test_backoff_doubles_up_to_the_cap(imds: ImdsEmulator) -> None:
    delays: list[float] = []
    imds.fail_next(5)
    client = ImdsClient(imds.url, attempts=6, backoff=0.5, max_backoff=1.5, sleep=delays.append)
    assert client.target_lifecycle_state() == "InService"
    assert delays == [0.5, 1.0, 1.5, 1.5, 1.5]


def test_gives_up_after_the_attempts(imds: ImdsEmulator) -> None:
    delays: list[float] = []
    imds.fail_next(10)
    client = ImdsClient(imds.url, attempts=4, backoff=0.1, sleep=delays.append)
    with pytest.raises(ImdsError, match="gave up after 4 attempts"):
        client.userdata()
    assert len(delays) == 3
    assert len(imds.requests) == 4


def test_oversized_reply_is_refused() -> None:
    """Something that is not IMDS streaming forever must not fill a small instance's memory."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def flood() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)
            with contextlib.suppress(OSError):  # the client hangs up mid-flood
                connection.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (3 * 1024 * 1024))

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    client = ImdsClient(f"http://127.0.0.1:{port}", attempts=1)
    with pytest.raises(ImdsError, match="larger than"):
        client._fetch_token()
    thread.join(timeout=5)
    server.close()


# --- malformed framing (issue 12 item 1): refused, never looped on --------------------

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "body",
    [
        b"-6\r\nhello!\r\n0\r\n\r\n",  # int(b"-6", 16) == -6: once looped forever
        b"+5\r\nhello\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"5;\r\nhello\r\n0\r\n\r\n",  # an extension without a name
        b"5\r\nhello!!\r\n0\r\n\r\n",  # data longer than its size
        b"f" * 5000 + b"\r\n",  # 5,000 hex digits
        b"5\r\nhello\r\n0\r\nBad Name: x\r\n\r\n",  # trailer that is not a field line
        b"5\r\nhello\r\n0\r\n\r\nextra",  # data after the chunked body
    ],
    ids=[
        "negative",
        "plus",
        "space",
        "0x",
        "empty-ext",
        "overlong-data",
        "huge-size",
        "bad-trailer",
        "after-end",
    ],
)
def test_malformed_chunked_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(ImdsError):
        parse_response(CHUNKED + body)


def test_chunked_grammar_accepts_what_rfc9112_allows() -> None:
    body = b'005 ; a = "q\\"x" ;b\r\nhello\r\n6;n=v\r\n world\r\n000;z\r\nX-Trailer: 1\r\n\r\n'
    assert parse_response(CHUNKED + body) == (200, b"hello world")


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: -5\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",  # contradictory
        b"Content-Length: 5, 6\r\n",
        b"Content-Length: " + b"9" * 5000 + b"\r\n",  # int() would raise ValueError
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",  # smuggling signal
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Content-Length : 5\r\n",  # whitespace before the colon
        b"no colon\r\n",
    ],
    ids=["negative", "two", "list", "5000-digits", "te-and-cl", "gzip", "space-colon", "no-colon"],
)
def test_bad_framing_fields_are_refused(fields: bytes) -> None:
    with pytest.raises(ImdsError):
        parse_response(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\nhello")


def test_identical_content_lengths_are_one() -> None:
    """RFC 9110 §8.6: a repeated identical value may be taken as one."""
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5, 005\r\n\r\nhello"
    assert parse_response(raw) == (200, b"hello")


# --- a server that drips (issue 12 item 2) ----------------------------------------------


@contextlib.contextmanager
def dripping_server(interval: float) -> Iterator[str]:
    """Accepts, then sends a valid reply one byte every `interval` seconds (never finishing
    within any sane per-operation timeout's reach: each recv gets a byte in time)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def drip() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection, contextlib.suppress(OSError):
                connection.recv(4096)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"x" * 200:
                    if stop.wait(interval):
                        return
                    connection.sendall(bytes([byte]))

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()


def test_a_dripping_server_cannot_stretch_a_request() -> None:
    with dripping_server(0.2) as url:
        client = ImdsClient(url, attempts=1, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(ImdsError, match="no answer from IMDS"):
            client.userdata()
        # One attempt: each recv got a byte within 0.2 s, yet the request ends at 1 s.
        assert time.monotonic() - started < 2.0


def test_the_command_deadline_bounds_retries_and_backoff() -> None:
    with dripping_server(0.2) as url:
        client = ImdsClient(
            url, attempts=50, backoff=0.5, timeout=1.0, deadline=Deadline("apply", 2.5)
        )
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=r"2.5s deadline of `apply` ran out while"):
            client.userdata()
        assert time.monotonic() - started < 3.5
