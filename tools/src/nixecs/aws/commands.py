"""Commands of this subject (placeholder until implemented)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this subject's commands to the top-level group."""
