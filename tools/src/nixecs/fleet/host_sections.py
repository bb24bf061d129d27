"""A group's `ecs:`, `secrets:` and `drain:`: declared here once, checked against the
declaration by the loader, and built into settings.py's records, which the renderer writes
into the group's settings userdata.

The host reads that userdata back at boot with settings.parse_* (the boot path imports only
`json` and `re`, so it must not build this tree); tests/test_fleet_agreement.py holds the two
ends together: at every declared bound, allowed value and pattern of these sections, what the
loader accepts the host accepts and what it refuses the host refuses. The rules the
declaration cannot state (a tag's Unicode classes, an agent variable looked up by name, a
duration's range in seconds, a uid's range) are settings.py's own functions, so both ends
run the same code for them.
"""

from __future__ import annotations

from .. import settings as s
from ..settings import DrainSpec, EcsSettings, Issue, SecretSpec
from .decl import (
    Node,
    as_str,
    boolean,
    check,
    entries,
    enum,
    integer,
    keys,
    mapping,
    member,
    obj,
    req,
    string,
    values,
)
from .yaml12 import Path

DURATION = s.DURATION_RE.pattern
DURATION_RULE = "bad duration {value!r}: write a whole number and s, m or h, e.g. 30s, 15m, 3h"
PARAMETER_EXAMPLE = "/prod/db/password"
# settings.PARAMETER_RE (which the host runs) written in the syntax Python and ECMA 262 share,
# for the JSON Schema: `$` for `\Z` (no newline can precede it: none is allowed), the reserved
# prefixes spelled out instead of `(?i:…)`. tests/test_fleet_agreement.py holds the two to the
# same answers at the declared example and outside it, test_the_parameter_patterns_agree on
# every name near the rule's edges.
PARAMETER = (
    r"(?=[^\n]{2,1011}$)"
    r"(?!/[Aa][Ww][Ss]|/[Ss][Ss][Mm])"
    r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9_.-]+){1,15}"
)
ACCOUNT_RULE = "a user or group name (lowercase letters, digits, _ and -) or a numeric id"


def _duration(doc: str, **kw: object) -> Node:
    what = "a duration such as 30s, 15m or 3h"
    return string(doc, pattern=DURATION, rule=DURATION_RULE, code=s.E_DURATION, what=what, **kw)


def _account(doc: str) -> Node:
    return string(
        doc, default="root", pattern=s.ACCOUNT_RE.pattern, rule=ACCOUNT_RULE, example="root"
    )


ATTRIBUTES = mapping(
    "custom container-instance attributes (placement constraints match them)",
    s.ATTRIBUTE_NAME_RE.pattern,
    string(
        "attribute value",
        pattern=s.ATTRIBUTE_VALUE_RE.pattern,
        rule=f"attribute value {{value!r}} is not valid: {s.ATTRIBUTE_VALUE_RULE}",
        code=s.E_ECS_VALUE,
    ),
    rule=f"attribute name {{name!r}} is not valid: {s.ATTRIBUTE_NAME_RULE}",
    code=s.E_ECS_NAME,
    aws="ECS Attribute: name 1-128 of letters, digits - _ . / \\; value 1-128 characters",
    example={"tier": "web"},
)

ECS = obj(
    "ECS agent settings of the group's instances (written to the agent's ecs.config)",
    order=s._ECS_KEYS,  # the settings module's own key tuple
    attributes=ATTRIBUTES,
    tags=mapping(
        "tags of the container instance (ECS_CONTAINER_INSTANCE_TAGS)",
        None,
        string("tag value"),
        aws=f"at most {s.TAG_MAX_COUNT} tags, keys of {s.TAG_KEY_MAX} and values of {s.TAG_VALUE_MAX} characters, no aws: prefix",
        max_items=s.TAG_MAX_COUNT,
        example={"team": "payments"},
        what="a mapping of strings",
    ),
    spot_draining=boolean(
        "drain tasks on a spot interruption notice (ECS_ENABLE_SPOT_INSTANCE_DRAINING); defaults to the group's `spot`",
        None,
        example=True,
    ),
    reserved_memory_mib=integer(
        "memory (MiB) ECS does not place tasks on (ECS_RESERVED_MEMORY)",
        0,
        s.RESERVED_MEMORY_MAX,
        rule=f"{{value}} is out of range: must be between 0 and {s.RESERVED_MEMORY_MAX} "
        "(the agent reads a 16-bit number and ignores larger values)",
        aws="the agent reads a 16-bit number",
        example=256,
    ),
    log_level=enum("the agent's log level (ECS_LOGLEVEL)", s.LOG_LEVELS, example="info"),
    image_pull_behavior=enum(
        "when the agent pulls images (ECS_IMAGE_PULL_BEHAVIOR)",
        s.IMAGE_PULL_BEHAVIORS,
        example="prefer-cached",
    ),
    task_cleanup_wait=_duration(
        "how long a stopped task's containers are kept (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION)",
        example="1h",
    ),
    container_stop_timeout=_duration(
        "how long the agent waits for a container to stop before killing it (ECS_CONTAINER_STOP_TIMEOUT)",
        example="30s",
    ),
    privileged=boolean(
        "allow privileged containers (ECS_DISABLE_PRIVILEGED false)", False, example=False
    ),
    extra=mapping(
        "further ECS agent variables by name (only ones the agent reads, honours on this host "
        "(E165 names what the others need) and no typed key sets)",
        "ECS_[A-Z0-9_]+",
        string("the variable's value"),
        example={"ECS_CONTAINER_START_TIMEOUT": "3m"},
    ),
)
# Checked by settings.py's functions, the host's: a tag's text is Unicode classes (\p{L},
# \p{Z}, \p{N}) no pattern here can state, an agent variable is looked up by name (E118,
# E119, E165), a duration's range is in seconds.
_ECS_OWN = ("tags", "extra")
_DURATIONS = ("task_cleanup_wait", "container_stop_timeout")

SECRET = obj(
    "a secret the host writes to /run/nixecs/secrets/NAME at boot",
    order=("parameter", "owner", "group", "mode"),
    parameter=req(
        string(
            f"the SecureString SSM parameter: {s.PARAMETER_RULE}",
            pattern=PARAMETER,
            rule=s.PARAMETER_RULE,
            aws="SSM parameter names: 1011 characters, 15 levels",
            example=PARAMETER_EXAMPLE,
        )
    ),
    owner=_account("the file's owner (user name or uid)"),
    group=_account("the file's group (group name or gid)"),
    mode=string(
        "the file's octal mode, quoted",
        default="0400",
        pattern=s.MODE_RE.pattern,
        rule='an octal file mode such as "0400"',
        example="0400",
    ),
)
SECRETS = mapping(
    "secrets written to files on the host, by file name",
    s.SECRET_NAME_RE.pattern,
    SECRET,
    rule="secret name {name!r} is not valid: it becomes /run/nixecs/secrets/<name>, so use "
    "1-128 letters, digits, . _ - (not starting with . or -)",
    code=s.E_NAME,
    example={"db-password": {"parameter": PARAMETER_EXAMPLE}},
)
# parameter: checked with settings.PARAMETER_RE, the host's own (the declared PARAMETER is its
# ECMA-262 spelling, for the JSON Schema); mode: a number has its own message (YAML 1.2 reads
# 0400 as 400).
_SECRET_OWN = ("parameter", "mode")

DRAIN = obj(
    "draining on scale-in (a termination lifecycle hook)",
    timeout=_duration(
        "how long the host drains its tasks at most",
        default="15m",
        aws="a lifecycle hook waits at most 7200 s; nixecs adds 5 minutes",
        example="15m",
    ),
)


def parse_ecs(
    value: object,
    path: Path,
    issues: list[Issue],
    spot_draining_default: bool,
    *,
    gpu: bool = False,
) -> EcsSettings | None:
    written = keys(ECS, value, path, issues)
    if written is None:
        return None
    before = len(issues)
    v = values(ECS, written, path, issues, own=_ECS_OWN)
    fields: dict[str, object] = {
        k: item for k, item in v.items() if k not in ("attributes", *_ECS_OWN)
    }
    fields.setdefault("spot_draining", spot_draining_default)
    if "attributes" in v:
        fields["attributes"] = _attributes(v["attributes"], (*path, "attributes"), issues)
    if "tags" in v:
        fields["tags"] = s.check_tags(v["tags"], (*path, "tags"), issues)
    if "extra" in v:
        fields["extra"] = s.check_extra(v["extra"], (*path, "extra"), issues, gpu=gpu)
    for key in _DURATIONS:
        if key in v:  # its form is declared; its range in seconds is the agent's
            s.check_agent_duration(v[key], (*path, key), issues, key)
    if len(issues) != before:
        return None
    return EcsSettings(**fields)  # type: ignore[arg-type]


def _attributes(value: object, path: Path, issues: list[Issue]) -> dict[str, str]:
    named = entries(ATTRIBUTES, value, path, issues, "a mapping of strings")
    result: dict[str, str] = {}
    for name, item in (named or {}).items():
        text = check(member(ATTRIBUTES), item, (*path, name), issues)
        if text is not None:
            result[name] = as_str(text)
    return result


def parse_secrets(value: object, path: Path, issues: list[Issue]) -> dict[str, SecretSpec] | None:
    before = len(issues)
    named = entries(SECRETS, value, path, issues, "a mapping of secrets")
    result: dict[str, SecretSpec] = {}
    for name, item in (named or {}).items():
        spec = _secret(item, (*path, name), issues)
        if spec is not None:
            result[name] = spec
    return result if len(issues) == before else None


def _secret(value: object, path: Path, issues: list[Issue]) -> SecretSpec | None:
    written = keys(SECRET, value, path, issues)
    if written is None:
        return None
    before = len(issues)
    v = values(SECRET, written, path, issues, own=_SECRET_OWN)
    if "parameter" in v:
        s.check_pattern(
            v["parameter"], (*path, "parameter"), issues, s.PARAMETER_RE, s.PARAMETER_RULE
        )
    mode = v.get("mode", SECRET.keys["mode"].default)
    if isinstance(mode, int) and not isinstance(mode, bool):
        issues.append(
            Issue(
                (*path, "mode"),
                s.E_TYPE,
                f'mode must be a quoted string like "0400" (YAML 1.2 reads an unquoted {mode} as a decimal number)',
            )
        )
    else:
        mode = check(SECRET.keys["mode"], mode, (*path, "mode"), issues)
    for key in ("owner", "group"):
        account = v.get(key)
        # uid_t/gid_t are 32 bits, and chown(2) (Linux man-pages 6.03): "If the owner or
        # group is specified as -1, then that ID is not changed": 4294967295 would silently
        # leave the file root's, and above it os.fchown raises OverflowError mid-write.
        if isinstance(account, str) and account.isdigit() and int(account) > s.MAX_ACCOUNT_ID:
            issues.append(
                Issue(
                    (*path, key),
                    s.E_VALUE,
                    f"{account} is not a valid id: at most {s.MAX_ACCOUNT_ID}",
                )
            )
    if len(issues) != before or "parameter" not in v or "owner" not in v or "group" not in v:
        return None
    text = as_str(mode)
    return SecretSpec(
        as_str(v["parameter"]),
        as_str(v["owner"]),
        as_str(v["group"]),
        text if len(text) == 4 else "0" + text,
    )


def parse_drain(value: object, path: Path, issues: list[Issue]) -> DrainSpec | None:
    written = keys(DRAIN, value, path, issues)
    if written is None:
        return None
    before = len(issues)
    timeout = values(DRAIN, written, path, issues).get("timeout")
    if len(issues) != before or timeout is None:
        return None
    if s.duration_seconds(as_str(timeout)) > s.DRAIN_MAX_SECONDS:
        issues.append(
            Issue(
                (*path, "timeout"),
                s.E_VALUE,
                f"drain timeout {timeout} is too long: the termination lifecycle hook waits at most "
                f"2 hours, so use at most {s.DRAIN_MAX_SECONDS // 60}m",
            )
        )
        return None
    return DrainSpec(as_str(timeout))
