"""Per service: its log group, task definition and ECS service."""

from __future__ import annotations

from .. import naming
from ..fleet import firelens as router
from ..fleet.containers import Container
from ..fleet.images import ImageRef
from ..fleet.model import Service, StrategyItem
from ..sha import sha256_hex
from . import daemon, deploy_alarms, env_files, iam, linux, loadbalancer, secret_refs, volumes
from .context import Context, Resources
from .ids import CAPACITY_PROVIDER_ASSOCIATIONS
from .intrinsics import Json, get_att, ref, sub, tags


def log_group(ctx: Context, service: Service) -> Resources:
    properties: dict[str, Json] = {
        "LogGroupName": naming.log_group_name(ctx.cluster.name, service.name),
        # the cluster's `log_retention_days:` / `log_kms_key:` (fleet/infra.py, docs/aws.md)
        "RetentionInDays": ctx.cluster.log_retention_days,
    }
    if ctx.cluster.log_kms_key is not None:
        properties["KmsKeyId"] = ctx.cluster.log_kms_key
    properties["Tags"] = tags(ctx.service_tags(service))
    return {
        ctx.ids.service(service.name, "LogGroup"): {
            "Type": "AWS::Logs::LogGroup",
            # Deleted with its service, on purpose: the name is fixed, so a retained log
            # group would make re-adding the service fail ("already exists"). Retention
            # bounds what is kept meanwhile.
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": properties,
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


def _container(ctx: Context, service: Service, c: Container) -> dict[str, Json]:
    """One ContainerDefinition (AWS::ECS::TaskDefinition ContainerDefinition)."""
    ids = ctx.ids
    container: dict[str, Json] = {"Name": c.name, "Image": image_value(c.image)}
    if c.cpu or not service.task_cpu:
        container["Cpu"] = c.cpu
    if c.memory is not None:
        container["Memory"] = c.memory
    if c.memory_reservation is not None:
        container["MemoryReservation"] = c.memory_reservation
    container["Essential"] = c.essential
    if c.ports:
        # Bridge networking with host port 0: ECS picks a free host port per task, so
        # several tasks of a service fit on one instance. Host mode: the host's own port.
        container["PortMappings"] = [
            {"ContainerPort": p.container_port, "HostPort": p.host_port, "Protocol": p.protocol}
            for p in c.ports
        ]
    if c.entrypoint is not None:
        container["EntryPoint"] = list(c.entrypoint)
    if c.command is not None:
        container["Command"] = list(c.command)
    if c.environment:
        container["Environment"] = [
            {"Name": name, "Value": value} for name, value in sorted(c.environment.items())
        ]
    if c.secrets or c.secret_refs:
        container["Secrets"] = secret_refs.container_secrets(c)
    if c.health_check is not None:
        check = c.health_check
        health: dict[str, Json] = {
            "Command": list(check.command),
            "Interval": check.interval,
            "Timeout": check.timeout,
            "Retries": check.retries,
        }
        if check.start_period is not None:
            health["StartPeriod"] = check.start_period
        container["HealthCheck"] = health
    if c.depends_on:
        container["DependsOn"] = [
            {"ContainerName": name, "Condition": condition} for name, condition in c.depends_on
        ]
    if c.ulimits:
        container["Ulimits"] = [
            {"Name": u.name, "SoftLimit": u.soft, "HardLimit": u.hard} for u in c.ulimits
        ]
    if c.stop_timeout is not None:
        container["StopTimeout"] = c.stop_timeout
    if c.gpu is not None:
        # ResourceRequirement values are strings (ECS API reference, ResourceRequirement).
        container["ResourceRequirements"] = [{"Type": "GPU", "Value": str(c.gpu)}]
    if c.read_only_root_filesystem:
        container["ReadonlyRootFilesystem"] = True
    if c.user is not None:
        container["User"] = c.user
    container |= volumes.container_mounts(c)
    container |= linux.container_linux(c)
    container |= env_files.container_env_files(c)
    if c.firelens is not None:
        kind, options = c.firelens
        firelens: dict[str, Json] = {"Type": kind}
        if options:
            firelens["Options"] = dict(options)
        container["FirelensConfiguration"] = firelens
    if c.log.driver == "awsfirelens":
        log: dict[str, Json] = {"LogDriver": "awsfirelens"}
        if c.log.options:
            log["Options"] = dict(c.log.options)
        if router.to_own_group(c):  # the service's own log group (fleet/firelens.py)
            log["Options"] = {
                **dict(c.log.options),
                **router.own_group_options(ctx.cluster.name, service),
                "region": ref("AWS::Region"),
            }
        container["LogConfiguration"] = log
    else:
        container["LogConfiguration"] = {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": ref(ids.service(service.name, "LogGroup")),
                "awslogs-region": ref("AWS::Region"),
                "awslogs-stream-prefix": service.name,
            },
        }
    return container


def task_definition(ctx: Context, service: Service) -> Resources:
    ids = ctx.ids
    properties: dict[str, Json] = {
        "Family": naming.task_family(ctx.cluster.name, service.name),
        "RequiresCompatibilities": ["EC2"],
        "NetworkMode": service.network_mode,
        "ExecutionRoleArn": get_att(ids.service(service.name, "ExecutionRole"), "Arn"),
    }
    if iam.has_task_role(service):
        properties["TaskRoleArn"] = get_att(ids.service(service.name, "TaskRole"), "Arn")
    # Task-level sizes are strings in AWS::ECS::TaskDefinition (Cpu, Memory).
    if service.task_cpu is not None:
        properties["Cpu"] = str(service.task_cpu)
    if service.task_memory is not None:
        properties["Memory"] = str(service.task_memory)
    properties["ContainerDefinitions"] = [_container(ctx, service, c) for c in service.containers]
    properties |= volumes.task_volumes(service)
    properties["Tags"] = tags(ctx.service_tags(service))
    return {
        ids.service(service.name, "TaskDefinition"): {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": properties,
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
    resources: Resources = {
        ids.service(service.name, "Service"): {
            "Type": "AWS::ECS::Service",
            # A capacity provider strategy needs the provider on the cluster first; on
            # delete, the service goes before the association.
            # Behind a load balancer it also waits for its listener rules: the rule attaches
            # the target group to the load balancer, which ECS needs before it registers tasks.
            "DependsOn": [CAPACITY_PROVIDER_ASSOCIATIONS, *loadbalancer.rule_ids(ctx, service)],
            "Properties": properties
            | {
                "CapacityProviderStrategy": capacity_provider_strategy(ctx, service),
                "ForceNewDeployment": strategy_deployment(service),
                "DeploymentConfiguration": {
                    "DeploymentCircuitBreaker": {
                        "Enable": service.deployment.circuit_breaker,
                        "Rollback": service.deployment.rollback,
                    },
                    "MaximumPercent": service.deployment.maximum_percent,
                    "MinimumHealthyPercent": service.deployment.minimum_healthy_percent,
                }
                | _deployment_alarms(ctx, service),
                # By default (model.DEFAULT_PLACEMENT) survive the loss of an Availability
                # Zone first, then pack by memory so managed scaling can empty instances.
                **_placement(service),
                **loadbalancer.ecs_service_properties(ctx, service),
                **({"EnableExecuteCommand": True} if service.enable_execute_command else {}),
                "EnableECSManagedTags": True,
                "PropagateTags": "SERVICE",
                "Tags": tags(ctx.service_tags(service)),
            },
        }
    }
    daemon.adjust(service, resources[ids.service(service.name, "Service")]["Properties"])
    return resources


def _deployment_alarms(ctx: Context, service: Service) -> dict[str, Json]:
    """DeploymentConfiguration Alarms: ECS fails (and, with rollback, rolls back) a deployment
    when one of them goes into ALARM (nixecs.fleet.deploy_alarms), the named ones and those
    the stack generates (deploy_alarms.py)."""
    deployment = service.deployment
    names: list[Json] = [*deployment.alarms, *deploy_alarms.alarm_refs(ctx, service)]
    if not names:
        return {}
    return {
        "Alarms": {
            "AlarmNames": names,
            "Enable": True,
            "Rollback": deployment.alarm_rollback,
        }
    }


def capacity_provider_strategy(ctx: Context, service: Service) -> list[Json]:
    """The service's groups as CapacityProviderStrategyItems (nixecs.fleet.strategy); a
    one-name `group:` is the one-item strategy {Base 0, Weight 1}."""
    items = service.strategy or (StrategyItem(service.group, 0, 1, service.path),)
    return [
        {
            "CapacityProvider": ref(ctx.ids.group(item.group, "CapacityProvider")),
            "Base": item.base,
            "Weight": item.weight,
        }
        for item in items
    ]


def strategy_deployment(service: Service) -> dict[str, Json]:
    """ForceNewDeployment with a nonce that changes exactly when the capacity provider
    strategy does. ECS refuses to change an existing service's strategy without a forced
    new deployment: "InvalidParameterException: When switching from launch type to capacity
    provider strategy on an existing service, or making a change to a capacity provider
    strategy on a service that is already using one, you must force a new deployment"
    (UpdateService; CloudFormation passes the refusal on and rolls the stack back,
    aws/aws-cdk#34631, and CDK added this property for it, aws/aws-cdk PR 36586). "When you
    change the ForceNewDeploymentNonce value in your template, it signals ECS to start a new
    deployment" (AWS::ECS::Service ForceNewDeployment, registry schema). moto accepts the
    change without it: tests/test_capacity_strategy.py holds the oracle."""
    items = service.strategy or (StrategyItem(service.group, 0, 1, service.path),)
    text = ";".join(f"{i.group}:{i.base}:{i.weight}" for i in items)
    return {
        "EnableForceNewDeployment": True,
        "ForceNewDeploymentNonce": "strategy-" + sha256_hex(text.encode())[:16],
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
