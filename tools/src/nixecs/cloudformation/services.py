"""Per service: its log group, task definition and ECS service."""

from __future__ import annotations

from .. import naming
from ..fleet.images import ImageRef
from ..fleet.model import Service
from .context import Context, Resources
from .ids import CAPACITY_PROVIDER_ASSOCIATIONS
from .intrinsics import Json, get_att, ref, ssm_parameter_arn, sub, tags

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


def image_value(image: ImageRef) -> Json:
    """A plain reference as written; an ECR one under the stack's own account and region
    (the registry host of https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html,
    with AWS::URLSuffix for other partitions), by digest once `deploy` has resolved it."""
    if image.reference is not None:
        return image.reference
    return sub(
        "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/" + image.repository_path()
    )


def task_definition(ctx: Context, service: Service) -> Resources:
    ids = ctx.ids
    container: dict[str, Json] = {
        "Name": service.name,
        "Image": image_value(service.image),
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
            "DependsOn": [CAPACITY_PROVIDER_ASSOCIATIONS],
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
                    "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                    "MaximumPercent": 200,
                    "MinimumHealthyPercent": 100,
                },
                # Survive the loss of an Availability Zone first, then pack by memory so
                # managed scaling can empty and remove instances.
                "PlacementStrategies": [
                    {"Type": "spread", "Field": "attribute:ecs.availability-zone"},
                    {"Type": "binpack", "Field": "memory"},
                ],
                "EnableECSManagedTags": True,
                "PropagateTags": "SERVICE",
                "Tags": tags(ctx.service_tags(service)),
            },
        }
    }
