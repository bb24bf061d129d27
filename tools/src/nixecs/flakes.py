"""The fleet's flake, asked through the `nix` command (Nix ≥ 2.4, flakes as an experimental
feature turned on per call): its hosts (`nixecsHosts`, written by lib.mkHosts), its locked
revision, a host's image build and a host's evaluation.

Nothing here is needed: without `nix`, or with a Nix that has no flakes (before 2.4), or a
flake that is not a local path, `nix_flakes()` is None and the callers say what they could
not do. `NIXECS_NIX` names the `nix` binary (tests put a recording fake there).
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

from .lazyre import lazy

if TYPE_CHECKING:
    from pathlib import Path

# shutil, subprocess and pathlib are imported where used: `validate` on a fleet whose flake
# is not a local path (or has none) needs none of them (issue 18, item 4).

# `nix flake` and `nix eval FLAKE#…` need both (https://nix.dev/manual/nix/2.24/development/experimental-features#xp-feature-flakes).
FEATURES = ("--extra-experimental-features", "nix-command flakes")
EVAL_TIMEOUT = 600.0  # seconds: an evaluation that fetches inputs the first time
_VERSION = lazy(r"(\d+)\.(\d+)")
_LOCAL = lazy(r"^(?:path:|git\+file://)?(?P<path>\.{1,2}(?:/.*)?|/.*)$")


class FlakeError(Exception):
    """`nix` ran and failed; the message is its error, shortened."""


def nix_binary() -> str | None:
    import shutil

    return os.environ.get("NIXECS_NIX") or shutil.which("nix")


def nix_flakes() -> str | None:
    """The `nix` binary when it is 2.4 or newer (flakes exist), else None."""
    binary = nix_binary()
    if binary is None:
        return None
    import subprocess

    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(out)
    return binary if found and (int(found[1]), int(found[2])) >= (2, 4) else None


def is_local(flake: str) -> bool:
    """Whether `local_path` finds a directory in `flake` (without needing its base)."""
    return _LOCAL.match(flake.split("?", 1)[0]) is not None


def local_path(flake: str, base: Path) -> Path | None:
    """The directory of a flake reference that is a local path (`.`, `./x`, `/x`, `path:x`,
    `git+file:///x`; relative to `base`, the fleet file's directory), else None."""
    found = _LOCAL.match(flake.split("?", 1)[0])
    if found is None:
        return None
    return (base / found["path"]).resolve()


def flake_ref(flake: str, base: Path) -> str:
    """What `nix` is given: a local path made absolute (the command may run elsewhere)."""
    path = local_path(flake, base)
    return str(path) if path is not None else flake


def run_nix(binary: str, *args: str, timeout: float | None = EVAL_TIMEOUT) -> str:
    """`nix` with flakes on; its stdout, or FlakeError with the end of its stderr."""
    import subprocess

    try:
        result = subprocess.run(
            [binary, *FEATURES, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FlakeError(f"`nix {' '.join(args)}` did not finish in {timeout:.0f}s") from None
    except OSError as error:
        raise FlakeError(f"{binary}: {error}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise FlakeError("\n".join(lines[-12:]) or f"`nix {args[0]}` failed")
    return result.stdout


def host_systems(value: dict[str, object]) -> tuple[str, ...]:
    """A `nixecsHosts` entry's systems: `systems` (lib.mkHosts writes every system a host is
    built for), else its one `system`."""
    systems = value.get("systems")
    if isinstance(systems, list) and systems:
        return tuple(str(s) for s in systems)
    return (str(value.get("system", "x86_64-linux")),)


def hosts(binary: str, ref: str) -> dict[str, tuple[str, ...]]:
    """The flake's hosts (name → systems), from the `nixecsHosts` output lib.mkHosts writes:
    plain data, evaluated without building (or even instantiating) a system; --offline:
    inputs not in the store already are not fetched (validate stays offline), it fails."""
    data = json.loads(run_nix(binary, "eval", "--offline", "--json", f"{ref}#nixecsHosts"))
    if not isinstance(data, dict):
        raise FlakeError(f"{ref}#nixecsHosts is not an attribute set")
    return {
        str(name): host_systems(value) for name, value in data.items() if isinstance(value, dict)
    }


def host_features(binary: str, ref: str) -> dict[str, frozenset[str]]:
    """What each host provides of what a group declares (host → {"exec", "gpu"} subset),
    from the `nixecsHostFeatures` output lib.mkHosts writes: the hosts' options evaluated,
    nothing built; --offline as `hosts`."""
    data = json.loads(run_nix(binary, "eval", "--offline", "--json", f"{ref}#nixecsHostFeatures"))
    if not isinstance(data, dict):
        raise FlakeError(f"{ref}#nixecsHostFeatures is not an attribute set")
    return {
        str(name): frozenset(k for k, on in value.items() if on is True)
        for name, value in data.items()
        if isinstance(value, dict)
    }


def revision(binary: str, ref: str) -> str | None:
    """The flake's locked git revision when its tree is clean (`nix flake metadata` prints
    `revision` only then), else None."""
    data = json.loads(run_nix(binary, "flake", "metadata", "--json", ref))
    rev = data.get("revision") if isinstance(data, dict) else None
    return rev if isinstance(rev, str) and re.fullmatch(r"[0-9a-f]{40}", rev) else None


def build(binary: str, ref: str, attribute: str) -> Path:
    """`nix build REF#ATTRIBUTE`, no `result` link; the output's store path. Not bounded:
    the first build of an image takes as long as it takes, and the person watching can stop it."""
    out = run_nix(
        binary, "build", "--no-link", "--print-out-paths", f"{ref}#{attribute}", timeout=None
    )
    paths = [line.strip() for line in out.splitlines() if line.strip()]
    if len(paths) != 1:
        raise FlakeError(f"`nix build {ref}#{attribute}` printed {len(paths)} outputs, not one")
    from pathlib import Path

    return Path(paths[0])
