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


# The settings patterns on `nixecs apply`'s path answer fullmatch with a plain-Python test
# (no `re` at boot): each must agree with its regular expression on every text.
def _settings_patterns() -> list[tuple[str, object]]:
    from nixecs import settings as s

    names = (
        "DURATION_RE", "MODE_RE", "ACCOUNT_RE", "SECRET_NAME_RE", "PARAMETER_RE",
        "ATTRIBUTE_NAME_RE", "ATTRIBUTE_VALUE_RE", "NAME_RE",
    )  # fmt: skip
    return [(name, getattr(s, name)) for name in names]


# Near-miss text: the characters the patterns name, their neighbours, and a few that
# casefold or count as digits or letters outside ASCII.
_ALPHABET = "aAzZ09_-./\\:@ $smh0178\n\r\t\x00\x7fSsWwé٣ſKK"
_SEEDS = ["/aws", "/Ssm/x", "/a/./b", "/a/../b", "/a/.b", "/..", "/.", "a/b", "/a//b", "15m"]


@pytest.mark.parametrize(("name", "pattern"), _settings_patterns())
def test_plain_tests_agree_with_their_patterns(name: str, pattern: re.Pattern[str]) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    regex = re.compile(pattern.pattern, pattern.flags)
    texts = st.text(alphabet=_ALPHABET, max_size=12) | st.builds(
        lambda seed, tail: seed + tail, st.sampled_from(_SEEDS), st.text(_ALPHABET, max_size=5)
    )

    @settings(max_examples=2000, deadline=None)
    @given(texts)
    def agree(text: str) -> None:
        assert bool(pattern.fullmatch(text)) == bool(regex.fullmatch(text)), text

    agree()
    for text in (
        "a" * 64, "a" * 65, "A" * 128, "A" * 129, "9" * 10, "9" * 11, "/" + "a/" * 14 + "a",
        "/" + "a/" * 15 + "a", "/" + "a" * 1010, "/" + "a" * 1011, "a" * 32 + "$", "a" * 33,
        "123456789s", "1234567890s", " a", "a ", "0644", "00644", "_" * 32 + "$",
    ):  # fmt: skip
        assert bool(pattern.fullmatch(text)) == bool(regex.fullmatch(text)), (name, text)


def test_first_control_finds_what_the_pattern_finds() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from nixecs.settings import first_control

    control = re.compile("[\x00-\x1f\x7f]")

    @settings(max_examples=1000, deadline=None)
    @given(st.text(alphabet="ab\x00\x01\x1f\x20\x7f\x80\u2028é", max_size=10))
    def agree(text: str) -> None:
        found = control.search(text)
        assert first_control(text) == (found.group() if found else None)

    agree()
