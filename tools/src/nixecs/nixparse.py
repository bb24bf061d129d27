"""Parse Nix text with real Nix (`nix-instantiate --parse`), many texts per process."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .lazyre import lazy

_ERROR_AT = lazy(r"at (?P<file>/\S+?\.nix):(?P<line>\d+):(?P<column>\d+)")
_ANSI = lazy(r"\x1b\[[0-9;]*m")


def which(program: str) -> str | None:
    """`shutil.which(program)` on POSIX, without importing shutil: its import loads the zlib,
    bz2 and lzma extensions (~4 ms), which `validate` never uses (issue 18, item 4)."""

    def runnable(path: str) -> bool:  # shutil's `_access_check`
        return (
            os.path.exists(path) and os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)
        )

    if os.path.dirname(program):
        return program if runnable(program) else None
    path = os.environ.get("PATH")
    if path is None:
        try:
            path = os.confstr("CS_PATH") or os.defpath
        except (AttributeError, ValueError):
            path = os.defpath
    if not path:
        return None  # PATH='' finds nothing (PATH=':' looks in the current directory)
    seen = set()
    for directory in path.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        candidate = os.path.join(directory, program)
        if runnable(candidate):
            return candidate
    return None


def nix_instantiate() -> str | None:
    return os.environ.get("NIXECS_NIX_INSTANTIATE") or which("nix-instantiate")


class NixParseError:
    def __init__(self, message: str, line: int, column: int) -> None:
        self.message = message
        self.line = line
        self.column = column

    def __repr__(self) -> str:
        return f"NixParseError({self.message!r}, {self.line}, {self.column})"


def parse_texts(texts: Mapping[str, str], binary: str | None = None) -> dict[str, NixParseError]:
    """Parse every text; return the syntax error of each one that does not parse.

    All texts go to one `nix-instantiate --parse` call; Nix stops at the first bad file, so
    that file is set aside and the rest parsed again (one more call per bad text).
    """
    import subprocess  # here: a run whose texts are all cached spawns nothing
    import tempfile

    program = binary or nix_instantiate()
    if program is None:
        raise FileNotFoundError(
            "nix-instantiate is not installed (Debian: apt-get install nix-bin)"
        )
    errors: dict[str, NixParseError] = {}
    with tempfile.TemporaryDirectory(prefix="nixecs-parse-") as tmp:
        files: dict[str, str] = {}
        for index, (key, text) in enumerate(texts.items()):
            path = os.path.join(tmp, f"t{index}.nix")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            files[path] = key
        pending = list(files)
        while pending:
            result = subprocess.run(
                [program, "--parse", *pending],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                env={**os.environ, "NIX_REMOTE": os.environ.get("NIX_REMOTE", "")},
            )
            if result.returncode == 0:
                break
            stderr = _ANSI.sub("", result.stderr)
            match = _ERROR_AT.search(stderr)
            if match is None or match.group("file") not in files:
                raise RuntimeError(
                    f"nix-instantiate failed without a location: {stderr.strip()[:500]}"
                )
            bad = match.group("file")
            first = next(
                (line.strip() for line in stderr.splitlines() if line.strip().startswith("error")),
                stderr.strip(),
            )
            message = first.removeprefix("error:").strip() or "syntax error"
            errors[files[bad]] = NixParseError(
                message, int(match.group("line")), int(match.group("column"))
            )
            pending = pending[pending.index(bad) + 1 :]
    return errors


# The parse-only cache (issue 18, item 4): `validate` runs in editors on every save, and the
# `nixos:` texts rarely change between two runs; a nix-instantiate process costs more than
# the rest of validate. A text's parse result depends only on the text and the Nix that parsed
# it, so the key is a hash of both (the binary's resolved path — a store path names its
# version — size and mtime). Entries are tiny files written atomically; a cache that cannot
# be read or written is simply not used.
_CACHE_VERSION = "1"


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nixecs", "nix-parse")


def _binary_identity(program: str) -> str:
    real = os.path.realpath(which(program) or program)
    info = os.stat(real)
    return f"{real}\0{info.st_size}\0{info.st_mtime_ns}"


_ENTRY_BYTES = 64 * 1024  # an entry is one error message and its place


def _cached(path: str) -> NixParseError | bool | None:
    """A cache entry: True for a text that parses, its error, or None (a miss) for anything
    else: no file, a FIFO or device (read_regular never blocks on one), an entry too big or
    not of the shape written below. A damaged cache costs a parse, never a traceback."""
    import json

    from .atomic import read_regular

    try:
        data = read_regular(path, _ENTRY_BYTES)
        entry = json.loads(data) if len(data) <= _ENTRY_BYTES else None
    except (OSError, ValueError):
        return None
    if entry == {}:
        return True
    if not isinstance(entry, dict) or set(entry) != {"error", "line", "column"}:
        return None
    message, line, column = entry["error"], entry["line"], entry["column"]
    if not (isinstance(message, str) and message):
        return None
    if not all(type(n) is int and n >= 1 for n in (line, column)):
        return None
    return NixParseError(message, line, column)


def parse_texts_cached(
    texts: Mapping[str, str], binary: str | None = None, cache: str | None = None
) -> dict[str, NixParseError]:
    """`parse_texts`, with each text's result remembered under a hash of (Nix, text)."""
    import json

    from .atomic import write_atomic
    from .sha import sha256

    program = binary or nix_instantiate()
    if program is None:
        return parse_texts(texts, program)
    where = cache or cache_dir()
    identity = _binary_identity(program)
    digests = {
        key: sha256(f"{_CACHE_VERSION}\0{identity}\0{text}".encode()).hexdigest()
        for key, text in texts.items()
    }
    errors: dict[str, NixParseError] = {}
    missing: dict[str, str] = {}
    for key, digest in digests.items():
        hit = _cached(os.path.join(where, digest))
        if hit is None:
            missing[key] = texts[key]
        elif isinstance(hit, NixParseError):
            errors[key] = hit
    if not missing:
        return errors
    found = parse_texts(missing, program)
    errors.update(found)
    for key in missing:
        error = found.get(key)
        entry = (
            {"error": error.message, "line": error.line, "column": error.column} if error else {}
        )
        try:
            os.makedirs(where, mode=0o700, exist_ok=True)
            write_atomic(os.path.join(where, digests[key]), json.dumps(entry), 0o600, durable=False)
        except OSError:
            break  # a read-only or full cache: parse again next time
    return errors
