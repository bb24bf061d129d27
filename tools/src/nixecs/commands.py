"""Fleet commands: validate, render, userdata, scaling check.

Heavy modules (the loader, Jinja2, CloudFormation) are imported inside the commands so that
`nixecs --help` and the host-side commands do not pay for them.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from .diagnostics import EXIT_INVALID, EXIT_OK, Diagnostic, InvalidInput, Report
from .globals import Globals

if TYPE_CHECKING:
    from .fleet.model import Fleet


def check_fleet_file(path: str, *, nix: bool = True) -> tuple[Fleet, Report]:
    """Load FLEET and run every check; InvalidInput (exit 2) on errors, warnings returned."""
    from .fleet import aws_rules, load_fleet
    from .fleet.lints import lint_fleet
    from .scaling import check_fleet

    fleet = load_fleet(path)
    report = check_fleet(fleet)
    report.extend(lint_fleet(fleet))
    report.extend(aws_rules.check_fleet(fleet))
    report.extend(_name_clash_errors(fleet))
    if nix:
        report.extend(_nix_module_errors(fleet))
    if report.has_errors:
        raise InvalidInput(report)
    return fleet, report


def _name_clash_errors(fleet: Fleet) -> list[Diagnostic]:
    """AWS names two subjects would share (names are joined with `-`, which they may contain)."""
    from .cloudformation import name_clashes

    return [
        Diagnostic("E114", clash.message, fleet.document.locate(path, key=True))
        for clash in name_clashes(fleet)
        for path in clash.paths[1:]
    ]


def _nix_module_errors(fleet: Fleet) -> list[Diagnostic]:
    """Syntax errors in groups' `nixos:` text, found by real Nix when it is installed."""
    from .nixparse import nix_instantiate, parse_texts

    texts = {
        f"{cluster.name}/{group.name}": group.nixos
        for cluster in fleet.clusters.values()
        for group in cluster.groups.values()
        if group.nixos
    }
    if not texts or nix_instantiate() is None:
        return []
    groups = {f"{c.name}/{g.name}": g for c in fleet.clusters.values() for g in c.groups.values()}
    return [
        Diagnostic(
            "E113",
            f"nixos module text does not parse: {error.message} (line {error.line}, column {error.column} of the text)",
            fleet.document.locate_in_block((*groups[key].path, "nixos"), error.line, error.column),
        )
        for key, error in parse_texts(texts).items()
    ]


def _emit_report(
    g: Globals, report: Report, summary: str, extra: dict[str, object] | None = None
) -> None:
    report.print(sys.stderr)
    if g.json:
        payload: dict[str, object] = {
            "valid": not report.has_errors,
            "diagnostics": [d.to_json() for d in report.sorted()],
        }
        payload.update(extra or {})
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(summary)


def _counts(fleet: Fleet) -> str:
    groups = sum(len(c.groups) for c in fleet.clusters.values())
    services = sum(len(c.services) for c in fleet.clusters.values())
    return f"{len(fleet.clusters)} clusters, {groups} groups, {services} services"


def _invalid_json(g: Globals, error: InvalidInput) -> None:
    if g.json:
        click.echo(
            json.dumps(
                {"valid": False, "diagnostics": [d.to_json() for d in error.report.sorted()]},
                indent=2,
            )
        )


@click.command()
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.option(
    "--aws",
    "against_aws",
    is_flag=True,
    help="Also check the account (preflight, E131-E138): service-linked roles, SSM "
    "parameters, subnets and security groups, AMIs.",
)
@click.option(
    "--create-service-linked-roles",
    "create_roles",
    is_flag=True,
    help="With --aws: create the service-linked roles when missing.",
)
@click.pass_obj
def validate(g: Globals, fleet: str, against_aws: bool, create_roles: bool) -> int:
    """Check FLEET: schema, AWS scaling rules, scaling lints, `nixos:` syntax, AWS name
    clashes, userdata sizes and CloudFormation quotas (everything `render` checks).

    Diagnostics go to stderr as `file:line:col: error[CODE]: message` (or warning).
    Exit 0 when valid (warnings allowed), 2 when not.
    """
    from .render import inline_limit_problems, render_fleet

    try:
        model, report = check_fleet_file(fleet)
        rendered = render_fleet(model)  # in memory: userdata sizes (E111), stack quotas (E115)
        too_big = inline_limit_problems(rendered)  # E130: deploy would need an S3 bucket
        if too_big.has_errors:
            raise InvalidInput(too_big)
        if against_aws:
            from .aws.commands import check_account
            from .aws.session import Session

            check_account(
                Session.from_globals(g, region=model.region), model, create_roles=create_roles
            )
    except InvalidInput as error:
        _invalid_json(g, error)
        raise
    _emit_report(g, report, f"{fleet}: valid ({_counts(model)}, {len(report.warnings)} warnings)")
    return EXIT_OK


@click.command()
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory."
)
@click.option("--cluster", "clusters", multiple=True, help="Only this cluster (repeatable).")
@click.pass_obj
def render(g: Globals, fleet: str, out: str, clusters: tuple[str, ...]) -> int:
    """Render FLEET into OUT: manifest.json, <cluster>/stack.yaml (CloudFormation) and
    <cluster>/groups/<group>.userdata (the bytes EC2 receives).

    Validates first (as `validate`); nothing is written when the fleet is invalid. Every
    file is written atomically; manifest.json is written last.
    """
    from .render import render_fleet, write_rendered

    try:
        model, report = check_fleet_file(fleet)
        unknown = sorted(set(clusters) - set(model.clusters))
        if unknown:
            raise click.UsageError(
                f"no cluster {', '.join(unknown)} in {fleet} (clusters: {', '.join(model.clusters)})"
            )
        rendered = render_fleet(model, list(clusters) or None)
    except InvalidInput as error:
        _invalid_json(g, error)
        raise
    manifest = write_rendered(rendered, out, fleet)
    files = 1 + sum(1 + len(c.groups) for c in rendered.clusters.values())  # + manifest.json
    _emit_report(
        g,
        report,
        f"rendered {fleet} ({_counts(model)}) into {out}: {files} files, {len(report.warnings)} warnings",
        {"manifest": str(manifest), **rendered.manifest(fleet)},
    )
    return EXIT_OK


@click.command("userdata")
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.argument("target", metavar="CLUSTER/GROUP")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["settings", "nix"]),
    help="Userdata format (default: the group's `userdata:`).",
)
@click.pass_obj
def userdata_command(g: Globals, fleet: str, target: str, fmt: str | None) -> int:
    """Print the userdata of one group (CLUSTER/GROUP) to stdout: the exact bytes EC2
    receives (gzip when over 16 KB, so redirect it to a file)."""
    from .userdata import UserdataTooLarge, render_userdata

    model, _ = check_fleet_file(fleet)
    try:
        group = model.group(target)
    except KeyError as error:
        raise click.BadParameter(str(error.args[0]), param_hint="CLUSTER/GROUP") from None
    try:
        data = render_userdata(model, group, fmt)
    except UserdataTooLarge as error:
        report = Report()
        report.add("E111", str(error), model.document.locate((*group.path, "userdata"), key=True))
        raise InvalidInput(report) from None
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return EXIT_OK


@click.group()
def scaling() -> None:
    """Service auto scaling: AWS's rules and semantic lints."""


@scaling.command("check")
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 2).")
@click.pass_obj
def scaling_check(g: Globals, fleet: str, strict: bool) -> int:
    """Check every service's scaling in FLEET.

    Errors (E2xx) are AWS's own rules for step adjustments: overlap, gaps, open bounds,
    more than 20 steps, min/max/desired. Warnings (W2xx) are policies AWS accepts but that
    cannot work: a step its alarm can never reach (W201), a service that scales out but
    never in (W202). Exit 2 on errors (or on warnings with --strict).
    """
    from .fleet import load_fleet
    from .scaling import check_fleet

    try:
        model = load_fleet(fleet)
    except InvalidInput as error:
        _invalid_json(g, error)
        raise
    report = check_fleet(model)
    services = sum(
        1 for c in model.clusters.values() for s in c.services.values() if s.scaling is not None
    )
    summary = f"{fleet}: {services} scaled services, {len(report.errors)} errors, {len(report.warnings)} warnings"
    _emit_report(g, report, summary)
    if report.has_errors or (strict and report.warnings):
        return EXIT_INVALID
    return EXIT_OK


@scaling.command("simulate")
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.argument("target", metavar="CLUSTER/SERVICE")
@click.option(
    "--hours",
    type=click.FloatRange(0.5, 72),
    default=12,
    show_default=True,
    help="Length of the simulated load wave.",
)
@click.option(
    "--peak",
    type=click.FloatRange(1, 100000),
    default=400,
    show_default=True,
    help="Peak demand, in % of one task's CPU.",
)
@click.option(
    "--base",
    type=click.FloatRange(0, 100000),
    default=40,
    show_default=True,
    help="Demand before and after the peak.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Write a PNG of CPU and tasks over time.",
)
@click.pass_obj
def scaling_simulate(
    g: Globals,
    fleet: str,
    target: str,
    hours: float,
    peak: float,
    base: float,
    plot_path: str | None,
) -> int:
    """Simulate CLUSTER/SERVICE's scaling policies over a load that rises to PEAK and falls
    back, and show what they do (a model of AWS's behaviour, for a picture, not a forecast).
    With --plot, write a PNG; the article's policy (examples/blog.yml) visibly never scales in.
    """
    from .fleet import load_fleet
    from .scaling import check_fleet
    from .scaling_sim import plot, simulate, wave

    model = load_fleet(fleet)
    report = check_fleet(model)
    if report.has_errors:  # AWS would refuse these policies: nothing to simulate
        raise InvalidInput(report)
    cluster_name, _, service_name = target.partition("/")
    cluster = model.clusters.get(cluster_name)
    service = cluster.services.get(service_name) if cluster else None
    if service is None or service.scaling is None:
        raise click.BadParameter(
            f"no service with scaling named {target!r} in {fleet}", param_hint="CLUSTER/SERVICE"
        )
    minutes = int(
        hours * 60 * 1.25
    )  # a quarter more after the wave, to see whether it scales back in
    timeline = simulate(service, wave(hours, base, peak), minutes)
    result = {
        "service": target,
        "start": timeline.desired[0],
        "peak": max(timeline.desired),
        "end": timeline.desired[-1],
        "scale_outs": sum(1 for _, _, change in timeline.actions if change > 0),
        "scale_ins": sum(1 for _, _, change in timeline.actions if change < 0),
    }
    if plot_path:
        plot(
            service,
            timeline,
            plot_path,
            f"{target}: demand up to {peak:g}% of a task over {hours:g} h",
        )
        result["plot"] = plot_path
    if g.json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(
            f"{target}: tasks {result['start']} → peak {result['peak']} → {result['end']} at the end "
            f"({result['scale_outs']} scale-outs, {result['scale_ins']} scale-ins)"
            + (f"; plot: {plot_path}" if plot_path else "")
        )
        if result["scale_outs"] and not result["scale_ins"]:
            click.echo(f"{target} never scaled in: see `nixecs scaling check {fleet}`")
    return EXIT_OK


def register(cli: click.Group) -> None:
    for command in (validate, render, userdata_command, scaling):
        cli.add_command(command)
