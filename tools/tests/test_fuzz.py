"""No input whatsoever produces a traceback: random bytes, random YAML-ish text and mutated
valid fleet files all end in a valid fleet or in located diagnostics (exit 0 or 2)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES
from nixecs.cli import run
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.scaling import check_fleet

DIAGNOSTIC = re.compile(r"^.+:\d+:\d+: (error|warning)\[[EW]\d{3}\]: .+$")
SEEDS = [(EXAMPLES / name).read_text(encoding="utf-8") for name in ("fleet.yml", "blog.yml")]
YAML_PIECES = [
    ":",
    " ",
    "\n",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "!Ref ",
    "'",
    '"',
    "#",
    "|",
    ">",
    "? ",
    "---\n",
    "...\n",
    "\t",
    "~",
    "null",
    "no",
    "0755",
    "-1",
    "1e9",
    ".inf",
    "<<: ",
    "%YAML 1.2\n",
    "\\",
    "\x00",
    "\ufeff",
    "é",
    "version: 1\n",
    "clusters:\n",
    "groups:\n",
    "  ",
    "steps:\n",
]


def outcome(text: str | bytes) -> str:
    """'valid' or 'invalid'; anything else (an exception) fails the test."""
    try:
        fleet = parse(text, "fuzz.yml")
    except InvalidInput as error:
        assert error.report.errors, "InvalidInput without an error"
        for diagnostic in error.report.sorted():
            assert DIAGNOSTIC.match(diagnostic.format()), diagnostic.format()
            assert diagnostic.location.line >= 1 and diagnostic.location.column >= 1
        return "invalid"
    check_fleet(fleet)  # the scaling checks must also cope with whatever loaded
    return "valid"


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_random_bytes(data: bytes) -> None:
    outcome(data)


@given(st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=5), max_size=60).map("".join))
@settings(max_examples=400, deadline=None)
def test_random_yaml_like_text(text: str) -> None:
    outcome(text)


@st.composite
def mutated_fleet(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "swap_lines", "dup_line"]))
        if not text:
            break
        position = draw(st.integers(0, len(text) - 1))
        if kind == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 20)) :]
        elif kind == "insert":
            text = text[:position] + draw(st.sampled_from(YAML_PIECES)) + text[position:]
        elif kind == "replace":
            text = text[:position] + draw(st.sampled_from(YAML_PIECES)) + text[position + 1 :]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines[i])
            text = "\n".join(lines)
    return text


@given(mutated_fleet())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_valid_fleets(text: str) -> None:
    outcome(text)


@given(mutated_fleet())
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_cli_validate_never_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "fleet.yml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code = run(["validate", str(path)])
    captured = capsys.readouterr()
    assert code in (0, 2), captured.err
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    if code == 2:
        lines = [line for line in captured.err.splitlines() if line]
        assert lines and all(DIAGNOSTIC.match(line) for line in lines), captured.err
