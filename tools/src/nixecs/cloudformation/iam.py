"""IAM: one instance role and profile per group, one task execution role per service.

Least privilege is per group: a host reads exactly its own group's SSM parameters, and only
a group that drains on the host may complete its own lifecycle hook and drain container
instances of its own cluster.

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
from . import env_files, secret_refs
from .context import Context, Resources
from .intrinsics import (
    ARN_PREFIX,
    IAM_POLICY_VERSION,
    REGION_ACCOUNT,
    Json,
    literal,
    managed_policy_arn,
    ref,
    ssm_parameter_arn,
    sub,
    tags,
)

ROLE_PATH = "/nixecs/"
EC2_FOR_ECS_POLICY = "service-role/AmazonEC2ContainerServiceforEC2Role"
TASK_EXECUTION_POLICY = "service-role/AmazonECSTaskExecutionRolePolicy"
# The managed policies attached here; tests read their recorded documents.
INSTANCE_MANAGED_POLICIES = (EC2_FOR_ECS_POLICY,)
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
UNSCOPABLE_ACTIONS = frozenset({"autoscaling:DescribeAutoScalingInstances"})
# Granted on `*` as AmazonSSMManagedInstanceCore grants them (see SSM_AGENT_ACTIONS).
STAR_ACTIONS = UNSCOPABLE_ACTIONS | frozenset(SSM_AGENT_ACTIONS)


def kms_key_arn(key: str | None) -> Json:
    """The KMS key SSM encrypts the secrets under: a customer managed key (an ARN, or a key id
    in this account and region), or — None — any key of this account and region, which covers
    aws/ssm (whose ARN is not known in advance)."""
    if key is None:
        return sub(f"{ARN_PREFIX}:kms:{REGION_ACCOUNT}:key/*")
    if key.startswith("arn:"):
        return key
    return sub(f"{ARN_PREFIX}:kms:{REGION_ACCOUNT}:key/{literal(key)}")


def _assume_role(service: str) -> dict[str, Json]:
    return {
        "Version": IAM_POLICY_VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


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
    cluster = literal(ctx.ecs_cluster_name)
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
            # Both actions take container-instance ARNs and support the ecs:cluster
            # condition: the ARN pattern and the condition each pin them to this cluster.
            "Sid": "DrainClusterContainerInstances",
            "Effect": "Allow",
            "Action": ["ecs:DescribeContainerInstances", "ecs:UpdateContainerInstancesState"],
            "Resource": sub(f"{ARN_PREFIX}:ecs:{REGION_ACCOUNT}:container-instance/{cluster}/*"),
            "Condition": {"ArnEquals": {"ecs:cluster": ctx.cluster_arn()}},
        },
    ]


def instance_role(ctx: Context, group: Group) -> Resources:
    """The group's instance role and profile. The managed policies let the ECS agent
    register and run tasks and let SSM manage the host; the inline policy adds only what
    this group's own boot-time secrets and drain need."""
    ids = ctx.ids
    statements: list[dict[str, Json]] = [
        {"Sid": "SsmAgent", "Effect": "Allow", "Action": list(SSM_AGENT_ACTIONS), "Resource": "*"}
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
        "ManagedPolicyArns": [managed_policy_arn(p) for p in INSTANCE_MANAGED_POLICIES],
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
        "AssumeRolePolicyDocument": _assume_role("ecs-tasks.amazonaws.com"),
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
        "AssumeRolePolicyDocument": _assume_role("ecs-tasks.amazonaws.com"),
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
