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


def put(session: Session, name: str, value: str | None, *, key_id: str | None = None) -> PutResult:
    """Store `value` as a SecureString; `value=None` means generate one only if none exists."""
    from botocore.exceptions import ClientError

    ssm = session.client("ssm")
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
        existing = _current(ssm, name, decrypt=True)
        if (
            existing is not None
            and existing.get("Type") == "SecureString"
            and existing.get("Value") == value
        ):
            return PutResult(name, "unchanged", int(existing["Version"]))
        args = {
            "Name": name,
            "Value": value,
            "Type": "SecureString",
            "Overwrite": existing is not None,
        }
        if key_id:
            args["KeyId"] = key_id
        try:
            response = ssm.put_parameter(**args)
        except ClientError as error:
            if error_code(error) != "ParameterAlreadyExists":
                raise
            # created concurrently (or by our own retried request): overwrite only if different
            existing = _current(ssm, name, decrypt=True)
            if existing is not None and existing.get("Value") == value:
                return PutResult(name, "created", int(existing["Version"]))
            args["Overwrite"] = True
            response = ssm.put_parameter(**args)
        return PutResult(
            name, "updated" if existing is not None else "created", int(response["Version"])
        )


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


def remove(session: Session, name: str) -> bool:
    """Delete the parameter; False when there was nothing to delete."""
    from botocore.exceptions import ClientError

    ssm = session.client("ssm")
    with aws_errors(session, f"secret {name}"):
        try:
            ssm.delete_parameter(Name=name)
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                return False
            raise
    return True


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat(timespec="seconds")) if isoformat else str(value)
