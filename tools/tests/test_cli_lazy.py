"""`nixecs validate` imports only what it uses (issue 18, item 4): the other commands'
modules are loaded on first use, through cli.COMMAND_MODULES."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import click

from nixecs.cli import COMMAND_MODULES, run
from test_host_apply import imported_modules

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/fleet.yml"


def test_the_table_names_every_command_of_every_module() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "nixecs"
    command_modules = {
        ".".join(path.relative_to(src).with_suffix("").parts)
        for path in src.rglob("*.py")
        if "\ndef register(cli: click.Group)" in path.read_text(encoding="utf-8")
    }
    assert "commands" in command_modules  # the scan is real
    assert command_modules == set(COMMAND_MODULES.values())  # a new module is in the table
    registered: dict[str, str] = {}
    for module_name in sorted(set(COMMAND_MODULES.values())):
        group = click.Group()
        importlib.import_module(f"nixecs.{module_name}").register(group)  # type: ignore[attr-defined]
        registered |= dict.fromkeys(group.commands, module_name)
    assert registered == COMMAND_MODULES


def test_validate_imports_no_other_command_and_no_heavy_library(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    process = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nixecs", "validate", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert process.returncode == 0, process.stderr
    modules = imported_modules(process.stderr)
    assert {"nixecs.fast", "nixecs.validate", "nixecs.fleet.checks"} <= modules  # the list is real
    unwanted = {
        "click",  # the fast path (nixecs.fast): no click machinery at all
        "nixecs.cli",
        "nixecs.commands",
        "nixecs.aws.commands",
        "nixecs.host.commands",
        "jinja2",
        "boto3",
        "botocore",
        "rich",
    }
    assert sorted(modules & unwanted) == []


def test_help_still_lists_every_command(capsys: object) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    for name in COMMAND_MODULES:
        assert f"  {name} " in out or f"  {name}\n" in out, name


def test_the_entry_point_knows_every_global_option_that_takes_a_value() -> None:
    """__main__ finds the subcommand by skipping global options and their values: one it did
    not know would have its value taken for the command (`nixecs --env prod validate f.yml`
    would miss validate's fast path; `--env apply` would be taken for the boot command), and
    fast.py reads the same options."""
    import click

    from nixecs import __main__ as entry
    from nixecs import fast
    from nixecs.cli import cli as group

    valued = {
        name
        for param in group.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for name in param.opts
        if name.startswith("--")
    }
    assert set(entry._VALUE_OPTIONS) == valued
    assert set(fast._VALUED) == valued
