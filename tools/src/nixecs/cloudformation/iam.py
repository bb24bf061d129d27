"""IAM: one instance role and profile per group, one task execution role per service.

Least privilege is per group: a host reads exactly its own group's SSM parameters, and only
a group that drains on the host may complete its own lifecycle hook and drain container
instances of its own cluster. Roles have no names (CloudFormation generates them), so one
account can hold the same fleet in several regions; deploying needs CAPABILITY_IAM only.
"""

from __future__ import annotations

from .. import naming
from ..fleet.model import Group, Service
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
SSM_CORE_POLICY = "AmazonSSMManagedInstanceCore"
TASK_EXECUTION_POLICY = "service-role/AmazonECSTaskExecutionRolePolicy"

# Actions that support no resource-level permission at all (the Service Authorization
# Reference lists no resource type for them), so `Resource: "*"` is their only form.
# Tests assert that `*` appears nowhere else.
UNSCOPABLE_ACTIONS = frozenset({"autoscaling:DescribeAutoScalingInstances"})


def _assume_role(service: str) -> dict[str, Json]:
    return {
        "Version": IAM_POLICY_VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def _read_parameters(sid: str, actions: list[str], parameters: list[str]) -> list[dict[str, Json]]:
    """Read exactly these SSM parameters, and decrypt them — only through SSM, and only for
    these parameters: SSM encrypts each SecureString under the encryption context
    `PARAMETER_ARN=<the parameter's ARN>`, which binds the KMS grant to the same list. The
    key itself is not known here (aws/ssm or a customer key), so the resource is any key of
    this account and region."""
    arns = [ssm_parameter_arn(name) for name in parameters]
    return [
        {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": arns},
        {
            "Sid": "DecryptThoseViaSsm",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": sub(f"{ARN_PREFIX}:kms:{REGION_ACCOUNT}:key/*"),
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
            "Action": [
                "autoscaling:CompleteLifecycleAction",
                "autoscaling:RecordLifecycleActionHeartbeat",
            ],
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
    statements: list[dict[str, Json]] = []
    parameters = sorted({spec.parameter for spec in group.secrets.values()})
    if parameters:
        statements += _read_parameters(
            "ReadGroupSecrets", ["ssm:GetParameter", "ssm:GetParameters"], parameters
        )
    if group.drain is not None:
        statements += _drain_statements(ctx, group)
    properties: dict[str, Json] = {
        "Path": ROLE_PATH,
        "AssumeRolePolicyDocument": _assume_role("ec2.amazonaws.com"),
        "ManagedPolicyArns": [
            managed_policy_arn(EC2_FOR_ECS_POLICY),
            managed_policy_arn(SSM_CORE_POLICY),
        ],
    }
    if statements:
        properties["Policies"] = [
            {
                "PolicyName": "nixecs-host",
                "PolicyDocument": {"Version": IAM_POLICY_VERSION, "Statement": statements},
            }
        ]
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
        "ManagedPolicyArns": [managed_policy_arn(TASK_EXECUTION_POLICY)],
    }
    parameters = sorted(set(service.secrets.values()))
    if parameters:
        properties["Policies"] = [
            {
                "PolicyName": "nixecs-task-secrets",
                "PolicyDocument": {
                    "Version": IAM_POLICY_VERSION,
                    # The agent resolves `secrets` with GetParameters only.
                    "Statement": _read_parameters(
                        "ReadServiceSecrets", ["ssm:GetParameters"], parameters
                    ),
                },
            }
        ]
    properties["Tags"] = tags(ctx.service_tags(service))
    return {
        ctx.ids.service(service.name, "ExecutionRole"): {
            "Type": "AWS::IAM::Role",
            "Properties": properties,
        }
    }
