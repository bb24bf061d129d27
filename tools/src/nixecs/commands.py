"""Fleet commands: validate, render, userdata, scaling check|simulate|replay|export, schema.

Heavy modules (the loader, CloudFormation, boto3) are imported inside the commands so that
`nixecs --help` and the host-side commands do not pay for them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from .diagnostics import EXIT_INVALID, EXIT_OK, InvalidInput, Report
from .globals import Globals, current_env
from .validate import counts as _counts
from .validate import emit_report as _emit_report
from .validate import invalid_json as _invalid_json
from .validate import validate_fleet

if TYPE_CHECKING:
    from .fleet.model import Fleet, Service
    from .scaling.sim import Load


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
    clashes, userdata sizes and CloudFormation quotas (everything `render` checks), and
    cfn-lint over the stacks of clusters with `overrides:` when cfn-lint is installed.

    Diagnostics go to stderr as `file:line:col: error[CODE]: message` (or warning).
    Exit 0 when valid (warnings allowed), 2 when not.
    """
    return validate_fleet(g, fleet, against_aws, create_roles)


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
    from .collector import paused
    from .fleet.checks import check_fleet_file
    from .render import render_fleet, write_rendered

    with paused():  # a one-shot build of acyclic data: nixecs.collector says why
        try:
            model, report = check_fleet_file(fleet, env=current_env())
            unknown = sorted(set(clusters) - set(model.clusters))
            if unknown:
                raise click.UsageError(
                    f"no cluster {', '.join(unknown)} in {fleet} "
                    f"(clusters: {', '.join(model.clusters)})"
                )
            rendered = render_fleet(model, list(clusters) or None)
        except InvalidInput as error:
            _invalid_json(g, error)
            raise
        report.extend(rendered.warnings())  # the final templates' (nixecs.template_checks)
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
    from .fleet.checks import check_fleet_file
    from .userdata import UserdataTooLarge, render_userdata

    model, _ = check_fleet_file(fleet, env=current_env())
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
    """Service auto scaling: AWS's rules and lints, a simulation, a replay of real load."""


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
    from .fleet.checks import SCALING_RULES, check

    try:
        model = load_fleet(fleet, current_env())
    except InvalidInput as error:
        _invalid_json(g, error)
        raise
    report = check(model, only=SCALING_RULES)
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
    from .fleet.checks import SCALING_RULES, check
    from .scaling.sim import plot, simulate, unsimulated, wave

    model = load_fleet(fleet, current_env())
    report = check(model, only=SCALING_RULES)
    if report.has_errors:  # AWS would refuse these policies: nothing to simulate
        raise InvalidInput(report)
    service = _scaled_service(model, fleet, target)
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
        "missing_metrics": unsimulated(service),
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
        assert service.scaling is not None
        stepped = {f"{p.alarm.namespace}/{p.alarm.metric}" for p in service.scaling.step}
        for metric in unsimulated(service):
            # a step policy's alarm treats missing data as not breaching (scaling/sim.py)
            effect = (
                "a step policy's alarm on it stays OK, so that policy never acts"
                if metric in stepped
                else "target tracking on it cannot scale, nor agree to a scale-in"
            )
            click.echo(
                f"note: the simulated wave drives CPU only: {metric} reads as missing data "
                f"({effect}); `nixecs scaling replay --trace` replays a trace with every metric"
            )
        if result["scale_outs"] and not result["scale_ins"]:
            click.echo(f"{target} never scaled in: see `nixecs scaling check {fleet}`")
    return EXIT_OK


def _window(since: str | None, start: str | None, end: str | None) -> tuple[float, float, float]:
    """(start, end, now) in epoch seconds from --since or --from/--to."""
    import time

    from .scaling.replay import parse_since, parse_time

    now = time.time()
    try:
        if start or end:
            if since:
                raise click.UsageError("give --since or --from/--to, not both")
            if not (start and end):
                raise click.UsageError("--from and --to go together")
            first, last = parse_time(start), parse_time(end)
        else:
            first, last = now - parse_since(since or "14d"), now
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    last = min(last, now)
    if last - first < 3600:
        raise click.UsageError("the window must cover at least an hour")
    return first, last, now


_WINDOW_OPTIONS = [
    click.option("--since", help="How far back to read CloudWatch: 14d (default), 36h, 90m."),
    click.option("--from", "start", metavar="TIME", help="Start (ISO 8601 with a zone)."),
    click.option("--to", "end", metavar="TIME", help="End (ISO 8601 with a zone)."),
    click.option(
        "--tasks",
        metavar="N|FILE.csv",
        help="Running tasks when Container Insights (RunningTaskCount) is off: a count, or a "
        "CSV `timestamp,running_tasks`.",
    ),
]


def _window_options(function: Any) -> Any:
    for option in reversed(_WINDOW_OPTIONS):
        function = option(function)
    return function


def _tasks(value: str | None) -> int | Load | None:
    """--tasks: a count from 1 to 100000, or a CSV series (E301 when it does not parse)."""
    if value is None:
        return None
    if value.isdigit():
        count = int(value)
        if not 1 <= count <= 100000:
            raise click.BadParameter("a count from 1 to 100000", param_hint="--tasks")
        return count
    from .scaling.trace import read_trace

    return read_trace(value, metrics=False)


def _replay_service(fleet: str, target: str, env: str | None) -> Service:
    from .fleet import load_fleet
    from .fleet.checks import SCALING_RULES, check

    model = load_fleet(fleet, env)
    report = check(model, only=SCALING_RULES)
    if report.has_errors:  # AWS would refuse these policies: nothing to replay
        raise InvalidInput(report)
    return _scaled_service(model, fleet, target)


def _scaled_service(model: Fleet, fleet: str, target: str) -> Service:
    """CLUSTER/SERVICE of the fleet, with scaling; else a usage error naming the ones there
    are. A cluster's name includes the fleet's `name_prefix:` (an environment's, with --env),
    which the file does not show where the cluster is written."""
    from .scaling.replay import find_service

    service = find_service(model, target)
    if service is not None:
        return service
    scaled = [
        f"{cluster.name}/{name}"
        for cluster in model.clusters.values()
        for name, candidate in cluster.services.items()
        if candidate.scaling is not None
    ]
    raise click.BadParameter(
        f"no service with scaling named {target!r} in {fleet}"
        + (f" (its scaled services: {', '.join(scaled)})" if scaled else " (it scales none)"),
        param_hint="CLUSTER/SERVICE",
    )


@scaling.command("replay")
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.argument("target", metavar="CLUSTER/SERVICE")
@click.option(
    "--trace",
    type=click.Path(dir_okay=False),
    help="Replay a recorded CSV trace (see `scaling export`) instead of reading CloudWatch.",
)
@_window_options
@click.option(
    "--start-delay",
    type=click.IntRange(0, 60),
    default=1,
    show_default=True,
    help="Minutes before a new task carries load.",
)
@click.option(
    "--deployed/--no-deployed",
    default=True,
    show_default=True,
    help="Also replay the policies deployed in AWS (not with --trace).",
)
@click.option(
    "--against",
    "against",
    multiple=True,
    metavar="FLEET:CLUSTER/SERVICE",
    help="Also replay another fleet file's policies for comparison (repeatable).",
)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG.")
@click.pass_obj
def scaling_replay(
    g: Globals,
    fleet: str,
    target: str,
    trace: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    tasks: str | None,
    start_delay: int,
    deployed: bool,
    against: tuple[str, ...],
    plot_path: str | None,
) -> int:
    """Replay CLUSTER/SERVICE's scaling policies on its real load: from CloudWatch (the
    metrics its policies use and its running tasks) or from a CSV --trace. The fleet's
    (proposed) policies and, when the service is deployed, the deployed ones run side by side
    through AWS's rules (docs/scaling.md); the report gives each set's scale-outs and
    scale-ins, minutes above the target or threshold, minutes at max, task-hours and the
    largest shortfall of tasks."""
    from .fleet import environments_of
    from .scaling.replay import proposed, report, run, text

    service = _replay_service(fleet, target, current_env())
    sets = [proposed(service)]
    for other in against:
        other_fleet, colon, other_target = other.rpartition(":")
        if not colon or not other_fleet:
            raise click.BadParameter(
                f"{other!r} is not FLEET:CLUSTER/SERVICE", param_hint="--against"
            )
        # --env is the replayed fleet's; a fleet to compare with that has no environments
        # (examples/blog.yml) is read as it is
        other_env = current_env() if environments_of(other_fleet) else None
        other_service = _replay_service(other_fleet, other_target, other_env)
        sets.append(proposed(other_service, f"{os.path.basename(other_fleet)} {other_target}"))
    if trace:
        from .scaling.trace import read_trace

        if since or start or end or tasks:
            raise click.UsageError("--trace replays the file: no --since/--from/--to/--tasks")
        load = read_trace(trace)
    else:
        from .aws import metrics
        from .aws.session import Session, aws_errors

        first, last, now = _window(since, start, end)
        session = Session.from_globals(g)
        with aws_errors(session, "scaling replay"):
            if deployed:
                current = metrics.deployed(session, service.cluster, service.name)
                if current is not None:
                    sets.append(current)
            queries = metrics.queries_for(sets, service.cluster, service.name)
            try:
                load, _ = metrics.history(
                    session, queries, service.cluster, service.name, first, last, now, _tasks(tasks)
                )
            except (LookupError, ValueError) as error:
                raise click.UsageError(str(error)) from None
    result = run(sets, load, start_delay)
    data = report(result, target)
    if plot_path:
        from .scaling.plot import plot_replay

        plot_replay(
            load,
            result.outcomes,
            result.metric,
            plot_path,
            f"{target}: " + " vs ".join(o.policies.label for o in result.outcomes) + " policies",
        )
        data["plot"] = plot_path
    if g.json:
        click.echo(json.dumps(data, indent=2))
    else:
        for line in text(data):
            click.echo(line)
        if plot_path:
            click.echo(f"plot: {plot_path}")
    return EXIT_OK


@scaling.command("export")
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.argument("target", metavar="CLUSTER/SERVICE")
@click.option(
    "-o", "--out", required=True, type=click.Path(dir_okay=False), help="The CSV file to write."
)
@_window_options
@click.pass_obj
def scaling_export(
    g: Globals,
    fleet: str,
    target: str,
    out: str,
    since: str | None,
    start: str | None,
    end: str | None,
    tasks: str | None,
) -> int:
    """Write CLUSTER/SERVICE's load from CloudWatch as a CSV trace for `scaling replay --trace`:
    the metrics its policies use and its running tasks, one row per period."""
    from .aws import metrics
    from .aws.session import Session, aws_errors
    from .scaling.replay import proposed
    from .scaling.trace import write_trace

    service = _replay_service(fleet, target, current_env())
    first, last, now = _window(since, start, end)
    session = Session.from_globals(g)
    with aws_errors(session, "scaling export"):
        queries = metrics.queries_for([proposed(service)], service.cluster, service.name)
        try:
            load, _ = metrics.history(
                session, queries, service.cluster, service.name, first, last, now, _tasks(tasks)
            )
        except (LookupError, ValueError) as error:
            raise click.UsageError(str(error)) from None
    write_trace(out, load)
    click.echo(f"{target}: {load.minutes} minutes of {', '.join(load.metrics)} → {out}")
    return EXIT_OK


@click.command("schema")
def schema_command() -> int:
    """Print the fleet file's JSON Schema (draft 2020-12) to stdout, for editors: save it and
    start a fleet file with `# yaml-language-server: $schema=./fleet.schema.json`. The
    reference with every key and diagnostic code is docs/fleet.md."""
    from .fleet.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def register(cli: click.Group) -> None:
    for command in (validate, render, userdata_command, scaling, schema_command):
        cli.add_command(command)
