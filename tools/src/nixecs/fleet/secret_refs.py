"""A container's `secrets:` values beyond an SSM parameter name (issue 20, item 2): an SSM
parameter ARN, or an AWS Secrets Manager secret (E175, E176).

ECS's Secret.valueFrom takes "either the full ARN of the AWS Secrets Manager secret or the
full ARN of the parameter in the SSM Parameter Store" (a parameter of the task's region also
by name), and for Secrets Manager `ARN:json-key:version-stage:version-id`
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html;
the agent splits it so, aws/amazon-ecs-agent@8dfceca6
agent/taskresource/asmsecret/asmsecret.go getASMParametersFromInput).

Forms of a value:

- `/prod/db/password`: an SSM parameter of the fleet's region (fleet/containers.py, as ever);
- `arn:aws:ssm:REGION:ACCOUNT:parameter/prod/db/password`: an SSM parameter by ARN;
- `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf[:json-key:stage:id]`: a secret
  by its full ARN (with the 6 characters Secrets Manager appends to the name);
- `{secretsmanager: NAME | ARN, json_key, version_stage | version_id, kms_key}`: a secret of
  the fleet's account and region by name (or ARN), with its customer managed KMS key if any.

A name becomes the partial ARN `arn:…:secret:NAME` (GetSecretValue takes it, and the agent
passes it on: reconstructASMARN). Secrets Manager warns that a name ending in a hyphen and six
characters reads as a full ARN's suffix
(https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot.html#ARN_secretnamehyphen),
so such names are refused (E176): write the full ARN instead.
"""

from __future__ import annotations

import re

from .. import settings as s
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from .decl import obj, req, section, string
from .yaml12 import Path

SECRET_KEYS = ("secretsmanager", "json_key", "version_stage", "version_id", "kms_key")
# Secret names: "ASCII letters, numbers, and the following characters: /_+=.@-", at most
# 512 (Secrets Manager CreateSecret Name).
_NAME = r"[A-Za-z0-9/_+=.@-]{1,512}"
SECRET_NAME_RE = lazy(_NAME)
_PARTITION = r"aws(?:-[a-z]+)*"
SECRET_ARN_RE = lazy(
    rf"arn:(?P<partition>{_PARTITION}):secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{{12}}):"
    rf"secret:(?P<name>{_NAME})(?::(?P<json_key>[^:]*):(?P<stage>[^:]*):(?P<id>[^:]*))?"
)
SSM_ARN_RE = lazy(
    rf"arn:(?P<partition>{_PARTITION}):ssm:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{{12}}):"
    r"parameter(?P<name>/.+)"
)
# The suffix Secrets Manager appends to a secret's name in its ARN.
SUFFIX_RE = lazy(r".*-[A-Za-z0-9]{6}")
# E176 as the declaration (and so the JSON Schema) states it: an ARN's name ends in the
# suffix, a name given alone does not (SUFFIX_RE); 512 characters at most either way.
_SUFFIXED = r"[A-Za-z0-9/_+=.@-]{0,505}-[A-Za-z0-9]{6}"
DECLARED_ARN = SECRET_ARN_RE.pattern.replace(f"(?P<name>{_NAME})", f"(?P<name>{_SUFFIXED})")
DECLARED_BARE_ARN = DECLARED_ARN.split("(?::(?P<json_key>")[0]  # without parameters
DECLARED_NAME = rf"(?![A-Za-z0-9/_+=.@-]*-[A-Za-z0-9]{{6}}$){_NAME}"
VERSION_ID_RE = lazy(r"[A-Za-z0-9-]{32,64}")
VERSION_STAGE_RE = lazy(r"[^:\s]{1,256}")
JSON_KEY_RE = lazy(r"[^:\n]{1,1024}")
KMS_KEY_RE = lazy(
    rf"[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}"
    rf"|arn:{_PARTITION}:kms:[a-z0-9-]+:[0-9]{{12}}:key/[0-9a-f-]{{36}}"
)
FORMS = (
    "an SSM parameter name with a leading slash (/prod/db/password) or its ARN "
    "(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME), or a "
    "Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf, or "
    "{secretsmanager: NAME, json_key: KEY})"
)


def unnamed(pattern: str) -> str:
    """A Python pattern's named groups as plain groups (JSON Schema patterns have none)."""
    return re.sub(r"\(\?P<[a-z_]+>", "(?:", pattern)


SECRETS_MANAGER = obj(
    "a Secrets Manager secret of the fleet's account and region",
    order=SECRET_KEYS,
    secretsmanager=req(
        string(
            "the secret's name (or ARN)",
            pattern=unnamed(f"{DECLARED_NAME}|{DECLARED_BARE_ARN}"),
            example="prod/db",
        )
    ),
    json_key=string(
        "a key of the secret's JSON value",
        pattern=JSON_KEY_RE.pattern,
        rule="1-1024 characters, no colon",
        example="password",
    ),
    version_stage=string(
        "a staging label (not with version_id)",
        pattern=VERSION_STAGE_RE.pattern,
        rule="a staging label, e.g. AWSCURRENT",
        example="AWSCURRENT",
    ),
    version_id=string(
        "a version id (not with version_stage)",
        pattern=VERSION_ID_RE.pattern,
        rule="a version id (32-64 letters, digits, -)",
    ),
    kms_key=string(
        "the secret's customer managed KMS key (id or ARN): the execution role may decrypt "
        "with it through Secrets Manager",
        pattern=KMS_KEY_RE.pattern,
        rule="a KMS key id or key ARN",
        example="arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f",
    ),
)
# secretsmanager: a name, or an ARN without parameters, each with its own diagnostic (E175,
# E176), checked in _ref.
_OWN = ("secretsmanager",)


@dataclass(frozen=True)
class SecretRef:
    """One variable of a container from an SSM parameter ARN or a Secrets Manager secret."""

    variable: str
    service: str  # "ssm" or "secretsmanager"
    arn: str | None  # as written (the secret's or parameter's ARN, without json key etc.)
    name: str | None  # a Secrets Manager secret of the stack's account and region, by name
    json_key: str = ""
    version_stage: str = ""
    version_id: str = ""
    kms_key: str | None = None  # the secret's customer managed key (kms:Decrypt)
    path: Path = ()

    @property
    def region(self) -> str | None:
        """The ARN's region (None: the stack's)."""
        if self.arn is None:
            return None
        return self.arn.split(":")[3]

    @property
    def suffix(self) -> str:
        """`:json-key:version-stage:version-id` when any is set (Secret.valueFrom)."""
        if not (self.json_key or self.version_stage or self.version_id):
            return ""
        return f":{self.json_key}:{self.version_stage}:{self.version_id}"


def plain(value: object) -> object:
    """The entries of `secrets:` that name an SSM parameter of the region by name (checked by
    fleet/containers.py); the others are `parse_refs`'s. A non-mapping is passed on whole."""
    if not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if isinstance(v, str) and v.startswith("/")}


def parse_refs(
    value: object, path: Path, issues: list[Issue], environment: dict[str, str] | None
) -> tuple[SecretRef, ...]:
    """The `secrets:` entries `plain` leaves out, in the order written."""
    if not isinstance(value, dict):
        return ()
    found: list[SecretRef] = []
    for variable, item in value.items():
        if isinstance(item, str) and item.startswith("/"):
            continue
        where: Path = (*path, variable)
        ref = _ref(str(variable), item, where, issues)
        if ref is None:
            continue
        if environment and variable in environment:
            issues.append(
                Issue(where, s.E_VALUE, f"{variable} is set both in environment and in secrets")
            )
            continue
        found.append(ref)
    return tuple(found)


def _ref(variable: str, item: object, where: Path, issues: list[Issue]) -> SecretRef | None:
    if isinstance(item, str):
        if (ssm := SSM_ARN_RE.fullmatch(item)) is not None:
            if not s.PARAMETER_RE.fullmatch(ssm["name"]):
                issues.append(
                    Issue(
                        where, "E175", f"{item!r}: the parameter is not valid: {s.PARAMETER_RULE}"
                    )
                )
                return None
            return SecretRef(variable, "ssm", item, None, path=where)
        if (arn := SECRET_ARN_RE.fullmatch(item)) is not None:
            return _secret_arn(variable, arn, where, issues)
        issues.append(Issue(where, "E175", f"{item!r} is neither {FORMS}"))
        return None
    if not isinstance(item, dict):
        issues.append(Issue(where, s.E_TYPE, f"expected {FORMS}, got {s.type_name(item)}"))
        return None
    before = len(issues)
    m = section(SECRETS_MANAGER, item, where, issues, own=_OWN)
    if m is None or "secretsmanager" not in m:
        return None
    if "version_stage" in m and "version_id" in m:
        issues.append(
            Issue((*where, "version_id"), "E102", "give version_stage or version_id, not both")
        )
    json_key, stage, version = (str(m.get(k, "")) for k in SECRET_KEYS[1:4])
    kms_key = str(m.get("kms_key", ""))
    secret = s.check_str(m["secretsmanager"], (*where, "secretsmanager"), issues)
    if secret is None or len(issues) != before:
        return None
    if (arn := SECRET_ARN_RE.fullmatch(secret)) is not None and arn["json_key"] is None:
        ref = _secret_arn(variable, arn, (*where, "secretsmanager"), issues)
        if ref is None:
            return None
        return SecretRef(
            variable, "secretsmanager", ref.arn, None, json_key, stage, version, kms_key, where
        )
    if not SECRET_NAME_RE.fullmatch(secret):
        issues.append(
            Issue(
                (*where, "secretsmanager"),
                "E175",
                f"{secret!r} is not a secret name (1-512 letters, digits, /_+=.@-) or a secret's ARN without parameters",
            )
        )
        return None
    if SUFFIX_RE.fullmatch(secret):
        issues.append(
            Issue(
                (*where, "secretsmanager"),
                "E176",
                f"{secret!r} ends in a hyphen and six characters, which Secrets Manager reads as "
                "an ARN's suffix: write the secret's full ARN instead",
            )
        )
        return None
    return SecretRef(
        variable, "secretsmanager", None, secret, json_key, stage, version, kms_key, where
    )


def _secret_arn(
    variable: str, arn: re.Match[str], where: Path, issues: list[Issue]
) -> SecretRef | None:
    if not SUFFIX_RE.fullmatch(arn["name"]):
        issues.append(
            Issue(
                where,
                "E176",
                "a Secrets Manager ARN ends in the six characters Secrets Manager appends to the "
                "name (…:secret:NAME-AbCdEf): write the full ARN, or {secretsmanager: NAME}",
            )
        )
        return None
    base = arn.group(0).split(":secret:")[0] + ":secret:" + arn["name"]
    return SecretRef(
        variable,
        "secretsmanager",
        base,
        None,
        arn["json_key"] or "",
        arn["stage"] or "",
        arn["id"] or "",
        path=where,
    )
