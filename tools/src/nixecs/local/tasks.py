"""A RunTask stand-in for the local emulator: a task on a capacity provider of a cluster with no
container instance stays PROVISIONING, as on AWS.

On AWS, RunTask creates the task "and initially moved to the `PROVISIONING` state ... because
Amazon ECS needs to find compute capacity for placing the task"; with managed scaling the
capacity provider then launches instances for it
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/standalone-tasks.html, "Task
workflow"; managed-scaling-behavior.html). moto 5.2's RunTask instead raises a bare Exception
("No instances found in cluster", moto/ecs/models.py run_task), which its server answers with
HTTP 500, so `nixecs run` against `nixecs local` ended in an internal error. Nothing boots the
ECS agent in the emulator (standins.LIMITS), so no instance ever registers: the stand-in
records the task as AWS would and leaves it PROVISIONING (moto's task state machine has no
transition out of that state), which `nixecs run` reports, and `--wait` waits for until its
timeout, as it would on AWS with a capacity provider that cannot launch.

Everything else goes to moto's own RunTask: a launch type, Fargate, or a cluster with
instances registered.
"""

from __future__ import annotations

import inspect
from typing import Any

_FARGATE = ("FARGATE", "FARGATE_SPOT")


def install() -> None:
    """Wrap moto's ECS backend RunTask (its server dispatches to the backend's method)."""
    from moto.ecs.models import EC2ContainerServiceBackend, Task

    original = EC2ContainerServiceBackend.run_task
    signature = inspect.signature(original)

    def run_task(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        cluster = self._get_cluster(a["cluster_str"])
        strategy = a["capacity_provider_strategy"]
        if not a["launch_type"] and not strategy:
            strategy = cluster.default_capacity_provider_strategy
        if (
            a["launch_type"]
            or not strategy
            or strategy[0]["capacityProvider"] in _FARGATE
            or self.container_instances.get(cluster.name)
        ):
            return original(*bound.args, **bound.kwargs)
        definition = self.describe_task_definition(a["task_definition_str"])
        tasks = []
        for _ in range(int(a["count"])):
            task = Task(
                cluster=cluster,
                task_definition=definition,
                container_instance_arn=None,
                resource_requirements=self._calculate_task_resource_requirements(definition),
                backend=self,
                group=a["group"] or f"family:{definition.family}",
                overrides=a["overrides"] or {},
                started_by=a["started_by"] or "",
                tags=a["tags"] or [],
                launch_type="",
                networking_configuration=a["networking_configuration"],
                platform_version=a["platform_version"],
                capacity_provider_name=strategy[0]["capacityProvider"],
            )
            task.last_status = "PROVISIONING"
            tasks.append(task)
            self.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        return tasks

    EC2ContainerServiceBackend.run_task = run_task  # type: ignore[method-assign]
