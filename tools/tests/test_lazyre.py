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
