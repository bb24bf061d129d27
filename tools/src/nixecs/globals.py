"""The global command-line options, shared by every command through `click.pass_obj`.

A module of its own so that command modules can name the type without importing the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def json(self) -> bool:
        return self.output == "json"
