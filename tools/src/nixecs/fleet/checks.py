"""The checks stage: every rule that relates several keys of a loaded fleet (issue 18, item 2).

The loader checks each value on its own (type, bounds, allowed values) and builds the model;
this stage then runs the cross-field rules over the model, in the order of `RULES`. Each rule
is a named function with the diagnostic codes it may report; the subject modules it calls
hold the arithmetic (scaling/rules.py the step intervals, aws_rules.py the instance tables,
loadbalancing.py the listeners, cloudformation/clashes.py the AWS names). The commands call
`check_fleet_file` (or `check`) and nothing else.

Rules marked `structural` (listed first) describe a fleet the later rules cannot reason about
(routing to a cluster without a load balancer, a task without an essential container): all of
them run, and when they find an error the stage stops there, as the loader does on a
per-value error.

Heavy modules are imported inside the rules: `validate` pays only for what it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..diagnostics import Diagnostic, InvalidInput, Report
from ..records import dataclass

if TYPE_CHECKING:
    from ..settings import Issue
    from .model import Fleet


@dataclass(frozen=True)
class Rule:
    name: str
    codes: str  # the codes it may report, as in diagnostics.FIXES
    run: Callable[[Fleet], list[Diagnostic]]
    structural: bool = False


def _located(fleet: Fleet, issues: list[Issue]) -> list[Diagnostic]:
    return [Diagnostic(i.code, i.message, fleet.document.locate(i.path)) for i in issues]


def group_name_lengths(fleet: Fleet) -> list[Diagnostic]:
    """E105: prefix, cluster and group joined name the launch template, at most 128
    characters (LaunchTemplateName, botocore's ec2 model)."""
    from ..naming import group_resource_name

    found = []
    for cluster in fleet.clusters.values():
        for group in cluster.groups.values():
            full = group_resource_name(cluster.name, group.name)
            if len(full) > 128:
                found.append(
                    Diagnostic(
                        "E105",
                        f"the group's AWS name {full!r} is {len(full)} characters, over the "
                        "128 a launch template name may have: shorten the group, cluster or prefix",
                        fleet.document.locate(group.path, key=True),
                    )
                )
    return found


def task_fit(fleet: Fleet) -> list[Diagnostic]:
    """The rules between a task's containers and with its task-level cpu/memory: an essential
    container (E140), memory set somewhere (E141), reservations within the task (E142),
    host ports once per task (E144), dependencies (E145), one FireLens router (E148)
    (containers.check_task)."""
    from .containers import check_task

    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        for service in cluster.task_definitions:
            check_task(
                service.containers, service.path, issues, service.task_cpu, service.task_memory
            )
    return _located(fleet, issues)


def task_names(fleet: Fleet) -> list[Diagnostic]:
    """E182: a cluster task named as one of the cluster's services: the two would share the
    task definition family (naming.task_family) and the log group."""
    return [
        Diagnostic(
            "E182",
            f"{name!r} is also a service of this cluster: tasks and services share names (task family, log group)",
            fleet.document.locate(scheduled.task.path),
        )
        for cluster in fleet.clusters.values()
        for name, scheduled in cluster.tasks.items()
        if name in cluster.services
    ]


def task_volumes(fleet: Fleet) -> list[Diagnostic]:
    """E170: a mount naming no volume of the service, volumes_from naming no other container
    of the task (volumes.check_references), for services and a cluster's tasks."""
    from .volumes import check_references

    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        for service in cluster.task_definitions:
            check_references(service, issues)
    return _located(fleet, issues)


def mount_paths(fleet: Fleet) -> list[Diagnostic]:
    """E171: two mounts (volume or tmpfs) on one path of a container, volumes_from naming a
    container twice (volumes.check_mount_paths), for services and a cluster's tasks."""
    from .volumes import check_mount_paths

    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        tasks = [scheduled.task for scheduled in cluster.tasks.values()]
        for service in [*cluster.services.values(), *tasks]:
            check_mount_paths(service, issues)
    return _located(fleet, issues)


def shared_volume_autoprovision(fleet: Fleet) -> list[Diagnostic]:
    """E174: autoprovision on a Docker volume of task scope (volumes.check_autoprovision)."""
    from .volumes import check_autoprovision

    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        tasks = [scheduled.task for scheduled in cluster.tasks.values()]
        for service in [*cluster.services.values(), *tasks]:
            check_autoprovision(service, issues)
    return _located(fleet, issues)


def daemon_services(fleet: Fleet) -> list[Diagnostic]:
    """E178: a daemon service with desired, scaling, a placement strategy or maximum_percent
    other than 100 (daemon.check_daemon)."""
    from .daemon import check_daemon

    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        for service in cluster.services.values():
            check_daemon(service, issues)
    return _located(fleet, issues)


def privileged_groups(fleet: Fleet) -> list[Diagnostic]:
    """E180: a privileged container on a group (of the service's strategy) whose agent
    refuses privileged containers (linux.check_privileged)."""
    from .linux import check_privileged

    issues: list[Issue] = []
    check_privileged(fleet.clusters, issues)
    return _located(fleet, issues)


def load_balancer_routing(fleet: Fleet) -> list[Diagnostic]:
    """E150 routing without a load balancer, E156 tracking requests without an ALB's routing,
    E159 an ALB in fewer than two subnets, E184 a routing entry or alarm of the other load
    balancer type, E104/E153 an ALB entry without priority or conditions
    (loadbalancing.check_cluster)."""
    from . import loadbalancing

    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        loadbalancing.check_cluster(cluster, issues)
    return _located(fleet, issues)


def listener_priorities(fleet: Fleet) -> list[Diagnostic]:
    """E151: listener rule priorities unique per listener, across clusters sharing one; E185
    NLB listener ports unique per load balancer; E168 one owner per ingress rule."""
    from . import loadbalancing

    issues: list[Issue] = []
    loadbalancing.check_fleet(fleet.clusters, issues)
    return _located(fleet, issues)


def capacity_strategies(fleet: Fleet) -> list[Diagnostic]:
    """E191 a memberOf constraint no instance of a group of the service's strategy satisfies,
    E192 a service with secrets across groups of different KMS keys (strategy.check_cluster)."""
    from . import strategy

    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        strategy.check_cluster(cluster, issues)
    return _located(fleet, issues)


def scaling_policies(fleet: Fleet) -> list[Diagnostic]:
    """AWS's step scaling rules and the scaling lints, per service (scaling/rules.py); a
    scheduled min above its max (E194), two target tracking policies on one metric (E195), a
    strategy base above the service's maximum (W205) (scaling/capacity.py)."""
    from ..scaling.rules import check_service

    locate = fleet.document.locate
    return [
        found
        for cluster in fleet.clusters.values()
        for service in cluster.services.values()
        for found in check_service(service, locate)
    ]


def lints(fleet: Fleet) -> list[Diagnostic]:
    """W101 an IMDS hop limit containers can reach, W102 a fractional target, W140/E147 task
    role scoping, W170 nothing writable, W171 an untagged image, W172 a FireLens output the
    task role does not allow, W173/W174 shared Docker volumes, W193 an on-demand allocation
    nothing uses (lints.py)."""
    from .lints import lint_fleet

    return lint_fleet(fleet)


def aws_limits(fleet: Fleet) -> list[Diagnostic]:
    """The offline AWS checks: region, instance types, a task fitting its group's instances,
    images, drain, capacity (aws_rules.py)."""
    from . import aws_rules

    return aws_rules.check_fleet(fleet)


def aws_name_clashes(fleet: Fleet) -> list[Diagnostic]:
    """E114: an AWS name two subjects would share (names are joined with `-`, which they may
    contain)."""
    from ..cloudformation.clashes import name_clashes

    return [
        Diagnostic("E114", clash.message, fleet.document.locate(path, key=True))
        for clash in name_clashes(fleet)
        for path in clash.paths[1:]
    ]


def nixos_syntax(fleet: Fleet) -> list[Diagnostic]:
    """E113: syntax errors in groups' `nixos:` text, found by real Nix when it is installed
    (parse results cached by content: nixparse.parse_texts_cached)."""
    from ..nixparse import nix_instantiate, parse_texts_cached

    groups = {
        f"{cluster.name}/{group.name}": group
        for cluster in fleet.clusters.values()
        for group in cluster.groups.values()
        if group.nixos
    }
    if not groups or nix_instantiate() is None:
        return []
    texts = {key: group.nixos or "" for key, group in groups.items()}
    return [
        Diagnostic(
            "E113",
            f"nixos module text does not parse: {error.message} (line {error.line}, column {error.column} of the text)",
            fleet.document.locate_in_block((*groups[key].path, "nixos"), error.line, error.column),
        )
        for key, error in parse_texts_cached(texts).items()
    ]


def notification_topics(fleet: Fleet) -> list[Diagnostic]:
    """E196: two clusters sending their notifications to one SNS topic, whose policy each
    cluster's stack replaces (notifications.shared_topics)."""
    from .notifications import shared_topics

    return _located(fleet, shared_topics(fleet))


RULES: tuple[Rule, ...] = (
    Rule("group_name_lengths", "E105", group_name_lengths, structural=True),
    Rule("task_names", "E182", task_names, structural=True),
    Rule("task_fit", "E140-E145 E148", task_fit, structural=True),
    Rule("task_volumes", "E170", task_volumes, structural=True),
    Rule("mount_paths", "E171", mount_paths, structural=True),
    Rule("shared_volume_autoprovision", "E174", shared_volume_autoprovision, structural=True),
    Rule(
        "load_balancer_routing",
        "E104 E150 E153 E156 E159 E184",
        load_balancer_routing,
        structural=True,
    ),
    Rule("listener_priorities", "E151 E168 E185", listener_priorities),
    Rule("capacity_strategies", "E191 E192 W191", capacity_strategies),
    Rule("daemon_services", "E178", daemon_services),
    Rule("privileged_groups", "E180", privileged_groups),
    Rule("notification_topics", "E196", notification_topics),
    Rule(
        "scaling_policies",
        "E121 E122 E194 E195 E201-E206 W201-W205",
        scaling_policies,
    ),
    Rule("lints", "W101 W102 W140 E147 W170-W174 W193", lints),
    Rule("aws_limits", "E123-E129 W204", aws_limits),
    Rule("aws_name_clashes", "E114", aws_name_clashes),
    Rule("nixos_syntax", "E113", nixos_syntax),
)


# The structural rules that look at one service or task (or a cluster's names) alone: the
# loader runs them on what it built when other errors stop the load, so that they are
# reported with those errors (fleet/loader.py `parse`), as they were when the loader ran them.
PER_SERVICE = ("task_names", "mount_paths", "shared_volume_autoprovision")

# What `scaling check|simulate|replay` run: the scaling rules and the structural rules before
# them (what the loader alone refused before the checks stage existed).
SCALING_RULES = ("load_balancer_routing", "listener_priorities", "scaling_policies")


def check(fleet: Fleet, *, nix: bool = True, only: tuple[str, ...] = ()) -> Report:
    """Run the rules (`only` these, by name, when given); every finding in one report."""
    report = Report()
    for rule in RULES:  # the structural rules come first
        if (only and rule.name not in only) or (rule.name == "nixos_syntax" and not nix):
            continue
        if not rule.structural and report.has_errors:
            break  # every structural finding is reported; nothing is built on a broken fleet
        report.extend(rule.run(fleet))
    return report


def per_service(fleet: Fleet) -> list[Diagnostic]:
    """The PER_SERVICE rules' errors on the part of a fleet that loaded (the loader reports
    them beside its own errors: every error at once)."""
    return check(fleet, nix=False, only=PER_SERVICE).errors


def check_fleet_file(
    path: str, *, nix: bool = True, env: str | None = None
) -> tuple[Fleet, Report]:
    """Load FLEET (as environment `env`) and run every check; InvalidInput (exit 2) on errors,
    warnings returned."""
    from .loader import load_fleet

    fleet = load_fleet(path, env, partial=per_service)
    report = check(fleet, nix=nix)
    if report.has_errors:
        raise InvalidInput(report)
    return fleet, report


def check_text(text: str, path: str, *, nix: bool = True) -> tuple[Fleet, Report]:
    """`check_fleet_file` for fleet text in memory."""
    from .loader import parse

    fleet = parse(text, path, partial=per_service)
    report = check(fleet, nix=nix)
    if report.has_errors:
        raise InvalidInput(report)
    return fleet, report
