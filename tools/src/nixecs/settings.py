"""The settings-userdata schema: one module for both ends.

The renderer writes `#nixecs-settings v1` userdata through `dumps`; the host-side applier
reads it back through `loads`. The fleet loader checks a group's `ecs`, `secrets` and `drain`
sections against their declaration (fleet/host_sections.py, which this boot-path module must
not import) and runs this module's functions for what the declaration cannot state (tags,
agent variables, duration ranges); tests/test_fleet_agreement.py proves the two ends accept
and refuse alike at every declared bound.

This module is on the boot path (`nixecs apply`): it imports neither `json` nor `re` (with
`enum`, which `re` imports, ~10 ms: half of apply's budget; issue 18 item 4): JSON goes through
nixecs.jsonc (json's own C scanner and encoder), and every pattern a settings document is
checked against carries a plain-Python test (lazyre's `test`) that answers fullmatch.
`dataclasses` and `typing` cost tens of milliseconds to import, so the records below are plain
classes and every annotation is evaluated lazily.
"""

from __future__ import annotations

from . import jsonc
from .agent_vars import AGENT_NEEDS, AGENT_REF, AGENT_VARIABLES
from .lazyre import lazy

TYPE_CHECKING = False  # not `from typing import`: typing costs ~6 ms on the boot path

if TYPE_CHECKING:
    import re
    from collections.abc import Mapping

    JsonPath = tuple[object, ...]

SETTINGS_HEADER = "#nixecs-settings v1"
SETTINGS_VERSION = 1

LOG_LEVELS = ("debug", "info", "warn", "error", "crit")
IMAGE_PULL_BEHAVIORS = ("default", "always", "once", "prefer-cached")

# Plain-Python equivalents of the patterns below, for the boot path (see the module's
# docstring); tests/test_lazyre.py compares each with its pattern on generated text.
_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _DIGITS + _LOWER + _LOWER.upper()


def _only(text: str, allowed: str) -> bool:
    # strip() removes every leading character in `allowed`: nothing is left exactly when
    # every character is one of them (and it runs in C).
    return not text.strip(allowed)


def _is_duration(text: str) -> bool:
    return 2 <= len(text) <= 10 and text[-1] in "smh" and _only(text[:-1], _DIGITS)


_OCTAL = "01234567"


def _is_mode(text: str) -> bool:
    digits = text[1:] if len(text) == 4 and text[0] == "0" else text
    return len(digits) == 3 and _only(digits, _OCTAL)


_ACCOUNT_REST = _LOWER + _DIGITS + "_-"


def _is_account(text: str) -> bool:
    if 1 <= len(text) <= 10 and _only(text, _DIGITS):
        return True
    name = text[:-1] if text.endswith("$") else text
    return (
        1 <= len(name) <= 32
        and (name[0] in _LOWER or name[0] == "_")
        and _only(name, _ACCOUNT_REST)
    )


_SECRET_NAME_CHARS = _ALNUM + "._-"


def _is_secret_name(text: str) -> bool:
    return 1 <= len(text) <= 128 and text[0] in _ALNUM and _only(text, _SECRET_NAME_CHARS)


_PARAMETER_CHARS = _ALNUM + "_.-"


def _is_parameter(text: str) -> bool:
    if not (2 <= len(text) <= 1011 and text[0] == "/") or text[1:4].lower() in ("aws", "ssm"):
        return False
    levels = text[1:].split("/")
    return len(levels) <= 15 and all(
        level not in ("", ".", "..") and _only(level, _PARAMETER_CHARS) for level in levels
    )


_ATTRIBUTE_NAME_CHARS = _ALNUM + "_./\\-"
_ATTRIBUTE_VALUE_CHARS = _ALNUM + "_.@/\\: -"


def _is_attribute_name(text: str) -> bool:
    return 1 <= len(text) <= 128 and _only(text, _ATTRIBUTE_NAME_CHARS)


def _is_attribute_value(text: str) -> bool:
    return (
        1 <= len(text) <= 128
        and text[0] != " "
        and text[-1] != " "
        and _only(text, _ATTRIBUTE_VALUE_CHARS)
    )


_NAME_CHARS = _ALNUM + "_-"


def _is_name(text: str) -> bool:
    return 1 <= len(text) <= 64 and text[0] in _ALNUM and _only(text, _NAME_CHARS)


DURATION_RE = lazy(r"[0-9]{1,9}[smh]", test=_is_duration)
MODE_RE = lazy(r"0?[0-7]{3}", test=_is_mode)
# POSIX portable user/group names, or a numeric id.
ACCOUNT_RE = lazy(r"[a-z_][a-z0-9_-]{0,31}\$?|[0-9]{1,10}", test=_is_account)
MAX_ACCOUNT_ID = 2**32 - 2
# A secret becomes the file /run/nixecs/secrets/<name>: no separators, no leading dot.
SECRET_NAME_RE = lazy(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", test=_is_secret_name)
# SSM parameter names: the one rule for the fleet's `secrets:` (groups and tasks), the host's
# secret lists and `nixecs secret put|get|rm`. SSM's own constraints (PutParameter API
# reference, Name: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html,
# as quoted in the SDKs' PutParameterRequest.name, e.g. docs.rs aws-sdk-ssm):
# only a-zA-Z0-9_.- and `/` between hierarchy levels, a leading `/` for a name in a hierarchy,
# at most fifteen levels, not prefixed with "aws" or "ssm" in any case, at most 1011
# characters. nixecs is stricter in two ways: the leading slash is required (hierarchical
# names let IAM scope the instance role to them exactly), and `.` and `..` levels are refused
# (they read as path traversal in logs, policies and /run/nixecs/secrets paths). Always fullmatch:
# `$` would also match before a trailing newline.
PARAMETER_RE = lazy(
    r"(?=[^\n]{2,1011}\Z)"  # length (and no newline anywhere)
    r"(?!/(?i:aws|ssm))"  # reserved prefixes, case-insensitive
    r"(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9_.-]+){1,15}",  # 1-15 levels, none of them . or ..
    test=_is_parameter,
)
PARAMETER_RULE = (
    "an SSM parameter name with a leading slash, e.g. /prod/db/password: at most 15 levels of "
    "letters, digits, _ . - (no . or .. level), not starting with aws or ssm, at most 1011 characters"
)
# ECS container-instance attributes, as the ECS API reference's `Attribute` type states them
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attribute.html): a name of
# 1-128 letters, digits, - _ / \ . (no @); a value of 1-128 letters, digits, - _ . @ / \ :
# and spaces, not starting or ending with a space. The agent sends ECS_INSTANCE_ATTRIBUTES
# unchecked (aws/amazon-ecs-agent v1.105.0 agent/config/parse.go parseInstanceAttributes), so
# a bad one fails RegisterContainerInstance and the instance never joins.
ATTRIBUTE_NAME_RE = lazy(r"[A-Za-z0-9_./\\-]{1,128}", test=_is_attribute_name)
ATTRIBUTE_VALUE_RE = lazy(r"(?! )[A-Za-z0-9_.@/\\: -]{1,128}(?<! )", test=_is_attribute_value)
ATTRIBUTE_NAME_RULE = "1-128 letters, digits, - _ . / \\ (ECS allows no other character)"
ATTRIBUTE_VALUE_RULE = (
    "1-128 letters, digits, spaces, - _ . @ / \\ :, not starting or ending with a space"
)
# Tags, as the ECS API reference's `Tag` type states them
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tag.html): at most 50 per
# resource; a key of 1-128 and a value of 0-256 characters matching
# `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`; no `aws:` prefix (any case) on keys or values.
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_MAX_COUNT = 50
TAG_PUNCTUATION = frozenset("_.:/=+-@")
# Unicode general category Z (Zs, Zl, Zp) as of Unicode 15: `re` has no \p{Z}, and the boot
# path may not import `unicodedata`. str.isalpha() is exactly \p{L}; str.isnumeric() is \p{N}
# plus some ideographs that are letters anyway.
UNICODE_SEPARATORS = frozenset(
    "\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
TAG_RULE = "letters, digits, spaces and + - = . _ : / @ only"

# ECS_RESERVED_MEMORY is parsed with strconv.ParseUint(value, 10, 16) (v1.105.0
# agent/config/parse.go parseEnvVariableUint16): above 65535 the agent ignores it (0).
RESERVED_MEMORY_MAX = 65535
# Durations go through Go's time.ParseDuration (parse.go parseEnvVariableDuration): an int64
# of nanoseconds, so at most 9223372036 s; beyond that the parse fails and the value is 0.
GO_DURATION_MAX_SECONDS = (2**63 - 1) // 1_000_000_000
# What the agent does with values below its minimum (v1.105.0 agent/config/config.go): a
# task cleanup wait below minimumTaskCleanupWaitDuration (1s) is replaced by the default 3h
# (validateAndOverrideBounds); a stop timeout of 0 is replaced by the default 30s
# (parse.go parseDockerStopTimeout, then the merge with DefaultConfig), minimum 1s.
DURATION_MINIMUMS = {
    "task_cleanup_wait": (1, "the agent replaces a value below 1s with its default 3h"),
    "container_stop_timeout": (1, "the agent replaces 0 with its default 30s"),
}
NAME_RE = lazy(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", test=_is_name)
# C0 controls and DEL: no field of the schema needs them, and in ecs.env or a journal line
# they could forge a line. JSON's `strict` refuses them raw; this also refuses "\u0001".
_CONTROLS = "".join(map(chr, range(32))) + "\x7f"
_DROP_CONTROLS = str.maketrans("", "", _CONTROLS)


def first_control(text: str) -> str | None:
    """The first C0 control or DEL in `text`, or None (what [\x00-\x1f\x7f] would find)."""
    if len(text.translate(_DROP_CONTROLS)) == len(text):
        return None
    return next(char for char in text if char in _CONTROLS)


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> int:
    """`30s`, `15m`, `3h` → seconds. The caller has validated the text."""
    return int(text[:-1]) * _DURATION_UNITS[text[-1]]


class Issue:
    """One schema violation at a JSON path; the caller turns the path into a location."""

    __slots__ = ("code", "message", "path")

    def __init__(self, path: JsonPath, code: str, message: str) -> None:
        self.path = path
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"Issue({self.path!r}, {self.code!r}, {self.message!r})"

    def __str__(self) -> str:
        where = ".".join(str(p) for p in self.path) or "(document)"
        return f"{where}: {self.message}"


class SettingsError(ValueError):
    """Settings text that is not valid; `issues` holds every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


class EcsSettings:
    """ECS agent runtime settings of one group (DESIGN §4 `ecs:`)."""

    __slots__ = (
        "attributes",
        "container_stop_timeout",
        "extra",
        "image_pull_behavior",
        "log_level",
        "privileged",
        "reserved_memory_mib",
        "spot_draining",
        "tags",
        "task_cleanup_wait",
    )

    def __init__(
        self,
        *,
        attributes: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        spot_draining: bool = False,
        reserved_memory_mib: int = 0,
        log_level: str = "info",
        image_pull_behavior: str = "default",
        task_cleanup_wait: str = "3h",
        container_stop_timeout: str = "30s",
        privileged: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.attributes: dict[str, str] = dict(attributes or {})
        self.tags: dict[str, str] = dict(tags or {})
        self.spot_draining = spot_draining
        self.reserved_memory_mib = reserved_memory_mib
        self.log_level = log_level
        self.image_pull_behavior = image_pull_behavior
        self.task_cleanup_wait = task_cleanup_wait
        self.container_stop_timeout = container_stop_timeout
        self.privileged = privileged
        # Further agent variables (`extra:`), checked against agent_vars.AGENT_VARIABLES.
        self.extra: dict[str, str] = dict(extra or {})

    def to_json(self) -> dict[str, object]:
        # `extra` only when there is some: userdata without it stays byte-identical.
        return {
            name: getattr(self, name)
            for name in sorted(self.__slots__)
            if name != "extra" or self.extra
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EcsSettings) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"EcsSettings({self.to_json()!r})"


class SecretSpec:
    """A secret fetched at boot from SSM into /run/nixecs/secrets/<name>."""

    __slots__ = ("group", "mode", "owner", "parameter")

    def __init__(
        self, parameter: str, owner: str = "root", group: str = "root", mode: str = "0400"
    ) -> None:
        self.parameter = parameter
        self.owner = owner
        self.group = group
        self.mode = mode

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "mode": self.mode,
            "owner": self.owner,
            "parameter": self.parameter,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretSpec) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"SecretSpec({self.to_json()!r})"


class DrainSpec:
    """On-host draining through a termination lifecycle hook."""

    __slots__ = ("timeout",)

    def __init__(self, timeout: str = "15m") -> None:
        self.timeout = timeout

    def to_json(self) -> dict[str, object]:
        return {"timeout": self.timeout}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DrainSpec) and self.timeout == other.timeout

    def __repr__(self) -> str:
        return f"DrainSpec({self.timeout!r})"


class HostSettings:
    """Everything a `settings` userdata tells a host."""

    __slots__ = ("cluster", "drain", "ecs", "flake", "group", "secrets")

    def __init__(
        self,
        *,
        cluster: str,
        group: str,
        flake: str = "",
        ecs: EcsSettings | None = None,
        secrets: Mapping[str, SecretSpec] | None = None,
        drain: DrainSpec | None = None,
    ) -> None:
        self.cluster = cluster
        self.group = group
        self.flake = flake
        self.ecs = ecs if ecs is not None else EcsSettings()
        self.secrets: dict[str, SecretSpec] = dict(secrets or {})
        self.drain = drain

    def to_json(self) -> dict[str, object]:
        return {
            "version": SETTINGS_VERSION,
            "cluster": self.cluster,
            "group": self.group,
            "flake": self.flake,
            "ecs": self.ecs.to_json(),
            "secrets": {name: self.secrets[name].to_json() for name in sorted(self.secrets)},
            "drain": self.drain.to_json() if self.drain is not None else None,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HostSettings) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"HostSettings({self.to_json()!r})"


# --- validation -------------------------------------------------------------------------
# Each parse_* takes a JSON-like value (from json.loads or from the fleet's YAML) and the path
# it sits at, appends every problem to `issues`, and returns the record or None. Codes are the
# fleet schema's E1xx codes so that both ends report alike.

E_UNKNOWN_KEY = "E101"
E_TYPE = "E103"
E_MISSING = "E104"
E_NAME = "E105"
E_DURATION = "E106"
E_VALUE = "E107"
E_ECS_NAME = "E116"  # an attribute name or tag key (or the tag count) ECS refuses
E_ECS_VALUE = "E117"  # an attribute or tag value ECS refuses
E_AGENT_VARIABLE = "E118"  # `extra`: a variable the ECS agent does not read
E_TYPED_VARIABLE = "E119"  # `extra`: a variable a typed key or the host sets
E_AGENT_NEEDS = "E165"  # `extra`: a variable whose feature this host does not provide


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def check_mapping(
    value: object,
    path: JsonPath,
    issues: list[Issue],
    allowed: tuple[str, ...],
    required: tuple[str, ...] = (),
    what: str = "a mapping",
) -> dict[str, object] | None:
    """Type, unknown keys and required keys of a mapping; None when it is not a mapping."""
    if not isinstance(value, dict):
        issues.append(Issue(path, E_TYPE, f"expected {what}, got {type_name(value)}"))
        return None
    for key in value:
        if key not in allowed:
            hint = ", ".join(allowed)
            issues.append(
                Issue((*path, key), E_UNKNOWN_KEY, f"unknown key {key!r} (allowed: {hint})")
            )
    for key in required:
        if key not in value:
            issues.append(Issue(path, E_MISSING, f"missing required key {key!r}"))
    return value


def check_str(value: object, path: JsonPath, issues: list[Issue]) -> str | None:
    if isinstance(value, str):
        return value
    issues.append(Issue(path, E_TYPE, f"expected a string, got {type_name(value)}"))
    return None


def check_bool(value: object, path: JsonPath, issues: list[Issue]) -> bool | None:
    if isinstance(value, bool):
        return value
    hint = ""
    if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n"):
        hint = f" ({value!r} is a string in YAML 1.2: write true or false)"
    issues.append(Issue(path, E_TYPE, f"expected true or false, got {type_name(value)}{hint}"))
    return None


def check_int(
    value: object,
    path: JsonPath,
    issues: list[Issue],
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        issues.append(Issue(path, E_TYPE, f"expected an integer, got {type_name(value)}"))
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        issues.append(Issue(path, E_VALUE, f"{value} is out of range: must be {bounds}"))
        return None
    return value


def check_enum(
    value: object, path: JsonPath, issues: list[Issue], choices: tuple[str, ...]
) -> str | None:
    text = check_str(value, path, issues)
    if text is None:
        return None
    if text not in choices:
        issues.append(Issue(path, E_VALUE, f"{text!r} is not one of: {', '.join(choices)}"))
        return None
    return text


def check_duration(value: object, path: JsonPath, issues: list[Issue]) -> str | None:
    if isinstance(value, str) and DURATION_RE.fullmatch(value):
        return value
    shown = repr(value) if isinstance(value, (str, int, float)) else type_name(value)
    issues.append(
        Issue(
            path,
            E_DURATION,
            f"bad duration {shown}: write a whole number and s, m or h, e.g. 30s, 15m, 3h",
        )
    )
    return None


def check_pattern(
    value: object,
    path: JsonPath,
    issues: list[Issue],
    pattern: re.Pattern[str],
    rule: str,
    code: str = E_VALUE,
) -> str | None:
    text = check_str(value, path, issues)
    if text is None:
        return None
    if not pattern.fullmatch(text):
        issues.append(Issue(path, code, f"{text!r} is not valid: {rule}"))
        return None
    return text


def check_string_map(
    value: object,
    path: JsonPath,
    issues: list[Issue],
    key_rule: tuple[re.Pattern[str], str] | None = None,
    value_rule: tuple[re.Pattern[str], str] | None = None,
    key_max: int = 128,
    value_max: int = 256,
    printable: bool = False,
) -> dict[str, str] | None:
    if not isinstance(value, dict):
        issues.append(Issue(path, E_TYPE, f"expected a mapping of strings, got {type_name(value)}"))
        return None
    result: dict[str, str] = {}
    for key, item in value.items():
        where = (*path, key)
        if not isinstance(key, str):
            issues.append(Issue(where, E_TYPE, f"keys must be strings, got {type_name(key)}"))
            continue
        if key_rule is not None and not key_rule[0].fullmatch(key):
            issues.append(Issue(where, E_NAME, f"key {key!r} is not valid: {key_rule[1]}"))
            continue
        if not key_rule and not 0 < len(key) <= key_max:
            issues.append(Issue(where, E_NAME, f"key must be 1 to {key_max} characters"))
            continue
        text = check_str(item, where, issues)
        if text is None:
            continue
        if printable and (found := first_control(key + text)) is not None:
            issues.append(
                Issue(where, E_VALUE, f"contains the control character U+{ord(found):04X}")
            )
            continue
        if value_rule is not None and not value_rule[0].fullmatch(text):
            issues.append(Issue(where, E_VALUE, f"{text!r} is not valid: {value_rule[1]}"))
            continue
        if len(text) > value_max:
            issues.append(Issue(where, E_VALUE, f"value must be at most {value_max} characters"))
            continue
        result[key] = text
    return result


_ECS_KEYS = (
    "attributes",
    "tags",
    "spot_draining",
    "reserved_memory_mib",
    "log_level",
    "image_pull_behavior",
    "task_cleanup_wait",
    "container_stop_timeout",
    "privileged",
    "extra",
)

# The agent variables `agent_environment` sets from typed keys: `extra` may not set them
# (the typed key is the one place for each), named by the key that does.
TYPED_VARIABLES = {
    "ECS_CLUSTER": "the group's cluster",
    "ECS_ENABLE_SPOT_INSTANCE_DRAINING": "ecs.spot_draining",
    "ECS_RESERVED_MEMORY": "ecs.reserved_memory_mib",
    "ECS_LOGLEVEL": "ecs.log_level",
    "ECS_IMAGE_PULL_BEHAVIOR": "ecs.image_pull_behavior",
    "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION": "ecs.task_cleanup_wait",
    "ECS_CONTAINER_STOP_TIMEOUT": "ecs.container_stop_timeout",
    "ECS_DISABLE_PRIVILEGED": "ecs.privileged",
    "ECS_INSTANCE_ATTRIBUTES": "ecs.attributes",
    "ECS_CONTAINER_INSTANCE_TAGS": "ecs.tags",
}
# What the host module (modules/ecs-host.nix `hostEnvironment`) sets for the native agent:
# paths and features the host provides; `extra` changing them would break the host.
HOST_VARIABLES = {
    "ECS_DATADIR": "the host (state directory /var/lib/ecs/data)",
    "ECS_HOST_DATA_DIR": "the host (/var/lib/ecs)",
    "ECS_LOGFILE": "the host (/var/log/ecs/ecs-agent.log)",
    "ECS_AUDIT_LOGFILE": "the host (/var/log/ecs/audit.log)",
    "ECS_UPDATE_DOWNLOAD_DIR": "the host (/var/cache/ecs)",
    "ECS_UPDATES_ENABLED": "the host (the agent is updated with the image)",
    "ECS_AVAILABLE_LOGGING_DRIVERS": "the host option nixecs.ecs.loggingDrivers",
    "ECS_ENABLE_TASK_IAM_ROLE": "the host option nixecs.ecs.taskIamRole",
    "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST": "the host option nixecs.ecs.taskIamRole",
    "ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE": "the host (true, as ecs-init on the ECS AMI)",
}
# What a GPU host sets itself (modules/ecs-gpu.nix, nixecs.ecs.featureEnvironment): on a
# `gpu: true` group they are the host's, as HOST_VARIABLES are; elsewhere the generated
# table refuses them (E165: the host has no GPU support).
GPU_VARIABLES = {
    "ECS_ENABLE_GPU_SUPPORT": "the GPU host (nixecs.ecs.gpu.enable: true)",
    "ECS_NVIDIA_RUNTIME": "the GPU host (nixecs.ecs.gpu.enable: Docker's runtime `nvidia`)",
}
# The native agent binds ECS_HOST_DATA_DIR + "/" + ECS_DATADIR + "/metadata/..." into task
# containers (v1.105.0 agent/containermetadata/write_metadata_unix.go createBindsEnv, with
# the path from utils.go getMetadataFilePath), which is only the real directory when the
# agent runs in ecs-init's container with ECS_DATADIR=/data. Here both are host paths.
REFUSED_VARIABLES = {
    "ECS_ENABLE_CONTAINER_METADATA": (
        "container metadata files do not work with the native agent: it mounts "
        "ECS_HOST_DATA_DIR + ECS_DATADIR into the task, which is an empty directory on this "
        "host; use the task metadata endpoint v4 (ECS_CONTAINER_METADATA_URI_V4) instead"
    ),
}

# Credentials: `extra` is written into EC2 userdata and the stack's launch template in the
# clear (and extraEnvironment into the world-readable Nix store), where secrets never go.
# The agent also reads them from its JSON configuration file (aws/amazon-ecs-agent v1.105.0
# agent/dockerclient/dockerauth/doc.go; agent/config/config.go fileConfig), which a group's
# `secrets:` can put on the host from an SSM SecureString.
SECRET_VARIABLES = {
    "ECS_ENGINE_AUTH_DATA": (
        "it holds registry credentials, and ecs.extra goes into EC2 userdata and the "
        "CloudFormation template in the clear: keep the agent's JSON configuration "
        '{"EngineAuthType": ..., "EngineAuthData": ...} in an SSM SecureString, fetch it '
        "with the group's secrets: (e.g. registry-auth: {parameter: /prod/registry-auth}) "
        "and set ECS_AGENT_CONFIG_FILE_PATH: /run/nixecs/secrets/registry-auth instead "
        "(agent/dockerclient/dockerauth/doc.go); images in ECR need no credentials here"
    ),
}


def check_tag_text(text: str) -> bool:
    """The Tag pattern ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$ of the ECS API reference."""
    return all(
        c.isalpha() or c.isnumeric() or c in TAG_PUNCTUATION or c in UNICODE_SEPARATORS
        for c in text
    )


def check_attributes(value: object, path: JsonPath, issues: list[Issue]) -> dict[str, str] | None:
    if not isinstance(value, dict):
        issues.append(Issue(path, E_TYPE, f"expected a mapping of strings, got {type_name(value)}"))
        return None
    result: dict[str, str] = {}
    for key, item in value.items():
        where = (*path, key)
        if not isinstance(key, str) or not ATTRIBUTE_NAME_RE.fullmatch(key):
            issues.append(
                Issue(
                    where, E_ECS_NAME, f"attribute name {key!r} is not valid: {ATTRIBUTE_NAME_RULE}"
                )
            )
            continue
        text = check_str(item, where, issues)
        if text is None:
            continue
        if not ATTRIBUTE_VALUE_RE.fullmatch(text):
            issues.append(
                Issue(
                    where,
                    E_ECS_VALUE,
                    f"attribute value {text!r} is not valid: {ATTRIBUTE_VALUE_RULE}",
                )
            )
            continue
        result[key] = text
    return result


def check_tags(value: object, path: JsonPath, issues: list[Issue]) -> dict[str, str] | None:
    if not isinstance(value, dict):
        issues.append(Issue(path, E_TYPE, f"expected a mapping of strings, got {type_name(value)}"))
        return None
    if len(value) > TAG_MAX_COUNT:
        issues.append(
            Issue(path, E_ECS_NAME, f"{len(value)} tags: ECS allows at most {TAG_MAX_COUNT}")
        )
    result: dict[str, str] = {}
    for key, item in value.items():
        where = (*path, key)
        if not isinstance(key, str):
            issues.append(Issue(where, E_TYPE, f"keys must be strings, got {type_name(key)}"))
            continue
        problem = None
        if not 0 < len(key) <= TAG_KEY_MAX:
            problem = f"must be 1 to {TAG_KEY_MAX} characters"
        elif not check_tag_text(key):
            problem = TAG_RULE
        elif key[:4].lower() == "aws:":
            problem = "the aws: prefix is reserved for AWS"
        if problem is not None:
            issues.append(Issue(where, E_ECS_NAME, f"tag key {key!r} is not valid: {problem}"))
            continue
        text = check_str(item, where, issues)
        if text is None:
            continue
        if len(text) > TAG_VALUE_MAX:
            problem = f"must be at most {TAG_VALUE_MAX} characters"
        elif not check_tag_text(text):
            problem = TAG_RULE
        elif text[:4].lower() == "aws:":
            problem = "the aws: prefix is reserved for AWS"
        if problem is not None:
            issues.append(Issue(where, E_ECS_VALUE, f"tag value {text!r} is not valid: {problem}"))
            continue
        result[key] = text
    return result


def check_agent_duration(
    value: object, path: JsonPath, issues: list[Issue], key: str
) -> str | None:
    text = check_duration(value, path, issues)
    if text is None:
        return None
    seconds = duration_seconds(text)
    low, why = DURATION_MINIMUMS[key]
    if seconds < low:
        issues.append(Issue(path, E_VALUE, f"{text} is not honoured ({why}): use at least {low}s"))
        return None
    if seconds > GO_DURATION_MAX_SECONDS:
        issues.append(
            Issue(
                path,
                E_VALUE,
                f"{text} is too long for the agent (Go durations end at "
                f"{GO_DURATION_MAX_SECONDS}s; it would use its default instead)",
            )
        )
        return None
    return text


def check_extra(
    value: object, path: JsonPath, issues: list[Issue], *, gpu: bool = False
) -> dict[str, str] | None:
    """`extra:`: further variables the agent reads, as strings, never one a typed key or the
    host sets (`gpu`: the group's host is a GPU host, which sets GPU_VARIABLES)."""
    if not isinstance(value, dict):
        issues.append(Issue(path, E_TYPE, f"expected a mapping of strings, got {type_name(value)}"))
        return None
    result: dict[str, str] = {}
    for key, item in value.items():
        where = (*path, key)
        if not isinstance(key, str):
            issues.append(Issue(where, E_TYPE, f"keys must be strings, got {type_name(key)}"))
            continue
        host_set = {**HOST_VARIABLES, **(GPU_VARIABLES if gpu else {})}
        if key in TYPED_VARIABLES or key in host_set:
            owner = TYPED_VARIABLES.get(key) or host_set[key]
            issues.append(
                Issue(
                    where, E_TYPED_VARIABLE, f"{key} is set by {owner}; set it there, not in extra"
                )
            )
            continue
        if key not in AGENT_VARIABLES:
            issues.append(
                Issue(
                    where,
                    E_AGENT_VARIABLE,
                    f"{key} is not a variable the ECS agent {AGENT_REF} reads "
                    "(see tools/src/nixecs/agent_vars.py, generated from the agent's source)",
                )
            )
            continue
        if key in SECRET_VARIABLES:
            # Any value: the value itself must not be repeated, here or anywhere.
            issues.append(Issue(where, E_VALUE, f"{key}: {SECRET_VARIABLES[key]}"))
            continue
        if key in AGENT_NEEDS:
            # Any value: the feature is absent, and some of these stop the agent at start.
            feature, why = AGENT_NEEDS[key]
            issues.append(
                Issue(
                    where,
                    E_AGENT_NEEDS,
                    f"{key} needs {feature}, which this host does not provide: it {why}",
                )
            )
            continue
        if isinstance(item, (bool, int, float)):
            issues.append(
                Issue(
                    where,
                    E_TYPE,
                    f"expected a string, got {type_name(item)}: quote it, e.g. {key}: "
                    f'"{jsonc.dumps(item)}"',
                )
            )
            continue
        text = check_str(item, where, issues)
        if text is None:
            continue
        if (found := first_control(text)) is not None:
            # The host refuses control characters anywhere (decode_json): so does the fleet.
            issues.append(
                Issue(
                    where,
                    E_VALUE,
                    f"agent variables cannot contain control characters (U+{ord(found):04X})",
                )
            )
            continue
        if key in REFUSED_VARIABLES and text.strip().lower() == "true":
            issues.append(Issue(where, E_VALUE, f"{key}: {REFUSED_VARIABLES[key]}"))
            continue
        result[key] = text
    return result


def parse_ecs(
    value: object,
    path: JsonPath,
    issues: list[Issue],
    *,
    spot_draining_default: bool = False,
    gpu: bool = False,
) -> EcsSettings | None:
    mapping = check_mapping(value, path, issues, _ECS_KEYS)
    if mapping is None:
        return None
    before = len(issues)
    fields: dict[str, object] = {}
    if "attributes" in mapping:
        fields["attributes"] = check_attributes(
            mapping["attributes"], (*path, "attributes"), issues
        )
    if "tags" in mapping:
        fields["tags"] = check_tags(mapping["tags"], (*path, "tags"), issues)
    fields["spot_draining"] = (
        check_bool(mapping["spot_draining"], (*path, "spot_draining"), issues)
        if "spot_draining" in mapping
        else spot_draining_default
    )
    if "reserved_memory_mib" in mapping:
        reserved = mapping["reserved_memory_mib"]
        if (
            isinstance(reserved, int)
            and not isinstance(reserved, bool)
            and reserved > RESERVED_MEMORY_MAX
        ):
            issues.append(
                Issue(
                    (*path, "reserved_memory_mib"),
                    E_VALUE,
                    f"{reserved} is out of range: must be between 0 and {RESERVED_MEMORY_MAX} "
                    "(the agent reads a 16-bit number and ignores larger values)",
                )
            )
        else:
            fields["reserved_memory_mib"] = check_int(
                reserved, (*path, "reserved_memory_mib"), issues, 0, RESERVED_MEMORY_MAX
            )
    if "log_level" in mapping:
        fields["log_level"] = check_enum(
            mapping["log_level"], (*path, "log_level"), issues, LOG_LEVELS
        )
    if "image_pull_behavior" in mapping:
        fields["image_pull_behavior"] = check_enum(
            mapping["image_pull_behavior"],
            (*path, "image_pull_behavior"),
            issues,
            IMAGE_PULL_BEHAVIORS,
        )
    for key in ("task_cleanup_wait", "container_stop_timeout"):
        if key in mapping:
            fields[key] = check_agent_duration(mapping[key], (*path, key), issues, key)
    if "privileged" in mapping:
        fields["privileged"] = check_bool(mapping["privileged"], (*path, "privileged"), issues)
    if "extra" in mapping:
        fields["extra"] = check_extra(mapping["extra"], (*path, "extra"), issues, gpu=gpu)
    if len(issues) != before:
        return None
    return EcsSettings(**fields)  # type: ignore[arg-type]


def parse_secret(value: object, path: JsonPath, issues: list[Issue]) -> SecretSpec | None:
    mapping = check_mapping(
        value, path, issues, ("parameter", "owner", "group", "mode"), ("parameter",)
    )
    if mapping is None:
        return None
    before = len(issues)
    parameter = (
        check_pattern(
            mapping["parameter"],
            (*path, "parameter"),
            issues,
            PARAMETER_RE,
            PARAMETER_RULE,
        )
        if "parameter" in mapping
        else None
    )
    account_rule = "a user or group name (lowercase letters, digits, _ and -) or a numeric id"
    owner = check_pattern(
        mapping.get("owner", "root"), (*path, "owner"), issues, ACCOUNT_RE, account_rule
    )
    group = check_pattern(
        mapping.get("group", "root"), (*path, "group"), issues, ACCOUNT_RE, account_rule
    )
    mode_value = mapping.get("mode", "0400")
    mode: str | None = None
    if isinstance(mode_value, int) and not isinstance(mode_value, bool):
        issues.append(
            Issue(
                (*path, "mode"),
                E_TYPE,
                f'mode must be a quoted string like "0400" (YAML 1.2 reads an unquoted {mode_value} as a decimal number)',
            )
        )
    else:
        mode = check_pattern(
            mode_value, (*path, "mode"), issues, MODE_RE, 'an octal file mode such as "0400"'
        )
    for key, account in (("owner", owner), ("group", group)):
        # uid_t/gid_t are 32 bits, and chown(2) (Linux man-pages 6.03): "If the owner or
        # group is specified as -1, then that ID is not changed": 4294967295 would silently
        # leave the file root's, and above it os.fchown raises OverflowError mid-write.
        if account is not None and account.isdigit() and int(account) > MAX_ACCOUNT_ID:
            issues.append(
                Issue(
                    (*path, key), E_VALUE, f"{account} is not a valid id: at most {MAX_ACCOUNT_ID}"
                )
            )
    if len(issues) != before or parameter is None or owner is None or group is None or mode is None:
        return None
    return SecretSpec(parameter, owner, group, mode if len(mode) == 4 else "0" + mode)


def parse_secrets(
    value: object, path: JsonPath, issues: list[Issue]
) -> dict[str, SecretSpec] | None:
    if not isinstance(value, dict):
        issues.append(Issue(path, E_TYPE, f"expected a mapping of secrets, got {type_name(value)}"))
        return None
    result: dict[str, SecretSpec] = {}
    ok = True
    for name, spec in value.items():
        where = (*path, name)
        if not isinstance(name, str) or not SECRET_NAME_RE.fullmatch(name):
            issues.append(
                Issue(
                    where,
                    E_NAME,
                    f"secret name {name!r} is not valid: it becomes /run/nixecs/secrets/<name>, so use 1-128 letters, digits, . _ - (not starting with . or -)",
                )
            )
            ok = False
            continue
        parsed = parse_secret(spec, where, issues)
        if parsed is None:
            ok = False
        else:
            result[name] = parsed
    return result if ok else None


# A termination lifecycle hook waits at most 7200 s for its heartbeat; the template adds
# 5 minutes to the drain timeout, so a longer drain would be cut short by Auto Scaling.
DRAIN_MAX_SECONDS = 7200 - 300


def parse_drain(value: object, path: JsonPath, issues: list[Issue]) -> DrainSpec | None:
    mapping = check_mapping(value, path, issues, ("timeout",))
    if mapping is None:
        return None
    timeout = check_duration(mapping.get("timeout", "15m"), (*path, "timeout"), issues)
    if timeout is not None and duration_seconds(timeout) > DRAIN_MAX_SECONDS:
        issues.append(
            Issue(
                (*path, "timeout"),
                E_VALUE,
                f"drain timeout {timeout} is too long: the termination lifecycle hook waits at most "
                f"2 hours, so use at most {DRAIN_MAX_SECONDS // 60}m",
            )
        )
        return None
    return DrainSpec(timeout) if timeout is not None else None


def parse_settings_object(value: object) -> HostSettings:
    """Validate a decoded settings document; raise SettingsError with every issue."""
    issues: list[Issue] = []
    mapping = check_mapping(
        value,
        (),
        issues,
        ("version", "cluster", "group", "flake", "ecs", "secrets", "drain"),
        ("version", "cluster", "group"),
        what="a JSON object",
    )
    if mapping is None:
        raise SettingsError(issues)
    version = mapping.get("version")
    # `true == 1.0 == 1` in Python: only the integer is a version.
    if "version" in mapping and (type(version) is not int or version != SETTINGS_VERSION):
        issues.append(
            Issue(
                ("version",),
                E_VALUE,
                f"unsupported settings version {mapping['version']!r} (this nixecs reads version {SETTINGS_VERSION})",
            )
        )
    rule = "1-64 letters, digits, _ and -, starting with a letter or digit"
    cluster = (
        check_pattern(mapping.get("cluster"), ("cluster",), issues, NAME_RE, rule, E_NAME)
        if "cluster" in mapping
        else None
    )
    group = (
        check_pattern(mapping.get("group"), ("group",), issues, NAME_RE, rule, E_NAME)
        if "group" in mapping
        else None
    )
    flake = check_str(mapping.get("flake", ""), ("flake",), issues)
    ecs = parse_ecs(mapping.get("ecs", {}), ("ecs",), issues)
    secrets = parse_secrets(mapping.get("secrets", {}), ("secrets",), issues)
    drain_value = mapping.get("drain")
    drain = parse_drain(drain_value, ("drain",), issues) if drain_value is not None else None
    if issues or cluster is None or group is None:
        raise SettingsError(issues)
    return HostSettings(
        cluster=cluster, group=group, flake=flake or "", ecs=ecs, secrets=secrets, drain=drain
    )


def dumps(settings: HostSettings) -> str:
    """The settings userdata text: the header line, then one compact, sorted JSON object."""
    body = jsonc.dumps(
        settings.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return f"{SETTINGS_HEADER}\n{body}\n"


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json's default keeps the last of duplicate keys; the fleet loader refuses them (E102),
    # so the host does too: a second "cluster" must not silently win.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(text: str, what: str) -> object:
    """json.loads as strict as the fleet loader: duplicate keys, NaN/Infinity and control
    characters in strings (keys included) are refused. SettingsError names the first."""
    try:
        value = jsonc.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise SettingsError([Issue((), E_TYPE, f"{what} is nested too deeply")]) from None
    except ValueError as error:
        # json's message carries line/column; ours (duplicates, constants) name the key.
        raise SettingsError([Issue((), E_TYPE, f"{what} is not JSON: {error}")]) from None
    issues: list[Issue] = []
    pending: list[tuple[JsonPath, object]] = [((), value)]
    while pending:  # iterative: a deep document must not recurse here either
        path, item = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                pending.append(((*path, key), key))
                pending.append(((*path, key), child))
        elif isinstance(item, list):
            pending.extend(((*path, index), child) for index, child in enumerate(item))
        elif isinstance(item, str) and (found := first_control(item)) is not None:
            # The path may hold the very key at fault: shown escaped, never raw in a log line.
            shown = tuple(
                repr(p) if isinstance(p, str) and first_control(p) is not None else p for p in path
            )
            issues.append(
                Issue(shown, E_VALUE, f"contains the control character U+{ord(found):04X}")
            )
    if issues:
        raise SettingsError(sorted(issues, key=str))
    return value


def loads(text: str) -> HostSettings:
    """Parse settings userdata text (header included); raise SettingsError when invalid."""
    header, _, body = text.partition("\n")
    if header.rstrip("\r") != SETTINGS_HEADER:
        raise SettingsError([Issue((), E_VALUE, f"first line must be exactly {SETTINGS_HEADER!r}")])
    # json's line/column count from the body; the header is line 1 of the userdata.
    return parse_settings_object(decode_json(body, "settings body"))


def loads_json(text: str) -> HostSettings:
    """Parse the bare JSON object written to /run/nixecs/settings.json."""
    return parse_settings_object(decode_json(text, "settings file"))


def _bool(value: bool) -> str:
    return "true" if value else "false"


# The attribute every fleet host registers with its group's name, so that a daemon service
# runs on its own group's instances only (a memberOf placement constraint,
# fleet/daemon.py). The agent sends ECS_INSTANCE_ATTRIBUTES as the container instance's
# custom attributes (aws/amazon-ecs-agent agent/config: InstanceAttributes).
GROUP_ATTRIBUTE = "nixecs.group"


def instance_attributes(group: str, ecs: EcsSettings) -> dict[str, str]:
    """The custom attributes of a group's container instances: its own, and GROUP_ATTRIBUTE
    (which wins over one written by hand)."""
    return {**ecs.attributes, GROUP_ATTRIBUTE: group} if group else dict(ecs.attributes)


def agent_environment(settings: HostSettings) -> dict[str, str]:
    """The ECS agent's environment (ecs.config keys) for these settings."""
    ecs = settings.ecs
    # `extra` first: the typed keys below always win (the schema refuses overlaps anyway).
    env = dict(ecs.extra)
    env |= {
        "ECS_CLUSTER": settings.cluster,
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING": _bool(ecs.spot_draining),
        "ECS_RESERVED_MEMORY": str(ecs.reserved_memory_mib),
        "ECS_LOGLEVEL": ecs.log_level,
        "ECS_IMAGE_PULL_BEHAVIOR": ecs.image_pull_behavior,
        "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION": ecs.task_cleanup_wait,
        "ECS_CONTAINER_STOP_TIMEOUT": ecs.container_stop_timeout,
        "ECS_DISABLE_PRIVILEGED": _bool(not ecs.privileged),
    }
    if attributes := instance_attributes(settings.group, ecs):
        env["ECS_INSTANCE_ATTRIBUTES"] = jsonc.dumps(
            attributes, sort_keys=True, separators=(",", ":")
        )
    if ecs.tags:
        env["ECS_CONTAINER_INSTANCE_TAGS"] = jsonc.dumps(
            ecs.tags, sort_keys=True, separators=(",", ":")
        )
    return env


def _env_quote(value: str) -> str:
    # systemd EnvironmentFile: double quotes with backslash escapes keep spaces, quotes and
    # `$` literal; the ECS agent's own ecs.config parser accepts the same quoting.
    if value and all(c.isalnum() or c in "_-.:/@,+=" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def format_env_file(env: Mapping[str, str]) -> str:
    return "".join(f"{key}={_env_quote(env[key])}\n" for key in sorted(env))
