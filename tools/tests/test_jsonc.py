"""nixecs.jsonc against json itself: the same values, the same text, the same errors."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nixecs import jsonc

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_dumps_indented_is_json_dumps_indent_2_sorted(value: object) -> None:
    assert jsonc.dumps_indented(value) == json.dumps(value, indent=2, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans(), st.booleans(), st.sampled_from([(", ", ": "), (",", ":")]))
def test_dumps_is_json_dumps(
    value: object, sort_keys: bool, ensure_ascii: bool, separators: tuple[str, str]
) -> None:
    assert jsonc.dumps(
        value, sort_keys=sort_keys, separators=separators, ensure_ascii=ensure_ascii
    ) == json.dumps(value, sort_keys=sort_keys, separators=separators, ensure_ascii=ensure_ascii)


def test_non_string_keys_sort_and_convert_as_json_does() -> None:
    value = {10: "a", 9: "b", 2.5: None}
    assert jsonc.dumps_indented({1: value, 0: [], 3: {}}) == json.dumps(
        {1: value, 0: [], 3: {}}, indent=2, sort_keys=True
    )
    with pytest.raises(TypeError):
        jsonc.dumps_indented({"a": object()})
    with pytest.raises(TypeError):
        jsonc.dumps({"a": object()})


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from(["", " ", "\n\t", "\r\n "]))
def test_loads_reads_what_json_reads(value: object, padding: str) -> None:
    text = padding + json.dumps(value, indent=None if len(padding) % 2 else 1) + padding
    assert _same(jsonc.loads(text), json.loads(text))


def _outcome(call: object, text: str) -> tuple[str, object]:
    try:
        return "value", call(text)  # type: ignore[operator]
    except ValueError as error:
        return type(error).__name__, str(error)
    except RecursionError:
        return "RecursionError", None


def _hook(pairs: list[tuple[str, object]]) -> object:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


FRAGMENTS = [
    "",
    " ",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"a"',
    '"\\u00e9"',
    '"\x01"',
    "1",
    "-0",
    "1e5",
    "1.5",
    "NaN",
    "-Infinity",
    "Infinity",
    "true",
    "nul",
    "null",
    "\ufeff",
    "\n",
    "x",
    '"b"',
]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_loads_fails_exactly_as_json_does(text: str) -> None:
    """Hostile text: the same value or the same error class and message (line, column)."""
    assert _outcome(jsonc.loads, text) == _outcome(json.loads, text) or _same(
        _outcome(jsonc.loads, text)[1], _outcome(json.loads, text)[1]
    )
    strict = {"object_pairs_hook": _hook, "parse_constant": _no_constant}
    mine = _outcome(lambda t: jsonc.loads(t, **strict), text)
    theirs = _outcome(lambda t: json.loads(t, **strict), text)
    assert mine[0] == theirs[0]
    assert (mine[0] == "value" and _same(mine[1], theirs[1])) or mine[1] == theirs[1]
    if mine[0] == "JSONDecodeError":
        with pytest.raises(json.JSONDecodeError):
            jsonc.loads(text, **strict)  # type: ignore[arg-type]
