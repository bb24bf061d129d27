"""Every `nixecs` command and flag that the README, docs/, the example fleets, a diagnostic's
fix or a message of the tool names exists: each is looked up in the command tree and its
`--help` runs. A renamed flag leaves no stale advice behind (the E131 fix once named
`validate --against-aws --create-roles`, which never existed).

Docs also name no internal design sections or this project's issue numbers: a reader has
neither.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import REPO
from nixecs.cli import cli
from nixecs.diagnostics import FIXES
from nixecs.host.boot import USAGE as APPLY_USAGE
from nixecs.host.commands import apply_command

pytestmark = pytest.mark.repo

SOURCE = REPO / "tools/src/nixecs"
# `nixecs` as the command, not `nixecs.ecs.cluster`, `nixecs-drain`, `/nixecs/` or `<nixecs/...>`.
MENTION = re.compile(r"(?<![\w./<-])nixecs(?=[ \t]+[a-z])")
TOKEN = re.compile(r"[^\s`'\"]+")
# Where a shell line stops being one `nixecs` invocation.
STOPS = {"|", "||", "&&", ";", "#", ">", "<", "2>", "\\", "$", "$("}


@dataclass(frozen=True)
class Mention:
    where: str  # file:line
    text: str  # from `nixecs` to the end of the segment
    code: bool  # inside code: an unknown subcommand is an error, not prose


def _segments_markdown(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, text, is_code) for each line: fenced blocks whole, inline code spans, prose."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            # A transcript's command lines are code; the lines a command printed are prose
            # ("... which nixecs did not register").
            yield number, line, line.startswith(("$ ", "nixecs "))
            continue
        for index, part in enumerate(re.split(r"`+", line)):
            yield number, part, index % 2 == 1


def _segments_python(path: Path) -> Iterator[tuple[int, str, bool]]:
    """String constants of a module (messages, help texts, fixes): `...` spans are code."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for index, part in enumerate(node.value.split("`")):
                yield node.lineno, part, index % 2 == 1


def _segments_yaml(path: Path) -> Iterator[tuple[int, str, bool]]:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if "#" in line:
            for index, part in enumerate(line.split("#", 1)[1].split("`")):
                yield number, part, index % 2 == 1


def mentions() -> Iterator[Mention]:
    sources: list[tuple[Path, Iterator[tuple[int, str, bool]]]] = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        sources.append((path, _segments_markdown(path)))
    for path in sorted((REPO / "examples").glob("*.yml")):
        sources.append((path, _segments_yaml(path)))
    for path in sorted(SOURCE.rglob("*.py")):
        sources.append((path, _segments_python(path)))
    for path, segments in sources:
        for line, text, code in segments:
            for found in MENTION.finditer(text):
                yield Mention(f"{path.relative_to(REPO)}:{line}", text[found.end() :], code)
    for code, fix in FIXES.items():
        for index, part in enumerate(fix.split("`")):  # `...` is code, the rest prose
            for found in MENTION.finditer(part):
                yield Mention(f"diagnostics.FIXES[{code}]", part[found.end() :], index % 2 == 1)


def _options(command: click.Command) -> set[str]:
    if command is apply_command:  # parsed by the boot path's own parser, documented in USAGE
        return set(re.findall(r"--[a-z][a-z-]*", APPLY_USAGE)) | {"-h"}
    return {
        name
        for param in command.params
        for name in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    } | {
        "-h",
        "--help",
    }


def resolve(mention: Mention) -> tuple[list[str], list[str]]:
    """The command path named and the problems with it (unknown subcommand or flag)."""
    tokens = TOKEN.findall(mention.text)
    command: click.Command = cli
    path: list[str] = []
    problems: list[str] = []
    options = _options(cli)
    for index, raw in enumerate(tokens):
        token = raw.strip("[](),.")
        if token in STOPS or raw in STOPS or token == "nixecs" or token.endswith(":"):
            break  # the end of the invocation, or a log line's `nixecs secrets:` prefix
        if token.startswith("-"):
            flag = token.split("=", 1)[0]
            if re.fullmatch(r"--?[a-z][a-z0-9-]*", flag) and flag not in options:
                problems.append(f"{' '.join(['nixecs', *path])}: no option {flag}")
            continue
        if isinstance(command, click.Group):
            names = token.split("|")
            context = click.Context(command)
            found = [command.get_command(context, name) for name in names]  # lazy groups load
            if all(found):
                command = found[0]  # type: ignore[assignment]
                path.append(names[0])
                options = _options(command) | _options(cli)
                continue
            if index == len(path) and mention.code and re.fullmatch(r"[a-z][a-z-]*", token):
                # The first word after `nixecs` (or a group) in code is a subcommand.
                problems.append(f"{' '.join(['nixecs', *path])}: no subcommand {token!r}")
            break
        # An argument of a leaf command; its flags may still follow.
    return path, problems


def test_the_scanner_finds_what_it_must() -> None:
    """The scanner itself: a stale flag and a missing subcommand are found, prose is not."""
    stale = Mention("x", " validate --against-aws --create-roles)", True)
    assert resolve(stale)[1] == [
        "nixecs validate: no option --against-aws",
        "nixecs validate: no option --create-roles",
    ]
    assert resolve(Mention("x", " frobnicate fleet.yml", True))[1] == [
        "nixecs: no subcommand 'frobnicate'"
    ]
    assert resolve(Mention("x", " makes the hosts", False)) == ([], [])
    assert resolve(
        Mention("x", " scaling replay f.yml prod/x --trace t.csv --plot p.png", True)
    ) == (
        ["scaling", "replay"],
        [],
    )
    assert resolve(Mention("x", " deploy fleet.yml --region eu-west-1 --yes | tee log", True)) == (
        ["deploy"],
        [],
    )


def test_every_named_command_and_flag_exists() -> None:
    found = list(mentions())
    assert len(found) > 50, "the scanner found too little: is it still reading the docs?"
    problems = [f"{m.where}: {p}" for m in found for p in resolve(m)[1]]
    assert problems == []


def test_every_named_command_has_working_help() -> None:
    paths = {tuple(resolve(m)[0]) for m in mentions()} - {()}
    assert len(paths) > 10
    runner = CliRunner()
    for path in sorted(paths):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "usage:" in result.output.lower()


# "nixpkgs issue 41826" and "aws/aws-cdk PR 5507, issue 5215" are other projects'; ours are not.
INTERNAL = re.compile(r"\bDESIGN\b|§\s*\d+(?!\.\d)|(?<!nixpkgs )(?<!, )\bissue \d+")


def test_docs_name_no_internal_design_sections_or_issues() -> None:
    """The README, docs/, and what else a user reads: the example fleets' comments, the
    template a team starts from, `make help`."""
    found = []
    readable = [
        REPO / "README.md",
        REPO / "Makefile",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "examples").glob("*.yml")),
        *sorted(p for p in (REPO / "templates").rglob("*") if p.is_file()),
    ]
    for path in readable:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # RFC sections (`RFC 9110 §8.6`) are a reader's to look up; ours are not.
            if INTERNAL.search(re.sub(r"RFC \d+ §[\d.]+", "", line)):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []


def test_every_flag_a_fix_names_follows_its_command() -> None:
    """A fix that names a flag names the command too (`nixecs validate --aws`, or the AWS
    CLI's `aws elbv2 describe-rules --listener-arn`), so the check above can resolve ours: a
    bare `--flag` would escape it."""
    bare = {
        code: fix
        for code, fix in FIXES.items()
        if re.search(r"(?<![\w-])--[a-z]", fix)
        and not MENTION.search(fix)
        and not re.search(r"`aws [a-z0-9-]+ [a-z0-9-]+", fix)  # the AWS CLI's, not ours
    }
    assert bare == {}
