"""The global command-line options, shared by every command through `click.pass_obj`.

A module of its own so that command modules can name the type without importing the CLI.
"""

from __future__ import annotations

from .records import dataclass


@dataclass
class Globals:
    """The global options, shared by every command through `click.pass_obj`."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    output: str = "text"
    verbose: int = 0
    # True when --region was on the command line (not AWS_REGION): only then may a command
    # act on a region other than the fleet's (nixecs.aws.regions.check_fleet_region).
    region_explicit: bool = False
    # --env: the `environments:` entry of the fleet file every fleet command reads
    env: str | None = None

    @property
    def json(self) -> bool:
        return self.output == "json"


def current_env() -> str | None:
    """--env of the command running now (None outside a command or without it): for code
    below a command that is not handed its Globals."""
    import click

    context = click.get_current_context(silent=True)
    found = context.find_object(Globals) if context is not None else None
    return found.env if found is not None else None
