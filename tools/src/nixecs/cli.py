"""The `nixecs` command line: a thin click layer over the modules that do the work.

Commands live with their subject (`commands.py` here for the fleet tools, `host/commands.py`,
`aws/commands.py`) and keep their heavy imports inside the command body, so `--help` and
`validate` stay quick.
"""

from __future__ import annotations

import gc
import sys

import click
from click.core import ParameterSource

from . import __version__
from .diagnostics import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, DeadlineReached, Terminated
from .globals import Globals
from .outcome import exit_status

# Which module registers each top-level command. A command's module is imported only when
# that command runs (or `--help` lists them all): `nixecs validate` is an editor's command and
# must not pay for the AWS and host commands' click machinery (issue 18, item 4). A test
# checks this table against what each module registers.
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(("validate", "render", "userdata", "scaling", "schema"), "commands"),
    **dict.fromkeys(("apply", "secrets", "drain", "gpu-info"), "host.commands"),
    **dict.fromkeys(
        ("ami", "deploy", "roll", "status", "destroy", "secret", "image", "exec", "run"),
        "aws.commands",
    ),
    "local": "local.commands",
}


class LazyGroup(click.Group):
    """The top-level group: subcommands registered by their module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            load_commands(COMMAND_MODULES[cmd_name])
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--region", envvar="AWS_REGION", help="AWS region (default: the fleet's region or the SDK's)."
)
@click.option("--profile", envvar="AWS_PROFILE", help="AWS shared-config profile.")
@click.option(
    "--endpoint-url",
    envvar="NIXECS_ENDPOINT_URL",
    help="Send every AWS call to this endpoint (any AWS-compatible one, e.g. moto server).",
)
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeat for more).")
@click.option(
    "--env",
    envvar="NIXECS_ENV",
    help="The environment of the fleet file (its `environments:` entry) every fleet command "
    "reads; `validate` without it checks each one.",
)
@click.version_option(__version__, prog_name="nixecs")
@click.pass_context
def cli(
    ctx: click.Context,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    output: str,
    verbose: int,
    env: str | None,
) -> None:
    """NixOS container hosts for Amazon ECS.

    Turns one fleet file into EC2 userdata and CloudFormation, deploys it, and on the host
    applies the userdata at boot. Exit codes: 0 success, 1 operational failure (AWS,
    network, IMDS), 2 invalid input or usage.

    The global options may also follow the subcommand, as with the aws cli
    (`nixecs deploy fleet.yml --region eu-west-1`); given there, they win.
    """
    explicit = ctx.get_parameter_source("region") == ParameterSource.COMMANDLINE
    ctx.obj = Globals(
        region, profile, endpoint_url, output, verbose, region_explicit=explicit, env=env
    )


def _merge_global(ctx: click.Context, param: click.Parameter, value: object) -> None:
    """A global option given after the subcommand: into the shared Globals."""
    g = ctx.find_object(Globals)
    if g is None or value is None or param.name is None:
        return
    if param.name == "verbose":
        g.verbose += int(value)  # type: ignore[call-overload]
        return
    setattr(g, param.name, value)
    if param.name == "region":
        g.region_explicit = True


def _global_options() -> list[click.Option]:
    """The group's global options, again, for every subcommand. No envvar and no default
    here: the group already read those, and only what is written after the subcommand
    should override it. Hidden: the group's --help documents them once."""
    common = {"expose_value": False, "callback": _merge_global, "hidden": True}
    return [
        click.Option(["--region"], default=None, **common),  # type: ignore[arg-type]
        click.Option(["--profile"], default=None, **common),  # type: ignore[arg-type]
        click.Option(["--env"], default=None, **common),  # type: ignore[arg-type]
        click.Option(["--endpoint-url"], default=None, **common),  # type: ignore[arg-type]
        click.Option(
            ["--output"],
            type=click.Choice(["text", "json"]),
            default=None,
            **common,  # type: ignore[arg-type]
        ),
        click.Option(["-v", "--verbose"], count=True, default=0, **common),  # type: ignore[arg-type]
    ]


def add_global_options(command: click.Command) -> None:
    """Accept the global options on `command` and, for a group, on all its subcommands. An
    option a command already has for itself is left to the command."""
    taken = {name for param in command.params for name in getattr(param, "opts", [])}
    for option in _global_options():
        if not set(option.opts) & taken:
            command.params.append(option)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_global_options(sub)


def load_commands(module_name: str) -> None:
    """Import one command module and add its commands (with the global options) to `cli`."""
    # __import__ rather than importlib.import_module: the same import, but through the
    # interpreter's own path, which `python -X importtime` reports (a test reads that list).
    name = f"{__package__}.{module_name}"
    __import__(name)
    module = sys.modules[name]
    before = set(cli.commands)
    module.register(cli)
    for name in set(cli.commands) - before:
        add_global_options(cli.commands[name])


def run(argv: list[str]) -> int:
    """Run the CLI; map our exceptions to exit codes and one-line messages."""
    verbose = "-v" in argv or "--verbose" in argv or any(a.startswith("-vv") for a in argv)
    # A short-lived process that builds large acyclic structures (a fleet's nodes, its
    # templates): the cyclic collector's frequent passes over them tripled render time.
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 20, 100)
    try:
        result = cli.main(args=argv, prog_name="nixecs", standalone_mode=False)
    except click.exceptions.Abort as abort:
        # click turns Ctrl-C into Abort when not standalone: still an interrupt, exit 130
        if isinstance(abort.__cause__, KeyboardInterrupt):
            click.echo("nixecs: interrupted", err=True)
            return 130
        click.echo("nixecs: aborted", err=True)
        return EXIT_FAILURE
    except click.ClickException as error:
        error.show()
        return EXIT_INVALID if error.exit_code == 2 else error.exit_code
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except (Exception, KeyboardInterrupt, Terminated, DeadlineReached) as error:
        return exit_status(error, verbose)  # as `validate`'s fast path (nixecs.fast)
    finally:
        gc.set_threshold(*thresholds)
        if "nixecs.aws.watchdog" in sys.modules:  # armed by an AWS command's first Session
            sys.modules["nixecs.aws.watchdog"].disarm()
    return result if isinstance(result, int) else EXIT_OK
