"""`nixecs roll CLUSTER/GROUP`: replace a group's instances with an EC2 instance refresh.

The refresh targets the group's launch template at its latest version (a desired
configuration), which is what lets AWS roll back automatically; auto rollback is asked for
only where AWS allows it (not while the group follows `$Latest`/`$Default`). An instance
refresh already running for the group is followed instead of starting a second one.

Busy groups: the capacity provider's managed termination protection keeps every instance that
runs tasks protected from scale-in, and with the API's default `ScaleInProtectedInstances:
Wait` (likewise `StandbyInstances: Wait`) "Amazon EC2 Auto Scaling waits one hour for you to
remove scale-in protection. Otherwise, the instance refresh will fail"
(https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html; the
options date from https://aws.amazon.com/about-aws/whats-new/2023/02/amazon-ec2-auto-scaling-instance-refresh-standby-scale-in-protected-ec2/).
So `roll` asks for `Refresh` by default: the capacity provider's managed draining (on by
default, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/enable-managed-instance-draining.html)
drains a replaced instance and the service scheduler moves its tasks
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html).
Standby instances are ignored by default (someone took them out of service on purpose).
`--rollback-alarm` adds an AlarmSpecification: the refresh fails (and rolls back, where
allowed) when one of those alarms goes to ALARM (same API reference, AlarmSpecification).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from .. import naming
from ..diagnostics import OperationalFailure
from .progress import Progress, sleep
from .session import Session, aws_errors, error_code

ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}
SUCCESS = "Successful"


@dataclass(frozen=True)
class RollOptions:
    min_healthy: int = 90
    checkpoints: tuple[int, ...] = ()
    checkpoint_delay: int = 600
    rollback: bool = True
    skip_matching: bool = True
    instance_warmup: int | None = None
    protected: str = "Refresh"  # ScaleInProtectedInstances: Refresh | Ignore | Wait
    standby: str = "Ignore"  # StandbyInstances: Terminate | Ignore | Wait
    rollback_alarms: tuple[str, ...] = ()


# CLI spelling → the API's enum values (RefreshPreferences)
PROTECTED_CHOICES = {"refresh": "Refresh", "ignore": "Ignore", "wait": "Wait"}
STANDBY_CHOICES = {"terminate": "Terminate", "ignore": "Ignore", "wait": "Wait"}


@dataclass
class RollResult:
    group: str
    auto_scaling_group: str
    refresh_id: str
    status: str
    reason: str = ""
    percentage: int | None = None
    auto_rollback: bool = False
    notes: list[str] = field(default_factory=list)
    attached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "auto_scaling_group": self.auto_scaling_group,
            "instance_refresh_id": self.refresh_id,
            "status": self.status,
            "status_reason": self.reason,
            "percentage_complete": self.percentage,
            "auto_rollback": self.auto_rollback,
            "followed_existing": self.attached,
            "notes": self.notes,
        }


def parse_checkpoints(text: str) -> tuple[int, ...]:
    """`50,100` → (50, 100): strictly increasing percentages in 1..100."""
    if not text.strip():
        return ()
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"checkpoints must be comma-separated whole percentages, not {text!r}"
        ) from None
    if any(not 1 <= v <= 100 for v in values) or any(a >= b for a, b in itertools.pairwise(values)):
        raise ValueError(f"checkpoints must increase strictly within 1..100, not {text!r}")
    return values


def desired_configuration(
    session: Session, group: dict[str, Any]
) -> tuple[dict[str, Any], bool, list[str]]:
    """The desired configuration (launch template at its latest version), whether auto rollback
    is allowed, and notes for the user."""
    notes: list[str] = []
    mixed = group.get("MixedInstancesPolicy")
    spec = group.get("LaunchTemplate") or (mixed or {}).get("LaunchTemplate", {}).get(
        "LaunchTemplateSpecification"
    )
    if not spec:
        raise OperationalFailure(
            f"{group['AutoScalingGroupName']} has no launch template (launch configurations cannot be refreshed by nixecs)"
        )
    ec2 = session.client("ec2")
    key = "LaunchTemplateIds" if "LaunchTemplateId" in spec else "LaunchTemplateNames"
    ident = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName")
    templates = ec2.describe_launch_templates(**{key: [ident]})["LaunchTemplates"]
    latest = str(templates[0]["LatestVersionNumber"])
    target = {"LaunchTemplateId": templates[0]["LaunchTemplateId"], "Version": latest}
    current_version = str(spec.get("Version", "$Default"))
    rollback_allowed = current_version not in ("$Latest", "$Default")
    if not rollback_allowed:
        notes.append(
            f"auto rollback is not available: the group uses launch template version {current_version} "
            "(AWS rolls back only groups pinned to a version number)"
        )
    if mixed:
        desired_policy: dict[str, Any] = {"LaunchTemplate": {"LaunchTemplateSpecification": target}}
        overrides = mixed.get("LaunchTemplate", {}).get("Overrides")
        if overrides:
            desired_policy["LaunchTemplate"]["Overrides"] = overrides
        if mixed.get("InstancesDistribution"):
            desired_policy["InstancesDistribution"] = mixed["InstancesDistribution"]
        return {"MixedInstancesPolicy": desired_policy}, rollback_allowed, notes
    return {"LaunchTemplate": target}, rollback_allowed, notes


def _refreshes(autoscaling: Any, name: str, ids: list[str] | None = None) -> list[dict[str, Any]]:
    args: dict[str, Any] = {"AutoScalingGroupName": name}
    if ids:
        args["InstanceRefreshIds"] = ids
    return list(autoscaling.describe_instance_refreshes(**args).get("InstanceRefreshes", []))


def roll(
    session: Session,
    key: str,
    options: RollOptions,
    *,
    wait: bool = True,
    poll: float = 15.0,
    say: Any = None,
    fleet: str = naming.DEFAULT_FLEET,
    adopt: bool = False,
) -> RollResult:
    """Refresh the group `key` (CLUSTER/GROUP) names, once it is found to be fleet `fleet`'s
    (ownership.check_group: nothing is started on a group someone else made)."""
    from botocore.exceptions import ClientError

    from .ownership import check_group

    cluster, _, group_name = key.partition("/")
    asg_name = naming.group_resource_name(cluster, group_name)
    autoscaling = session.client("autoscaling")
    with aws_errors(session, f"roll {key}"):
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])[
            "AutoScalingGroups"
        ]
        if not groups:
            raise OperationalFailure(
                f"roll {key}: no Auto Scaling group {asg_name} (deploy the cluster first)"
            )
        group = groups[0]
        check_group(session, group, cluster, fleet, action=f"roll {key}", adopt=adopt)
        result = RollResult(group=key, auto_scaling_group=asg_name, refresh_id="", status="")

        running = [r for r in _refreshes(autoscaling, asg_name) if r.get("Status") in ACTIVE]
        if running:
            result.refresh_id = running[0]["InstanceRefreshId"]
            result.attached = True
            result.notes.append(
                f"following instance refresh {result.refresh_id} already in progress"
            )
        else:
            desired, rollback_allowed, notes = desired_configuration(session, group)
            result.notes += notes
            preferences: dict[str, Any] = {
                "MinHealthyPercentage": options.min_healthy,
                "SkipMatching": options.skip_matching,
                "AutoRollback": bool(options.rollback and rollback_allowed),
                "ScaleInProtectedInstances": options.protected,
                "StandbyInstances": options.standby,
            }
            if options.rollback_alarms:
                preferences["AlarmSpecification"] = {"Alarms": list(options.rollback_alarms)}
            if options.checkpoints:
                preferences["CheckpointPercentages"] = list(options.checkpoints)
                preferences["CheckpointDelay"] = options.checkpoint_delay
            if options.instance_warmup is not None:
                preferences["InstanceWarmup"] = options.instance_warmup
            result.auto_rollback = preferences["AutoRollback"]
            if options.protected == "Wait":
                result.notes.append(
                    "instances protected from scale-in (those running tasks) are waited for: "
                    "AWS fails the refresh after an hour if they stay protected"
                )
            try:
                response = autoscaling.start_instance_refresh(
                    AutoScalingGroupName=asg_name,
                    Strategy="Rolling",
                    DesiredConfiguration=desired,
                    Preferences=preferences,
                )
                result.refresh_id = response["InstanceRefreshId"]
            except ClientError as error:
                # started by our own retried request, or by someone else meanwhile: follow it
                if error_code(error) != "InstanceRefreshInProgress":
                    raise
                running = [
                    r for r in _refreshes(autoscaling, asg_name) if r.get("Status") in ACTIVE
                ]
                if not running:
                    raise
                result.refresh_id = running[0]["InstanceRefreshId"]
                result.attached = True
        if say is not None:
            for note in result.notes:
                say(note)
        if not wait:
            result.status = "InProgress"
            return result
        with Progress(f"{asg_name} instance refresh", total=100) as progress:
            while True:
                refresh = _refreshes(autoscaling, asg_name, [result.refresh_id])[0]
                result.status = str(refresh.get("Status"))
                result.reason = str(refresh.get("StatusReason", "") or "")
                result.percentage = refresh.get("PercentageComplete")
                remaining = refresh.get("InstancesToUpdate")
                status = (
                    result.status
                    if remaining is None
                    else f"{result.status}, {remaining} to update"
                )
                progress.update(result.percentage or 0, status=status)
                if result.status not in ACTIVE:
                    break
                sleep(poll)
    return result
