"""EventBridge Scheduler schedules in the local emulator's CloudFormation.

moto 5.2 has EventBridge Scheduler's API (moto/scheduler) but no CloudFormation type for it:
its parser warns "Tried to parse AWS::Scheduler::Schedule but it's not supported" and the
stack lists the resource with no logical or physical id, so `status` showed every schedule
`missing`. This registers the type with moto's CloudFormation (a `CloudFormationModel`
subclass, which moto/cloudformation/parsing.py get_model_list finds by `__subclasses__`),
so a stack creates, updates and deletes its schedules in moto's Scheduler backend as AWS's
does:

- the physical id is the schedule's name (AWS::Scheduler::Schedule, Return values: "Ref
  returns the Name"); a template without `Name` gets one CloudFormation makes up (moto's
  `STACK-LOGICAL-SUFFIX`), cut to Scheduler's 64 characters (CreateSchedule, Name: 1-64);
- CloudFormation's property shapes are turned into the API's where they differ: a capacity
  provider strategy item is `capacityProvider`/`base`/`weight` in CreateSchedule's
  CapacityProviderStrategyItem and `CapacityProvider`/`Base`/`Weight` in the resource's, and
  the network configuration's `AwsvpcConfiguration` is the API's `awsvpcConfiguration`
  (EventBridge Scheduler API reference, Target/EcsParameters; AWS::Scheduler::Schedule
  EcsParameters);
- a changed `Name` or `GroupName` replaces the schedule (both createOnly in the resource
  type's schema); other changes update it in place (UpdateSchedule takes the whole
  definition).

A schedule never fires here: nothing runs a task (standins.LIMITS).
"""

from __future__ import annotations

import contextlib
from typing import Any

# CreateSchedule, Name: "Minimum length of 1. Maximum length of 64."
NAME_MAX = 64
# The registered model: `__subclasses__` holds its subclasses weakly, so a reference is kept.
_INSTALLED: list[type] = []


def _api_target(target: dict[str, Any]) -> dict[str, Any]:
    """The resource's Target in CreateSchedule's shape."""
    out = dict(target)
    ecs = target.get("EcsParameters")
    if isinstance(ecs, dict):
        ecs = dict(ecs)
        strategy = ecs.get("CapacityProviderStrategy")
        if isinstance(strategy, list):
            ecs["CapacityProviderStrategy"] = [
                {key[:1].lower() + key[1:]: value for key, value in item.items()}
                for item in strategy
                if isinstance(item, dict)
            ]
        network = ecs.get("NetworkConfiguration")
        if isinstance(network, dict) and "AwsvpcConfiguration" in network:
            ecs["NetworkConfiguration"] = {"awsvpcConfiguration": network["AwsvpcConfiguration"]}
        out["EcsParameters"] = ecs
    return out


def _definition(properties: dict[str, Any]) -> dict[str, Any]:
    """CreateSchedule's and UpdateSchedule's arguments (moto's backend names) but the name."""
    return {
        "description": properties.get("Description"),
        "end_date": properties.get("EndDate"),
        "flexible_time_window": properties["FlexibleTimeWindow"],
        "group_name": properties.get("GroupName"),
        "kms_key_arn": properties.get("KmsKeyArn"),
        "schedule_expression": properties["ScheduleExpression"],
        "schedule_expression_timezone": properties.get("ScheduleExpressionTimezone"),
        "start_date": properties.get("StartDate"),
        "state": properties.get("State"),
        "target": _api_target(properties["Target"]),
        "action_after_completion": properties.get("ActionAfterCompletion"),
    }


def install() -> None:
    """Register AWS::Scheduler::Schedule with moto's CloudFormation (before it parses any
    template: the model list is cached on first use, so the caches are cleared too)."""
    if _INSTALLED:
        return
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.scheduler.models import scheduler_backends

    def backend(account_id: str, region_name: str) -> Any:
        return scheduler_backends[account_id][region_name]

    class StackSchedule(CloudFormationModel):
        def __init__(self, schedule: Any, account_id: str, region_name: str) -> None:
            self.schedule = schedule
            self.account_id = account_id
            self.region_name = region_name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Scheduler::Schedule"

        @property
        def physical_resource_id(self) -> str:
            return str(self.schedule.name)

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attribute_name == "Arn":
                return self.schedule.arn
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> StackSchedule:
            properties = cloudformation_json["Properties"]
            schedule = backend(account_id, region_name).create_schedule(
                name=resource_name[:NAME_MAX], **_definition(properties)
            )
            return cls(schedule, account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: StackSchedule,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> StackSchedule:
            properties = cloudformation_json["Properties"]
            old = original_resource.schedule
            group = properties.get("GroupName") or "default"
            name = properties.get("Name", old.name)
            if name != old.name or group != old.group_name:
                backend(account_id, region_name).delete_schedule(old.group_name, old.name)
                return cls.create_from_cloudformation_json(
                    new_resource_name, cloudformation_json, account_id, region_name
                )
            # moto's UpdateSchedule keeps ActionAfterCompletion as it was (no argument)
            definition = _definition(properties)
            del definition["action_after_completion"]
            schedule = backend(account_id, region_name).update_schedule(name=old.name, **definition)
            return cls(schedule, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> None:
            from moto.scheduler.exceptions import ScheduleNotFound

            group = cloudformation_json.get("Properties", {}).get("GroupName")
            # deleted by hand: the stack's delete still succeeds, as on AWS
            with contextlib.suppress(ScheduleNotFound):
                backend(account_id, region_name).delete_schedule(group, resource_name)

    _INSTALLED.append(StackSchedule)  # found through CloudFormationModel.__subclasses__()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
