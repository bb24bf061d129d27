"""An endpoint whose answer cannot be parsed (botocore's ResponseParserError, which is not a
BotoCoreError and quotes the raw body) fails in one line and never shows that body."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nixecs.cli import run

SECRET = "hunter2-very-secret-value"


class _Garbled(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # Auto Scaling speaks the query protocol: a torn XML answer makes botocore raise
        # ResponseParserError with the body in its message.
        body = f"<DescribeAutoScalingGroupsResponse><Result><Value>{SECRET}</Va".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def garbled_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbled)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_unparseable_answer_is_one_line_without_the_body(
    garbled_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["--endpoint-url", garbled_endpoint, "roll", "prod/web", "--no-wait"])
    captured = capsys.readouterr()
    assert code == 1
    assert SECRET not in captured.out + captured.err
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    assert "could not be parsed" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
