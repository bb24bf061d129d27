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
import signal
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from ..diagnostics import OperationalFailure
from ..signals import terminating
from .ownership import ecs_tags_for_cluster
from .session import Session, aws_errors

PLUGIN = "session-manager-plugin"
PLUGIN_GRACE_S = 5.0  # after SIGTERM, before the plugin is killed
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


def check_owner(ecs: Any, cluster: str, service: str) -> None:
    """Only into a service nixecs deployed for this cluster: its `nixecs:cluster` tag (every
    fleet service carries it, cloudformation/context.py) names the cluster. A service made by
    hand in the cluster, or another fleet's of the same name elsewhere, is refused before any
    session is opened (docs/security.md, ownership)."""
    found = ecs.describe_services(cluster=cluster, services=[service], include=["TAGS"])
    services = [s for s in found.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        raise OperationalFailure(f"no service {cluster}/{service}")
    ecs_tags_for_cluster(
        services[0].get("tags", []),
        cluster,
        f"service {cluster}/{service}",
        "no session opened into it",
    )


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


def hand_over(argv: list[str]) -> int:
    """Run the plugin for the interactive session; its exit status.

    The AWS calls are done: the command's deadline (aws/watchdog.py, meant for AWS calls that
    stall) no longer applies — a shell may stay open for hours. Ctrl-C, Ctrl-\\ and Ctrl-Z
    belong to the remote shell, so they are ignored here while the plugin runs, as the AWS
    CLI does (aws/aws-cli awscli/customizations/ecs/executecommand.py: check_call under
    awscli.compat.ignore_user_entered_signals, which ignores SIGINT, SIGQUIT and SIGTSTP).
    SIGTERM or SIGHUP end the plugin too, and the command with 128 + the signal."""
    from . import watchdog

    watchdog.disarm()
    ignored = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP)
    ending = {signal.SIGTERM, signal.SIGHUP}
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in ignored}
    plugin: subprocess.Popen[bytes] | None = None
    try:
        with terminating():
            # A SIGTERM while the plugin is being started would leave it running unseen:
            # held back until `plugin` is known (the plugin itself starts with them open).
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, ending)
            try:
                plugin = subprocess.Popen(
                    argv, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                )
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return plugin.wait()
    except BaseException:
        if plugin is not None and plugin.poll() is None:
            plugin.terminate()
            try:
                plugin.wait(PLUGIN_GRACE_S)
            except subprocess.TimeoutExpired:
                plugin.kill()
                plugin.wait()
        raise
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def execute(
    session: Session,
    cluster: str,
    service: str,
    command: Sequence[str],
    container: str | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    call: Callable[[list[str]], int] = hand_over,
) -> int:
    """Run `command` in a running task of the service; the plugin's exit status."""
    plugin = find_plugin(which)  # first, as the AWS CLI does: no session opened in vain
    ecs = session.client("ecs")
    with aws_errors(session, f"exec {cluster}/{service}"):
        check_owner(ecs, cluster, service)
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
