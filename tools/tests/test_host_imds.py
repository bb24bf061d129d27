"""The boot path's small IMDSv2 client: HTTP parsing, token refresh, retries and their bounds."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from host_fixtures import imds_fixture  # noqa: F401  (the `imds` fixture)
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
