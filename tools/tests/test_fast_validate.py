"""`nixecs validate`'s fast path (nixecs.fast, issue 18 item 4) and the click command agree:
the same stdout, stderr and exit code for the same command line, on valid and invalid
fleets, with every global option before or after the subcommand; and what the fast path
does not read exactly as click does goes to click."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nixecs import fast
from nixecs.__main__ import main
from nixecs.cli import run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FLEETS = Path(__file__).resolve().parent / "fleets"

BAD_SCHEMA = """\
version: 1
region: eu-west-1
clusters:
  prod:
    groups:
      web:
        host: web
        instance_types: [m7g.large]
        capcity: {min: 1, max: 2}
"""
BAD_YAML = "version: 1\nclusters: [\n"


def _fleets(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "schema.yml").write_text(BAD_SCHEMA)
    (tmp_path / "syntax.yml").write_text(BAD_YAML)
    (tmp_path / "a dir").mkdir()
    return {
        "example": str(EXAMPLES / "fleet.yml"),
        "environments": str(EXAMPLES / "environments.yml"),
        "maximal": str(FLEETS / "maximal.yml"),
        "schema": str(tmp_path / "schema.yml"),
        "syntax": str(tmp_path / "syntax.yml"),
        "missing": str(tmp_path / "missing.yml"),
        "dir": str(tmp_path / "a dir"),
    }


# (command line with {fleet}, whether the fast path reads it itself)
LINES = [
    ("validate {fleet}", True),
    ("--output json validate {fleet}", True),
    ("validate {fleet} --output=json", True),
    ("--output text validate {fleet} --output json", True),
    ("-v validate {fleet}", True),
    ("validate -vv {fleet} --verbose", True),
    ("--env prod validate {fleet}", True),
    ("validate {fleet} --env=staging", True),
    ("--env nosuch validate {fleet}", True),
    ("--region eu-west-1 --profile p --endpoint-url http://127.0.0.1:1 validate {fleet}", True),
    ("validate --help", False),
    ("validate {fleet} --help", False),
    ("--version", False),
    ("validate", False),
    ("validate {fleet} {fleet}", False),
    ("validate {fleet} --output yaml", False),
    ("validate {fleet} --env", False),
    ("validate {fleet} --no-such-flag", False),
    ("validate -- {fleet}", False),
    ("validate {fleet} -x", False),
]


def _outcome(
    function: object, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = function(argv)  # type: ignore[operator]
    out, err = capsys.readouterr()
    return code, out, err


NAMES = ["example", "environments", "maximal", "schema", "syntax", "missing", "dir"]
# The first two command lines on every fleet, the others on a valid and an invalid one (a
# command line without a fleet once).
CASES = [
    (name, line, fast_reads)
    for index, (line, fast_reads) in enumerate(LINES)
    for name in (
        NAMES if index < 2 else ["example", "schema"] if "{fleet}" in line else ["example"]
    )
]


@pytest.mark.parametrize("name,line,fast_reads", CASES)
def test_the_fast_path_and_click_agree(
    name: str,
    line: str,
    fast_reads: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("NIXECS_ENV", "AWS_REGION", "AWS_PROFILE", "NIXECS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fleets = _fleets(tmp_path)
    argv = [part.replace("{fleet}", fleets[name]) for part in line.split()]
    parsed = fast.parse(argv)
    assert (parsed is not None) == (fast_reads and name != "dir")
    fast_outcome = _outcome(main, argv, capsys)
    click_outcome = _outcome(run, argv, capsys)
    assert fast_outcome == click_outcome
    assert fast_outcome[0] in (0, 2)


def test_the_outcomes_differ_between_fleets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agreement above is not the agreement of two silent commands."""
    fleets = _fleets(tmp_path)
    good = _outcome(main, ["validate", fleets["example"]], capsys)
    bad = _outcome(main, ["validate", fleets["schema"]], capsys)
    assert good[0] == 0 and "valid (1 clusters" in good[1]
    assert bad[0] == 2 and "error[E" in bad[2] and f"{fleets['schema']}:9:" in bad[2]


def test_globals_read_as_click_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_PROFILE", "")  # empty: click ignores it
    monkeypatch.setenv("NIXECS_ENV", "prod")
    monkeypatch.delenv("NIXECS_ENDPOINT_URL", raising=False)
    parsed = fast.parse(["-vv", "validate", "f.yml", "--env", "dev", "-v", "--output=json"])
    assert parsed is not None
    g, fleet = parsed
    assert fleet == "f.yml"
    assert (g.region, g.region_explicit, g.profile, g.endpoint_url) == (
        "eu-central-1",
        False,
        None,
        None,
    )
    assert (g.env, g.verbose, g.output) == ("dev", 3, "json")
    g, _ = fast.parse(["validate", "f.yml", "--region", "us-east-1"]) or pytest.fail("parsed")
    assert (g.region, g.region_explicit, g.env) == ("us-east-1", True, "prod")
    assert os.environ["NIXECS_ENV"] == "prod"


def test_what_needs_click_or_aws_is_left_to_click() -> None:
    """--aws talks to the account (and its flags are validate's own, not global options):
    the fast path never reads such a command line, so click runs it as before."""
    for argv in (
        ["validate", "f.yml", "--aws"],
        ["validate", "--aws", "--create-service-linked-roles", "f.yml"],
        ["validate", "f.yml", "--create-service-linked-roles"],
        ["--version"],
        ["-h"],
        ["render", "f.yml", "-o", "out"],
        ["validate", "-", "--env", "x"],
    ):
        assert fast.parse(argv) is None, argv
    assert fast.parse(["validate", "f.yml"]) is not None


@pytest.mark.parametrize("line", [line for line, fast_reads in LINES if fast_reads])
def test_main_takes_the_fast_path_for_what_it_reads(
    line: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nixecs.cli

    def no_click(argv: list[str]) -> int:
        raise AssertionError(f"click ran {argv}")

    monkeypatch.setattr(nixecs.cli, "run", no_click)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    argv = [part.replace("{fleet}", str(EXAMPLES / "fleet.yml")) for part in line.split()]
    assert main(argv) in (0, 2)
