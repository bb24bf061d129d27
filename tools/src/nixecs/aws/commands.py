"""AWS commands: ami publish, image push, deploy, roll, status, secret put|get|rm.

boto3 and rich are imported inside the command bodies (through the modules of this package),
so `nixecs --help` stays quick. Progress goes to stderr; results go to stdout (JSON with
`--output json`). Poll intervals: NIXECS_POLL_INTERVAL (seconds) overrides them all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..globals import Globals, current_env

# The key under which `local deploy` hands deploy's --output json what it adds to it.
LOCAL_JSON = "nixecs.local"


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _say(text: str) -> None:
    click.echo(text, err=True)


# --- ami publish ---------------------------------------------------------------------------


@click.group()
def ami() -> None:
    """Machine images (AMIs) built from this flake."""


@ami.command("publish")
@click.argument(
    "image_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--image",
    "image_option",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The image to publish (the same as IMAGE_DIR).",
)
@click.option(
    "--flake",
    metavar="FLAKE",
    help="Without IMAGE_DIR: build FLAKE#HOST-ami with `nix build` (Nix 2.4 or newer); the "
    "AMI is tagged with FLAKE's locked revision when its tree is clean.",
)
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use the `flake:` of this fleet file (a relative path is relative to the file) as --flake.",
)
@click.option(
    "--via",
    type=click.Choice(["ebs", "s3"]),
    default="ebs",
    show_default=True,
    help="ebs: write the snapshot with the EBS direct APIs (raw image, no bucket, no VM Import "
    "role); s3: upload to --bucket and ImportSnapshot (for accounts that require VM Import).",
)
@click.option(
    "--bucket",
    help="With --via s3: the S3 bucket for the upload (the object is removed afterwards).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="With --via ebs: blocks uploaded at once.",
)
@click.option(
    "--name", help="AMI name (default: nixecs-HOST-LABEL-ARCH-SHA12, unique per image content)."
)
@click.option(
    "--host",
    default="ecs-node",
    show_default=True,
    help="The nixosConfigurations host the image holds (tag nixecs:host; `ami: {host: …}` "
    "in a fleet finds it by this).",
)
@click.option(
    "--flake-rev", help="Flake revision recorded in the image's tags (default: the flake's)."
)
@click.option(
    "--import-role",
    metavar="ROLE",
    help="Service role VM Import uses to read the bucket (default: AWS's `vmimport`).",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until the AMI is available."
)
@click.option(
    "--regions",
    "regions",
    multiple=True,
    metavar="REGION",
    help="Also copy the AMI into this region (repeatable, or comma-separated); copies are "
    "waited for in parallel.",
)
@click.option(
    "--share",
    "accounts",
    multiple=True,
    metavar="ACCOUNT",
    help="Grant this AWS account launch permission on the AMI (and its copies) and "
    "createVolumePermission on their snapshots (repeatable, or comma-separated).",
)
@click.pass_obj
def ami_publish(
    g: Globals,
    image_dir: Path | None,
    image_option: Path | None,
    flake: str | None,
    fleet_file: Path | None,
    via: str,
    bucket: str | None,
    workers: int,
    name: str | None,
    host: str,
    flake_rev: str | None,
    import_role: str | None,
    wait: bool,
    regions: tuple[str, ...],
    accounts: tuple[str, ...],
) -> int:
    """Turn IMAGE_DIR (the output of `nix build .#ecs-node-ami`) into an EBS snapshot and
    register an AMI (ENA, IMDSv2 only, tagged with the host, the flake revision and the
    image's SHA-256); prints the AMI id. Without IMAGE_DIR, builds HOST's image from --flake
    (or the --fleet file's `flake:`) with `nix build FLAKE#HOST-ami`.

    By default the raw image is written straight into the snapshot with the EBS direct APIs:
    512 KiB blocks, all-zero blocks skipped, a SHA-256 checksum per block and for the whole
    snapshot. Safe to rerun after any failure: it finds the finished AMI or snapshot of the
    same image content and never makes a second one.
    """
    from .ami import publish
    from .ami_source import source
    from .session import Session, poll_interval

    copy_regions = _split_values(regions, r"[a-z]{2}(?:-[a-z]+)+-[0-9]", "--regions", "a region")
    share_with = _split_values(accounts, r"[0-9]{12}", "--share", "a 12-digit AWS account id")
    if (copy_regions or share_with) and not wait:
        raise click.UsageError("--regions and --share wait for the AMI: drop --no-wait")
    if image_dir is not None and image_option is not None:
        raise click.UsageError("give IMAGE_DIR or --image, not both")
    built = source(host, image_dir or image_option, flake, fleet_file, flake_rev, _say)
    image_dir, flake_rev = built.image_dir, built.flake_rev
    session = Session.from_globals(g)
    result = publish(
        session,
        image_dir,
        bucket,
        via=via,
        workers=workers,
        name=name,
        host=host,
        flake_rev=flake_rev,
        import_role=import_role,
        poll=poll_interval(15.0),
        wait=wait,
        say=_say,
    )
    copies = []
    if copy_regions or share_with:
        copies = _distribute(session, result, copy_regions, share_with)
    if g.json:
        extra = {"copies": [c.to_json() for c in copies]} if copy_regions or share_with else {}
        _emit_json({**result.to_json(), **extra})
    else:
        click.echo(result.image_id)
        for c in copies:
            click.echo(f"{c.region} {c.image_id}")
    return 0


def _split_values(values: tuple[str, ...], pattern: str, option: str, what: str) -> list[str]:
    """Repeatable and comma-separated values, each checked, in order, without repeats."""
    import re

    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    bad = [v for v in items if not re.fullmatch(pattern, v)]
    if bad:
        raise click.BadParameter(f"{', '.join(bad)}: not {what}", param_hint=option)
    return list(dict.fromkeys(items))


def _distribute(session: Any, result: Any, regions: list[str], accounts: list[str]) -> list[Any]:
    from .ami import snapshots_of
    from .ami_copies import distribute
    from .session import poll_interval

    return distribute(
        session,
        source_region=result.region,
        source_image_id=result.image_id,
        source_snapshot_ids=snapshots_of(session, result.image_id),
        name=result.name,
        description=result.description,
        tags=result.tags,
        regions=regions,
        accounts=accounts,
        wait=True,
        poll=poll_interval(15.0),
        say=_say,
    )


# --- deploy ----------------------------------------------------------------------------------


@click.command()
@click.argument("fleet", type=click.Path(dir_okay=False))
@click.option(
    "--cluster", "clusters", multiple=True, help="Only this cluster (repeatable; default: all)."
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Stream stack events until done."
)
@click.option("--yes", "-y", is_flag=True, help="Execute change sets without asking.")
@click.option(
    "--preflight/--no-preflight",
    default=True,
    show_default=True,
    help="Check the account first: service-linked roles, SSM parameters, subnets and "
    "security groups, AMIs, ECR images (E131-E138).",
)
@click.option(
    "--create-service-linked-roles",
    "create_roles",
    is_flag=True,
    help="Create the ECS and Application Auto Scaling service-linked roles when missing.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Destroy this fleet's stacks whose cluster the fleet no longer declares "
    "(as `nixecs destroy` does).",
)
@click.option(
    "--plan",
    is_flag=True,
    help="Only show what would change: make the change sets, show them, delete them (exit 0).",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Claim for this fleet the stacks an earlier nixecs made (tagged nixecs:cluster but "
    "not nixecs:fleet); the deploy writes the fleet's tag. Never a stack without nixecs tags "
    "or another fleet's.",
)
@click.option(
    "--template-bucket",
    metavar="BUCKET",
    help="S3 bucket for templates over CloudFormation's 51,200-byte inline limit.",
)
@click.option(
    "--accept-hazard",
    "accepted",
    metavar="CODE",
    multiple=True,
    help="Deploy despite a hazard the plan refuses (H103-H109; repeatable).",
)
@click.pass_obj
def deploy(
    g: Globals,
    fleet: str,
    clusters: tuple[str, ...],
    wait: bool,
    yes: bool,
    preflight: bool,
    create_roles: bool,
    prune: bool,
    plan: bool,
    adopt: bool,
    template_bucket: str | None,
    accepted: tuple[str, ...],
) -> int:
    """Create or update each cluster's CloudFormation stack through a change set.

    Shows what will change (add / modify / replace / remove, replacement decided from the
    resource types' create-only properties) and the transition's hazards; refuses a hazard
    it cannot make safe unless --accept-hazard CODE; asks unless --yes, executes, and
    streams stack events. Listener rules in each other's way are moved in a first update;
    groups being removed are emptied first. "No changes" is success. Afterwards the scaling
    targets, policies and alarms are looked up through their own APIs (moto's CloudFormation
    skips them): missing ones are an error against AWS, a warning with --endpoint-url.
    """
    from .. import naming
    from ..diagnostics import OperationalFailure
    from ..fleet.checks import check_fleet_file
    from .deploy import (
        ClusterDeploy,
        deploy_cluster,
        expected_scaling,
        render_template,
        summarize,
        verify_scaling,
    )
    from .destroy import DEFAULT_TIMEOUT
    from .ownership import check_stacks
    from .session import Session, aws_errors, poll_interval
    from .transitions import (
        Planned,
        lift_removed_groups,
        phase_one_body,
        plan_cluster,
        refusal,
        with_change_set,
    )
    from .transitions import lines as plan_lines

    # Everything `validate` checks, and every template rendered, before AWS is asked anything.
    model, report = check_fleet_file(fleet, env=current_env())
    report.print(sys.stderr)  # warnings
    if model.name_prefix:  # `--cluster prod` means `acme-prod` in a fleet with a prefix
        clusters = tuple(
            f"{model.name_prefix}-{c}" if f"{model.name_prefix}-{c}" in model.clusters else c
            for c in clusters
        )
    unknown = [c for c in clusters if c not in model.clusters]
    if unknown:
        raise click.BadParameter(
            f"no cluster {', '.join(unknown)} in {fleet} (clusters: {', '.join(model.clusters) or 'none'})",
            param_hint="--cluster",
        )
    selected = list(clusters) or list(model.clusters)
    bodies = {cluster: render_template(model, cluster) for cluster in selected}
    from .regions import fleet_region

    region = fleet_region(g, model.region, fleet)
    session = Session.from_globals(g, region=region)
    model, bodies = _resolve_host_amis(session, model, bodies, fleet)
    if preflight:
        from .preflight import check_account

        check_account(session, model, create_roles=create_roles, say=_say)
    model, bodies = _pin_images(session, model, bodies)
    echo_err = g.json
    _say(f"region {region}")
    with aws_errors(session, "deploy"):  # all refused before any change set is made
        check_stacks(session, selected, model.identity, action="deploy", adopt=adopt, creating=True)

    planned: dict[str, Planned] = {}

    def show(result: ClusterDeploy) -> None:
        click.echo(f"{result.stack}: change set {result.change_set}", err=echo_err)
        transition = planned.get(result.cluster)
        if transition is None:  # phase one of a two-phase update: CloudFormation's own list
            shown = summarize(result.changes)
        else:
            with_change_set(transition.transition, result.changes)
            shown = plan_lines(transition)
        for line in shown:
            click.echo(line, err=echo_err)

    def confirm(result: ClusterDeploy) -> bool:
        show(result)
        if yes:
            return True
        return click.confirm(f"Execute the change set on {result.stack}?", default=False, err=True)

    results = []
    failures = []
    bucket = template_bucket or model.template_bucket or None
    # every cluster planned first: a refused hazard in one stops the deploy before any stack
    # is touched
    plans = {cluster: plan_cluster(session, cluster, bodies[cluster]) for cluster in selected}
    refused = [r for r in (refusal(p, accepted) for p in plans.values()) if r]
    if refused and not plan:
        raise click.UsageError("; ".join(refused))
    for cluster in selected:
        body = bodies[cluster]
        current = plans[cluster]
        first = None if plan else phase_one_body(current)
        if first is not None:
            _say(
                f"{naming.stack_name(cluster)}: phase 1 of 2: listener rules moved out of the "
                "way first ("
                + ", ".join(
                    f"{k} to priority {v}" for k, v in current.transition.priority_moves.items()
                )
                + ")"
            )
            deploy_cluster(
                session,
                cluster,
                first,
                confirm=confirm,
                say=_say,
                poll=poll_interval(5.0),
                template_bucket=bucket,
                fleet_id=model.identity,
                adopt=adopt,
            )
            _say(f"{naming.stack_name(cluster)}: phase 2 of 2")
        planned[cluster] = current

        def empty_groups(current: Planned = current) -> None:
            lift_removed_groups(
                session, current, say=_say, poll=poll_interval(5.0), timeout=DEFAULT_TIMEOUT
            )

        result = deploy_cluster(
            session,
            cluster,
            body,
            wait=wait,
            confirm=confirm,
            say=_say,
            poll=poll_interval(5.0),
            template_bucket=bucket,
            plan=plan,
            fleet_id=model.identity,
            adopt=adopt,
            before_execute=empty_groups if current.transition.removed_groups() else None,
        )
        result.transition = current.transition.to_json()
        if plan:
            results.append(result)
            if not g.json:
                show(result)
                if result.outcome == "no changes":
                    click.echo(f"{result.stack}: no changes")
            continue

        if wait and result.outcome in ("created", "updated", "no changes"):
            result.missing = verify_scaling(session, expected_scaling(model, cluster))
            if result.missing:
                if session.local:
                    _say(
                        f"warning: {result.stack}: not found through their own APIs (moto's CloudFormation "
                        f"does not create them): {'; '.join(result.missing)}"
                    )
                else:
                    failures.append(
                        f"{result.stack}: missing after deploy: {'; '.join(result.missing)}"
                    )
        results.append(result)
        if not g.json:
            if result.outcome == "no changes":
                click.echo(f"{result.stack}: no changes")
            elif result.outcome == "started":
                click.echo(f"{result.stack}: change set executing (not waiting)")
            else:
                click.echo(f"{result.stack}: {result.outcome} ({result.status})")
    orphaned, pruned = _orphans(session, model, prune=prune, plan=plan, yes=yes)
    if g.json:
        _emit_json(
            {
                "region": session.region_name(),
                "plan": plan,
                "clusters": [r.to_json() for r in results],
                "orphans": [naming.stack_name(c) for c in orphaned],
                "pruned": [r.stack for r in pruned],
                # `local deploy`'s emulator, stand-ins and limits (local/commands.py)
                **click.get_current_context().meta.get(LOCAL_JSON, {}),
            }
        )
    if failures:
        raise OperationalFailure("; ".join(failures))
    return 0


def _pin_images(session: Any, model: Any, bodies: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """ECR images by tag resolved to digests (ecr:DescribeImages), and the templates of the
    clusters that have them rendered again, pinned: a tag pushed again later never changes
    running tasks. A missing tag, digest or repository is invalid input (E136-E138)."""
    from .deploy import render_template
    from .images import pin_fleet, resolve
    from .session import aws_errors

    def images(name: str) -> list[Any]:
        return [c.image for s in model.clusters[name].task_definitions for c in s.containers]

    ecr_clusters = [name for name in bodies if any(i.is_ecr for i in images(name))]
    if not ecr_clusters:
        return model, bodies
    with aws_errors(session, "deploy: resolving ECR images"):
        resolution = resolve(session, (i for name in ecr_clusters for i in images(name)))
    pinned = pin_fleet(model, resolution)
    return pinned, {**bodies, **{name: render_template(pinned, name) for name in ecr_clusters}}


def _resolve_host_amis(
    session: Any, model: Any, bodies: dict[str, str], fleet_file: str
) -> tuple[Any, dict[str, str]]:
    """`ami: {host: …}` groups given the AMI chosen in this region (aws/host_amis.py), and
    the templates of their clusters rendered again with it."""
    from .deploy import render_template
    from .host_amis import resolved

    found = resolved(session, model, fleet_file, "deploy: finding the hosts' AMIs")
    changed = [name for name in bodies if found.clusters[name] != model.clusters[name]]
    return found, {**bodies, **{name: render_template(found, name) for name in changed}}


def _orphans(
    session: Any, model: Any, *, prune: bool, plan: bool, yes: bool
) -> tuple[dict[str, str], list[Any]]:
    """Report this fleet's stacks the fleet no longer declares; with --prune (not --plan),
    destroy them after confirmation."""
    from .. import naming
    from .destroy import destroy_cluster
    from .orphans import adopt_note, describe, earlier, orphans
    from .ownership import NotOurs
    from .session import aws_errors, poll_interval

    with aws_errors(session, "deploy: looking for removed clusters"):
        found = orphans(session, model)
        unclaimed = earlier(session)
    if unclaimed:
        _say(adopt_note(unclaimed))
    if not found:
        return found, []
    shared = model.identity == naming.DEFAULT_FLEET
    if prune and shared:
        # Every fleet file without `name_prefix` tags its stacks with the same identity: these
        # may be another such file's clusters, and pruning would destroy them.
        raise NotOurs(
            f"deploy --prune: {describe(found)} carry {naming.TAG_FLEET}={naming.DEFAULT_FLEET}, "
            "the identity every fleet file without `name_prefix` shares, so they may be another "
            "fleet file's; set `name_prefix:` to give this fleet its own identity, or destroy "
            "them by name (`nixecs destroy CLUSTER`)"
        )
    if plan or not prune:
        what = "would be destroyed by --prune" if plan else "left in place (--prune destroys them)"
        whose = (
            f"stacks of fleet {naming.DEFAULT_FLEET!r} (every fleet file without name_prefix) "
            "not declared in this one, left in place"
            if shared
            else f"stacks of this fleet no longer declared in it, {what}"
        )
        _say(f"{whose}: {describe(found)}")
        return found, []
    if not yes:
        _say(f"--prune destroys: {describe(found)}")
        if not sys.stdin.isatty():
            raise click.UsageError("no terminal to confirm --prune on: pass --yes")
        if not click.confirm("Destroy them?", default=False, err=True):
            raise click.exceptions.Abort()
    pruned = []
    for cluster in found:
        result = destroy_cluster(
            session, cluster, say=_say, poll=poll_interval(5.0), fleet_id=model.identity
        )
        _say(f"{naming.stack_name(cluster)}: destroyed (pruned)")
        pruned.append(result)
    return found, pruned


# --- roll ------------------------------------------------------------------------------------


@click.command()
@click.argument("target", metavar="CLUSTER/GROUP")
@click.option(
    "--min-healthy",
    type=click.IntRange(0, 100),
    default=90,
    show_default=True,
    help="Minimum healthy percentage.",
)
@click.option("--checkpoints", default="", help="Pause at these percentages, e.g. 50,100.")
@click.option(
    "--checkpoint-delay",
    type=click.IntRange(0, 172800),
    default=600,
    show_default=True,
    help="Seconds to pause at a checkpoint.",
)
@click.option(
    "--warmup",
    type=click.IntRange(0),
    default=None,
    help="Instance warmup in seconds (default: the group's).",
)
@click.option(
    "--no-rollback", is_flag=True, help="Do not roll back automatically when the refresh fails."
)
@click.option(
    "--protected",
    type=click.Choice(["refresh", "ignore", "wait"]),
    default="refresh",
    show_default=True,
    help="Instances protected from scale-in (running tasks): replace them (managed draining "
    "moves their tasks), leave them, or wait (AWS fails the refresh after an hour).",
)
@click.option(
    "--standby",
    type=click.Choice(["ignore", "terminate", "wait"]),
    default="ignore",
    show_default=True,
    help="Instances in Standby: leave them, replace them, or wait (fails after an hour).",
)
@click.option(
    "--rollback-alarm",
    "rollback_alarms",
    multiple=True,
    metavar="ALARM",
    help="Fail (and roll back) the refresh when this CloudWatch alarm fires (repeatable).",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Follow the refresh until it ends."
)
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(dir_okay=False),
    help="The fleet file whose group this is: its identity (name_prefix, environment) is what "
    "the group's stack must carry, and CLUSTER may be given without the prefix. For a group "
    "with `ami: {host: …}`: first checks that its launch template boots the newest AMI of the "
    "host in this region (else run deploy first). Without it: fleets without name_prefix.",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Also roll a group whose stack an earlier nixecs made (tagged nixecs:cluster but not "
    "nixecs:fleet). Never one without nixecs tags or another fleet's.",
)
@click.pass_obj
def roll(
    g: Globals,
    target: str,
    min_healthy: int,
    checkpoints: str,
    checkpoint_delay: int,
    warmup: int | None,
    no_rollback: bool,
    protected: str,
    standby: str,
    rollback_alarms: tuple[str, ...],
    wait: bool,
    fleet_file: str | None,
    adopt: bool,
) -> int:
    """Replace the instances of CLUSTER/GROUP with an instance refresh (rolling, by the
    group's latest launch template version). Exit 0 when it succeeds, 1 when it fails, is
    cancelled or rolls back. Only this fleet's groups (their stack tagged nixecs:fleet with
    its identity) are rolled; anything else is refused (exit 2), naming whose it is."""
    from .. import naming
    from .roll import PROTECTED_CHOICES, STANDBY_CHOICES, RollOptions, parse_checkpoints
    from .roll import roll as run_roll
    from .session import Session, poll_interval

    _split_target(target, "CLUSTER/GROUP")  # checked here; roll() reads the target itself
    try:
        points = parse_checkpoints(checkpoints)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--checkpoints") from None
    options = RollOptions(
        min_healthy=min_healthy,
        checkpoints=points,
        checkpoint_delay=checkpoint_delay,
        rollback=not no_rollback,
        instance_warmup=warmup,
        protected=PROTECTED_CHOICES[protected],
        standby=STANDBY_CHOICES[standby],
        rollback_alarms=tuple(rollback_alarms),
    )
    identity = naming.DEFAULT_FLEET
    if fleet_file is None:
        session = Session.from_globals(g)
    else:  # the fleet's region, as deploy acts on it
        from ..fleet.checks import check_fleet_file
        from .host_amis import check_roll
        from .regions import fleet_region

        model, _ = check_fleet_file(fleet_file, env=g.env)
        session = Session.from_globals(g, region=fleet_region(g, model.region, fleet_file))
        _say(check_roll(session, model, target, fleet_file))
        identity = model.identity
        cluster, _, group = target.partition("/")
        if model.name_prefix and f"{model.name_prefix}-{cluster}" in model.clusters:
            target = f"{model.name_prefix}-{cluster}/{group}"  # `roll prod/web` as in destroy
    result = run_roll(
        session,
        target,
        options,
        wait=wait,
        poll=poll_interval(15.0),
        say=_say,
        fleet=identity,
        adopt=adopt,
    )
    # The region is named: roll takes no fleet whose `region:` could be compared (issue 9.15).
    region = session.region_name()
    if g.json:
        _emit_json({**result.to_json(), "region": region})
    else:
        line = (
            f"{result.auto_scaling_group} ({region}): instance refresh {result.refresh_id} "
            f"{result.status}"
        )
        if result.percentage is not None:
            line += f" ({result.percentage}%)"
        if result.reason:
            line += f": {result.reason}"
        click.echo(line)
    if not wait:
        return 0
    return 0 if result.ok else 1


# --- destroy ---------------------------------------------------------------------------------


@click.command()
@click.argument("clusters", nargs=-1, metavar="[CLUSTER]...")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--timeout",
    type=click.IntRange(1),
    default=1800,
    show_default=True,
    help="Seconds to wait for tasks to stop and instances to terminate, per cluster.",
)
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(dir_okay=False),
    help="The fleet file whose stacks these are: its identity (name_prefix) is what the stacks "
    "must carry, CLUSTER may be given without the prefix, and its stacks left in "
    "REVIEW_IN_PROGRESS are deleted too. Without it: fleets without name_prefix.",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Also destroy stacks an earlier nixecs made (tagged nixecs:cluster but not "
    "nixecs:fleet). Never a stack without nixecs tags or another fleet's.",
)
@click.pass_obj
def destroy(
    g: Globals,
    clusters: tuple[str, ...],
    yes: bool,
    timeout: int,
    fleet_file: str | None,
    adopt: bool,
) -> int:
    """Tear down each CLUSTER's stack without hanging: services to zero and deleted,
    scale-in protection removed, groups to zero, capacity providers detached, then the
    stack. Safe to rerun after any failure: it resumes. Only this fleet's stacks (tagged
    nixecs:fleet with its identity) are touched; anything else is refused, naming whose it
    is. With --fleet, also deletes the fleet's stacks left in REVIEW_IN_PROGRESS (a declined
    first deploy); with --fleet and no CLUSTER, only that."""
    from .. import naming
    from .destroy import destroy_cluster, stacks_in_review
    from .ownership import check_stacks
    from .session import Session, aws_errors, poll_interval

    identity = naming.DEFAULT_FLEET
    declared: list[str] = []
    region = None
    hint = "name the clusters; --fleet FILE also finds its reviews"
    if fleet_file is not None:
        from ..fleet.checks import check_fleet_file

        model, report = check_fleet_file(fleet_file, env=current_env())
        report.print(sys.stderr)
        from .regions import fleet_region

        identity, declared = model.identity, list(model.clusters)
        region = fleet_region(g, model.region, fleet_file)
        # --fleet alone deletes only a declined first deploy's stacks: the fleet's deployed
        # clusters are named, never implied.
        env = f"--env {model.environment} " if model.environment else ""
        short = [c.removeprefix(f"{model.name_prefix}-") for c in declared]
        hint = (
            f"name the clusters to destroy: nixecs {env}destroy {' '.join(short)} "
            f"--fleet {fleet_file}"
        )
        if model.name_prefix:  # `destroy prod` means `acme-prod`, as in deploy --cluster
            clusters = tuple(
                f"{model.name_prefix}-{c}" if f"{model.name_prefix}-{c}" in model.clusters else c
                for c in clusters
            )
    session = Session.from_globals(g, region=region)
    reviews: list[str] = []
    if declared:
        with aws_errors(session, "destroy"):
            reviews, left = stacks_in_review(session, identity, declared)
        for reason in left:
            _say(f"left alone: {reason}")
    names = list(dict.fromkeys([*clusters, *reviews]))
    targets = [naming.stack_name(c) for c in names]
    with aws_errors(session, "destroy"):  # all refused before anything is asked or touched
        check_stacks(session, names, identity, action="destroy", adopt=adopt)
    if not targets:
        _say(f"nothing to destroy ({hint})")
        if g.json:
            _emit_json({"region": session.region_name(), "clusters": []})
        return 0
    if not yes:
        _say(f"This deletes, in {session.region_name()}: {', '.join(targets)}")
        if not sys.stdin.isatty():
            raise click.UsageError("no terminal to confirm on: pass --yes")
        if not click.confirm("Destroy them?", default=False, err=True):
            raise click.exceptions.Abort()
    results = []
    for cluster in names:
        _say(f"{naming.stack_name(cluster)}: destroying")
        result = destroy_cluster(
            session,
            cluster,
            say=_say,
            poll=poll_interval(5.0),
            timeout=float(timeout),
            fleet_id=identity,
            adopt=adopt,
        )
        results.append(result)
        if not g.json:
            click.echo(
                f"{result.stack}: "
                + ("destroyed" if result.outcome == "destroyed" else "does not exist")
            )
    if g.json:
        _emit_json({"region": session.region_name(), "clusters": [r.to_json() for r in results]})
    return 0


def _split_target(target: str, what: str) -> tuple[str, str]:
    """CLUSTER/NAME into its two non-empty halves (a usage error otherwise)."""
    cluster, slash, name = target.partition("/")
    if not slash or not cluster or not name or "/" in name:
        raise click.BadParameter(f"{target!r} is not {what}", param_hint=what)
    return cluster, name


# --- exec ------------------------------------------------------------------------------------


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("target", metavar="CLUSTER/SERVICE")
@click.option("--container", help="The container (needed when the task has several).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_command(g: Globals, target: str, container: str | None, command: tuple[str, ...]) -> int:
    """Run COMMAND in a running task of CLUSTER/SERVICE with ECS Exec (e.g. `nixecs exec
    prod/web -- sh`). Needs the service's `enable_execute_command: true` and
    session-manager-plugin; exits with the session's status."""
    from .. import naming
    from .ecs_exec import execute
    from .session import Session

    cluster, service = _split_target(target, "CLUSTER/SERVICE")
    session = Session.from_globals(g)
    return execute(
        session,
        naming.ecs_cluster_name(cluster),
        naming.service_name(service),
        command,
        container,
    )


# --- run -------------------------------------------------------------------------------------


RUN_TIMEOUT_MAX = 7 * 86400.0
RUN_DEADLINE_MARGIN_S = 300.0  # the calls before and after the wait
RUN_OVERRIDES_MAX = 8192


def _finite(value: float, name: str) -> float:
    """click's FloatRange lets NaN through (every comparison with it is false)."""
    if value != value:
        raise click.BadParameter("not a number", param_hint=name)
    return value


@click.command("run")
@click.argument("target", metavar="CLUSTER/TASK")
@click.option(
    "--command",
    "command_text",
    help="Run this instead of the essential container's command (shell words).",
)
@click.option(
    "--wait", is_flag=True, help="Wait until the task stops; print each container's exit code."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=RUN_TIMEOUT_MAX),
    callback=lambda _c, _p, value: _finite(value, "--timeout"),
    default=3600.0,
    show_default=True,
    help="Seconds to wait at most.",
)
@click.pass_obj
def run_command(
    g: Globals, target: str, command_text: str | None, wait: bool, timeout: float
) -> int:
    """Start one task of a cluster's `tasks:` on its group's capacity provider; with --wait,
    exit with the essential container's exit code."""
    import json
    import os
    import shlex

    from . import watchdog
    from .run_task import run
    from .session import Session, aws_errors, poll_interval

    cluster, task = _split_target(target, "CLUSTER/TASK")
    try:
        command = shlex.split(command_text) if command_text is not None else None
    except ValueError as error:  # an unbalanced quote
        raise click.BadParameter(f"not shell words: {error}", param_hint="--command") from None
    # "A total of 8192 characters are allowed for overrides. This limit includes the JSON
    # formatting characters of the override structure" (ECS API Reference, RunTask).
    if command is not None and len(json.dumps({"command": command})) > RUN_OVERRIDES_MAX:
        raise click.BadParameter(
            f"over ECS's {RUN_OVERRIDES_MAX} characters of overrides", param_hint="--command"
        )
    # The whole-command deadline (aws/watchdog.py) covers the wait it was asked for.
    if wait and not os.environ.get(watchdog.ENV):
        watchdog.arm("nixecs run", timeout + RUN_DEADLINE_MARGIN_S)
    session = Session.from_globals(g)
    with aws_errors(session, f"run {cluster}/{task}"):
        return run(
            session,
            cluster,
            task,
            command,
            wait,
            _say,
            timeout=timeout,
            poll=poll_interval(5.0),
        )


# --- status ----------------------------------------------------------------------------------


@click.command()
@click.argument("cluster", required=False)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw where each service and group stands within its bounds to this PNG.",
)
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(dir_okay=False),
    help="Also report this fleet's stacks whose cluster the fleet no longer declares.",
)
@click.pass_obj
def status(g: Globals, cluster: str | None, plot: Path | None, fleet_file: str | None) -> int:
    """Clusters, groups (desired / in service / launch template version / AMI), services
    (desired / running / pending), scaling policies and alarm states."""
    from .session import Session, aws_errors
    from .status import collect, render

    model = None
    if fleet_file is not None:
        from ..fleet.checks import check_fleet_file
        from .regions import fleet_region

        model, report = check_fleet_file(fleet_file, env=current_env())
        report.print(sys.stderr)
        # As deploy and destroy: the fleet's region (an environment's own), never silently
        # another that AWS_REGION names (`local env` exports the last local deploy's).
        g.region = fleet_region(g, model.region, fleet_file)
    session = Session.from_globals(g, region=model.region if model else None)
    data = collect(session, cluster)
    if model is not None:
        from .. import naming
        from .orphans import adopt_note, describe, earlier, orphans

        with aws_errors(session, "status: looking for removed clusters"):
            found = orphans(session, model)
            unclaimed = earlier(session)
        data["orphans"] = [naming.stack_name(c) for c in found]
        data["unclaimed"] = [naming.stack_name(c) for c in unclaimed]
        if unclaimed and not g.json:
            _say(adopt_note(unclaimed))
        if found and not g.json:
            _say(
                f"stacks of this fleet no longer declared in {fleet_file}: {describe(found)} "
                "(`nixecs deploy --prune` or `nixecs destroy CLUSTER` removes them)"
            )
    if g.json:
        _emit_json(data)
    else:
        click.echo(f"region {session.region_name()}")
        click.echo(render(data), nl=False)
    if plot is not None:
        from .plot import plot_status

        plot_status(data, plot)
        _say(f"wrote {plot}")
    return 0


# --- secret ----------------------------------------------------------------------------------


@click.group()
def secret() -> None:
    """SecureString secrets in SSM Parameter Store (values never on the command line)."""


def _ownership_options(command: Any) -> Any:
    """--fleet, --outside-fleet and --yes of `secret put` and `secret rm`."""
    command = click.option(
        "--yes", "-y", is_flag=True, help="Do not ask before a type change or a deletion."
    )(command)
    command = click.option(
        "--outside-fleet",
        is_flag=True,
        help="Act on NAME although no fleet (--fleet) references it.",
    )(command)
    return click.option(
        "--fleet",
        "fleet_file",
        type=click.Path(dir_okay=False),
        help="The fleet file NAME belongs to: it must reference NAME (a group's or container's "
        "secrets:), unless --outside-fleet.",
    )(command)


def _parameter_session(
    g: Globals, name: str, fleet_file: str | None, outside: bool
) -> tuple[Any, Any]:
    """The session for `secret put/rm NAME` and the --fleet model (None without it), once
    NAME is known to be the fleet's own (or --outside-fleet says to act anyway); NotOurs
    (exit 2) otherwise, before any AWS call."""
    from .ownership import NotOurs, parameter_refusal
    from .session import Session

    model = None
    region = None
    if fleet_file is not None:
        from ..fleet.checks import check_fleet_file
        from .regions import fleet_region

        model, report = check_fleet_file(fleet_file, env=current_env())
        report.print(sys.stderr)
        region = fleet_region(g, model.region, fleet_file)
    if not outside:
        reason = parameter_refusal(name, model, fleet_file)
        if reason is not None:
            raise NotOurs(f"secret: {reason}")
    return Session.from_globals(g, region=region), model


def _parameter_marks(
    session: Any, name: str, model: Any, outside: bool, *, claiming: bool = False
) -> dict[str, str] | None:
    """The tags of the existing parameter NAME (None without --fleet), once they are found
    to carry the fleet's mark (ownership.parameter_tag_refusal); NotOurs otherwise.
    --outside-fleet skips the check, as it skips the reference check."""
    if model is None:
        return None
    from .ownership import NotOurs, parameter_tag_refusal
    from .secret import tags_of

    tags = tags_of(session, name)
    reason = parameter_tag_refusal(name, tags, model.identity, claiming=claiming)
    if reason is not None and not outside:
        raise NotOurs(f"secret: {reason}")
    return tags


def _confirm(question: str, yes: bool) -> None:
    """Ask `question` on the terminal unless --yes; without a terminal, refuse (exit 2)."""
    if yes:
        return
    _say(question)
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to confirm on: pass --yes")
    if not click.confirm("Go ahead?", default=False, err=True):
        raise click.exceptions.Abort()


@secret.command("put")
@click.argument("name")
@click.option(
    "--value-stdin",
    is_flag=True,
    help="Read the value from stdin (one trailing newline is dropped).",
)
@click.option(
    "--generate", is_flag=True, help="Store a random password, only if NAME does not exist yet."
)
@click.option(
    "--kms-key",
    "--key-id",
    "key_id",
    help="KMS key for the SecureString (default: the account's aws/ssm key); use the fleet's "
    "`kms_key:` so that only its group's instances can decrypt it.",
)
@_ownership_options
@click.pass_obj
def secret_put(
    g: Globals,
    name: str,
    value_stdin: bool,
    generate: bool,
    key_id: str | None,
    fleet_file: str | None,
    outside_fleet: bool,
    yes: bool,
) -> int:
    """Store NAME as a SecureString. The value comes from stdin (--value-stdin), a hidden
    prompt, or --generate (a random password, only when NAME does not exist yet). NAME must
    be a parameter the --fleet file references, unless --outside-fleet; an existing String
    or StringList is turned into a SecureString only after asking (or --yes)."""
    from .. import naming
    from .secret import check_name, get, put

    check_name(name)
    if value_stdin and generate:
        raise click.UsageError("--value-stdin and --generate exclude each other")
    session, model = _parameter_session(g, name, fleet_file, outside_fleet)
    found: dict[str, str] | None = None  # the existing parameter's tags
    if not generate:  # --generate never writes over an existing parameter
        current = get(session, name, reveal=False)
        if current is not None:  # a new value claims an untagged SecureString, nothing else
            claiming = current["type"] == "SecureString"
            found = _parameter_marks(session, name, model, outside_fleet, claiming=claiming)
        if current is not None and current["type"] != "SecureString":
            _confirm(
                f"{name} is a {current['type']} (version {current['version']}); storing the "
                "secret makes it a SecureString, and whatever reads it as plain text will get "
                "ciphertext.",
                yes,
            )
    value: str | None
    if generate:
        value = None
    elif value_stdin:
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
            if value.endswith("\r"):
                value = value[:-1]
    else:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "no terminal to prompt for the value: use --value-stdin or --generate"
            )
        value = click.prompt(
            f"Value for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    if value is not None and not value:
        raise click.UsageError("refusing to store an empty value")
    # The fleet's marks on what it owns; none on what only --outside-fleet lets us touch, and
    # never over another fleet's mark (--outside-fleet acts on it, it does not claim it).
    tags = model.parameter_tags(name) if model is not None and model.owns_parameter(name) else {}
    mark = (found or {}).get(naming.TAG_FLEET)
    if mark is not None and model is not None and mark != model.identity:
        tags = {}
    # A cluster mark the fleet no longer gives (a second cluster reads the parameter now, or
    # none but the prefix does): removed, so it names no cluster wrongly.
    untag = (
        (naming.TAG_CLUSTER,)
        if tags and found and naming.TAG_CLUSTER in found and naming.TAG_CLUSTER not in tags
        else ()
    )
    result = put(session, name, value, key_id=key_id, tags=tags, untag=untag)
    if tags and found is not None and mark is None:
        _say(f"{name}: tagged {naming.TAG_FLEET}={tags[naming.TAG_FLEET]} (it had no owner mark)")
    if g.json:
        _emit_json(result.to_json())
    else:
        messages = {
            "created": f"{name}: created (version {result.version})",
            "updated": f"{name}: updated (version {result.version})",
            "unchanged": f"{name}: unchanged (version {result.version})",
            "exists": f"{name}: exists, left unchanged (version {result.version}); --generate never overwrites",
        }
        click.echo(messages[result.action])
    return 0


@secret.command("get")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Print the decrypted value (otherwise only metadata).")
@click.pass_obj
def secret_get(g: Globals, name: str, reveal: bool) -> int:
    """Show NAME's metadata (type, version, last modified); the value only with --reveal."""
    from ..diagnostics import OperationalFailure
    from .secret import check_name, get
    from .session import Session

    check_name(name)
    session = Session.from_globals(g)
    info = get(session, name, reveal=reveal)
    if info is None:
        raise OperationalFailure(f"secret {name} does not exist")
    if g.json:
        _emit_json(info)
    elif reveal:
        click.echo(info["value"])
    else:
        click.echo(
            f"{info['name']}: {info['type']}, version {info['version']}, last modified {info['last_modified']}"
        )
        click.echo("(value hidden; --reveal prints it)", err=True)
    return 0


@secret.command("rm")
@click.argument("name")
@_ownership_options
@click.pass_obj
def secret_rm(g: Globals, name: str, fleet_file: str | None, outside_fleet: bool, yes: bool) -> int:
    """Delete NAME, after asking (or --yes). NAME must be a parameter the --fleet file
    references, unless --outside-fleet. Deleting something that does not exist is not an
    error."""
    from .secret import check_name, get, remove

    check_name(name)
    session, model = _parameter_session(g, name, fleet_file, outside_fleet)
    current = get(session, name, reveal=False)
    if current is not None:
        _parameter_marks(session, name, model, outside_fleet)
        _confirm(
            f"This deletes SSM parameter {name} ({current['type']}, version "
            f"{current['version']}, every version of it).",
            yes,
        )
    # nothing there: nothing is deleted (a parameter made meanwhile was never asked about)
    removed = remove(session, name, seen=True) if current is not None else False
    if g.json:
        _emit_json({"name": name, "removed": removed})
    else:
        click.echo(f"{name}: removed" if removed else f"{name}: does not exist, nothing to remove")
    return 0


# --- image push ----------------------------------------------------------------------------


@click.group()
def image() -> None:
    """Application images (built by the flake with dockerTools) in ECR."""


@image.command("push")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--repository", required=True, help="ECR repository name (created when missing).")
@click.option("--tag", help="Image tag (default: the tag the archive names).")
@click.option(
    "--registry",
    metavar="URL",
    help="Push to this registry instead of the one ECR names (a pull-through mirror, or a "
    "local test registry: http:// only to loopback).",
)
@click.pass_obj
def image_push(
    g: Globals, archive: Path, repository: str, tag: str | None, registry: str | None
) -> int:
    """Push ARCHIVE (`nix build .#<app>-image`: a docker-archive, gzip or plain) to ECR and
    print its digest, which a task definition pins.

    Creates the repository when missing (immutable tags, scan on push, untagged images expire
    after 14 days). Authenticates with GetAuthorizationToken; the token goes to skopeo in a
    private 0600 auth file, removed afterwards, never on a command line. Rerunning with the
    same image is a no-op; a different image under an existing tag is refused.
    """
    from .image import push
    from .session import Session

    session = Session.from_globals(g)
    _say(f"pushing {archive.name} to {repository}{':' + tag if tag else ''} …")
    result = push(session, archive, repository, tag, registry_override=registry)
    if g.json:
        _emit_json(result.to_json())
    else:
        if result.created_repository:
            _say(f"created repository {repository}")
        state = "pushed" if result.pushed else "already there, nothing pushed"
        _say(f"{repository}:{result.tag}: {state}")
        click.echo(result.reference)
    return 0


def register(cli: click.Group) -> None:
    """Add this subject's commands to the top-level group."""
    for command in (ami, deploy, roll, status, destroy, secret, image, exec_command, run_command):
        cli.add_command(command)
