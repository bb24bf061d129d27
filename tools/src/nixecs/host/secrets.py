"""`nixecs secrets fetch`: SSM Parameter Store → /run/secrets/<name>, at boot.

Which secrets: the union of the `secrets` of the settings userdata (written by `nixecs apply`
to /run/nixecs/settings.json) and of the image's list (/etc/nixecs/secrets.json, written by
the NixOS module `nixecs.secrets`). Both are validated by `settings.parse_secrets`, the same
code the renderer uses. A name declared in both must mean the same thing.

How: `GetParameters(WithDecryption=True)` with at most 10 names per call (the API's limit,
DESIGN §10), every value fetched before any file is written, so a missing parameter leaves
nothing half-done: the command fails naming the missing parameters and writes nothing. Each
file is then written atomically with its mode and owner set before it appears.

Values never reach a log line, an error message or an exception: nothing here formats a
value, and AWS errors pass through `aws.session.aws_errors`, which scrubs registered values.

Ownership when not running as root (tests, `make demo`): a process may only give a file to
itself and to one of its own groups, so the requested owner and group are applied when that
is permitted and otherwise the file keeps the caller's ownership, with a warning naming the
file and the requested owner. As root, a failing chown is an error.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ..atomic import write_atomic
from ..settings import Issue, SecretSpec, SettingsError, loads_json, parse_secrets

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

BATCH = 10  # GetParameters takes at most 10 names
SECRETS_DIR = "/run/secrets"
SETTINGS_FILE = "/run/nixecs/settings.json"
LIST_FILE = "/etc/nixecs/secrets.json"


class SecretsInvalid(Exception):
    """The secret declarations cannot be used (exit 2)."""


class SecretsFailed(Exception):
    """SSM or the file system failed us (exit 1). Never carries a value."""


def rerooted(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _parse(value: object, source: str) -> dict[str, SecretSpec]:
    # The NixOS module writes a list of {name, parameter, owner, group, mode, path}; the
    # settings userdata an object {name: {parameter, owner, group, mode}}. Accept both.
    if isinstance(value, list):
        converted: dict[str, object] = {}
        for index, item in enumerate(value):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise SecretsInvalid(f"{source}: item {index} needs a string 'name'")
            entry = {k: v for k, v in item.items() if k not in ("name", "path")}
            name = item["name"]
            if "path" in item and item["path"] != f"{SECRETS_DIR}/{name}":
                raise SecretsInvalid(
                    f"{source}: secret {name!r}: path must be {SECRETS_DIR}/{name}"
                )
            converted[name] = entry
        value = converted
    issues: list[Issue] = []
    parsed = parse_secrets(value, ("secrets",), issues)
    if parsed is None or issues:
        raise SecretsInvalid(f"{source}: {'; '.join(str(i) for i in issues)}")
    return parsed


def load_specs(
    settings_file: str | None, list_file: str | None, log: Callable[[str], None]
) -> dict[str, SecretSpec]:
    """Every secret declared by the settings and the list; missing files declare none."""
    specs: dict[str, SecretSpec] = {}
    origin: dict[str, str] = {}
    sources: list[tuple[str, dict[str, SecretSpec]]] = []
    if settings_file is not None:
        try:
            with open(settings_file, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            log(f"{settings_file} does not exist (no settings userdata): no secrets from it")
        except OSError as error:
            raise SecretsFailed(f"cannot read {settings_file}: {error.strerror}") from None
        else:
            try:
                sources.append((settings_file, loads_json(text).secrets))
            except SettingsError as error:
                raise SecretsInvalid(f"{settings_file}: {error}") from None
    if list_file is not None:
        try:
            with open(list_file, encoding="utf-8") as handle:
                value = json.load(handle)
        except FileNotFoundError:
            log(f"{list_file} does not exist: no secrets from it")
        except OSError as error:
            raise SecretsFailed(f"cannot read {list_file}: {error.strerror}") from None
        except ValueError as error:
            raise SecretsInvalid(f"{list_file}: not JSON: {error}") from None
        except RecursionError:
            raise SecretsInvalid(f"{list_file}: not JSON: nested too deeply") from None
        else:
            sources.append((list_file, _parse(value, list_file)))
    for source, declared in sources:
        for name, spec in declared.items():
            if name in specs and specs[name] != spec:
                raise SecretsInvalid(
                    f"secret {name!r} is declared differently in {origin[name]} and {source}"
                )
            specs[name] = spec
            origin.setdefault(name, source)
    return specs


def resolve_account(spec: SecretSpec, name: str) -> tuple[int, int]:
    """(uid, gid) for the spec's owner and group: names via pwd/grp, or numeric ids."""
    import grp
    import pwd

    try:
        uid = int(spec.owner) if spec.owner.isdigit() else pwd.getpwnam(spec.owner).pw_uid
    except KeyError:
        raise SecretsInvalid(f"secret {name!r}: no user {spec.owner!r} on this host") from None
    try:
        gid = int(spec.group) if spec.group.isdigit() else grp.getgrnam(spec.group).gr_gid
    except KeyError:
        raise SecretsInvalid(f"secret {name!r}: no group {spec.group!r} on this host") from None
    return uid, gid


def fetch_values(ssm: Any, parameters: Iterable[str]) -> dict[str, str]:
    """Parameter name → decrypted value, 10 names per GetParameters call. SecretsFailed
    naming every missing parameter (and no value) when any is missing."""
    wanted = sorted(set(parameters))
    values: dict[str, str] = {}
    missing: list[str] = []
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        response = ssm.get_parameters(Names=batch, WithDecryption=True)
        for parameter in response.get("Parameters", []):
            values[parameter["Name"]] = parameter["Value"]
        missing.extend(response.get("InvalidParameters", []))
    # GetParameters may return the ARN-less name or a selector form; compare by name only.
    missing += [name for name in wanted if name not in values and name not in missing]
    if missing:
        raise SecretsFailed(
            f"SSM has no parameter {', '.join(sorted(set(missing)))} (or the instance role may not read it); no secret was written"
        )
    return values


class SecretWriter:
    """Writes secret files under `root`; `euid` is injectable so tests cover both policies."""

    def __init__(self, root: str, log: Callable[[str], None], euid: int | None = None) -> None:
        self.root = root
        self.log = log
        self.euid = os.geteuid() if euid is None else euid

    def may_chown(self, uid: int, gid: int) -> bool:
        if self.euid == 0:
            return True
        return uid == self.euid and (gid == os.getegid() or gid in os.getgroups())

    def write(self, name: str, spec: SecretSpec, value: str, uid: int, gid: int) -> str:
        path = rerooted(self.root, f"{SECRETS_DIR}/{name}")
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o751, exist_ok=True)
        mode = int(spec.mode, 8)
        if self.may_chown(uid, gid):
            write_atomic(path, value, mode, uid=uid, gid=gid)
        else:
            write_atomic(path, value, mode)
            self.log(
                f"warning: not root: {path} stays owned by uid {os.geteuid()}, "
                f"not {spec.owner}:{spec.group} as requested"
            )
        return path


def fetch_secrets(
    specs: Mapping[str, SecretSpec],
    ssm: Any,
    writer: SecretWriter,
    log: Callable[[str], None],
) -> list[str]:
    """Resolve accounts, fetch every value, then write every file; returns the paths."""
    if not specs:
        log("no secrets declared: nothing to fetch")
        return []
    accounts = {name: resolve_account(spec, name) for name, spec in specs.items()}
    parameters = {spec.parameter for spec in specs.values()}
    log(f"fetching {len(parameters)} parameter(s) for {len(specs)} secret(s)")
    values = fetch_values(ssm, parameters)
    written: list[str] = []
    for name in sorted(specs):
        spec = specs[name]
        uid, gid = accounts[name]
        try:
            written.append(writer.write(name, spec, values[spec.parameter], uid, gid))
        except OSError as error:
            done = f" ({len(written)} of {len(specs)} written before it)" if written else ""
            raise SecretsFailed(
                f"cannot write secret {name!r} to {error.filename or SECRETS_DIR}: {error.strerror}{done}"
            ) from None
        log(f"wrote {written[-1]} ({spec.owner}:{spec.group} {spec.mode}) from {spec.parameter}")
    return written
