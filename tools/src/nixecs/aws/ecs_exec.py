"""`nixecs exec CLUSTER/SERVICE [--container C] -- CMD`: ECS Exec in a running task.

The same steps as the AWS CLI's `aws ecs execute-command` (aws/aws-cli
awscli/customizations/ecs/executecommand.py): check that session-manager-plugin is there
before opening a session, call ExecuteCommand (interactive, the only mode ECS offers), find
the container's runtime id with DescribeTasks, and hand the session to the plugin with the
target `ecs:<cluster>_<task id>_<runtime id>`. ECS Exec must be enabled on the service
(`enable_execute_command: true`, on a group with `exec: true`; docs/aws.md).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from ..diagnostics import OperationalFailure
from .session import Session, aws_errors

PLUGIN = "session-manager-plugin"
PLUGIN_DOCS = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
    "session-manager-working-with-install-plugin.html"
)


def find_plugin(which: Callable[[str], str | None] = shutil.which) -> str:
    plugin = which(PLUGIN)
    if plugin is None:
        raise OperationalFailure(
            f"{PLUGIN} is not installed (or not on PATH): ECS Exec streams the session through "
            f"it; install it ({PLUGIN_DOCS}), or reach the host with Session Manager and use "
            "docker exec"
        )
    return plugin


def running_task(ecs: Any, cluster: str, service: str) -> str:
    """The ARN of one running task of the service (the first ECS lists)."""
    tasks = ecs.list_tasks(
        cluster=cluster, serviceName=service, desiredStatus="RUNNING", maxResults=1
    )["taskArns"]
    if not tasks:
        raise OperationalFailure(f"service {cluster}/{service} has no running task")
    return str(tasks[0])


def session_target(ecs: Any, cluster: str, task_arn: str, container: str) -> str:
    task_id = task_arn.rsplit("/", 1)[-1]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])["tasks"]
    for found in tasks[0]["containers"] if tasks else []:
        if found.get("name") == container and found.get("runtimeId"):
            return f"ecs:{cluster}_{task_id}_{found['runtimeId']}"
    raise OperationalFailure(f"task {task_id} has no running container {container!r}")


def execute(
    session: Session,
    cluster: str,
    service: str,
    command: Sequence[str],
    container: str | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    call: Callable[[list[str]], int] = subprocess.call,
) -> int:
    """Run `command` in a running task of the service; the plugin's exit status."""
    plugin = find_plugin(which)  # first, as the AWS CLI does: no session opened in vain
    ecs = session.client("ecs")
    with aws_errors(session, f"exec {cluster}/{service}"):
        task = running_task(ecs, cluster, service)
        request: dict[str, Any] = {
            "cluster": cluster,
            "task": task,
            "command": shlex.join(command),
            "interactive": True,
        }
        if container is not None:
            request["container"] = container
        response = ecs.execute_command(**request)
        # The session token authenticates the stream: kept out of any error message.
        session.secret(str(response["session"].get("tokenValue", "")))
        target = session_target(ecs, cluster, task, response["containerName"])
    return call(
        [
            plugin,
            json.dumps(response["session"]),
            ecs.meta.region_name,
            "StartSession",
            session.profile or "",
            json.dumps({"Target": target}),
            ecs.meta.endpoint_url,
        ]
    )
