"""The settings-userdata schema: one module for both ends.

The renderer writes `#nixecs-settings v1` userdata through `dumps`; the host-side applier
reads it back through `loads`; the fleet loader validates a group's `ecs`, `secrets` and
`drain` sections with the same `parse_*` functions. The two ends therefore cannot drift.

This module is on the boot path (`nixecs apply`): it imports only `json` and `re` at run
time. `dataclasses` and `typing` cost tens of milliseconds to import, so the records below
are plain classes and every annotation is evaluated lazily.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False  # not `from typing import`: typing costs ~6 ms on the boot path

if TYPE_CHECKING:
    from collections.abc import Mapping

    JsonPath = tuple[object, ...]

SETTINGS_HEADER = "#nixecs-settings v1"
SETTINGS_VERSION = 1

LOG_LEVELS = ("debug", "info", "warn", "error", "crit")
IMAGE_PULL_BEHAVIORS = ("default", "always", "once", "prefer-cached")

DURATION_RE = re.compile(r"[0-9]{1,9}[smh]")
MODE_RE = re.compile(r"0?[0-7]{3}")
# POSIX portable user/group names, or a numeric id.
ACCOUNT_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?|[0-9]{1,10}")
# A secret becomes the file /run/secrets/<name>: no separators, no leading dot.
SECRET_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# SSM parameter names: hierarchical (leading slash) so IAM can scope to them exactly.
PARAMETER_RE = re.compile(r"(/[A-Za-z0-9_.-]+){1,15}")
# ECS container-instance attributes (RegisterContainerInstance rules).
ATTRIBUTE_NAME_RE = re.compile(r"[A-Za-z0-9_./@-]{1,128}")
ATTRIBUTE_VALUE_RE = re.compile(r"[A-Za-z0-9_./@\\: -]{1,128}")
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

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

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in sorted(self.__slots__)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EcsSettings) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"EcsSettings({self.to_json()!r})"


class SecretSpec:
    """A secret fetched at boot from SSM into /run/secrets/<name>."""

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
)


def parse_ecs(
    value: object, path: JsonPath, issues: list[Issue], *, spot_draining_default: bool = False
) -> EcsSettings | None:
    mapping = check_mapping(value, path, issues, _ECS_KEYS)
    if mapping is None:
        return None
    before = len(issues)
    fields: dict[str, object] = {}
    if "attributes" in mapping:
        fields["attributes"] = check_string_map(
            mapping["attributes"],
            (*path, "attributes"),
            issues,
            key_rule=(ATTRIBUTE_NAME_RE, "1-128 letters, digits, - _ . @ /"),
            value_rule=(ATTRIBUTE_VALUE_RE, "1-128 letters, digits, spaces, - _ . @ / \\ :"),
        )
    if "tags" in mapping:
        fields["tags"] = check_string_map(
            mapping["tags"], (*path, "tags"), issues, key_max=TAG_KEY_MAX, value_max=TAG_VALUE_MAX
        )
    fields["spot_draining"] = (
        check_bool(mapping["spot_draining"], (*path, "spot_draining"), issues)
        if "spot_draining" in mapping
        else spot_draining_default
    )
    if "reserved_memory_mib" in mapping:
        fields["reserved_memory_mib"] = check_int(
            mapping["reserved_memory_mib"], (*path, "reserved_memory_mib"), issues, 0, 1048576
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
            fields[key] = check_duration(mapping[key], (*path, key), issues)
    if "privileged" in mapping:
        fields["privileged"] = check_bool(mapping["privileged"], (*path, "privileged"), issues)
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
            "an SSM parameter name with a leading slash, e.g. /prod/db/password",
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
                    f"secret name {name!r} is not valid: it becomes /run/secrets/<name>, so use 1-128 letters, digits, . _ - (not starting with . or -)",
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
    if "version" in mapping and mapping["version"] != SETTINGS_VERSION:
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
    body = json.dumps(settings.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{SETTINGS_HEADER}\n{body}\n"


def loads(text: str) -> HostSettings:
    """Parse settings userdata text (header included); raise SettingsError when invalid."""
    header, _, body = text.partition("\n")
    if header.rstrip("\r") != SETTINGS_HEADER:
        raise SettingsError([Issue((), E_VALUE, f"first line must be exactly {SETTINGS_HEADER!r}")])
    try:
        value = json.loads(body)
    except ValueError as error:
        # json's message carries line/column inside the body; the header is line 1. A
        # 5,000-digit integer is a ValueError too (Python's int-string conversion limit).
        raise SettingsError([Issue((), E_TYPE, f"settings body is not JSON: {error}")]) from None
    except RecursionError:
        raise SettingsError([Issue((), E_TYPE, "settings body is nested too deeply")]) from None
    return parse_settings_object(value)


def loads_json(text: str) -> HostSettings:
    """Parse the bare JSON object written to /run/nixecs/settings.json."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise SettingsError([Issue((), E_TYPE, f"settings are not JSON: {error}")]) from None
    except RecursionError:
        raise SettingsError([Issue((), E_TYPE, "settings are nested too deeply")]) from None
    return parse_settings_object(value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def agent_environment(settings: HostSettings) -> dict[str, str]:
    """The ECS agent's environment (ecs.config keys) for these settings."""
    ecs = settings.ecs
    env = {
        "ECS_CLUSTER": settings.cluster,
        "ECS_ENABLE_SPOT_INSTANCE_DRAINING": _bool(ecs.spot_draining),
        "ECS_RESERVED_MEMORY": str(ecs.reserved_memory_mib),
        "ECS_LOGLEVEL": ecs.log_level,
        "ECS_IMAGE_PULL_BEHAVIOR": ecs.image_pull_behavior,
        "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION": ecs.task_cleanup_wait,
        "ECS_CONTAINER_STOP_TIMEOUT": ecs.container_stop_timeout,
        "ECS_DISABLE_PRIVILEGED": _bool(not ecs.privileged),
    }
    if ecs.attributes:
        env["ECS_INSTANCE_ATTRIBUTES"] = json.dumps(
            ecs.attributes, sort_keys=True, separators=(",", ":")
        )
    if ecs.tags:
        env["ECS_CONTAINER_INSTANCE_TAGS"] = json.dumps(
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
