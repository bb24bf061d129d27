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

from ..globals import Globals


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _say(text: str) -> None:
    click.echo(text, err=True)


# --- ami publish ---------------------------------------------------------------------------


@click.group()
def ami() -> None:
    """Machine images (AMIs) built from this flake."""


@ami.command("publish")
@click.argument("image_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
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
    help="The nixosConfigurations host the image holds.",
)
@click.option("--flake-rev", help="Flake revision recorded in the image's tags.")
@click.option(
    "--import-role",
    metavar="ROLE",
    help="Service role VM Import uses to read the bucket (default: AWS's `vmimport`).",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until the AMI is available."
)
@click.pass_obj
def ami_publish(
    g: Globals,
    image_dir: Path,
    via: str,
    bucket: str | None,
    workers: int,
    name: str | None,
    host: str,
    flake_rev: str | None,
    import_role: str | None,
    wait: bool,
) -> int:
    """Turn IMAGE_DIR (the output of `nix build .#ecs-node-ami`) into an EBS snapshot and
    register an AMI (ENA, IMDSv2 only, tagged with the image's SHA-256); prints the AMI id.

    By default the raw image is written straight into the snapshot with the EBS direct APIs:
    512 KiB blocks, all-zero blocks skipped, a SHA-256 checksum per block and for the whole
    snapshot. Safe to rerun after any failure: it finds the finished AMI or snapshot of the
    same image content and never makes a second one.
    """
    from .ami import publish
    from .session import Session, poll_interval

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
    if g.json:
        _emit_json(result.to_json())
    else:
        click.echo(result.image_id)
    return 0


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
    "--template-bucket",
    metavar="BUCKET",
    help="S3 bucket for templates over CloudFormation's 51,200-byte inline limit.",
)
@click.pass_obj
def deploy(
    g: Globals,
    fleet: str,
    clusters: tuple[str, ...],
    wait: bool,
    yes: bool,
    template_bucket: str | None,
) -> int:
    """Create or update each cluster's CloudFormation stack through a change set.

    Shows what will change (add / modify / remove, and replacements), asks unless --yes,
    executes, and streams stack events. "No changes" is success. Afterwards the scaling
    targets, policies and alarms are looked up through their own APIs (moto's CloudFormation
    skips them): missing ones are an error against AWS, a warning with --endpoint-url.
    """
    from ..commands import check_fleet_file
    from ..diagnostics import OperationalFailure
    from .deploy import (
        ClusterDeploy,
        deploy_cluster,
        expected_scaling,
        render_template,
        summarize,
        verify_scaling,
    )
    from .session import Session, poll_interval

    # Everything `validate` checks, and every template rendered, before AWS is asked anything.
    model, report = check_fleet_file(fleet)
    report.print(sys.stderr)  # warnings
    unknown = [c for c in clusters if c not in model.clusters]
    if unknown:
        raise click.BadParameter(
            f"no cluster {', '.join(unknown)} in {fleet} (clusters: {', '.join(model.clusters) or 'none'})",
            param_hint="--cluster",
        )
    selected = list(clusters) or list(model.clusters)
    bodies = {cluster: render_template(model, cluster) for cluster in selected}
    session = Session.from_globals(g, region=model.region)
    echo_err = g.json

    def show(result: ClusterDeploy) -> None:
        click.echo(f"{result.stack}: change set {result.change_set}", err=echo_err)
        for line in summarize(result.changes):
            click.echo(line, err=echo_err)

    def confirm(result: ClusterDeploy) -> bool:
        show(result)
        if yes:
            return True
        return click.confirm(f"Execute the change set on {result.stack}?", default=False, err=True)

    results = []
    failures = []
    for cluster in selected:
        body = bodies[cluster]
        result = deploy_cluster(
            session,
            cluster,
            body,
            wait=wait,
            confirm=confirm,
            say=_say,
            poll=poll_interval(5.0),
            template_bucket=template_bucket,
        )

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
    if g.json:
        _emit_json({"region": session.region_name(), "clusters": [r.to_json() for r in results]})
    if failures:
        raise OperationalFailure("; ".join(failures))
    return 0


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
    "--wait/--no-wait", default=True, show_default=True, help="Follow the refresh until it ends."
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
    wait: bool,
) -> int:
    """Replace the instances of CLUSTER/GROUP with an instance refresh (rolling, by the
    group's latest launch template version). Exit 0 when it succeeds, 1 when it fails, is
    cancelled or rolls back."""
    from .roll import RollOptions, parse_checkpoints
    from .roll import roll as run_roll
    from .session import Session, poll_interval

    cluster, slash, group = target.partition("/")
    if not slash or not cluster or not group or "/" in group:
        raise click.BadParameter(f"{target!r} is not CLUSTER/GROUP", param_hint="CLUSTER/GROUP")
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
    )
    session = Session.from_globals(g)
    result = run_roll(session, target, options, wait=wait, poll=poll_interval(15.0), say=_say)
    if g.json:
        _emit_json(result.to_json())
    else:
        line = f"{result.auto_scaling_group}: instance refresh {result.refresh_id} {result.status}"
        if result.percentage is not None:
            line += f" ({result.percentage}%)"
        if result.reason:
            line += f": {result.reason}"
        click.echo(line)
    if not wait:
        return 0
    return 0 if result.ok else 1


# --- status ----------------------------------------------------------------------------------


@click.command()
@click.argument("cluster", required=False)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw where each service and group stands within its bounds to this PNG.",
)
@click.pass_obj
def status(g: Globals, cluster: str | None, plot: Path | None) -> int:
    """Clusters, groups (desired / in service / launch template version / AMI), services
    (desired / running / pending), scaling policies and alarm states."""
    from .session import Session
    from .status import collect, render

    session = Session.from_globals(g)
    data = collect(session, cluster)
    if g.json:
        _emit_json(data)
    else:
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
@click.option("--key-id", help="KMS key for the SecureString (default: the account's aws/ssm key).")
@click.pass_obj
def secret_put(g: Globals, name: str, value_stdin: bool, generate: bool, key_id: str | None) -> int:
    """Store NAME as a SecureString. The value comes from stdin (--value-stdin), a hidden
    prompt, or --generate (a random password, only when NAME does not exist yet)."""
    from .secret import check_name, put
    from .session import Session

    check_name(name)
    if value_stdin and generate:
        raise click.UsageError("--value-stdin and --generate exclude each other")
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
    session = Session.from_globals(g)
    result = put(session, name, value, key_id=key_id)
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
@click.pass_obj
def secret_rm(g: Globals, name: str) -> int:
    """Delete NAME. Deleting something that does not exist is not an error."""
    from .secret import check_name, remove
    from .session import Session

    check_name(name)
    session = Session.from_globals(g)
    removed = remove(session, name)
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
    for command in (ami, deploy, roll, status, secret, image):
        cli.add_command(command)
