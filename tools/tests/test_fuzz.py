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
from nixecs.diagnostics import InvalidInput, Report
from nixecs.fleet import parse
from nixecs.fleet.checks import SCALING_RULES, check
from nixecs.fleet.model import Fleet


def check_fleet(fleet: Fleet) -> Report:
    """The scaling rules of the checks stage (what `nixecs scaling check` runs)."""
    return check(fleet, only=SCALING_RULES)


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
    # Numbers no consumer can represent (E120), none of them an internal error:
    "9" * 5000,
    "0x" + "f" * 5000,
    "9" * 400 + ".5",
    "1e400",
    "!!int " + "9" * 30,
    "!!float -1e999",
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


HUGE_NUMBERS = {
    "5000-digit-int": "9" * 5000,
    "negative-5000-digit-int": "-" + "9" * 5000,
    "0x-5000-digits": "0x" + "f" * 5000,
    "0o-5000-digits": "0o" + "7" * 5000,
    "400-digit-float": "9" * 400 + ".5",
    "1e400": "1e400",
    "-1e400": "-1e400",
    "2^63": str(2**63),
    "tagged-int": "!!int " + "9" * 5000,
    "tagged-float": "!!float 1e400",
}


@pytest.mark.parametrize("field", ["cpu: 256", "threshold: 80", "version: 1"])
@pytest.mark.parametrize("number", HUGE_NUMBERS.values(), ids=HUGE_NUMBERS.keys())
def test_huge_numbers_are_located_e120(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, number: str
) -> None:
    """Issue 12 item 5: huge numbers anywhere are a located E120, never an internal error."""
    text = (EXAMPLES / "blog.yml").read_text(encoding="utf-8")
    assert field in text
    line = text[: text.index(field)].count("\n") + 1
    start = text.index(field)
    column = start - text.rfind("\n", 0, start) + len(field.split(":")[0]) + 2  # the value
    path = tmp_path / "fleet.yml"
    path.write_text(text.replace(field, f"{field.split(':')[0]}: {number}", 1), encoding="utf-8")
    code = run(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{path}:{line}:{column}: error[E120]: " in err, err
    assert "internal error" not in err and "Traceback" not in err
    assert len(err) < 2000  # the number is not echoed in full


def test_numbers_at_the_edge_of_range_load() -> None:
    from nixecs.fleet.yaml12 import resolve_plain

    assert resolve_plain(str(2**63 - 1)) == 2**63 - 1
    assert resolve_plain(str(-(2**63))) == -(2**63)
    assert resolve_plain("0x" + "0" * 100 + "7fffffffffffffff") == 2**63 - 1
    assert resolve_plain("1.7976931348623157e308") == 1.7976931348623157e308
    assert resolve_plain("0." + "0" * 400 + "1") == 0.0  # underflow is representable
