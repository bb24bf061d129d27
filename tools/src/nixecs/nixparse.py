"""Parse Nix text with real Nix (`nix-instantiate --parse`), many texts per process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping

_ERROR_AT = re.compile(r"at (?P<file>/\S+?\.nix):(?P<line>\d+):(?P<column>\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def nix_instantiate() -> str | None:
    return os.environ.get("NIXECS_NIX_INSTANTIATE") or shutil.which("nix-instantiate")


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
