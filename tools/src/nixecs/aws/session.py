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
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from ..diagnostics import OperationalFailure

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

    from ..globals import Globals

MAX_ATTEMPTS = 10  # retries after the first attempt (botocore's `max_attempts` in a Config)
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
    ) -> None:
        self.region = region
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.max_attempts = MAX_ATTEMPTS if max_attempts is None else max_attempts
        self._boto: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.last_call: tuple[str, str] | None = None

    @classmethod
    def from_globals(cls, g: Globals, region: str | None = None) -> Session:
        """The session for a command; `region` is the fallback when --region is not given."""
        return cls(region=g.region or region, profile=g.profile, endpoint_url=g.endpoint_url)

    @property
    def local(self) -> bool:
        """True when calls go to an endpoint of our choosing (moto server, a proxy)."""
        return self.endpoint_url is not None

    def config(self, service: str) -> Config:
        from botocore.config import Config

        options: dict[str, Any] = {
            "retries": {"mode": "adaptive", "max_attempts": self.max_attempts},
            "user_agent_extra": USER_AGENT,
            "connect_timeout": 10,
            "read_timeout": 60,
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
        """Record each call of `client` (service, operation) for error messages."""
        client.meta.events.register(
            "before-parameter-build", self._record_call, unique_id=f"nixecs-record-{id(self)}"
        )

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
