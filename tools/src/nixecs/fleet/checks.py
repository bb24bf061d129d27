"""The checks stage: every rule that relates several keys of a loaded fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..diagnostics import Diagnostic, InvalidInput, Report

if TYPE_CHECKING:
    from .model import Fleet


def check_fleet_file(path: str, *, nix: bool = True) -> tuple[Fleet, Report]:
    """Load FLEET and run every check; InvalidInput (exit 2) on errors, warnings returned."""
    from ..scaling.rules import check_fleet
    from . import aws_rules, load_fleet
    from .lints import lint_fleet

    fleet = load_fleet(path)
    report = check_fleet(fleet)
    report.extend(lint_fleet(fleet))
    report.extend(aws_rules.check_fleet(fleet))
    report.extend(_name_clash_errors(fleet))
    if nix:
        report.extend(_nix_module_errors(fleet))
    if report.has_errors:
        raise InvalidInput(report)
    return fleet, report


def _name_clash_errors(fleet: Fleet) -> list[Diagnostic]:
    """AWS names two subjects would share (names are joined with `-`, which they may contain)."""
    from ..cloudformation import name_clashes

    return [
        Diagnostic("E114", clash.message, fleet.document.locate(path, key=True))
        for clash in name_clashes(fleet)
        for path in clash.paths[1:]
    ]


def _nix_module_errors(fleet: Fleet) -> list[Diagnostic]:
    """Syntax errors in groups' `nixos:` text, found by real Nix when it is installed."""
    from ..nixparse import nix_instantiate, parse_texts

    texts = {
        f"{cluster.name}/{group.name}": group.nixos
        for cluster in fleet.clusters.values()
        for group in cluster.groups.values()
        if group.nixos
    }
    if not texts or nix_instantiate() is None:
        return []
    groups = {f"{c.name}/{g.name}": g for c in fleet.clusters.values() for g in c.groups.values()}
    return [
        Diagnostic(
            "E113",
            f"nixos module text does not parse: {error.message} (line {error.line}, column {error.column} of the text)",
            fleet.document.locate_in_block((*groups[key].path, "nixos"), error.line, error.column),
        )
        for key, error in parse_texts(texts).items()
    ]
