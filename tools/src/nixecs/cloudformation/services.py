"""Per service: its log group, task definition and ECS service."""

from __future__ import annotations

from .. import naming
from ..fleet.model import Service
from . import loadbalancer
from .context import Context, Resources
from .ids import CAPACITY_PROVIDER_ASSOCIATIONS
from .intrinsics import Json, get_att, ref, ssm_parameter_arn, tags

LOG_RETENTION_DAYS = 30


def log_group(ctx: Context, service: Service) -> Resources:
    return {
        ctx.ids.service(service.name, "LogGroup"): {
            "Type": "AWS::Logs::LogGroup",
            # Deleted with its service, on purpose: the name is fixed, so a retained log
            # group would make re-adding the service fail ("already exists"). Retention
            # bounds what is kept meanwhile.
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": naming.log_group_name(ctx.cluster.name, service.name),
                "RetentionInDays": LOG_RETENTION_DAYS,
                "Tags": tags(ctx.service_tags(service)),
            },
        }
    }


def task_definition(ctx: Context, service: Service) -> Resources:
    ids = ctx.ids
    container: dict[str, Json] = {
        "Name": service.name,
        "Image": service.image,
        "Cpu": service.cpu,
        "Memory": service.memory,
        "Essential": True,
    }
    if service.port is not None:
        # Bridge networking with host port 0: ECS picks a free host port per task, so
        # several tasks of a service fit on one instance.
        container["PortMappings"] = [
            {"ContainerPort": service.port, "HostPort": 0, "Protocol": "tcp"}
        ]
    if service.environment:
        container["Environment"] = [
            {"Name": name, "Value": value} for name, value in sorted(service.environment.items())
        ]
    if service.secrets:
        container["Secrets"] = [
            {"Name": name, "ValueFrom": ssm_parameter_arn(parameter)}
            for name, parameter in sorted(service.secrets.items())
        ]
    container["LogConfiguration"] = {
        "LogDriver": "awslogs",
        "Options": {
            "awslogs-group": ref(ids.service(service.name, "LogGroup")),
            "awslogs-region": ref("AWS::Region"),
            "awslogs-stream-prefix": service.name,
        },
    }
    return {
        ids.service(service.name, "TaskDefinition"): {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": naming.task_family(ctx.cluster.name, service.name),
                "RequiresCompatibilities": ["EC2"],
                "NetworkMode": "bridge",
                "ExecutionRoleArn": get_att(ids.service(service.name, "ExecutionRole"), "Arn"),
                "ContainerDefinitions": [container],
                "Tags": tags(ctx.service_tags(service)),
            },
        }
    }


def ecs_service(ctx: Context, service: Service) -> Resources:
    ids = ctx.ids
    properties: dict[str, Json] = {
        "ServiceName": naming.service_name(service.name),
        "Cluster": ctx.cluster_ref(),
        "TaskDefinition": ref(ids.service(service.name, "TaskDefinition")),
    }
    if service.scaling is None:
        properties["DesiredCount"] = service.desired
    # else no DesiredCount: a stack update that carries it (a new image, say) would set the
    # count back to it, undoing whatever auto scaling had scaled to (aws/aws-cdk#3919). Without
    # it CloudFormation creates the service with 1 task and leaves the count alone on updates
    # (aws/aws-cdk PR 13130 quotes CloudFormation's behaviour), and registering the scalable
    # target moves the count into [min, max] at once ("Application Auto Scaling concepts":
    # "anytime ... the RegisterScalableTarget API is called, Application Auto Scaling retrieves
    # the current capacity and compares it to the minimum and maximum capacity"). So a scaled
    # service starts at Service.start_count, and a written `desired:` draws W204.
    return {
        ids.service(service.name, "Service"): {
            "Type": "AWS::ECS::Service",
            # A capacity provider strategy needs the provider on the cluster first; on
            # delete, the service goes before the association.
            # Behind a load balancer it also waits for its listener rules: the rule attaches
            # the target group to the load balancer, which ECS needs before it registers tasks.
            "DependsOn": [CAPACITY_PROVIDER_ASSOCIATIONS, *loadbalancer.rule_ids(ctx, service)],
            "Properties": properties
            | {
                "CapacityProviderStrategy": [
                    {
                        "CapacityProvider": ref(ids.group(service.group, "CapacityProvider")),
                        "Base": 0,
                        "Weight": 1,
                    }
                ],
                "DeploymentConfiguration": {
                    "DeploymentCircuitBreaker": {
                        "Enable": service.deployment.circuit_breaker,
                        "Rollback": service.deployment.rollback,
                    },
                    "MaximumPercent": service.deployment.maximum_percent,
                    "MinimumHealthyPercent": service.deployment.minimum_healthy_percent,
                },
                # By default (model.DEFAULT_PLACEMENT) survive the loss of an Availability
                # Zone first, then pack by memory so managed scaling can empty instances.
                **_placement(service),
                **loadbalancer.ecs_service_properties(ctx, service),
                "EnableECSManagedTags": True,
                "PropagateTags": "SERVICE",
                "Tags": tags(ctx.service_tags(service)),
            },
        }
    }


def _placement(service: Service) -> dict[str, Json]:
    placement = service.placement
    properties: dict[str, Json] = {}
    if placement.strategies:
        properties["PlacementStrategies"] = [
            {"Type": kind} | ({"Field": field} if field else {})
            for kind, field in placement.strategies
        ]
    if placement.constraints:
        properties["PlacementConstraints"] = [
            {"Type": kind} | ({"Expression": expression} if expression else {})
            for kind, expression in placement.constraints
        ]
    return properties
