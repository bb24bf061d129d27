"""`nixecs run CLUSTER/TASK`: start one task of a cluster's `tasks:` (fleet/cluster_tasks.py)
with RunTask on its group's capacity provider, optionally wait for it to stop, and report
each container's exit code and where its logs are (issue 20, item 4).

The group comes from the task definition's `nixecs:group` tag (cloudformation/cluster_tasks.py
puts it there), so no fleet file is needed. Every wait is bounded (`--timeout`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import naming
from ..diagnostics import OperationalFailure, Terminated
from ..fleet.firelens import CLOUDWATCH
from ..signals import terminating
from .ownership import ecs_tags_for_cluster
from .progress import sleep
from .session import Session

Say = Callable[[str], None]


def _group(tags: list[dict[str, str]], cluster: str, family: str) -> str:
    """The task's group, from a task definition nixecs registered for this cluster: its
    `nixecs:cluster` tag names the cluster (a family registered by hand under the name, or
    tagged for another cluster, is refused: exit 2) and its `nixecs:group` tag the group."""
    found = ecs_tags_for_cluster(tags, cluster, f"task definition {family}", "not starting it")
    group = found.get(naming.TAG_GROUP)
    if not group:
        raise OperationalFailure(
            f"task definition {family} has no {naming.TAG_GROUP} tag: is it one of a "
            "cluster's `tasks:`, deployed by this version of nixecs?"
        )
    return group


def _wait(ecs: Any, cluster: str, task: str, arn: str, timeout: float, poll: float) -> Any:
    """The task once STOPPED (DescribeTasks every `poll` seconds), at most `timeout`."""
    end = time.monotonic() + timeout
    while True:
        (state,) = ecs.describe_tasks(cluster=naming.ecs_cluster_name(cluster), tasks=[arn])[
            "tasks"
        ]
        if state.get("lastStatus") == "STOPPED":
            return state
        if time.monotonic() > end:
            raise OperationalFailure(
                f"{cluster}/{task}: still {state.get('lastStatus')} after {timeout:.0f}s ({arn})"
            )
        sleep(poll)


def _logs(definition: dict[str, Any], task_id: str) -> str:
    """Where a container's logs are, read from its registered logConfiguration (the container
    definition as ECS holds it, so what the stack or an override made it):

    - awslogs: stream PREFIX/CONTAINER/TASK-ID in `awslogs-group` (ECS developer guide,
      using_awslogs: "prefix-name/container-name/ecs-task-id");
    - awsfirelens to CloudWatch Logs: the agent tags the container's records
      CONTAINER-firelens-TASK-ID (aws/amazon-ecs-agent@8dfceca6
      agent/engine/docker_task_engine.go fluentTagDockerFormat "%s-firelens-%s"), and both
      CloudWatch plugins name the stream `log_stream_prefix` + tag unless `log_stream_name`
      is given (fluent-bit docs pipeline/outputs/cloudwatch; amazon-cloudwatch-logs-for-fluent-bit
      README), in `log_group_name`;
    - anything else: the output, which nixecs cannot find a stream in."""
    name = definition["name"]
    config = definition.get("logConfiguration") or {}
    options = config.get("options") or {}
    driver = config.get("logDriver")
    if driver == "awslogs" and options.get("awslogs-group"):
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{name}/{task_id}" if prefix else "(a stream named by its container id)"
        return f"{options['awslogs-group']} {stream}"
    if driver == "awsfirelens" and options.get("Name") in CLOUDWATCH:
        group = options.get("log_group_name", "?")
        stream = options.get("log_stream_name") or (
            f"{options.get('log_stream_prefix', '')}{name}-firelens-{task_id}"
        )
        return f"{group} {stream}"
    if driver == "awsfirelens":
        return f"through FireLens to {options.get('Name', 'its router')}"
    return f"with the {driver} log driver" if driver else "none (no log configuration)"


def run(
    session: Session,
    cluster: str,
    task: str,
    command: list[str] | None,
    wait: bool,
    say: Say,
    timeout: float = 3600.0,
    poll: float = 5.0,
) -> int:
    ecs = session.client("ecs")
    family = naming.task_family(cluster, task)
    described = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    definition = described["taskDefinition"]
    group = _group(described.get("tags", []), cluster, family)
    containers = definition.get("containerDefinitions", [])
    essential = next(
        (c["name"] for c in containers if c.get("essential", True)), containers[0]["name"]
    )
    arguments: dict[str, Any] = {
        "cluster": naming.ecs_cluster_name(cluster),
        "taskDefinition": definition["taskDefinitionArn"],
        "count": 1,
        "capacityProviderStrategy": [
            {"capacityProvider": naming.group_resource_name(cluster, group), "weight": 1, "base": 0}
        ],
        "enableECSManagedTags": True,
        "propagateTags": "TASK_DEFINITION",
        "startedBy": "nixecs-run",
    }
    if command:
        arguments["overrides"] = {"containerOverrides": [{"name": essential, "command": command}]}
    # RunTask's clientToken is an idempotency token botocore fills in once per call, so its
    # retries after a lost answer carry the same one and ECS starts one task, not two
    # (botocore's ECS model: RunTaskRequest.clientToken "idempotencyToken": true; ECS API
    # Reference, ECS_Idempotency).
    started = ecs.run_task(**arguments)
    if started.get("failures") or not started.get("tasks"):
        reasons = ", ".join(
            f"{f.get('arn', '?')}: {f.get('reason', '?')}" for f in started.get("failures", [])
        )
        raise OperationalFailure(
            f"{cluster}/{task}: RunTask started nothing ({reasons or 'no reason given'})"
        )
    arn = started["tasks"][0]["taskArn"]
    say(f"{cluster}/{task}: started {arn} on {naming.group_resource_name(cluster, group)}")
    if not wait:
        return 0
    try:
        with terminating():
            state = _wait(ecs, cluster, task, arn, timeout, poll)
    except (KeyboardInterrupt, Terminated):
        # The task is ECS's now: stopping waiting does not stop it.
        say(f"{cluster}/{task}: not waiting any more; {arn} keeps running")
        raise
    task_id = arn.rsplit("/", 1)[-1]
    definitions = {c["name"]: c for c in containers}
    code = 1
    for container in state.get("containers", []):
        exit_code = container.get("exitCode")
        shown = (
            exit_code if exit_code is not None else f"none ({container.get('reason', 'no reason')})"
        )
        logs = _logs(definitions.get(container["name"], {"name": container["name"]}), task_id)
        say(f"  {container['name']}: exit code {shown}; logs: {logs}")
        if container["name"] == essential:
            code = exit_code if isinstance(exit_code, int) else 1
    if state.get("stoppedReason"):
        say(f"  stopped: {state['stoppedReason']}")
    return code
