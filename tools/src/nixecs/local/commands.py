"""`nixecs local deploy|env|stop`: a team's own fleet deployed to an emulator on loopback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..globals import Globals


@click.group("local")
def local_group() -> None:
    """Deploy your own fleet to an AWS emulator on this machine (moto's server on
    loopback; `pip install 'nixecs[local]'`), with stand-ins for what the fleet references
    and does not create: subnets, security groups, AMIs, certificates, SSM parameters, ECR
    images. The emulator runs until `nixecs local stop`; point any command at it with
    `eval "$(nixecs local env)"`. Nothing here reaches AWS: every call goes to loopback,
    signed with fake credentials."""


def _say(line: str) -> None:
    click.echo(line, err=True)


@local_group.command("deploy")
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.option("--plan", is_flag=True, help="Show what the deploy would change; change nothing.")
@click.option(
    "--yes/--ask",
    default=True,
    show_default=True,
    help="Execute change sets without asking (the emulator is yours alone).",
)
@click.pass_context
def local_deploy(ctx: click.Context, fleet: str, plan: bool, yes: bool) -> int:
    """Start the emulator (or reuse it), create stand-ins for what FLEET references, and
    `deploy` a copy of FLEET that names them, preflight included.

    FLEET is checked first exactly as `validate` checks it, so errors point into your file.
    The copy and what was stood in are kept in the emulator's state directory; a second run
    reuses both, so `local deploy` after an edit is an update, as against AWS.
    """
    from ..aws.commands import LOCAL_JSON, deploy
    from ..aws.session import Session
    from ..diagnostics import OperationalFailure
    from ..fleet.checks import check_fleet_file
    from . import emulator, standins

    g: Globals = ctx.obj
    # What `eval "$(nixecs local env)"` exported (NIXECS_ENDPOINT_URL, AWS_REGION) is not a
    # choice made for this command: a second `local deploy` in that shell, or one of another
    # environment, is the loop the docs describe. Only flags written on the line are.
    shell = {name: os.environ.get(name) for name in ("NIXECS_ENDPOINT_URL", "AWS_REGION")}
    if g.endpoint_url and g.endpoint_url != shell["NIXECS_ENDPOINT_URL"]:
        raise click.UsageError(
            "local deploy chooses its own endpoint (the emulator); drop --endpoint-url"
        )
    model, _report = check_fleet_file(fleet, env=g.env)
    networked = [
        name
        for name, cluster in model.clusters.items()
        if cluster.load_balancer is not None and cluster.load_balancer.network
    ]
    if networked:
        # moto 5.2.5 elbv2/models.py FakeLoadBalancer.create_from_cloudformation_json passes
        # no Type: every load balancer is an application one, and the NLB's listeners fail
        raise OperationalFailure(
            f"the emulator's CloudFormation cannot create a Network Load Balancer (cluster "
            f"{', '.join(networked)}): it makes every load balancer an application one. "
            "`nixecs validate` and `render` check the fleet offline; deploy it to AWS"
        )
    running, started = emulator.start()
    _say(f"emulator {running.url} ({'started' if started else 'running'}, pid {running.pid})")
    os.environ.update(emulator.FAKE_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    g.profile = None
    g.endpoint_url = running.url
    region = g.region if g.region_explicit and g.region else model.region
    g.region, g.region_explicit = region, True
    session = Session(region=region, endpoint_url=running.url)
    emulator.remember(dataclasses.replace(running, region=region))

    directory = emulator.state_dir()
    known_file = directory / "standins.json"
    try:
        recorded = json.loads(known_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    source = str(Path(fleet).resolve())
    # Each environment of a file is a fleet of its own here: its stand-ins (in its region)
    # and its copy, so deploying one never loses the other's.
    if g.env is not None:
        source = f"{source} --env {g.env}"
    made = standins.create(session, model, recorded.get(source, {}).get("ids", {}))
    for line in made.created:
        _say(f"stand-in: {line}")
    copies = directory / "fleets"
    copies.mkdir(mode=0o700, exist_ok=True)
    copy = copies / f"{hashlib.sha256(source.encode()).hexdigest()[:16]}.yml"
    from ..atomic import write_atomic

    write_atomic(copy, standins.local_copy(model, made), durable=False)
    recorded[source] = {"copy": str(copy), **made.to_json()}
    write_atomic(known_file, json.dumps(recorded, indent=2, sort_keys=True) + "\n", durable=False)
    _say("the emulator cannot check: " + "; ".join(standins.LIMITS))
    ctx.meta[LOCAL_JSON] = {
        "local": {
            "emulator": running.url,
            "stand_ins": made.created,
            "cannot_check": list(standins.LIMITS),
        }
    }
    try:
        code = int(
            ctx.invoke(
                deploy,
                fleet=str(copy),
                yes=yes,
                plan=plan,
                preflight=True,
                create_roles=True,
            )
            or 0
        )
    except OperationalFailure as error:
        raise OperationalFailure(f"{error} (local copy of {fleet}: {copy})") from None
    if not plan:
        from .gaps import attach_load_balancers, create_scaling, tag_ecs_resources

        for line in tag_ecs_resources(session, model):
            _say(f"tagged through ECS (the emulator's CloudFormation does not tag them): {line}")

        for line in attach_load_balancers(session, model):
            _say(f"set through ECS (the emulator's CloudFormation drops LoadBalancers): {line}")
        for line in create_scaling(session, model):
            _say(
                "made through Application Auto Scaling and CloudWatch (the emulator's "
                f"CloudFormation skips them): {line}"
            )
    here = {"NIXECS_ENDPOINT_URL": running.url, "AWS_REGION": region}
    stale = [f"{n}={v}" for n, v in sorted(shell.items()) if v is not None and v != here[n]]
    if stale:  # the shell still points where an earlier `local env` said
        _say(
            f"note: this shell's {', '.join(stale)} is not this fleet's emulator and region: "
            'run `eval "$(nixecs local env)"` again'
        )
    return code


@local_group.command("env")
@click.pass_obj
def local_env(g: Globals) -> None:
    """Print the shell lines that point every nixecs command at the running emulator:
    `eval "$(nixecs local env)"`, then `nixecs status`, `nixecs destroy`, `nixecs scaling
    replay FLEET CLUSTER/SERVICE --since 1d` ... (`--output json`: the same as an object)."""
    from ..diagnostics import OperationalFailure
    from . import emulator

    running = emulator.current()
    if running is None:
        raise OperationalFailure(
            "no emulator is running: start one with `nixecs local deploy FLEET`"
        )
    env = running.env()
    if g.json:
        click.echo(json.dumps(env, indent=2, sort_keys=True))
        return
    for name, value in sorted(env.items()):
        click.echo(f"export {name}={shlex.quote(value)}")


@local_group.command("stop")
@click.pass_obj
def local_stop(g: Globals) -> None:
    """Stop the emulator `local deploy` started and forget what it held (its stand-ins and
    the local copies of fleets). Nothing running: says so, exit 0."""
    from . import emulator

    stopped = emulator.stop()
    if g.json:
        click.echo(
            json.dumps({"stopped": stopped is not None, "pid": stopped.pid if stopped else None})
        )
    elif stopped is None:
        click.echo("no emulator was running")
    else:
        click.echo(f"emulator {stopped.url} stopped (pid {stopped.pid})")


def register(cli: click.Group) -> None:
    cli.add_command(local_group)
