"""Which region a command acts on, and refusing a silent mismatch with the fleet (issue 9,
item 15).

`deploy` takes its region from --region, else AWS_REGION, else the fleet's `region:` (the
profile's region never overrides the fleet: Session gets the fleet's region as its
fallback). A region that came from the environment and differs from the fleet's would put
the stacks somewhere the fleet file does not say; that is refused unless --region was
written on the command line, where it is a deliberate choice.
"""

from __future__ import annotations

import click

from ..globals import Globals


def fleet_region(g: Globals, declared: str, path: str) -> str:
    """The region to act on for a fleet that declares `declared`; UsageError (exit 2) when
    AWS_REGION points elsewhere and --region was not given."""
    if g.region is None or g.region == declared:
        return declared
    if g.region_explicit:
        return g.region
    raise click.UsageError(
        f"AWS_REGION is {g.region} but {path} declares region {declared}: pass "
        f"--region {g.region} to act there anyway, or --region {declared} (or unset AWS_REGION)"
    )
