"""Fleet lints: settings that are valid but weaken the hosts (warnings, never errors).

W101: a group's `metadata.hop_limit` above 1 lets IMDSv2 responses travel one hop further,
into containers on Docker bridge networks, and with them the instance role's credentials.
EC2 decrements the response's TTL per hop and 1 keeps it on the instance; AWS raises it to 2
on AL2023 precisely "to allow containerized workloads"
(https://docs.aws.amazon.com/linux/al2023/ug/imdsv2.html,
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html).
ECS tasks get their own role from the agent (169.254.170.2) instead; the host module also drops
containers' IMDS traffic (`nixecs.ecs.allowContainerInstanceMetadata`, modules/ecs-host.nix).
"""

from __future__ import annotations

from ..diagnostics import Diagnostic
from .firelens import lint_firelens
from .image_lints import lint_images
from .model import Fleet
from .task_role import lint_task_role
from .volumes import lint_volumes


def lint_fleet(fleet: Fleet) -> list[Diagnostic]:
    return (
        _task_roles(fleet)
        + lint_volumes(fleet)
        + lint_images(fleet)
        + lint_firelens(fleet)
        + [
            Diagnostic(
                "W101",
                f"hop_limit {group.hop_limit} lets IMDSv2 responses reach containers (and the "
                "instance role's credentials with them); use 1 unless a container must read "
                "instance metadata (ECS tasks get their own role from 169.254.170.2), and then "
                "also set nixecs.ecs.allowContainerInstanceMetadata on the host",
                fleet.document.locate((*group.path, "metadata", "hop_limit")),
            )
            for cluster in fleet.clusters.values()
            for group in cluster.groups.values()
            if group.hop_limit > 1
        ]
    )


def _task_roles(fleet: Fleet) -> list[Diagnostic]:
    """W140: a task role's `resources: '*'` on an action that can be scoped (fleet/task_role.py)."""
    return [
        found
        for cluster in fleet.clusters.values()
        for service in cluster.services.values()
        if service.task_role is not None
        for found in lint_task_role(service.task_role, fleet.document)
    ]
