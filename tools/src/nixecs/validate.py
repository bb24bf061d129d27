"""`nixecs validate`'s work, and the report every fleet command prints, without click.

`validate` is an editor's command, run on every save (issue 18, item 4): `nixecs.fast` runs
it straight from `__main__` without importing click, and the click command
(`commands.validate`) calls the same function, so the two paths share everything but the
parsing of the command line (a test runs both on the same fleets and flags).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from .diagnostics import EXIT_OK, Diagnostic, InvalidInput, Report
from .outcome import echo

if TYPE_CHECKING:
    from .fleet.model import Fleet
    from .globals import Globals
    from .render import Rendered


def _lint_overrides(fleet: Fleet, rendered: Rendered) -> Report:
    """cfn-lint over the stacks of clusters with `overrides:` (cloudformation/lint.py)."""
    report = Report()
    clusters = [c for c in fleet.clusters.values() if c.overrides and c.name in rendered.clusters]
    if not clusters:
        return report
    import subprocess

    from .cloudformation.lint import E_LINT, cfn_lint_command, lint_stack

    command = cfn_lint_command()
    if command is None:
        echo(
            "note: the clusters' overrides were applied but not linted: install cfn-lint "
            "(pip install cfn-lint) to have validate check the overridden stacks",
            err=True,
        )
        return report
    for cluster in clusters:
        try:
            errors = lint_stack(command, cluster, _unresolved_amis(cluster, rendered), fleet.region)
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            echo(f"note: cluster {cluster.name}: cfn-lint did not run: {error}", err=True)
            continue
        for found in errors:
            report.add(E_LINT, found.message, fleet.document.locate(found.path, key=True))
    return report


def _unresolved_amis(cluster: Any, rendered: Rendered) -> str:
    """The cluster's stack as cfn-lint should see it: an `ami: {host: …}` group's ImageId is a
    placeholder until deploy resolves it (aws/host_amis.py), stood in for by an id of AMI
    shape (the pattern cfn-lint checks, AWS::EC2::Image.Id)."""
    text = rendered.clusters[cluster.name].stack_text
    placeholders = sorted(
        (g.ami for g in cluster.groups.values() if g.ami_host is not None), key=len, reverse=True
    )
    for placeholder in placeholders:
        text = text.replace(placeholder, "ami-00000000000000000")
    return text


def emit_report(
    g: Globals, report: Report, summary: str, extra: dict[str, object] | None = None
) -> None:
    report.print(sys.stderr)
    if g.json:
        payload: dict[str, object] = {
            "valid": not report.has_errors,
            "diagnostics": [d.to_json() for d in report.sorted()],
        }
        payload.update(extra or {})
        echo(json.dumps(payload, indent=2))
    else:
        echo(summary)


def counts(fleet: Fleet) -> str:
    groups = sum(len(c.groups) for c in fleet.clusters.values())
    services = sum(len(c.services) for c in fleet.clusters.values())
    return f"{len(fleet.clusters)} clusters, {groups} groups, {services} services"


def invalid_json(g: Globals, error: InvalidInput) -> None:
    if g.json:
        echo(
            json.dumps(
                {"valid": False, "diagnostics": [d.to_json() for d in error.report.sorted()]},
                indent=2,
            )
        )


def validate_fleet(g: Globals, fleet: str, against_aws: bool, create_roles: bool) -> int:
    """`nixecs validate FLEET` (the click command's help says what it checks): exit 0 when
    valid, InvalidInput with every diagnostic when not."""
    from .fleet import environments_of

    try:
        # A file with environments is valid when each of them is; --env checks one.
        declared: list[str | None] = [g.env] if g.env else [*environments_of(fleet)]
        chosen = declared or [None]
        checked: list[tuple[str | None, Fleet]] = []
        found: dict[Diagnostic, list[str | None]] = {}  # each finding once, with its envs
        for env in chosen:
            try:
                model, report = _validate_one(g, fleet, env, against_aws, create_roles)
                checked.append((env, model))
                items = report.items
            except InvalidInput as error:
                items = error.report.items
            for diagnostic in items:
                seen = found.setdefault(diagnostic, [])
                if env not in seen:
                    seen.append(env)
        complete = [env for env, _ in checked]
        report = Report([_in_environments(d, e, chosen, complete) for d, e in found.items()])
        if len(checked) < len(chosen):
            raise InvalidInput(report)
    except InvalidInput as error:
        invalid_json(g, error)
        raise
    first, model = checked[0]
    summary = f"{fleet}: valid ({counts(model)}, {len(report.warnings)} warnings)"
    if first is not None:
        names = ", ".join(str(e) for e, _ in checked)
        summary = f"{fleet}: valid in environment{'s' if len(checked) > 1 else ''} {names} ({counts(model)}, {len(report.warnings)} warnings)"
    envs: dict[str, object] | None = (
        {"environments": [e for e, _ in checked]} if first is not None else None
    )
    emit_report(g, report, summary, envs)
    return EXIT_OK


def _in_environments(
    diagnostic: Diagnostic,
    envs: list[str | None],
    chosen: list[str | None],
    complete: list[str | None],
) -> Diagnostic:
    """A finding of some of the environments checked, not all, names them: its position may
    be the fleet's own text (a rule between a key the environment sets and one it does not,
    such as a load balancer with the one subnet an environment gives the cluster). A warning
    is told apart only from environments checked to the end (one that stopped at its errors
    never reached the stage that warns); an error from any (each stage reports all of its)."""
    lacking = [env for env in chosen if env not in envs]
    if not diagnostic.is_error:
        lacking = [env for env in lacking if env in complete]
    if not lacking:
        return diagnostic
    names = ", ".join(str(env) for env in envs)
    plural = "s" if len(envs) > 1 else ""
    return Diagnostic(
        diagnostic.code,
        f"{diagnostic.message} (in environment{plural} {names})",
        diagnostic.location,
    )


def _validate_one(
    g: Globals, fleet: str, env: str | None, against_aws: bool, create_roles: bool
) -> tuple[Fleet, Report]:
    from .flake_checks import check_fleet as check_against_flake
    from .fleet.checks import check_fleet_file
    from .render import inline_limit_problems, render_fleet

    model, report = check_fleet_file(fleet, env=env)
    # `validate` only (deploy and render do not evaluate NixOS): E501, E502, E505, W501.
    report.extend(check_against_flake(model))
    if report.has_errors:
        raise InvalidInput(report)
    rendered = render_fleet(model)  # in memory: userdata sizes (E111), stack quotas (E115)
    too_big = inline_limit_problems(rendered)  # E130: deploy would need an S3 bucket
    if too_big.has_errors:
        raise InvalidInput(too_big)
    linted = _lint_overrides(model, rendered)  # E164
    if linted.has_errors:
        raise InvalidInput(linted)
    report.extend(rendered.warnings())  # the final templates' (nixecs.template_checks)
    if against_aws:
        from .aws.host_amis import resolved
        from .aws.preflight import check_account
        from .aws.session import Session

        session = Session.from_globals(g, region=model.region)
        model = resolved(session, model, fleet, "validate: finding the hosts' AMIs")
        check_account(
            session, model, create_roles=create_roles, say=lambda text: echo(text, err=True)
        )
    return model, report
