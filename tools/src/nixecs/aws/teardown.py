"""What `destroy` finishes that scaling to zero alone leaves hanging (issue 17 item 5).

- Standalone tasks (RunTask/StartTask, no service): deleting services never stops them, and
  ECS's managed draining waits for them rather than moving them, so they are stopped
  (StopTask; `group` of a service's task is `service:<name>`, ECS API Task.group).
- Standby instances: a group's desired capacity does not count them and a scale-in never
  picks them ("Temporarily remove instances from your Auto Scaling group", EC2 Auto Scaling
  user guide), so they would stay for ever: ExitStandby (at most 20 ids a call, EC2 Auto
  Scaling API ExitStandby) puts them back InService, where the scale to zero that follows
  terminates them.
- Pending lifecycle actions: an instance in Terminating:Wait is held by each termination
  hook (nixecs-drain, and ECS's ecs-managed-draining-termination-hook, 3600 s heartbeat, which
  waits for ECS to finish draining): with the services deleted and the tasks stopped there is
  nothing left to drain, so every termination hook's action is completed with CONTINUE (and a
  launching hook's of a Pending:Wait instance with ABANDON, which terminates it). An action
  that is no longer active (ValidationError "No active Lifecycle Action found") is done.
- When the time runs out, `blockers` names exactly what is still there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Say = Callable[[str], None]
STANDBY_BATCH = 20  # ExitStandby takes at most 20 instance ids
DESCRIBE_TASKS_BATCH = 100  # DescribeTasks takes at most 100 tasks
NO_ACTIVE_ACTION = "No active Lifecycle Action found"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


def running_tasks(ecs: Any, cluster: str) -> list[dict[str, Any]]:
    """The cluster's tasks whose desired status is RUNNING, described."""
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING"):
        arns += page.get("taskArns", [])
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), DESCRIBE_TASKS_BATCH):
        described = ecs.describe_tasks(
            cluster=cluster, tasks=arns[start : start + DESCRIBE_TASKS_BATCH]
        )
        tasks += described.get("tasks", [])
    return tasks


def stop_standalone_tasks(ecs: Any, cluster: str, say: Say) -> int:
    """StopTask for every running task that belongs to no service; how many."""
    stopped = 0
    for task in running_tasks(ecs, cluster):
        if str(task.get("group", "")).startswith("service:"):
            continue
        ecs.stop_task(cluster=cluster, task=task["taskArn"], reason="nixecs destroy")
        stopped += 1
    if stopped:
        say(f"  cluster {cluster}: {stopped} standalone task(s) stopped")
    return stopped


def exit_standby(autoscaling: Any, group: dict[str, Any], say: Say) -> int:
    """Standby instances of `group` back InService (so that scaling to zero removes them)."""
    name = group["AutoScalingGroupName"]
    standby = [
        i["InstanceId"] for i in group.get("Instances", []) if i.get("LifecycleState") == "Standby"
    ]
    for start in range(0, len(standby), STANDBY_BATCH):
        autoscaling.exit_standby(
            AutoScalingGroupName=name, InstanceIds=standby[start : start + STANDBY_BATCH]
        )
    if standby:
        say(f"  group {name}: {len(standby)} standby instance(s) back in service")
    return len(standby)


def complete_pending_actions(autoscaling: Any, group: dict[str, Any], say: Say) -> int:
    """Complete the lifecycle actions holding `group`'s instances in a Wait state; how many
    were completed (actions no longer active count as done, not as completed)."""
    from botocore.exceptions import ClientError

    waiting = {
        state: [
            i["InstanceId"] for i in group.get("Instances", []) if i.get("LifecycleState") == state
        ]
        for state in ("Terminating:Wait", "Pending:Wait")
    }
    if not any(waiting.values()):
        return 0
    name = group["AutoScalingGroupName"]
    hooks = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=name).get(
        "LifecycleHooks", []
    )
    plan = [
        (hook["LifecycleHookName"], instance, result)
        for state, transition, result in (
            ("Terminating:Wait", TERMINATING, "CONTINUE"),
            ("Pending:Wait", LAUNCHING, "ABANDON"),
        )
        for hook in hooks
        if hook.get("LifecycleTransition") == transition
        for instance in waiting[state]
    ]
    completed = 0
    for hook_name, instance, result in plan:
        try:
            autoscaling.complete_lifecycle_action(
                LifecycleHookName=hook_name,
                AutoScalingGroupName=name,
                LifecycleActionResult=result,
                InstanceId=instance,
            )
        except ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") != "ValidationError" or not str(
                details.get("Message", "")
            ).startswith(NO_ACTIVE_ACTION):
                raise
            continue
        completed += 1
        say(f"  group {name}: {instance} released from {hook_name} ({result})")
    return completed


def blockers(groups: Iterable[dict[str, Any]]) -> str:
    """The instances still in `groups`, each with its lifecycle state and protection."""
    parts = []
    for group in groups:
        for instance in group.get("Instances", []):
            protected = ", protected from scale-in" if instance.get("ProtectedFromScaleIn") else ""
            parts.append(
                f"{instance['InstanceId']} ({group['AutoScalingGroupName']}: "
                f"{instance.get('LifecycleState', '?')}{protected})"
            )
    return "; ".join(parts)


def task_blockers(tasks: Iterable[dict[str, Any]], limit: int = 5) -> str:
    """The first `limit` tasks still running: ARN, service or starter, last status."""
    tasks = list(tasks)
    shown = [
        f"{t.get('taskArn', '?')} ({t.get('group') or t.get('startedBy') or 'standalone'}, "
        f"{t.get('lastStatus', '?')})"
        for t in tasks[:limit]
    ]
    more = f" and {len(tasks) - limit} more" if len(tasks) > limit else ""
    return "; ".join(shown) + more
