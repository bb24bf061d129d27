"""`nixecs secret put|get|rm`: SecureString parameters in SSM Parameter Store.

Values come from stdin or a hidden prompt, never from argv; `get` shows metadata unless
`--reveal` is given; no value ever reaches a log line or an error message.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

import click

from ..settings import PARAMETER_RE, PARAMETER_RULE
from .session import Session, aws_errors, error_code

ALPHABET = string.ascii_letters + string.digits
GENERATED_LENGTH = 32


def check_name(name: str) -> str:
    """The parameter name, if it obeys the rule the fleet's `secrets:` use (one rule, in
    nixecs.settings); click.BadParameter (exit 2) otherwise."""
    if not PARAMETER_RE.fullmatch(name):
        raise click.BadParameter(f"{name!r} is not valid: {PARAMETER_RULE}", param_hint="NAME")
    return name


def generate_password(length: int = GENERATED_LENGTH) -> str:
    """A random password from the `secrets` module: letters and digits, at least 16 characters."""
    if length < 16:
        raise ValueError("a generated password has at least 16 characters")
    while True:
        value = "".join(secrets.choice(ALPHABET) for _ in range(length))
        # at least one of each class, so it passes the usual password rules
        if (
            any(c.islower() for c in value)
            and any(c.isupper() for c in value)
            and any(c.isdigit() for c in value)
        ):
            return value


@dataclass(frozen=True)
class PutResult:
    name: str
    action: str  # created | updated | unchanged | exists
    version: int | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "version": self.version}


def _current(ssm: Any, name: str, decrypt: bool) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(ssm.get_parameter(Name=name, WithDecryption=decrypt)["Parameter"])
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            return None
        raise


def tags_of(session: Session, name: str) -> dict[str, str]:
    """The tags of parameter NAME (ListTagsForResource; {} when it has none)."""
    ssm = session.client("ssm")
    with aws_errors(session, f"secret {name}"):
        found = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
    return {str(t["Key"]): str(t["Value"]) for t in found.get("TagList", [])}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _add_tags(ssm: Any, name: str, tags: dict[str, str]) -> None:
    """Tag an existing parameter. PutParameter refuses Tags together with Overwrite=true
    ("tags and overwrite can't be used together ... To update tags for an existing
    parameter, please use AddTagsToResource": the AWS error, which moto 5.2
    ssm/models.py put_parameter reproduces), and its API reference says "To add tags to an
    existing Systems Manager parameter, use the AddTagsToResource operation"
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
    Adding a tag that is already there is no change (AddTagsToResource adds or overwrites)."""
    if tags:
        ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=_tag_list(tags))


def put(
    session: Session,
    name: str,
    value: str | None,
    *,
    key_id: str | None = None,
    tags: dict[str, str] | None = None,
    untag: tuple[str, ...] = (),
) -> PutResult:
    """Store `value` as a SecureString; `value=None` means generate one only if none exists.
    `tags` (the fleet's marks, Fleet.parameter_tags) go on a parameter this call creates, and
    onto an existing one it writes; the keys in `untag` (a mark the fleet no longer gives
    it) are removed from an existing one it writes."""
    from botocore.exceptions import ClientError

    ssm = session.client("ssm")
    tags = tags or {}
    with aws_errors(session, f"secret {name}"):
        if value is None:
            existing = _current(ssm, name, decrypt=False)
            if existing is not None:
                return PutResult(name, "exists", int(existing["Version"]))
            generated = session.secret(generate_password())
            args: dict[str, Any] = {
                "Name": name,
                "Value": generated,
                "Type": "SecureString",
                "Overwrite": False,
            }
            if tags:
                args["Tags"] = _tag_list(tags)
            if key_id:
                args["KeyId"] = key_id
            try:
                response = ssm.put_parameter(**args)
            except ClientError as error:
                # A retried request that had already succeeded, or someone else was quicker:
                # either way a value exists now and we must not replace it.
                if error_code(error) != "ParameterAlreadyExists":
                    raise
                existing = _current(ssm, name, decrypt=True)
                if existing is None:
                    raise
                # our own request, retried after its answer was lost, or someone else's value
                ours = existing.get("Value") == generated
                return PutResult(name, "created" if ours else "exists", int(existing["Version"]))
            return PutResult(name, "created", int(response["Version"]))

        session.secret(value)
        result = _put_value(session, ssm, name, value, key_id, tags)
        # Also after a create: the version written may be an overwrite of a parameter created
        # meanwhile (ParameterAlreadyExists, then Overwrite=true), which carried no tags.
        _add_tags(ssm, name, tags)
        if untag:
            # AddTagsToResource adds or overwrites, never removes: a mark the fleet stopped
            # giving (nixecs:cluster once a second cluster reads the parameter) goes through
            # RemoveTagsFromResource (SSM API reference), or it would name one cluster still.
            ssm.remove_tags_from_resource(
                ResourceType="Parameter", ResourceId=name, TagKeys=list(untag)
            )
        return result


# botocore 1.44.8, botocore/retries/standard.py: TransientRetryableChecker (these codes, HTTP
# 500/502/503/504, connection and HTTP client errors) and ThrottledRetryableChecker (these
# codes) are what its standard and adaptive modes retry; `_put_value` retries the same.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)
RETRY_BASE_SECONDS = 0.2
RETRY_CAP_SECONDS = 10.0


def _transient(error: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(error, (ConnectionError, HTTPClientError)):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status in (500, 502, 503, 504) or error_code(error) in TRANSIENT_CODES
    return False


def _put_value(
    session: Session,
    ssm: Any,
    name: str,
    value: str,
    key_id: str | None,
    tags: dict[str, str],
) -> PutResult:
    """PutParameter with a compare before every attempt, so a retry never adds a version.

    botocore would retry a PutParameter whose answer was lost (it acted, then a 5xx or a
    dropped connection) by sending it again, and each Overwrite=True write is a new version
    of the same value. So the write goes through a client that makes exactly one attempt,
    and this loop retries instead: it reads the stored value first (GetParameter is
    read-only, so botocore may retry that freely) and stops as soon as the value is there.
    """
    import random
    import time

    from botocore.exceptions import BotoCoreError, ClientError

    once = Session(
        region=session.region,
        profile=session.profile,
        endpoint_url=session.endpoint_url,
        max_attempts=0,  # botocore: retries after the first attempt
    ).client("ssm")
    existed: bool | None = None
    written = False
    attempts = session.max_attempts + 1
    for attempt in range(attempts):
        existing = _current(ssm, name, decrypt=True)
        if existed is None:
            existed = existing is not None
        if (
            existing is not None
            and existing.get("Type") == "SecureString"
            and existing.get("Value") == value
        ):
            # Ours (an attempt whose answer was lost, or a concurrent identical put) or there
            # before we started: either way the stored value is the one asked for.
            action = ("updated" if existed else "created") if written else "unchanged"
            return PutResult(name, action, int(existing["Version"]))
        args: dict[str, Any] = {
            "Name": name,
            "Value": value,
            "Type": "SecureString",
            "Overwrite": existing is not None,
        }
        if existing is None and tags:  # never with Overwrite (see _add_tags)
            args["Tags"] = _tag_list(tags)
        if key_id:
            args["KeyId"] = key_id
        written = True
        try:
            response = once.put_parameter(**args)
        except ClientError as error:
            # Created concurrently (or by our lost attempt): compare again, then overwrite
            # only if the value differs.
            if error_code(error) != "ParameterAlreadyExists" and not _transient(error):
                raise
            if attempt == attempts - 1:
                raise
        except BotoCoreError as error:
            if not _transient(error) or attempt == attempts - 1:
                raise
        else:
            return PutResult(name, "updated" if existed else "created", int(response["Version"]))
        time.sleep(random.uniform(0, min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt)))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def get(session: Session, name: str, *, reveal: bool) -> dict[str, Any] | None:
    """The parameter's metadata (and its value only with `reveal`); None when it does not exist."""
    ssm = session.client("ssm")
    with aws_errors(session, f"secret {name}"):
        parameter = _current(ssm, name, decrypt=reveal)
    if parameter is None:
        return None
    info: dict[str, Any] = {
        "name": parameter["Name"],
        "type": parameter.get("Type"),
        "version": parameter.get("Version"),
        "last_modified": _iso(parameter.get("LastModifiedDate")),
        "arn": parameter.get("ARN"),
    }
    if reveal:
        info["value"] = session.secret(str(parameter.get("Value", "")))
    return info


def remove(session: Session, name: str, *, seen: bool = False) -> bool:
    """Delete the parameter; False when there was nothing to delete. `seen`: it existed a
    moment ago, so ParameterNotFound means our own attempt went through and its answer was
    lost (botocore retried DeleteParameter): removed."""
    from botocore.exceptions import ClientError

    ssm = session.client("ssm")
    with aws_errors(session, f"secret {name}"):
        try:
            ssm.delete_parameter(Name=name)
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                return seen
            raise
    return True


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat(timespec="seconds")) if isoformat else str(value)
