"""Host-side commands: `apply` (listed here, run by boot.py), `secrets fetch`, `drain` and
`gpu-info`.

`nixecs apply` is dispatched by `nixecs.__main__` to `host.boot` before click is imported;
the click command below only makes it appear in `nixecs --help` and forwards to the same
code when the CLI is entered some other way (e.g. click's test runner). boto3 is imported
inside the command bodies.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..diagnostics import EXIT_INVALID, OperationalFailure
from .deadline import DRAIN_EXTRA_SECONDS, SECRETS_SECONDS, Deadline, DeadlineExceeded

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ..aws.session import Session
    from ..globals import Globals

DEFAULT_IMDS = "http://169.254.169.254"


def _logger(prefix: str) -> Callable[[str], None]:
    def log(line: str) -> None:
        click.echo(f"nixecs {prefix}: {line}", err=True)

    return log


def _session(g: Globals, imds_url: str, deadline: Deadline) -> Session:
    """AWS session whose region is --region/AWS_REGION, AWS_DEFAULT_REGION, else IMDS's;
    with the host commands' call budget, every call held to `deadline`."""
    from ..aws.session import HOST, Session
    from .imds import ImdsClient, ImdsError

    region = g.region or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        try:
            region = ImdsClient(imds_url, deadline=deadline).region()
        except (ImdsError, ValueError) as error:
            raise OperationalFailure(f"no region given and none from IMDS: {error}") from None
    return Session(
        region=region,
        profile=g.profile,
        endpoint_url=g.endpoint_url,
        budget=HOST,
        deadline=deadline,
    )


def _deadline_option(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--deadline",
        "deadline_seconds",
        type=click.FloatRange(min=0, max=86400),
        default=None,
        help=f"Total seconds for the whole command, then exit 1 naming the step [default: {default}].",
    )


@contextmanager
def _unreadable_responses(session: Session, doing: str) -> Iterator[None]:
    """An endpoint that answers with something botocore cannot parse (an AWS-compatible
    endpoint's HTML error page, say) is an operational failure in one line, not a bug."""
    from botocore.parsers import ResponseParserError

    try:
        yield
    except ResponseParserError:
        # Not even the parser's message: it quotes the raw body, which may hold secret values.
        service, operation = session.last_call or ("aws", "?")
        raise OperationalFailure(
            f"{doing}: {service} {operation}: the endpoint's response could not be parsed (an error page?)"
        ) from None


@click.command(
    "apply",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def apply_command(ctx: click.Context, args: tuple[str, ...]) -> None:
    """On the host, at boot: apply this instance's EC2 userdata (settings, nix or script).

    Options: [--imds URL] [--userdata FILE] [--root DIR] [--rebuild-command CMD]
    [--state-dir DIR] [--deadline SECONDS]; `nixecs apply --help` for all.
    """
    from .boot import main as boot_main

    ctx.exit(boot_main(["apply", *args]))


@click.group("secrets")
def secrets_group() -> None:
    """On the host: secrets from SSM Parameter Store into /run/nixecs/secrets."""


@secrets_group.command("fetch")
@click.option("--root", default="/", show_default=True, help="Re-root every path read and written.")
@click.option(
    "--list",
    "list_file",
    help="NixOS-provided secret list [default: ROOT/etc/nixecs/secrets.json].",
)
@click.option(
    "--settings",
    "settings_file",
    help="Settings written by apply [default: ROOT/run/nixecs/settings.json].",
)
@click.option(
    "--imds",
    "imds_url",
    default=DEFAULT_IMDS,
    show_default=True,
    help="IMDS endpoint (for the region when none is given).",
)
@_deadline_option(f"{SECRETS_SECONDS:g}")
@click.pass_obj
def secrets_fetch(
    g: Globals,
    root: str,
    list_file: str | None,
    settings_file: str | None,
    imds_url: str,
    deadline_seconds: float | None,
) -> None:
    """Fetch the declared secrets (GetParameters, 10 per call) into /run/nixecs/secrets/<name>."""
    from ..aws.session import aws_errors
    from .secrets import (
        LIST_FILE,
        SETTINGS_FILE,
        SecretsFailed,
        SecretsInvalid,
        SecretWriter,
        fetch_secrets,
        load_specs,
        rerooted,
    )

    log = _logger("secrets")
    try:
        specs = load_specs(
            settings_file or rerooted(root, SETTINGS_FILE),
            list_file or rerooted(root, LIST_FILE),
            log,
        )
        if not specs:
            log("no secrets declared: nothing to fetch")
            return
        deadline = Deadline(
            "nixecs secrets fetch",
            SECRETS_SECONDS if deadline_seconds is None else deadline_seconds,
        )
        session = _session(g, imds_url, deadline)
        with (
            _unreadable_responses(session, "fetching secrets"),
            aws_errors(session, "fetching secrets"),
        ):
            written = fetch_secrets(specs, session.client("ssm"), SecretWriter(root, log), log)
    except DeadlineExceeded as error:
        raise OperationalFailure(str(error)) from None
    except SecretsInvalid as error:
        click.echo(f"nixecs: error: {error}", err=True)
        raise click.exceptions.Exit(EXIT_INVALID) from None
    except SecretsFailed as error:
        raise OperationalFailure(str(error)) from None
    log(f"{len(written)} secret(s) in place")


@click.command("drain")
@click.option(
    "--timeout",
    "timeout_text",
    help="Longest wait for tasks to stop, e.g. 15m [default: the settings' drain.timeout, else 15m].",
)
@click.option("--imds", "imds_url", default=DEFAULT_IMDS, show_default=True, help="IMDS endpoint.")
@click.option(
    "--poll",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between polls.",
)
@click.option(
    "--settings",
    "settings_file",
    default="/run/nixecs/settings.json",
    show_default=True,
    help="Settings written by apply (for the cluster).",
)
@click.option(
    "--cluster", help="ECS cluster [default: from the settings, else the local ECS agent]."
)
@_deadline_option(f"the drain timeout + {DRAIN_EXTRA_SECONDS:g}, counted from termination")
@click.pass_obj
def drain_command(
    g: Globals,
    timeout_text: str | None,
    imds_url: str,
    poll: float,
    settings_file: str,
    cluster: str | None,
    deadline_seconds: float | None,
) -> None:
    """On the host: on Auto Scaling termination, drain this container instance, then
    complete the lifecycle action (hook nixecs-drain) with CONTINUE."""
    from ..aws.session import aws_errors
    from ..settings import DRAIN_MAX_SECONDS, DURATION_RE, duration_seconds
    from .drain import Drainer, DrainFailed, cluster_from_agent, cluster_from_settings
    from .imds import ImdsClient, ImdsError

    if timeout_text is not None and not DURATION_RE.fullmatch(timeout_text):
        raise click.BadParameter(
            "write a whole number and s, m or h, e.g. 30s, 15m", param_hint="--timeout"
        )
    if timeout_text is not None and duration_seconds(timeout_text) > DRAIN_MAX_SECONDS:
        raise click.BadParameter(
            f"at most {DRAIN_MAX_SECONDS // 60}m: the termination lifecycle hook waits at most 2 hours",
            param_hint="--timeout",
        )
    log = _logger("drain")
    try:
        imds = ImdsClient(imds_url, log=log)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--imds") from None
    try:
        settings_cluster, settings_timeout = cluster_from_settings(settings_file)
        if timeout_text is None and settings_timeout is None:
            # The unit runs on every userdata host; only groups with `drain:` have the
            # termination hook this would complete.
            log(f"nothing to do: no --timeout and no drain in {settings_file}")
            return
        cluster = cluster or settings_cluster or cluster_from_agent()
        timeout = duration_seconds(timeout_text or settings_timeout or "15m")
        deadline = Deadline(
            "nixecs drain",
            timeout + DRAIN_EXTRA_SECONDS if deadline_seconds is None else deadline_seconds,
            started=False,
        )
        imds.deadline = deadline
        session = _session(g, imds_url, deadline)
        with _unreadable_responses(session, "draining"), aws_errors(session, "draining"):
            drainer = Drainer(
                imds,
                session.client("ecs"),
                session.client("autoscaling"),
                cluster=cluster,
                timeout=timeout,
                poll=poll,
                log=log,
                deadline=deadline,
            )
            outcome = drainer.run()
    except (DrainFailed, ImdsError, DeadlineExceeded) as error:
        raise OperationalFailure(str(error)) from None
    log(outcome)


@click.command("gpu-info")
@click.option("--root", default="/", show_default=True, help="Re-root every path read and written.")
@click.option(
    "--nvidia-smi", "nvidia_smi", default="nvidia-smi", show_default=True, help="nvidia-smi to run."
)
def gpu_info_command(root: str, nvidia_smi: str) -> None:
    """On the host: write /var/lib/ecs/gpu/nvidia-gpu-info.json (driver version and GPU
    UUIDs) for the ECS agent's GPU support, as ecs-init does on the ECS GPU AMI."""
    from .gpu import write_gpu_info

    _logger("gpu-info")(write_gpu_info(root, nvidia_smi))


def register(cli: click.Group) -> None:
    """Add the host commands to the top-level group."""
    cli.add_command(apply_command)
    cli.add_command(secrets_group)
    cli.add_command(drain_command)
    cli.add_command(gpu_info_command)
