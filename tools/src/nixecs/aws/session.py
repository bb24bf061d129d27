"""One place that makes boto3 clients, and turns AWS trouble into one readable line.

Every client gets the global options (region, profile, endpoint URL), botocore's adaptive
retry mode and a user agent naming nixecs. `aws_errors()` maps botocore's exceptions to
`OperationalFailure` with the service, the operation and the AWS error code; values the
caller registered as secret are scrubbed from any message first, so no secret reaches a
log line or an error.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from ..diagnostics import OperationalFailure

if TYPE_CHECKING:
    import socket

    import boto3
    from botocore.config import Config

    from ..globals import Globals
    from ..host.deadline import Deadline

MAX_ATTEMPTS = 10  # retries after the first attempt (botocore's `max_attempts` in a Config)


class CallBudget:
    """How long one AWS call may take: botocore's Config `connect_timeout`, `read_timeout`
    (seconds, per attempt) and `retries` {`mode`, `total_max_attempts` (the first attempt
    included)} — botocore 1.44.8 botocore/config.py, and
    https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html. Without
    them a call could take 60 s x 10 attempts."""

    __slots__ = ("connect", "mode", "read", "retries")

    def __init__(self, connect: float, read: float, retries: int, mode: str) -> None:
        self.connect = connect
        self.read = read
        self.retries = retries  # after the first attempt
        self.mode = mode


# Operator commands (deploy, status, roll, secret, ami): CloudFormation and EBS direct calls
# can be slow to answer, and a person is watching; adaptive mode backs off under throttling.
OPERATOR = CallBudget(connect=5, read=60, retries=MAX_ATTEMPTS, mode="adaptive")
# Host commands (secrets fetch, drain) run unattended at boot or during termination, under a
# total deadline: short timeouts, few retries, so the deadline is reached with a clear line.
HOST = CallBudget(connect=3, read=10, retries=3, mode="standard")
# An --endpoint-url is probed once, before the first call: connect, then any answer to an
# `OPTIONS *` request, each within this (issue 9 item 17: not half a minute of silence).
PROBE_SECONDS = 3.0
USER_AGENT = f"nixecs/{__version__}"
# AWS validation messages echo the offending value ("Value 'hunter2' at 'value' failed ...").
_ECHOED_VALUE = re.compile(r"Value '(?:[^'\\]|\\.)*' at", re.DOTALL)


def poll_interval(default: float) -> float:
    """Seconds between polls of a long-running AWS operation (NIXECS_POLL_INTERVAL overrides)."""
    text = os.environ.get("NIXECS_POLL_INTERVAL")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise click.UsageError(
            f"NIXECS_POLL_INTERVAL must be a number of seconds, not {text!r}"
        ) from None
    return max(value, 0.0)


class Session:
    """Clients for one run of a command, all configured the same way."""

    def __init__(
        self,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int | None = None,
        budget: CallBudget | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.region = region
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.budget = budget if budget is not None else OPERATOR
        if max_attempts is not None:
            self.max_attempts = max_attempts
        elif budget is not None:
            self.max_attempts = budget.retries
        else:
            self.max_attempts = MAX_ATTEMPTS  # read at call time: tests lower it
        # Every call first checks it, and no attempt waits longer than what remains of it.
        self.deadline = deadline
        self._probed = False
        self._boto: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.last_call: tuple[str, str] | None = None

    @classmethod
    def from_globals(cls, g: Globals, region: str | None = None) -> Session:
        """The session for a command; `region` is the fallback when --region is not given.
        Arms the command's whole deadline (watchdog.py) on first use."""
        from .watchdog import arm_for_current_command

        arm_for_current_command()
        return cls(region=g.region or region, profile=g.profile, endpoint_url=g.endpoint_url)

    @property
    def local(self) -> bool:
        """True when calls go to an endpoint of our choosing (moto server, a proxy)."""
        return self.endpoint_url is not None

    def config(self, service: str) -> Config:
        from botocore.config import Config

        options: dict[str, Any] = {
            "retries": {"mode": self.budget.mode, "total_max_attempts": self.max_attempts + 1},
            "user_agent_extra": USER_AGENT,
            "connect_timeout": self.budget.connect,
            "read_timeout": self.budget.read,
        }
        if service == "s3" and self.endpoint_url:
            options["s3"] = {"addressing_style": "path"}
        return Config(**options)

    def boto(self) -> boto3.Session:
        if self._boto is None:
            import boto3
            from botocore.exceptions import ProfileNotFound

            try:
                self._boto = boto3.Session(profile_name=self.profile, region_name=self.region)
            except ProfileNotFound as error:
                raise click.UsageError(str(error)) from None
        return self._boto

    def client(self, service: str) -> Any:
        """The client for `service` (one per session); every call is recorded for error messages."""
        with self._lock:
            if service in self._clients:
                return self._clients[service]
            from botocore.exceptions import NoRegionError

            session = self.boto()
            try:
                client = session.client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint_url,
                    config=self.config(service),
                )
            except NoRegionError:
                raise click.UsageError(
                    "no AWS region: pass --region, set AWS_REGION, or configure one in your profile"
                ) from None
            self._record_client(client)
            self._clients[service] = client
            return client

    def _record_client(self, client: Any) -> None:
        """Record each call of `client` (service, operation) for error messages; probe an
        --endpoint-url before the first call; hold every call to the deadline."""
        events = client.meta.events
        events.register(
            "before-parameter-build", self._record_call, unique_id=f"nixecs-record-{id(self)}"
        )
        if self.deadline is not None:
            events.register("before-call", self._before_call, unique_id=f"nixecs-call-{id(self)}")
        # before-send: after signing, so missing credentials are reported first.
        events.register("before-send", self._before_send, unique_id=f"nixecs-send-{id(self)}")

    def _before_call(self, model: Any = None, **_: Any) -> None:
        assert self.deadline is not None
        name = f"{model.service_model.service_name} {model.name}" if model else "an AWS call"
        self.deadline.check(f"calling {name}")

    def _before_send(self, request: Any = None, **_: Any) -> None:
        """Probe --endpoint-url before the first request. Under a deadline, each attempt
        (retries included) reads for at most what remains of it: botocore honours a
        `read_timeout` in the request context (botocore 1.44.8 httpsession.py
        `_get_request_timeout`); an exception raised here is not retried (endpoint.py
        `_do_get_response` hands it to the retry handler, which retries only transient
        connection and HTTP errors)."""
        if self.endpoint_url is not None and not self._probed:
            probe_endpoint(self.endpoint_url)
            self._probed = True
        if self.deadline is None:
            return
        left = self.deadline.remaining()
        if left <= 0:
            name = "{} {}".format(*self.last_call) if self.last_call else "an AWS call"
            raise self.deadline.expired(f"calling {name}")
        context = getattr(request, "context", None)
        if context is not None:
            context["read_timeout"] = min(self.budget.read, left)

    def _record_call(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.last_call = (model.service_model.service_name, model.name)

    def secret(self, value: str) -> str:
        """Register a value that must never appear in an error message; returns it."""
        if value:
            self._secrets.add(value)
        return value

    def scrub(self, text: str) -> str:
        for value in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        return _ECHOED_VALUE.sub("Value '***' at", text)

    def region_name(self) -> str:
        return str(self.boto().region_name or "")


def probe_endpoint(url: str, seconds: float = PROBE_SECONDS) -> None:
    """Fail in seconds, with one line, when --endpoint-url cannot be reached or does not
    answer: botocore would retry a refused connection and wait out its read timeout on a
    socket that never answers, each attempt, in silence.

    The probe is `OPTIONS *`, which asks about the server in general, not a resource
    (RFC 9110 §9.3.7): any first byte of an answer will do, whatever the status; it is no API
    call, so it neither acts nor counts as one."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    secure = parts.scheme == "https"
    try:
        host, port = parts.hostname, parts.port or (443 if secure else 80)
    except ValueError:
        raise click.UsageError(f"--endpoint-url {url}: bad port") from None
    if parts.scheme not in ("http", "https") or not host:
        raise click.UsageError(f"--endpoint-url must be an http:// or https:// URL, got {url!r}")
    try:
        with socket.create_connection((host, port), timeout=seconds) as raw:
            connection: socket.socket = raw
            if secure:
                import ssl

                # Only "does something speak TLS here": no credentials are sent on it, and
                # botocore verifies the certificate on the real calls.
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                connection = context.wrap_socket(raw, server_hostname=host)
            connection.settimeout(seconds)
            connection.sendall(
                f"OPTIONS * HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
            )
            answered = connection.recv(1)
            _drain_answer(connection, seconds)
    except TimeoutError:
        raise OperationalFailure(
            f"--endpoint-url {url}: no answer within {seconds:g}s (is it the right address and port?)"
        ) from None
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise OperationalFailure(f"cannot reach --endpoint-url {url}: {reason}") from None
    if not answered:
        raise OperationalFailure(
            f"--endpoint-url {url}: the connection was closed without an HTTP answer"
        )


def _drain_answer(connection: socket.socket, seconds: float, limit: int = 64 * 1024) -> None:
    """Read the rest of the probe's answer (at most `limit` bytes, `seconds` in all) until the
    server closes, as asked: hanging up on unread data makes the kernel send a reset, which
    the server may then report as an error of its own."""
    import time

    end = time.monotonic() + seconds
    received = 0
    with suppress(OSError):
        while received < limit and (left := end - time.monotonic()) > 0:
            connection.settimeout(left)
            chunk = connection.recv(4096)
            if not chunk:
                return
            received += len(chunk)


@contextmanager
def aws_errors(session: Session, doing: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into `OperationalFailure`: one line, no traceback, no secret."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        ParamValidationError,
        WaiterError,
    )
    from botocore.parsers import ResponseParserError

    prefix = f"{doing}: " if doing else ""
    try:
        yield
    except ResponseParserError:
        # Not a BotoCoreError; its text quotes the raw response body, which may hold a
        # secret value (GetParameters), so it is never shown.
        where = _where(session)
        raise OperationalFailure(
            prefix + f"{where}the endpoint sent a response that could not be parsed"
        ) from None
    except ClientError as error:
        raise OperationalFailure(prefix + describe_client_error(session, error)) from None
    except NoCredentialsError:
        raise OperationalFailure(
            prefix
            + "no AWS credentials: configure a profile (--profile) or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except EndpointConnectionError as error:
        raise OperationalFailure(
            prefix + f"cannot reach {error.kwargs.get('endpoint_url', 'the AWS endpoint')}"
        ) from None
    except ParamValidationError as error:
        where = _where(session)
        raise OperationalFailure(
            prefix + f"{where}invalid request: {session.scrub(str(error))}"
        ) from None
    except WaiterError as error:
        raise OperationalFailure(prefix + session.scrub(str(error))) from None
    except BotoCoreError as error:
        where = _where(session)
        raise OperationalFailure(prefix + f"{where}{session.scrub(str(error))}") from None


def _where(session: Session) -> str:
    if session.last_call is None:
        return ""
    service, operation = session.last_call
    return f"{service} {operation}: "


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def describe_client_error(session: Session, error: Any) -> str:
    code = error_code(error) or "Unknown"
    message = str(error.response.get("Error", {}).get("Message", "") or "").strip()
    operation = getattr(error, "operation_name", "") or (
        session.last_call[1] if session.last_call else "?"
    )
    service = session.last_call[0] if session.last_call else "aws"
    text = f"{service} {operation} failed: {code}"
    if message:
        text += f": {message}"
    retries = error.response.get("ResponseMetadata", {}).get("RetryAttempts")
    if retries:
        text += f" (after {retries} retries)"
    return session.scrub(text)
