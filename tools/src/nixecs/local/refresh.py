"""An instance refresh stand-in for the local emulator: moto 5.2 has no StartInstanceRefresh
or DescribeInstanceRefreshes (moto/autoscaling/responses.py implements neither), so `nixecs
roll` against `nixecs local` would end in "not implemented". The emulator's server
(local/server.py) adds these two actions to moto's Auto Scaling responses, in its own process.

What is emulated, and what is not (docs/aws.md says the same):

- StartInstanceRefresh records the refresh (Pending, 0%, one instance to update per instance
  in the group) and refuses a second one while one is active (InstanceRefreshInProgress, as
  AWS does); a group that does not exist is a ValidationError.
- Each DescribeInstanceRefreshes that names a refresh advances it one step: Pending, then
  InProgress with one more instance counted as replaced per call, then Successful — on which
  the group takes the DesiredConfiguration's launch template version ("Once the instance
  refresh succeeds, Amazon EC2 Auto Scaling updates the settings of the Auto Scaling group to
  reflect the new desired configuration": StartInstanceRefresh, DesiredConfiguration,
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StartInstanceRefresh.html).
  No instance is replaced, drained or health-checked; checkpoints are not waited at.
- AlarmSpecification: when one of its CloudWatch alarms (moto's CloudWatch, same account and
  region) is in ALARM at a step, the refresh fails, and with AutoRollback rolls back
  (RollbackInProgress, then RollbackSuccessful) — AWS's documented reaction to an alarm
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html,
  AlarmSpecification). This is the one way to make an emulated refresh fail.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

ACTIVE = ("Pending", "InProgress", "RollbackInProgress")


@dataclass
class Refresh:
    id: str
    group: str
    to_update: int
    preferences: dict[str, Any]
    desired: dict[str, Any]
    status: str = "Pending"
    done: int = 0
    reason: str = ""
    started: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    ended: datetime.datetime | None = None

    @property
    def percentage(self) -> int:
        if self.status == "Successful":
            return 100
        return 0 if self.to_update == 0 else self.done * 100 // self.to_update

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "StartTime": self.started,
            "PercentageComplete": self.percentage,
            "InstancesToUpdate": max(self.to_update - self.done, 0),
            "Preferences": self.preferences,
        }
        if self.desired:
            answer["DesiredConfiguration"] = self.desired
        if self.reason:
            answer["StatusReason"] = self.reason
        if self.ended is not None:
            answer["EndTime"] = self.ended
        return answer


_LOCK = threading.Lock()
# (account, region, group) → its refreshes, newest first (DescribeInstanceRefreshes' order)
_REFRESHES: dict[tuple[str, str, str], list[Refresh]] = {}


def _alarm_firing(account: str, region: str, names: list[str]) -> str | None:
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[account][region].alarms
    return next((n for n in names if n in alarms and alarms[n].state_value == "ALARM"), None)


def _apply_desired(group: Any, desired: dict[str, Any]) -> None:
    """The group takes the refresh's launch template version (its one desired setting the
    tool sends: nixecs roll asks for the latest version of the group's own template)."""
    spec = desired.get("LaunchTemplate") or (
        desired.get("MixedInstancesPolicy", {})
        .get("LaunchTemplate", {})
        .get("LaunchTemplateSpecification")
    )
    if spec and spec.get("Version"):
        group.launch_template_version = str(spec["Version"])
        group.provided_launch_template_version = str(spec["Version"])


def _step(refresh: Refresh, account: str, region: str, group: Any) -> None:
    """Advance an active refresh by one step (see the module's docstring)."""
    now = datetime.datetime.now(datetime.UTC)
    if refresh.status == "RollbackInProgress":
        refresh.status, refresh.ended = "RollbackSuccessful", now
        return
    alarms = list(refresh.preferences.get("AlarmSpecification", {}).get("Alarms", []))
    firing = _alarm_firing(account, region, alarms) if alarms else None
    if firing is not None and refresh.status == "InProgress":
        refresh.reason = f"The instance refresh failed: alarm {firing} is in ALARM"
        if refresh.preferences.get("AutoRollback"):
            refresh.status = "RollbackInProgress"
            refresh.reason = f"{refresh.reason}; rolling back"
        else:
            refresh.status, refresh.ended = "Failed", now
        return
    if refresh.status == "Pending":
        refresh.status = "InProgress"
        return
    if refresh.done < refresh.to_update:
        refresh.done += 1
        if refresh.done < refresh.to_update:
            return
    refresh.status, refresh.ended = "Successful", now
    _apply_desired(group, refresh.desired)


def install() -> None:
    """Add StartInstanceRefresh and DescribeInstanceRefreshes to moto's Auto Scaling server
    (its responses dispatch an action to the method of the same name in snake case)."""
    from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    class InstanceRefreshInProgress(AutoscalingClientError):
        code = "InstanceRefreshInProgress"

    def _group(response: Any, name: str) -> Any:
        groups = response.autoscaling_backend.autoscaling_groups
        if name not in groups:
            raise ValidationError(f"AutoScalingGroup name not found - {name}")
        return groups[name]

    def start_instance_refresh(self: Any) -> Any:
        name = str(self._get_param("AutoScalingGroupName"))
        group = _group(self, name)
        key = (self.current_account, self.region, name)
        with _LOCK:
            known = _REFRESHES.setdefault(key, [])
            if any(r.status in ACTIVE for r in known):
                raise InstanceRefreshInProgress(
                    f"An Instance Refresh is already in progress and blocks the execution of "
                    f"this Instance Refresh for group {name}."
                )
            refresh = Refresh(
                id=str(uuid.uuid4()),
                group=name,
                to_update=len(group.instance_states),
                preferences=dict(self._get_param("Preferences") or {}),
                desired=dict(self._get_param("DesiredConfiguration") or {}),
            )
            known.insert(0, refresh)
        return ActionResult({"InstanceRefreshId": refresh.id})

    def describe_instance_refreshes(self: Any) -> Any:
        name = str(self._get_param("AutoScalingGroupName"))
        group = _group(self, name)
        wanted = list(self._get_param("InstanceRefreshIds") or [])
        with _LOCK:
            known = _REFRESHES.get((self.current_account, self.region, name), [])
            shown = [r for r in known if not wanted or r.id in wanted]
            for refresh in shown:
                if wanted and refresh.status in ACTIVE:  # polled by id: time passes
                    _step(refresh, self.current_account, self.region, group)
            answer = [r.describe() for r in shown]
        return ActionResult({"InstanceRefreshes": answer})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
