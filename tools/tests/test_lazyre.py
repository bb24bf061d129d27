"""lazyre: a pattern compiled on first use behaves as `re.compile`'s."""

from __future__ import annotations

import re

import pytest

from nixecs.lazyre import lazy, lazy_bytes


def test_pattern_is_readable_before_any_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[object] = []
    real = re.compile
    monkeypatch.setattr(re, "compile", lambda *a: compiled.append(a) or real(*a))
    pattern = lazy(r"[a-z]+-(?P<n>[0-9]+)", re.IGNORECASE)
    assert (pattern.pattern, pattern.flags) == (r"[a-z]+-(?P<n>[0-9]+)", re.IGNORECASE)
    assert compiled == []  # reading .pattern (the JSON Schema does) compiles nothing
    assert pattern.fullmatch("AB-12") is not None
    assert pattern.fullmatch("ab-") is None
    assert pattern.sub("x", "a-1 b-2") == "x x"
    assert [m.group("n") for m in pattern.finditer("a-1 b-2")] == ["1", "2"]
    assert pattern.groups == 1
    assert len(compiled) == 1  # once, whatever is used afterwards


def test_bytes_patterns() -> None:
    digits = lazy_bytes(rb"[0-9]+")
    assert digits.fullmatch(b"123") is not None
    assert digits.search(b"ab") is None


def test_an_import_with_deferred_compiles_behaves_the_same() -> None:
    """PyYAML imported through import_deferring_compiles (nixecs.fleet does) compiles none of
    its patterns at import, and its pure-Python loader still resolves every implicit type."""
    import subprocess
    import sys

    code = """
import re
real = re.compile
import nixecs.fleet
assert re.compile is real, "re.compile restored"
import yaml
from yaml.reader import Reader
assert type(Reader.NON_PRINTABLE).__name__ == "_Lazy", Reader.NON_PRINTABLE
loaded = yaml.load(
    "a: 2001-12-14\\nb: 1_000\\nc: 0x1F\\nd: .5\\ne: yes\\nf: ~\\ng: 6.5e+2\\n", Loader=yaml.Loader
)
print(sorted((k, type(v).__name__, str(v)) for k, v in loaded.items()))
try:
    Reader("a\\x07b")
except yaml.reader.ReaderError as error:
    print("refused", error.character)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == [
        "[('a', 'date', '2001-12-14'), ('b', 'int', '1000'), ('c', 'int', '31'), "
        "('d', 'float', '0.5'), ('e', 'bool', 'True'), ('f', 'NoneType', 'None'), "
        "('g', 'float', '650.0')]",
        "refused 7",  # the character code
    ]
