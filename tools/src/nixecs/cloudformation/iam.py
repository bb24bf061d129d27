"""IAM: one instance role and profile per group, one task execution role per service.

Least privilege is per group: a host reads exactly its own group's SSM parameters, acts on
ECS resources of its own cluster only (no managed ECS policy: ecs_agent_statements), and
only a group that drains on the host may complete its own lifecycle hook. A host of a group
with `drain:` or `ecs.spot_draining` can still set any container instance of its own cluster
DRAINING (UpdateContainerInstancesState: no condition key names the calling instance).

No AmazonSSMManagedInstanceCore: its v2 document (recorded in
tools/tests/facts/aws_managed_policies.json) allows ssm:GetParameter and ssm:GetParameters on
`*`, and the AWS managed key aws/ssm "grants Decrypt permission to all IAM principals in the
AWS account" ("Restricting decryption of SecureString parameter values",
https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-restrict-decryption.html), so
with it every instance reads every SecureString of the account. The SSM agent's own actions
(SSM_AGENT_ACTIONS) are granted inline instead. Roles have no names (CloudFormation generates them), so one
account can hold the same fleet in several regions; deploying needs CAPABILITY_IAM only.
"""

from __future__ import annotations

from .. import naming
from ..fleet import firelens
from ..fleet.model import Group, Service
from ..lazyre import lazy
from . import env_files, secret_refs
from .context import Context, Resources
from .intrinsics import (
    ARN_PREFIX,
    IAM_POLICY_VERSION,
    REGION_ACCOUNT,
    Json,
    kms_key_arn,
    literal,
    managed_policy_arn,
    ref,
    ssm_parameter_arn,
    sub,
    tags,
)

ROLE_PATH = "/nixecs/"
ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"
TASK_EXECUTION_POLICY = "service-role/AmazonECSTaskExecutionRolePolicy"
# The managed policies attached here; tests read their recorded documents. Instance roles
# attach none. AmazonEC2ContainerServiceforEC2Role grants ecs:CreateCluster,
# ecs:DeregisterContainerInstance, ecs:UpdateContainerInstancesState and ecs:Submit* on `*`,
# so any host could drain or deregister the container instances of every cluster in the
# account. ecs_agent_statements below grants what the agent calls, on its own cluster only.
EXECUTION_MANAGED_POLICIES = (TASK_EXECUTION_POLICY,)

# What the SSM agent needs for Session Manager and for inventory, taken from
# AmazonSSMManagedInstanceCore v2 (2019-05-23) minus what this project does not use:
# - ssm:GetParameter, ssm:GetParameters: they read parameters; secrets are granted per group;
# - ssm:GetDeployablePatchSnapshotForInstance (Patch Manager), ssm:GetManifest and
#   ssm:PutConfigurePackageResult (Distributor packages): not used on these hosts.
# Registration: ssm:UpdateInstanceInformation. Session Manager: the four ssmmessages actions
# ("Add Session Manager permissions to an existing IAM role", Systems Manager user guide:
# ssmmessages:CreateControlChannel/CreateDataChannel/OpenControlChannel/OpenDataChannel and
# ssm:UpdateInstanceInformation). Inventory runs as a State Manager association
# (AWS-GatherSoftwareInventory), delivered over ec2messages, so the association actions,
# ssm:PutInventory and ssm:PutComplianceItems stay ("Reference: ec2messages, ssmmessages, and
# other API operations", systems-manager-setting-up-messageAPIs). The managed policy grants
# them all on `*`, as here; none of them reads a parameter or a secret.
SSM_AGENT_ACTIONS = (
    "ssm:DescribeAssociation",
    "ssm:GetDocument",
    "ssm:DescribeDocument",
    "ssm:ListAssociations",
    "ssm:ListInstanceAssociations",
    "ssm:PutInventory",
    "ssm:PutComplianceItems",
    "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus",
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
)

# Actions that support no resource-level permission at all (the Service Authorization
# Reference lists no resource type for them), so `Resource: "*"` is their only form.
# Tests assert that `*` appears nowhere else.
UNSCOPABLE_ACTIONS = frozenset(
    {
        "autoscaling:DescribeAutoScalingInstances",
        "ecs:DiscoverPollEndpoint",
        "ecr:GetAuthorizationToken",
        "ec2:DescribeTags",
    }
)
# Granted on `*` as AmazonSSMManagedInstanceCore grants them (see SSM_AGENT_ACTIONS).
STAR_ACTIONS = UNSCOPABLE_ACTIONS | frozenset(SSM_AGENT_ACTIONS)


def _assume_role(service: str, *, source_arn: bool = False) -> dict[str, Json]:
    """Trust `service`; for ECS roles (`source_arn` or not) only on behalf of this account.

    Against the confused deputy ("The confused deputy problem", IAM user guide): ECS passes
    aws:SourceAccount, and for task roles aws:SourceArn (the task's ARN), when it assumes a
    role for a task; "Amazon ECS task IAM role" (AmazonECS developer guide, task-iam-roles)
    shows exactly these two conditions with `arn:aws:ecs:<region>:<account>:*`. AWS shows
    aws:SourceArn for task roles only; the execution role, which the agent uses before and
    around the task, carries aws:SourceAccount alone rather than a condition ECS is not
    documented to send for it (AWS's own aws/agent-toolkit-for-aws trusts ecs-tasks with
    aws:SourceAccount alone: skills/.../processing-s3-uploads-with-step-functions/scripts/
    ecs-trust-policy.json)."""
    statement: dict[str, Json] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if service == ECS_TASKS_PRINCIPAL:
        condition: dict[str, Json] = {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}}
        if source_arn:
            condition["ArnLike"] = {"aws:SourceArn": sub(f"{ARN_PREFIX}:ecs:{REGION_ACCOUNT}:*")}
        statement["Condition"] = condition
    return {"Version": IAM_POLICY_VERSION, "Statement": [statement]}


def _read_parameters(
    sid: str, actions: list[str], parameters: list[str], key: str | None
) -> list[dict[str, Json]]:
    """Read exactly these SSM parameters, and decrypt them — only through SSM, and only for
    these parameters: SSM encrypts each SecureString under the encryption context
    `PARAMETER_ARN=<the parameter's ARN>` (the condition AWS shows for Parameter Store in
    "Encrypting and decrypting parameters using AWS KMS keys", parameter-store-setting-up),
    which binds the KMS grant to the same list. With the fleet's `kms_key:` the grant names
    that key; without it the key is aws/ssm or unknown, so any key of this account and region
    (aws/ssm's key policy lets every principal of the account decrypt through SSM anyway:
    there the ssm: grant above is what scopes the secrets)."""
    arns = [ssm_parameter_arn(name) for name in parameters]
    return [
        {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": arns},
        {
            "Sid": "DecryptThoseViaSsm",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": kms_key_arn(key),
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": sub("ssm.${AWS::Region}.${AWS::URLSuffix}"),
                    "kms:EncryptionContext:PARAMETER_ARN": [
                        ssm_parameter_arn(name) for name in parameters
                    ],
                }
            },
        },
    ]


def _drain_statements(ctx: Context, group: Group) -> list[dict[str, Json]]:
    """What `nixecs drain` needs on the host: find its container instance, set it DRAINING,
    watch its tasks leave, then complete (or extend) this group's termination hook."""
    asg = literal(naming.group_resource_name(ctx.cluster.name, group.name))
    return [
        {
            "Sid": "CompleteOwnLifecycleHook",
            "Effect": "Allow",
            # Only CompleteLifecycleAction: `nixecs drain` never records a heartbeat
            # (nixecs.host.drain completes the action once the tasks are gone).
            "Action": "autoscaling:CompleteLifecycleAction",
            "Resource": sub(
                f"{ARN_PREFIX}:autoscaling:{REGION_ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{asg}"
            ),
        },
        {
            # DescribeAutoScalingInstances has no resource-level permission: `*` is its
            # only form. It is read-only (instance id → group, lifecycle state).
            "Sid": "DescribeOwnAutoScalingInstance",
            "Effect": "Allow",
            "Action": "autoscaling:DescribeAutoScalingInstances",
            "Resource": "*",
        },
        {
            "Sid": "ListClusterContainerInstances",
            "Effect": "Allow",
            "Action": "ecs:ListContainerInstances",
            "Resource": ctx.cluster_arn(),
        },
        {
            # Takes container-instance ARNs and supports the ecs:cluster condition: the
            # ARN pattern and the condition each pin it to this cluster.
            "Sid": "DescribeClusterContainerInstances",
            "Effect": "Allow",
            # (UpdateContainerInstancesState, the same scope, is the agent's: see
            # ecs_agent_statements.)
            "Action": "ecs:DescribeContainerInstances",
            "Resource": _container_instances(ctx),
            "Condition": {"ArnEquals": {"ecs:cluster": ctx.cluster_arn()}},
        },
    ]


def _container_instances(ctx: Context) -> Json:
    """Every container instance of this cluster. Container-instance ARNs carry the cluster
    name (`container-instance/<cluster>/<id>`): the long ARN format, which an account can no
    longer turn off ("You can no longer disable Long Arn settings", ECS PutAccountSetting)."""
    cluster = literal(ctx.ecs_cluster_name)
    return sub(f"{ARN_PREFIX}:ecs:{REGION_ACCOUNT}:container-instance/{cluster}/*")


def ecs_agent_statements(ctx: Context, group: Group) -> list[dict[str, Json]]:
    """What the ECS agent on a host of this cluster calls, scoped to this cluster.

    The calls, from aws/amazon-ecs-agent ecs-agent/api/ecs/client/ecs_client.go:
    RegisterContainerInstance (with the instance's tags: ecs:TagResource on create),
    SubmitTaskStateChange, SubmitContainerStateChange, SubmitAttachmentStateChanges,
    DiscoverPollEndpoint, ListTagsForResource (GetResourceTags: task metadata with tags),
    UpdateContainerInstancesState (its own DRAINING on a Spot interruption notice,
    ECS_ENABLE_SPOT_INSTANCE_DRAINING, so only for groups with `ecs.spot_draining`; `nixecs
    drain` makes the same call, for groups with `drain:`); Poll (ACS) and
    StartTelemetrySession (TCS) are the websocket sessions it opens; ec2:DescribeTags when
    ECS_CONTAINER_INSTANCE_PROPAGATE_TAGS_FROM=ec2_instance. Left out of the managed policy:
    ecs:CreateCluster (the agent creates a cluster only when ECS_CLUSTER is empty; nixecs
    always sets it) and ecs:DeregisterContainerInstance (neither the agent nor nixecs calls
    it: terminated instances are deregistered by ECS).

    Resource types and condition keys, per the Service Authorization Reference
    ("Actions, resources, and condition keys for Amazon Elastic Container Service",
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html;
    the resource types as cfn-lint records them in data/AdditionalSpecs/Policies.json, the
    condition keys as udondan/iam-floyd's code generated from it lists them): RegisterContainerInstance
    and the three Submit* actions take the `cluster` resource and no condition key of the
    cluster; Poll, StartTelemetrySession, UpdateContainerInstancesState and
    DescribeContainerInstances take `container-instance` and support `ecs:cluster`;
    DiscoverPollEndpoint has no resource type. Log writes go to this cluster's log groups
    only: the awslogs driver runs in Docker with the instance's credentials unless
    ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE is set. ECR reads: `_ecr_pulls`."""
    cluster_arn = ctx.cluster_arn()
    instances = _container_instances(ctx)
    on_cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
    cluster = literal(ctx.ecs_cluster_name)
    log_groups = literal(naming.log_group_name(ctx.cluster.name, "*"))
    return [
        {
            "Sid": "EcsAgentOwnCluster",
            "Effect": "Allow",
            "Action": [
                "ecs:RegisterContainerInstance",
                "ecs:SubmitAttachmentStateChanges",
                "ecs:SubmitContainerStateChange",
                "ecs:SubmitTaskStateChange",
            ],
            "Resource": cluster_arn,
        },
        {
            "Sid": "EcsAgentOwnContainerInstances",
            "Effect": "Allow",
            "Action": [
                "ecs:Poll",
                "ecs:StartTelemetrySession",
                # Any instance of the cluster: no condition key names the calling one.
                *(
                    ["ecs:UpdateContainerInstancesState"]
                    if group.drain is not None or group.ecs.spot_draining
                    else []
                ),
            ],
            "Resource": instances,
            "Condition": on_cluster,
        },
        {
            # RegisterContainerInstance with tags needs TagResource on the new container
            # instance ("Grant permission to tag resources on creation", ECS developer guide:
            # ecs:CreateAction); the managed policy grants the same, on every cluster.
            "Sid": "EcsAgentTagOnRegister",
            "Effect": "Allow",
            "Action": "ecs:TagResource",
            "Resource": instances,
            "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterContainerInstance"}},
        },
        {
            "Sid": "EcsAgentReadTags",
            "Effect": "Allow",
            "Action": "ecs:ListTagsForResource",
            "Resource": [
                instances,
                sub(f"{ARN_PREFIX}:ecs:{REGION_ACCOUNT}:task/{cluster}/*"),
            ],
        },
        {
            "Sid": "LogsOwnClusterGroups",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            # Matches the log group ARN and its streams' (`log-group:NAME:log-stream:S`).
            "Resource": sub(f"{ARN_PREFIX}:logs:{REGION_ACCOUNT}:log-group:{log_groups}"),
        },
        {
            # No resource type for any of these (Service Authorization Reference); all
            # read-only or, for DiscoverPollEndpoint, an endpoint lookup.
            "Sid": "EcsAgentUnscopable",
            "Effect": "Allow",
            "Action": ["ecs:DiscoverPollEndpoint", "ecr:GetAuthorizationToken", "ec2:DescribeTags"],
            "Resource": "*",
        },
    ]


# Registry host of a private ECR repository named in a plain `image:` reference
# ("Amazon ECR private registry", ECR user guide: aws_account_id.dkr.ecr.region.amazonaws.com).
_ECR_IMAGE_RE = lazy(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[^:@]+)"
)


def _ecr_pulls(ctx: Context, group: Group) -> list[dict[str, Json]]:
    """ECR reads of exactly the private repositories the group's services name.

    The ECS agent pulls with the execution role only when ECS marks the container's ECR
    auth data `UseExecutionRole` (aws/amazon-ecs-agent agent/api/container/container.go,
    ShouldPullWithExecutionRole), otherwise with the instance's credentials, and "Amazon ECS
    task execution IAM role" lists ECR pulls among the execution role's uses only for
    Fargate, Managed Instances and external instances: so the instance keeps the pull
    actions — but only on the repositories of its own services' images: `{ecr: REPO}` in this
    account and region, and plain `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO` references
    (other accounts' too; their repository policy must also allow the pull). Public images
    need nothing. ecr:GetAuthorizationToken has no resource type (ecs_agent_statements)."""
    repositories: dict[str, Json] = {}
    for service in ctx.cluster.task_definitions:
        if service.group != group.name:
            continue
        for container in service.containers:
            image = container.image
            if image.ecr is not None:
                arn = sub(f"{ARN_PREFIX}:ecr:{REGION_ACCOUNT}:repository/{literal(image.ecr)}")
                repositories.setdefault(f"own/{image.ecr}", arn)
            elif image.reference is not None:
                match = _ECR_IMAGE_RE.match(image.reference)
                if match:
                    account, region, name = match.group("account", "region", "repository")
                    arn = sub(
                        f"{ARN_PREFIX}:ecr:{literal(region)}:{account}:repository/{literal(name)}"
                    )
                    repositories.setdefault(f"{account}/{region}/{name}", arn)
    if not repositories:
        return []
    return [
        {
            "Sid": "EcrPullServiceImages",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": [repositories[key] for key in sorted(repositories)],
        }
    ]


def instance_role(ctx: Context, group: Group) -> Resources:
    """The group's instance role and profile: one inline policy with what the ECS agent
    calls (on this cluster only), what the SSM agent needs, and what this group's own
    boot-time secrets and drain need."""
    ids = ctx.ids
    statements: list[dict[str, Json]] = [
        *ecs_agent_statements(ctx, group),
        *_ecr_pulls(ctx, group),
        {"Sid": "SsmAgent", "Effect": "Allow", "Action": list(SSM_AGENT_ACTIONS), "Resource": "*"},
    ]
    parameters = sorted({spec.parameter for spec in group.secrets.values()})
    if parameters:
        # GetParameters only: `nixecs secrets fetch` calls nothing else (nixecs.host.secrets).
        statements += _read_parameters(
            "ReadGroupSecrets", ["ssm:GetParameters"], parameters, group.kms_key
        )
    if group.drain is not None:
        statements += _drain_statements(ctx, group)
    properties: dict[str, Json] = {
        "Path": ROLE_PATH,
        "AssumeRolePolicyDocument": _assume_role("ec2.amazonaws.com"),
        "Policies": [
            {
                "PolicyName": "nixecs-host",
                "PolicyDocument": {"Version": IAM_POLICY_VERSION, "Statement": statements},
            }
        ],
    }
    properties["Tags"] = tags(ctx.group_tags(group))
    role_id = ids.group(group.name, "InstanceRole")
    return {
        role_id: {"Type": "AWS::IAM::Role", "Properties": properties},
        ids.group(group.name, "InstanceProfile"): {
            "Type": "AWS::IAM::InstanceProfile",
            "Properties": {"Path": ROLE_PATH, "Roles": [ref(role_id)]},
        },
    }


def execution_role(ctx: Context, service: Service) -> Resources:
    """The role the ECS agent uses to start the service's tasks: pull, logs, and — only when
    the service has secrets — read exactly those parameters."""
    properties: dict[str, Json] = {
        "Path": ROLE_PATH,
        "AssumeRolePolicyDocument": _assume_role(ECS_TASKS_PRINCIPAL),
        "ManagedPolicyArns": [managed_policy_arn(p) for p in EXECUTION_MANAGED_POLICIES],
    }
    # Every container's secrets: the agent resolves them all with this role.
    parameters = sorted({parameter for _, parameter in service.secret_uses()})
    key = ctx.cluster.groups[service.group].kms_key if service.group in ctx.cluster.groups else None
    if parameters:
        properties["Policies"] = [
            {
                "PolicyName": "nixecs-task-secrets",
                "PolicyDocument": {
                    "Version": IAM_POLICY_VERSION,
                    # The agent resolves `secrets` with GetParameters only.
                    "Statement": _read_parameters(
                        "ReadServiceSecrets", ["ssm:GetParameters"], parameters, key
                    ),
                },
            }
        ]
    # SSM parameter ARNs and Secrets Manager secrets (cloudformation/secret_refs.py)
    secret_refs.extend_execution_role(properties, service)
    env_files.extend_execution_role(properties, service)  # S3 .env files
    properties["Tags"] = tags(ctx.service_tags(service))
    return {
        ctx.ids.service(service.name, "ExecutionRole"): {
            "Type": "AWS::IAM::Role",
            "Properties": properties,
        }
    }


# ECS Exec: the SSM agent in the container opens its channels as the task role ("ECS Exec
# permissions", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec-run.html:
# the four ssmmessages actions on `*`, which support no resource type).
EXEC_ACTIONS = tuple(a for a in SSM_AGENT_ACTIONS if a.startswith("ssmmessages:"))


def has_task_role(service: Service) -> bool:
    """Whether the service's task definition has a TaskRoleArn (`task_role:` or ECS Exec)."""
    return (
        service.task_role is not None
        or service.enable_execute_command
        or firelens.writes_own_log_group(service)  # the router's credentials (fleet/firelens.py)
    )


def task_role(ctx: Context, service: Service) -> Resources:
    """The role the service's containers run as (TaskRoleArn): exactly the managed policies
    and statements of its `task_role:`, plus the ssmmessages actions ECS Exec needs when the
    service enables it. Without either there is none, and the containers get no AWS
    credentials at all."""
    if not has_task_role(service):
        return {}
    role = service.task_role
    properties: dict[str, Json] = {
        "Path": ROLE_PATH,
        "AssumeRolePolicyDocument": _assume_role(ECS_TASKS_PRINCIPAL, source_arn=True),
    }
    if role is not None and role.managed_policies:
        properties["ManagedPolicyArns"] = list(role.managed_policies)
    statements: list[Json] = []
    if role is not None:
        for statement in role.statements:
            rendered: dict[str, Json] = {
                "Effect": statement.effect,
                "Action": list(statement.actions),
                "Resource": list(statement.resources),
            }
            if statement.conditions:
                rendered["Condition"] = {
                    operator: {
                        key: values[0] if len(values) == 1 else list(values)
                        for key, values in keys.items()
                    }
                    for operator, keys in statement.conditions.items()
                }
            statements.append(rendered)
    if service.enable_execute_command:
        statements.append({"Effect": "Allow", "Action": list(EXEC_ACTIONS), "Resource": "*"})
    if firelens.writes_own_log_group(service):
        statements.append(
            {
                "Sid": "FireLensToOwnLogGroup",
                "Effect": "Allow",
                "Action": list(firelens.LOG_ACTIONS),
                "Resource": sub(
                    f"{ARN_PREFIX}:logs:{REGION_ACCOUNT}:log-group:"
                    f"{literal(naming.log_group_name(ctx.cluster.name, service.name))}:*"
                ),
            }
        )
    if statements:
        properties["Policies"] = [
            {
                "PolicyName": "nixecs-task",
                "PolicyDocument": {"Version": IAM_POLICY_VERSION, "Statement": statements},
            }
        ]
    properties["Tags"] = tags(ctx.service_tags(service))
    return {
        ctx.ids.service(service.name, "TaskRole"): {
            "Type": "AWS::IAM::Role",
            "Properties": properties,
        }
    }
