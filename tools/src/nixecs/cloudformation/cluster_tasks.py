"""A cluster's `tasks:` (fleet/cluster_tasks.py): each task's log group, roles and task
definition (as a service's), and for a scheduled one an EventBridge Scheduler schedule
running it on its group's capacity provider, with a role allowed exactly that."""

from __future__ import annotations

from .. import naming
from ..fleet.cluster_tasks import ScheduledTask
from . import iam, services
from .context import Context, Resources
from .ids import CAPACITY_PROVIDER_ASSOCIATIONS, CLUSTER
from .intrinsics import (
    ARN_PREFIX,
    IAM_POLICY_VERSION,
    REGION_ACCOUNT,
    Json,
    get_att,
    literal,
    ref,
    sub,
    tags,
)


def resources(ctx: Context, scheduled: ScheduledTask) -> Resources:
    task = scheduled.task
    found: Resources = {}
    found.update(services.log_group(ctx, task))
    found.update(iam.execution_role(ctx, task))
    found.update(iam.task_role(ctx, task))
    definition = services.task_definition(ctx, task)
    # the group, for `nixecs run` to pick its capacity provider (aws/run_task.py)
    for resource in definition.values():
        resource_tags = resource["Properties"]["Tags"]
        assert isinstance(resource_tags, list)
        resource_tags.append({"Key": naming.TAG_GROUP, "Value": task.group})
    found.update(definition)
    if scheduled.schedule is not None:
        found.update(_schedule(ctx, scheduled))
    return found


def _scheduler_role(ctx: Context, scheduled: ScheduledTask) -> dict[str, Json]:
    """Trusted by EventBridge Scheduler for this account only (the confused-deputy condition
    of "Set up the execution role", Scheduler user guide, setting-up); ecs:RunTask on this
    family in this cluster, ecs:TagResource on the tasks it starts (RunTask with tags needs it),
    and iam:PassRole on the task's own roles, to ECS tasks only."""
    task = scheduled.task
    ids = ctx.ids
    family = naming.task_family(ctx.cluster.name, task.name)
    roles: list[Json] = [get_att(ids.service(task.name, "ExecutionRole"), "Arn")]
    if iam.has_task_role(task):
        roles.append(get_att(ids.service(task.name, "TaskRole"), "Arn"))
    statements: list[Json] = [
        {
            "Sid": "RunThisTask",
            "Effect": "Allow",
            "Action": "ecs:RunTask",
            "Resource": sub(
                f"{ARN_PREFIX}:ecs:{REGION_ACCOUNT}:task-definition/{literal(family)}:*"
            ),
            "Condition": {"ArnEquals": {"ecs:cluster": ctx.cluster_arn()}},
        },
        {
            "Sid": "TagItsTasks",
            "Effect": "Allow",
            "Action": "ecs:TagResource",
            "Resource": sub(
                f"{ARN_PREFIX}:ecs:{REGION_ACCOUNT}:task/{literal(ctx.cluster.name)}/*"
            ),
            "Condition": {"StringEquals": {"ecs:CreateAction": "RunTask"}},
        },
        {
            "Sid": "PassItsRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": roles,
            "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        },
    ]
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Path": iam.ROLE_PATH,
            "AssumeRolePolicyDocument": {
                "Version": IAM_POLICY_VERSION,
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "scheduler.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "nixecs-run-task",
                    "PolicyDocument": {"Version": IAM_POLICY_VERSION, "Statement": statements},
                }
            ],
            "Tags": tags(ctx.service_tags(task)),
        },
    }


def _schedule(ctx: Context, scheduled: ScheduledTask) -> Resources:
    task = scheduled.task
    schedule = scheduled.schedule
    assert schedule is not None
    ids = ctx.ids
    properties: dict[str, Json] = {
        "ScheduleExpression": schedule.expression,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": get_att(CLUSTER, "Arn"),
            "RoleArn": get_att(ids.service(task.name, "SchedulerRole"), "Arn"),
            "EcsParameters": {
                "TaskDefinitionArn": ref(ids.service(task.name, "TaskDefinition")),
                "TaskCount": 1,
                # the group's capacity provider, as its services use it
                "CapacityProviderStrategy": [
                    {
                        "CapacityProvider": ref(ids.group(task.group, "CapacityProvider")),
                        "Base": 0,
                        "Weight": 1,
                    }
                ],
                "EnableECSManagedTags": True,
                "PropagateTags": "TASK_DEFINITION",
            },
        },
    }
    if schedule.timezone is not None:
        properties["ScheduleExpressionTimezone"] = schedule.timezone
    return {
        ids.service(task.name, "SchedulerRole"): _scheduler_role(ctx, scheduled),
        ids.service(task.name, "Schedule"): {
            "Type": "AWS::Scheduler::Schedule",
            "DependsOn": [CAPACITY_PROVIDER_ASSOCIATIONS],
            "Properties": properties,
        },
    }
