"""`nixecs drain`: drain this ECS container instance when its Auto Scaling group terminates it.

Runs as `nixecs-drain.service` on groups with `drain:` (a termination lifecycle hook named
`naming.DRAIN_HOOK_NAME` holds the instance in Terminating:Wait):

1. poll IMDS `autoscaling/target-lifecycle-state` until it says `Terminated`;
2. find this instance's container instance: ECS `ListContainerInstances` with the filter
   `ec2InstanceId == <id>` on the cluster, confirmed by `DescribeContainerInstances` (the
   filter is advisory for us: moto ignores it, and confirming costs nothing). We ask the ECS
   API rather than the agent's introspection endpoint because the API is authoritative and
   still answers when the agent is wedged or already stopping during shutdown; the agent is
   asked only for the cluster name, and only when no settings userdata names it;
3. `UpdateContainerInstancesState` DRAINING, then wait until `runningTasksCount` is 0 or
   the timeout passes (progress lines on stderr);
4. `CompleteLifecycleAction` with CONTINUE on the group from `DescribeAutoScalingInstances`;
   after a timeout also on ECS's own managed-draining hook, so that the drain timeout is the
   bound of the whole termination (docs/host.md "Why nixecs-drain beside managed draining").

If the instance was never registered with ECS there is nothing to drain: the lifecycle
action is completed at once so that termination is not held up for the hook's timeout.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..naming import DRAIN_HOOK_NAME, ECS_MANAGED_DRAIN_HOOK_NAME

if TYPE_CHECKING:
    from collections.abc import Callable

    from .deadline import Deadline
    from .imds import ImdsClient

AGENT_METADATA_URL = "http://127.0.0.1:51678/v1/metadata"
AGENT_METADATA_MAX = 64 * 1024
TERMINATED = "Terminated"
# Auto Scaling's refusal when no lifecycle action waits for the instance (see _complete).
NO_ACTIVE_ACTION = "No active Lifecycle Action found"


class DrainFailed(Exception):
    """Draining could not be done (exit 1)."""


def cluster_from_settings(path: str) -> tuple[str | None, str | None]:
    """(cluster, drain timeout) from /run/nixecs/settings.json; (None, None) when absent."""
    from ..settings import SettingsError, loads_json

    try:
        with open(path, encoding="utf-8") as handle:
            settings = loads_json(handle.read())
    except FileNotFoundError:
        return None, None
    except (OSError, SettingsError) as error:
        raise DrainFailed(f"cannot use {path}: {error}") from None
    return settings.cluster, settings.drain.timeout if settings.drain is not None else None


def cluster_from_agent(url: str = AGENT_METADATA_URL, timeout: float = 2.0) -> str:
    """The cluster the local ECS agent registered with (its introspection API)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            # The agent's metadata is a few hundred bytes: read a bounded amount.
            document = json.loads(response.read(AGENT_METADATA_MAX))
    except (OSError, ValueError, RecursionError) as error:
        raise DrainFailed(
            f"no cluster in settings and the ECS agent at {url} did not say: {error}"
        ) from None
    cluster = document.get("Cluster") if isinstance(document, dict) else None
    if not isinstance(cluster, str) or not cluster:
        raise DrainFailed(f"the ECS agent at {url} reports no cluster")
    return cluster


class Drainer:
    """One drain, from waiting for termination to completing the lifecycle action.

    `lifecycle` is the Auto Scaling client for CompleteLifecycleAction; it defaults to
    `autoscaling`. (Tests pass a Stubber-backed client there: moto lacks the call.)
    """

    def __init__(
        self,
        imds: ImdsClient,
        ecs: Any,
        autoscaling: Any,
        *,
        cluster: str,
        timeout: float,
        poll: float,
        log: Callable[[str], None],
        lifecycle: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline: Deadline | None = None,
    ) -> None:
        # The command's total deadline (drain timeout + 120 s): started when termination is
        # seen, since watching for it lasts as long as the instance does.
        self.deadline = deadline
        self.imds = imds
        self.ecs = ecs
        self.autoscaling = autoscaling
        self.lifecycle = lifecycle if lifecycle is not None else autoscaling
        self.cluster = cluster
        self.timeout = timeout
        self.poll = poll
        self.log = log
        self.sleep = sleep
        self.clock = clock

    def wait_for_termination(self) -> None:
        from .imds import ImdsError

        last: str | None = "?"
        while True:
            try:
                state = self.imds.target_lifecycle_state()
            except ImdsError as error:  # keep watching: the next poll may well succeed
                self.log(f"cannot read the lifecycle state: {error}")
                state = last
            if state != last:
                self.log(
                    f"target lifecycle state: {state or 'none (not in an Auto Scaling group)'}"
                )
                last = state
            if state == TERMINATED:
                return
            self.sleep(self.poll)

    def find_container_instance(self, instance_id: str) -> dict[str, Any] | None:
        arns: list[str] = []
        paginator = self.ecs.get_paginator("list_container_instances")
        for page in paginator.paginate(
            cluster=self.cluster, filter=f"ec2InstanceId == {instance_id}"
        ):
            arns.extend(page.get("containerInstanceArns", []))
        for start in range(0, len(arns), 100):
            described = self.ecs.describe_container_instances(
                cluster=self.cluster, containerInstances=arns[start : start + 100]
            )
            for instance in described.get("containerInstances", []):
                if instance.get("ec2InstanceId") == instance_id:
                    return dict(instance)
        return None

    def auto_scaling_group(self, instance_id: str) -> str:
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
        groups = [i["AutoScalingGroupName"] for i in found.get("AutoScalingInstances", [])]
        if not groups:
            raise DrainFailed(
                f"instance {instance_id} is in no Auto Scaling group: no lifecycle action to complete"
            )
        return str(groups[0])

    def drain(self, instance_id: str) -> str:
        group = self.auto_scaling_group(instance_id)
        instance = self.find_container_instance(instance_id)
        outcome = "not registered with ECS: nothing to drain"
        if instance is None:
            self.log(
                f"{instance_id} is not a container instance of cluster {self.cluster}: nothing to drain"
            )
        else:
            arn = instance["containerInstanceArn"]
            result = self.ecs.update_container_instances_state(
                cluster=self.cluster, containerInstances=[arn], status="DRAINING"
            )
            if result.get("failures"):
                reason = result["failures"][0].get("reason", "unknown reason")
                raise DrainFailed(f"ECS refused to drain {arn}: {reason}")
            self.log(f"set {arn} to DRAINING (timeout {self.timeout:g}s)")
            outcome = self._wait_for_tasks(arn)
        self._complete(group, instance_id, DRAIN_HOOK_NAME)
        if outcome.startswith("timed out"):
            # ECS's managed-draining hook holds the instance too, and waits for the tasks
            # that did not leave (standalone tasks are never moved) until its own heartbeat
            # runs out: the drain timeout would bound nothing. Completing it as well makes
            # the timeout the bound; the tasks left stop with the instance.
            self._complete(group, instance_id, ECS_MANAGED_DRAIN_HOOK_NAME)
        return outcome

    def _complete(self, group: str, instance_id: str, hook: str) -> None:
        """CompleteLifecycleAction CONTINUE; an action that is no longer active is done.

        botocore retries a call whose answer was lost (a 5xx or a dropped connection after
        Auto Scaling acted); the retry is then refused with ValidationError "No active
        Lifecycle Action found with instance ID i-…" because the first attempt completed it.
        ValidationError is one of the API's common errors (HTTP 400,
        https://docs.aws.amazon.com/autoscaling/ec2/APIReference/CommonErrors.html; the
        action's own page, .../API_CompleteLifecycleAction.html, lists only
        ResourceContentionFault); the message text is AWS's as reported in
        github.com/convox/rack issue 2432 and spacelift-io/terraform-aws-spacelift-workerpool-on-ec2
        PR 197. Either way no action waits any more, so there is nothing left to do: success,
        never a loop (nixecs-drain.service restarting into the same refusal).
        """
        from botocore.exceptions import ClientError

        try:
            self.lifecycle.complete_lifecycle_action(
                LifecycleHookName=hook,
                AutoScalingGroupName=group,
                LifecycleActionResult="CONTINUE",
                InstanceId=instance_id,
            )
        except ClientError as error:
            details = error.response.get("Error", {})
            message = str(details.get("Message", ""))
            if details.get("Code") != "ValidationError" or not message.startswith(NO_ACTIVE_ACTION):
                raise
            retried = int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            why = (
                "an earlier attempt whose answer was lost completed it"
                if retried
                else "it was completed before, timed out, or the hook does not exist"
            )
            self.log(
                f"lifecycle action {hook} of {group} for {instance_id} is no longer "
                f"active ({why}): nothing left to complete"
            )
            return
        self.log(f"completed lifecycle action {hook} of {group} for {instance_id} with CONTINUE")

    def _wait_for_tasks(self, arn: str) -> str:
        deadline = self.clock() + self.timeout
        while True:
            described = self.ecs.describe_container_instances(
                cluster=self.cluster, containerInstances=[arn]
            )
            instances = described.get("containerInstances", [])
            running = int(instances[0].get("runningTasksCount", 0)) if instances else 0
            if running == 0:
                self.log("no tasks left running: drained")
                return "drained"
            left = deadline - self.clock()
            if left <= 0:
                self.log(
                    f"timed out with {running} task(s) still running: completing the lifecycle action anyway"
                )
                return f"timed out with {running} task(s) running"
            self.log(f"waiting for {running} task(s) to stop ({left:.0f}s left)")
            self.sleep(min(self.poll, max(left, 0.0)))

    def run(self) -> str:
        instance_id = self.imds.instance_id()
        self.log(f"watching {instance_id} (cluster {self.cluster}) for termination")
        self.wait_for_termination()
        if self.deadline is not None:
            self.deadline.start()
        return self.drain(instance_id)
