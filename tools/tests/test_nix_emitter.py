"""The Nix literal emitter: every value comes back from real Nix unchanged; no value can
become code; raw Nix only through NixCode."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nixecs.nix import NixValueError, nix_attr_name, nix_string, to_nix

# Fragments that break naive escaping: interpolation, indented-string ends, escapes, quotes,
# line ends, tabs, non-ASCII (2-, 3- and 4-byte UTF-8), control characters.
TRICKY = [
    "$",
    "${",
    "$${",
    "$$",
    "''",
    "'''",
    "''$",
    "''\\",
    "\\",
    "\\$",
    '"',
    '\\"',
    "\r",
    "\n",
    "\r\n",
    "\t",
    "{",
    "}",
    "${x}",
    "\\${x}",
    "é",
    "日本",
    "😀",
    "\u2028",
    "\x01",
    "\x1b",
    "\x7f",
    "a",
    " ",
    "#",
    "/*",
    "*/",
]


def generated_strings(count: int, seed: int) -> list[str]:
    """Strings biased toward TRICKY fragments, with random code points mixed in."""
    rng = random.Random(seed)
    result = ["", "$", "${", "''", "\\", '"']
    while len(result) < count:
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.7:
                parts.append(rng.choice(TRICKY))
            else:
                # any code point except NUL and surrogates (which UTF-8 cannot carry)
                code = rng.choice(
                    [rng.randint(1, 0x7F), rng.randint(0x80, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]
                )
                parts.append(chr(code))
        result.append("".join(parts))
    return result


def nix_eval_json(nix: str, expression: str, tmp_path: Path, name: str = "expr.nix") -> object:
    path = tmp_path / name
    path.write_text(expression, encoding="utf-8")
    result = subprocess.run(
        [nix, "--eval", "--strict", "--json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.nix
def test_ten_thousand_generated_strings_round_trip_through_real_nix(
    nix_instantiate: str, tmp_path: Path
) -> None:
    strings = generated_strings(10_500, seed=20261128)
    batch = 3_500  # one nix-instantiate process per few thousand strings
    for start in range(0, len(strings), batch):
        chunk = strings[start : start + batch]
        expression = "[\n" + "\n".join(nix_string(s) for s in chunk) + "\n]\n"
        back = nix_eval_json(nix_instantiate, expression, tmp_path, f"batch{start}.nix")
        assert isinstance(back, list)
        mismatches = [(s, b) for s, b in zip(chunk, back, strict=True) if s != b]
        assert not mismatches, f"{len(mismatches)} strings changed, first: {mismatches[0]!r}"


@pytest.mark.nix
def test_attribute_names_round_trip(nix_instantiate: str, tmp_path: Path) -> None:
    names = [
        "",
        "a",
        "a.b",
        "with space",
        "if",
        "then",
        "else",
        "let",
        "in",
        "rec",
        "inherit",
        "assert",
        "with",
        "or",
        "a-b",
        "a'b",
        "_x",
        "1abc",
        "${x}",
        "$",
        "''",
        "日本",
        "x\ny",
        '"',
    ]
    names += generated_strings(500, seed=7)
    unique = list(dict.fromkeys(names))
    value = {name: index for index, name in enumerate(unique)}
    back = nix_eval_json(nix_instantiate, to_nix(value), tmp_path)
    assert back == value


@pytest.mark.nix
def test_nested_values_round_trip(nix_instantiate: str, tmp_path: Path) -> None:
    value = {
        "ints": [0, 1, -1, 2**62, -(2**63), 2**63 - 1],
        "bools": [True, False],
        "null": None,
        "empty": {"list": [], "set": {}},
        "nested": {"a": [{"b": ["${c}", -5]}]},
    }
    assert nix_eval_json(nix_instantiate, to_nix(value), tmp_path) == value


@pytest.mark.nix
def test_floats_parse_to_the_same_double_in_nix(nix_instantiate: str, tmp_path: Path) -> None:
    # Nix 2.8 prints floats with 6 digits, so compare inside Nix against its own JSON parser.
    floats = [
        0.1,
        -2.5,
        1e20,
        1.7976931348623157e308,
        123456789.123456789,
        0.30000000000000004,
        1e-300,
        -0.0,
        75.0,
    ]
    checks = " ".join(
        f"({to_nix(x)} == builtins.fromJSON {nix_string(json.dumps(x))})" for x in floats
    )
    assert nix_eval_json(nix_instantiate, f"[ {checks} ]", tmp_path) == [True] * len(floats)


@pytest.mark.parametrize("bad", ["a\x00b", "\x00", "x\ud800y"])
def test_nul_and_unencodable_text_are_rejected(bad: str) -> None:
    with pytest.raises(NixValueError):
        nix_string(bad)
    with pytest.raises(NixValueError):
        to_nix({"k": bad})
    with pytest.raises(NixValueError):
        to_nix({bad: 1})


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), 2**63, -(2**63) - 1, b"bytes", object()]
)
def test_values_without_a_nix_literal_are_rejected(bad: object) -> None:
    with pytest.raises(NixValueError):
        to_nix(bad)


@given(st.text())
@settings(max_examples=300)
def test_no_string_can_interpolate_or_end_the_literal(text: str) -> None:
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return
    literal = nix_string(text)
    body = literal[1:-1]
    # Every `$` and `"` inside the literal is escaped, so neither `${` nor an early end exists.
    index = 0
    while index < len(body):
        if body[index] == "\\":
            index += 2
            continue
        assert body[index] not in '$"\n\r', literal
        index += 1


def test_attribute_names_are_bare_only_when_they_are_identifiers() -> None:
    assert nix_attr_name("services") == "services"
    assert nix_attr_name("a-b'c") == "a-b'c"
    assert nix_attr_name("in") == '"in"'
    assert nix_attr_name("or") == '"or"'
    assert nix_attr_name("a.b") == '"a.b"'
    assert nix_attr_name("") == '""'
    assert nix_attr_name("1x") == '"1x"'
