"""Fleet commands: validate, render, userdata, scaling check."""

from __future__ import annotations

import json
import sys

import click

from .cli import Globals


def _load(path: str) -> "Fleet":  # noqa: F821 - imported lazily for quick --help
    from .fleet import load_fleet

    return load_fleet(path)


@click.command()
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.pass_obj
def validate(g: Globals, fleet: str) -> int:
    """Check FLEET: schema, AWS scaling rules and scaling lints.

    Errors and warnings go to stderr as `file:line:col: error[CODE]: message`.
    Exit 0 when valid (warnings allowed), 2 when not.
    """
    from .diagnostics import InvalidInput
    from .scaling import check_fleet

    model = _load(fleet)
    report = check_fleet(model)
    report.print(sys.stderr)
    if g.json:
        click.echo(json.dumps({"valid": not report.has_errors, "diagnostics": [d.to_json() for d in report.sorted()]}, indent=2))
    if report.has_errors:
        raise InvalidInput(report) if False else click.exceptions.Exit(2)
    if not g.json:
        groups = sum(len(c.groups) for c in model.clusters.values())
        services = sum(len(c.services) for c in model.clusters.values())
        click.echo(f"{fleet}: valid ({len(model.clusters)} clusters, {groups} groups, {services} services, {len(report.warnings)} warnings)")
    return 0


def register(cli: click.Group) -> None:
    cli.add_command(validate)
