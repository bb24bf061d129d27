"""`nixecs destroy [CLUSTER…]`: tear a cluster's stack down without hanging.

Deleting the stack alone hangs: CloudFormation deletes the capacity provider and the Auto
Scaling group while instances are still protected from scale-in by managed termination
protection, and nobody is left to lift the protection — the stack sits in DELETE_IN_PROGRESS
(aws/aws-cdk#18179, https://github.com/aws/aws-cdk/issues/18179, and #14732 before it). So
the dependents go first, in the order that lets each step finish:

1. services: desired count 0, then deleted (DeleteService refuses a service that still has
   a desired count unless forced — https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html);
   standalone tasks stopped (nixecs.aws.teardown);
2. their tasks stopped (bounded wait), so ECS no longer re-protects instances;
3. groups: new instances unprotected, every instance's scale-in protection removed
   (SetInstanceProtection, 50 instances a call —
   https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceProtection.html), then min and desired 0 (a scale-in skips
   protected instances — https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html),
   instances gone (bounded); standby instances are put back in service first, and pending
   lifecycle actions are completed while waiting (nixecs.aws.teardown);
4. capacity providers detached from the cluster (PutClusterCapacityProviders with empty lists);
5. the stack deleted, its events streamed.

Every step looks at what is there first and does only what is left, so a rerun after any
failure resumes. A stack left in REVIEW_IN_PROGRESS (a first deploy whose change set was
declined, or `deploy --plan`) holds no resources: it is simply deleted.

Nothing is touched before the stack is found to be this fleet's (aws/ownership.py): a stack
that merely has the name, or another fleet's, is refused; the services, groups and capacity
providers acted on are only the stack's own resources (never an ECS cluster that merely has
the cluster's name).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import naming
from ..diagnostics import OperationalFailure
from . import teardown
from .deploy import _all_events, failure_reason, wait_for_stack
from .ownership import NotOurs, check_stack, describe_stack, refusal, stack_marks
from .progress import Progress, sleep
from .session import Session, aws_errors, error_code

Say = Callable[[str], None]
PROTECTION_BATCH = 50  # SetInstanceProtection takes at most 50 instance ids
DEFAULT_TIMEOUT = 1800.0


@dataclass
class DestroyResult:
    cluster: str
    stack: str
    outcome: str = ""  # destroyed | absent
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "stack": self.stack,
            "outcome": self.outcome,
            "steps": self.steps,
        }


def _stack_resources(cfn: Any, stack: str) -> dict[str, list[str]]:
    """Resource type → physical ids of the stack's live resources."""
    found: dict[str, list[str]] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for item in page.get("StackResourceSummaries", []):
            physical = item.get("PhysicalResourceId")
            if physical and item.get("ResourceStatus") != "DELETE_COMPLETE":
                found.setdefault(str(item["ResourceType"]), []).append(str(physical))
    return found


def _deadline(timeout: float) -> Callable[[], bool]:
    end = time.monotonic() + timeout
    return lambda: time.monotonic() > end


def _services(session: Session, cluster_name: str, say: Say, poll: float, timeout: float) -> int:
    from botocore.exceptions import ClientError

    ecs = session.client("ecs")
    arns: list[str] = []
    try:
        for page in ecs.get_paginator("list_services").paginate(cluster=cluster_name):
            arns += page.get("serviceArns", [])
    except ClientError as error:
        if error_code(error) == "ClusterNotFoundException":
            return 0
        raise
    active: list[dict[str, Any]] = []
    for start in range(0, len(arns), 10):  # DescribeServices takes 10 names a call
        response = ecs.describe_services(cluster=cluster_name, services=arns[start : start + 10])
        active += [s for s in response.get("services", []) if s.get("status") == "ACTIVE"]
    for service in active:
        name = service["serviceName"]
        # A daemon service takes no desired count ("The daemon scheduling strategy does not
        # support a desired count", UpdateService); deleting it with force stops its tasks.
        if service.get("desiredCount", 0) and service.get("schedulingStrategy") != "DAEMON":
            ecs.update_service(cluster=cluster_name, service=name, desiredCount=0)
        ecs.delete_service(cluster=cluster_name, service=name, force=True)
        say(f"  service {name}: scaled to 0 and deleted")
    teardown.stop_standalone_tasks(ecs, cluster_name, say)  # no service stops those
    expired = _deadline(timeout)
    with Progress(f"{cluster_name}: tasks stopping", total=None) as progress:
        while True:
            tasks = teardown.running_tasks(ecs, cluster_name)
            progress.update(status=f"{len(tasks)} running")
            if not tasks:
                break
            if expired():
                raise OperationalFailure(
                    f"{cluster_name}: {len(tasks)} tasks still running after {timeout:.0f}s: "
                    f"{teardown.task_blockers(tasks)}; "
                    "rerun destroy to continue (it resumes where it stopped)"
                )
            sleep(poll)
    return len(active)


def _groups(session: Session, names: list[str], say: Say, poll: float, timeout: float) -> list[str]:
    if not names:
        return []
    autoscaling = session.client("autoscaling")
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names)[
        "AutoScalingGroups"
    ]
    for group in groups:
        name = group["AutoScalingGroupName"]
        teardown.exit_standby(autoscaling, group, say)  # else scaling to 0 leaves them
        # first: no new instance comes up protected while we lift the old ones' protection;
        # the capacity drops only afterwards, so that scale-in can pick any instance
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=name, NewInstancesProtectedFromScaleIn=False
        )
        protected = [
            i["InstanceId"] for i in group.get("Instances", []) if i.get("ProtectedFromScaleIn")
        ]
        for start in range(0, len(protected), PROTECTION_BATCH):
            autoscaling.set_instance_protection(
                AutoScalingGroupName=name,
                InstanceIds=protected[start : start + PROTECTION_BATCH],
                ProtectedFromScaleIn=False,
            )
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, DesiredCapacity=0
        )
        say(f"  group {name}: {len(protected)} instances unprotected, scaling to 0")
    expired = _deadline(timeout)
    found = [g["AutoScalingGroupName"] for g in groups]
    with Progress("instances terminating", total=None) as progress:
        while found:
            current = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=found)[
                "AutoScalingGroups"
            ]
            left = sum(len(g.get("Instances", [])) for g in current)
            progress.update(status=f"{left} instances left")
            if not left:
                break
            for group in current:  # nothing is left to drain: release the hooks' holds
                teardown.complete_pending_actions(autoscaling, group, say)
            if expired():
                raise OperationalFailure(
                    f"{left} instances still terminating after {timeout:.0f}s: "
                    f"{teardown.blockers(current)}; "
                    "rerun destroy to continue (it resumes where it stopped)"
                )
            sleep(poll)
    return found


def _detach(session: Session, cluster_name: str) -> list[str]:
    ecs = session.client("ecs")
    clusters = ecs.describe_clusters(clusters=[cluster_name]).get("clusters", [])
    if not clusters or clusters[0].get("status") != "ACTIVE":
        return []
    providers = list(clusters[0].get("capacityProviders", []))
    if providers:
        ecs.put_cluster_capacity_providers(
            cluster=cluster_name, capacityProviders=[], defaultCapacityProviderStrategy=[]
        )
    return providers


def _refuse_foreign_services(
    session: Session, cluster: str, stack: str, cluster_name: str, resources: dict[str, list[str]]
) -> None:
    """NotOurs when the stack's ECS cluster runs services the stack did not create (made by
    hand or by another tool): destroy would have to delete them, and they are not ours."""
    from botocore.exceptions import ClientError

    ecs = session.client("ecs")
    # A service's physical id is its ARN; the name is its last segment in both ARN formats
    # (…:service/NAME and …:service/CLUSTER/NAME).
    ours = {arn.rsplit("/", 1)[-1] for arn in resources.get("AWS::ECS::Service", [])}
    foreign: list[str] = []
    try:
        for page in ecs.get_paginator("list_services").paginate(cluster=cluster_name):
            foreign += [
                a.rsplit("/", 1)[-1]
                for a in page.get("serviceArns", [])
                if a.rsplit("/", 1)[-1] not in ours
            ]
    except ClientError as error:  # a cluster already gone has no services to protect
        if error_code(error) != "ClusterNotFoundException":
            raise
    if foreign:
        raise NotOurs(
            f"destroy {cluster}: ECS cluster {cluster_name} runs services that stack {stack} did "
            f"not create: {', '.join(sorted(foreign))}; delete or move them first"
        )


def destroy_cluster(
    session: Session,
    cluster: str,
    *,
    say: Say = print,
    poll: float = 5.0,
    timeout: float = DEFAULT_TIMEOUT,
    fleet_id: str = naming.DEFAULT_FLEET,
    adopt: bool = False,
) -> DestroyResult:
    """Tear down `cluster`'s stack; idempotent (a rerun resumes; an absent stack is done).
    Only a stack of fleet `fleet_id` (with `adopt`, also an earlier nixecs's) is touched."""
    cfn = session.client("cloudformation")
    stack = naming.stack_name(cluster)
    result = DestroyResult(cluster=cluster, stack=stack)
    with aws_errors(session, f"destroy {cluster}"):
        current = describe_stack(cfn, stack)
        if current is None:
            result.outcome = "absent"
            return result
        check_stack(cfn, current, cluster, fleet_id, action=f"destroy {cluster}", adopt=adopt)
        seen = {e["EventId"] for e in _all_events(cfn, stack)}
        status = str(current["StackStatus"])
        if status.endswith("_IN_PROGRESS") and status not in (
            "REVIEW_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
        ):
            say(f"{stack}: {status}, waiting for it to settle first")
            status, _ = wait_for_stack(
                cfn,
                stack,
                seen=seen,
                total=1,
                poll=poll,
                description=f"{stack} (earlier operation)",
            )
        if status not in ("REVIEW_IN_PROGRESS", "DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
            resources = _stack_resources(cfn, stack)
            # Only the stack's own ECS cluster: a stack without one (a create that failed
            # early) has no services to stop, and an ECS cluster that merely has the name is
            # someone else's.
            cluster_name = next(iter(resources.get("AWS::ECS::Cluster", [])), None)
            if cluster_name:
                _refuse_foreign_services(session, cluster, stack, cluster_name, resources)
            count = _services(session, cluster_name, say, poll, timeout) if cluster_name else 0
            result.steps.append(f"services deleted: {count}")
            groups = _groups(
                session,
                resources.get("AWS::AutoScaling::AutoScalingGroup", []),
                say,
                poll,
                timeout,
            )
            result.steps.append(f"groups scaled to 0: {len(groups)}")
            providers = _detach(session, cluster_name) if cluster_name else []
            if providers:
                say(f"  cluster {cluster_name}: detached {', '.join(providers)}")
            result.steps.append(f"capacity providers detached: {len(providers)}")
        if status != "DELETE_IN_PROGRESS":
            # no ClientRequestToken: a rerun after DELETE_FAILED must be a new attempt, and
            # DeleteStack on a stack already being deleted is harmless
            cfn.delete_stack(StackName=stack)
        final, events = wait_for_stack(
            cfn, stack, seen=seen, total=1, poll=poll, description=f"deleting {stack}"
        )
        if final != "DELETE_COMPLETE":
            history = events or list(reversed(_all_events(cfn, stack)))
            raise OperationalFailure(
                f"destroy {cluster}: stack {stack} ended {final}: {failure_reason(history)}; "
                "rerun destroy to retry (it resumes where it stopped)"
            )
        result.steps.append("stack deleted")
        result.outcome = "destroyed"
    return result


def stacks_in_review(
    session: Session, fleet_id: str, clusters: Iterable[str]
) -> tuple[list[str], list[str]]:
    """This fleet's stacks of `clusters` left in REVIEW_IN_PROGRESS (a declined first deploy,
    or `deploy --plan` interrupted): they hold no resources. Another fleet's review — perhaps
    a change set someone is reading right now — is never among them, and neither is a stack
    of a cluster the fleet does not declare (every fleet without `name_prefix` shares the
    identity DEFAULT_FLEET, so the tag alone cannot tell two such fleets apart).
    Returns (the clusters whose review stack is ours, why each other one is left alone)."""
    cfn = session.client("cloudformation")
    found: list[str] = []
    left: list[str] = []
    for cluster in clusters:
        stack = describe_stack(cfn, naming.stack_name(cluster))
        if stack is None or stack.get("StackStatus") != "REVIEW_IN_PROGRESS":
            continue
        reason = refusal(
            str(stack["StackName"]), cluster, fleet_id, stack_marks(cfn, stack), adopt=False
        )
        if reason is None:
            found.append(cluster)
        else:
            left.append(reason)
    return sorted(found), left
